#!/usr/bin/env bash
# Builds swift-argument-parser's generate-manual tool (the engine of its generate-manual
# plugin) from the package's own checkout, and prints its path. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .build/checkouts/swift-argument-parser ] || swift package resolve >&2
swift build --package-path .build/checkouts/swift-argument-parser --scratch-path .build/tools \
    --product generate-manual >&2
echo "$PWD/.build/tools/debug/generate-manual"
