#!/usr/bin/env bash
# Builds one libFuzzer target over ToomCore's sources (no NIO, so it builds in seconds) and
# runs it on its seed corpus.
#   Fuzz/run.sh <frame|command|logline|timestamp|firstbyte|credentials> [runs] [extra libFuzzer flags...]
# runs: executions to try (default 1000000; -1 runs until stopped). New inputs the fuzzer
# finds go to .build/fuzz/<target>-found (or $TOOM_FUZZ_FOUND), never into the committed
# corpus; a crashing input is written to .build/fuzz/crash-<target>-*.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swiftc >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"

target=${1:?usage: Fuzz/run.sh <frame|command|logline|timestamp|firstbyte|credentials> [runs] [libFuzzer flags...]}
runs=${2:-1000000}
shift $(( $# >= 2 ? 2 : 1 ))
[ -f "Fuzz/$target.swift" ] || { echo "no fuzz target Fuzz/$target.swift" >&2; exit 64; }

out=.build/fuzz
binary="$out/$target"
found=${TOOM_FUZZ_FOUND:-$out/$target-found}
mkdir -p "$out" "$found"
sources=(Sources/ToomCore/*.swift Fuzz/Support.swift "Fuzz/$target.swift")
# Rebuild only when a source is newer than the binary.
if [ ! -x "$binary" ] || [ -n "$(find "${sources[@]}" -newer "$binary" 2>/dev/null)" ]; then
    if ! swiftc -sanitize=fuzzer,address -parse-as-library -module-name ToomFuzz \
            "${sources[@]}" -o "$binary.tmp" 2>"$out/$target-build.log"; then
        cat "$out/$target-build.log" >&2
        # Exit 77 ("skipped") when the toolchain has no libFuzzer, as on Apple's.
        if grep -qiE "unsupported option|fuzzer.*(not found|cannot find)|libclang_rt\.fuzzer" "$out/$target-build.log"; then
            echo "this toolchain cannot build libFuzzer targets (swiftc -sanitize=fuzzer)" >&2
            exit 77
        fi
        exit 1
    fi
    mv "$binary.tmp" "$binary"
fi

max_len=4096
[ "$target" = frame ] && max_len=$((16 * 1024 + 64))
# Swift's own crash backtracer would get in the way of libFuzzer's and the sanitizer's reports.
export SWIFT_BACKTRACE=enable=no
exec "$binary" -runs="$runs" -max_len="$max_len" -artifact_prefix="$out/crash-$target-" \
    -print_final_stats=1 "$@" "$found" "Fuzz/corpus/$target"
