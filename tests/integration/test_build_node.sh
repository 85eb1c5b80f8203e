#!/usr/bin/env bash
# test_build_node.sh — the multi-stage Node build: a pnpm-style workspace (node_modules symlinks
# into a .pnpm store) on the node fixture, a build step, a pruned production stage. It builds,
# runs, hits the cache, reproduces under --check; the broken variants (a COPY of a missing file,
# a failing RUN) stop at the right line, exit 1, and `reprobox shell --failed` opens there.
source "$(dirname "$0")/lib.sh"

NODE=$(fixture node) || exit 77
CTX="$RBX_SOURCE_DIR/tests/fixtures/build/node"
build() { rbx build --progress plain --build-context "node=oci:$NODE" "$@"; }

expect_status "build" 0 build -t "oci:$RBX_TMP/out:api" --report "$RBX_TMP/report.json" "$CTX"
DIGEST=$OUT
assert_contains "the build step ran through the pnpm symlinks" "$ERR" "built with @ws/api: ok 00042"
assert_contains "only production dependencies deployed" "$ERR" "deployed: @ws/lib left-pad"
assert_eq "report: succeeded" "$(jq -r .status "$RBX_TMP/report.json")" "succeeded"
assert_eq "report: network recorded" "$(jq -r .network "$RBX_TMP/report.json")" "host"
assert_eq "report: the digest" "$(jq -r .image.manifest_digest "$RBX_TMP/report.json")" "$DIGEST"

expect_status "runs" 0 rbx run "oci:$RBX_TMP/out:api" node dist/server.js --once
assert_eq "the production image works" "$OUT" "@ws/api: ok 00042 (2.1.0, NODE_ENV=production)"
expect_status "pruned" 0 rbx run "oci:$RBX_TMP/out:api" sh -c 'ls -A /srv/api /srv/api/node_modules; id -u'
assert_eq "no dev dependency, no .pnpm store, no sources, runs as app" "$(echo $OUT)" \
    "/srv/api: README.md dist node_modules /srv/api/node_modules: @ws left-pad 1000"
expect_status "config" 0 skopeo inspect --config "oci:$RBX_TMP/out:api"
assert_eq "ENV from an ARG" "$(jq -c .config.Env <<<"$OUT")" \
    '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","NODE_ENV=production","PORT=4100"]'
assert_eq "EXPOSE adds to the base's" "$(jq -c '.config.ExposedPorts|keys' <<<"$OUT")" '["4000/tcp","4100/tcp"]'

expect_status "--build-arg" 0 build --build-arg APP_ENV=staging -t "oci:$RBX_TMP/out:staging" "$CTX"
assert_contains "the build stage came from the cache" "$ERR" "[build 4/4] RUN node apps/api/build.js  CACHED"
expect_status "runs staging" 0 rbx run "oci:$RBX_TMP/out:staging" node dist/server.js --once
assert_contains "the build arg reached the config" "$OUT" "NODE_ENV=staging"

expect_status "rebuild" 0 build "$CTX"
assert_eq "same digest from the cache" "$OUT" "$DIGEST"
assert_not_contains "nothing ran" "$ERR" "built with"

expect_status "--check" 0 build --check "$CTX"
assert_eq "--check: the same image" "$OUT" "$DIGEST"
assert_contains "--check: reproducible" "$ERR" "check: reproducible"
assert_contains "--check: the RUN ran again" "$ERR" "built with @ws/api"

# A COPY of a file that is not there: line 10 of Dockerfile.broken-copy.
expect_status "missing COPY source" 1 build -f "$CTX/Dockerfile.broken-copy" "$CTX"
assert_contains "names the file and line" "$ERR" "Dockerfile.broken-copy:10: COPY apps/api/missing.js apps/api/"
assert_contains "says what is missing" "$ERR" "\"/apps/api/missing.js\": not found in the build context"
assert_contains "shows the line" "$ERR" "  10 | >>> COPY apps/api/missing.js apps/api/"
expect_status "shell --failed where the COPY failed" 0 rbx shell --failed -- sh -c 'pwd; ls apps/api'
assert_eq "the stage as the step started" "$(echo $OUT)" "/ws package.json"
assert_store_clean "after builds and a failure"

# A failing RUN: line 14 of Dockerfile.broken-run, exit code 2, its output.
expect_status "failing RUN" 1 build --keep-failed --report "$RBX_TMP/fail.json" \
    -f "$CTX/Dockerfile.broken-run" "$CTX"
assert_contains "names the line" "$ERR" "Dockerfile.broken-run:14: RUN node apps/api/build.js --fail"
assert_contains "the exit code" "$ERR" "exit code: 2"
assert_contains "the command as run" "$ERR" "command:   /bin/sh -c node apps/api/build.js --fail"
assert_contains "the output tail" "$ERR" "  | build failed: type error in src/server.js (simulated)"
assert_eq "report: failed" "$(jq -r .status "$RBX_TMP/fail.json")" "failed"
assert_eq "report: line" "$(jq -r .failure.line "$RBX_TMP/fail.json")" "14"
assert_eq "report: exit code" "$(jq -r .failure.exit_code "$RBX_TMP/fail.json")" "2"
assert_contains "report: output tail" "$(jq -r .failure.output_tail "$RBX_TMP/fail.json")" "build failed"
expect_status "shell --failed in the failed step's changes" 0 \
    rbx shell --failed -- sh -c 'pwd; cat apps/api/dist/partial.txt; echo "$NODE_ENV $SOURCE_DATE_EPOCH"'
assert_eq "the failed step's files, workdir and env" "$(echo $OUT)" \
    "/ws written before the failure production 0"
assert_contains "says where" "$ERR" "Dockerfile.broken-run:14"
finish
