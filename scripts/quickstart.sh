#!/usr/bin/env bash
# quickstart.sh — install what reprobox needs, build it, make the bundled example images and run
# one: a Node.js image, started as docker would start it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
scripts/make-fixtures.sh build/fixtures
echo "+ build/reprobox run oci:build/fixtures/node:latest node -e '...'"
build/reprobox run oci:build/fixtures/node:latest \
    node -e 'console.log(`node ${process.version} as uid ${process.getuid()} in ${require("os").hostname()}, cwd ${process.cwd()}`)'
