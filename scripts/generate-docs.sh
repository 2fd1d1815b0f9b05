#!/usr/bin/env bash
# Regenerates completions/ (bash, zsh, fish) and man/ (mdoc pages, one per command) from
# toom's command-line definitions. The pages keep the date they carry, so regenerating
# unchanged definitions changes nothing; pass a date (YYYY-MM-DD) to set a new one.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product toom
toom=.build/debug/toom
tool=$(scripts/manual-tool.sh)

mkdir -p completions man
"$toom" --generate-completion-script bash > completions/toom.bash
"$toom" --generate-completion-script zsh > completions/_toom
"$toom" --generate-completion-script fish > completions/toom.fish

date=${1:-}
if [ -z "$date" ] && [ -f man/toom.1 ]; then
    date=$(date -d "$(sed -n 's/^\.Dd //p' man/toom.1)" +%F)
fi
date=${date:-$(date +%F)}
rm -f man/*.1
"$tool" "$toom" --multi-page --date "$date" --output-directory man
echo "completions/ and man/ regenerated (man page date $date)"
