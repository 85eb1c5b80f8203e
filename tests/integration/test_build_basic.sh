#!/usr/bin/env bash
# test_build_basic.sh — reprobox build on the busybox fixture: multi-stage with COPY --from,
# ARG/ENV substitution and --build-arg, USER/WORKDIR/ENTRYPOINT/CMD/LABEL in the config,
# .dockerignore, COPY --chown/--chmod, heredocs, a whiteout; the result runs under reprobox run,
# skopeo reads it, a docker-archive is written too; the step cache hits on a second build.
source "$(dirname "$0")/lib.sh"

BUSYBOX=$(fixture busybox) || exit 77
CTX="$RBX_SOURCE_DIR/tests/fixtures/build/basic"
OUT="$RBX_TMP/out"
build() { rbx build --progress plain --build-context "busybox=oci:$BUSYBOX" "$@"; }

expect_status "build" 0 build -t "oci:$OUT:v1" -t "docker-archive:$RBX_TMP/basic.tar:basic:v1" "$CTX"
assert_contains "progress names stages and steps" "$ERR" "[builder 5/10] WORKDIR /src"
assert_contains "progress shows the final stage" "$ERR" "[stage-1 3/8] COPY --from=builder /out/ /opt/app/"
assert_eq "prints the manifest digest" "$(grep -cE '^sha256:[0-9a-f]{64}$' <<<"$OUT")" "1"
DIGEST=$OUT

expect_status "the image runs its ENTRYPOINT and CMD" 0 rbx run "oci:$RBX_TMP/out:v1"
assert_eq "ARG and ENV substituted" "$OUT" "hello, world"
expect_status "heredoc RUN" 0 rbx run "oci:$RBX_TMP/out:v1" heredoc.txt
assert_eq "heredoc RUN ran in WORKDIR" "$OUT" "heredoc ran in /src as 0"
expect_status "heredoc COPY" 0 rbx run "oci:$RBX_TMP/out:v1" inline.conf
assert_eq "heredoc COPY substituted" "$OUT" "greeting=hello"
expect_status ".dockerignore" 0 rbx run "oci:$RBX_TMP/out:v1" src-listing.txt
assert_eq "ignored files never reach the build" "$(echo $OUT)" ". .. keep.txt"
expect_status "owners" 0 rbx run "oci:$RBX_TMP/out:v1" owners.txt
assert_eq "--chown by names of the stage's passwd/group, --chmod, context files owned by root" \
    "$(echo $OUT)" "1000:100 644 0:0 640"
expect_status "whiteout" 1 rbx run "oci:$RBX_TMP/out:v1" /etc/fixture-release
assert_contains "RUN rm made a whiteout" "$ERR" "No such file"

expect_status "skopeo inspect" 0 skopeo inspect --config "oci:$RBX_TMP/out:v1"
CONFIG=$OUT
assert_eq "User in the config" "$(jq -r .config.User <<<"$CONFIG")" "1000:100"
assert_eq "WorkingDir in the config" "$(jq -r .config.WorkingDir <<<"$CONFIG")" "/opt/app"
assert_eq "Entrypoint" "$(jq -c .config.Entrypoint <<<"$CONFIG")" '["/bin/cat"]'
assert_eq "Cmd" "$(jq -c .config.Cmd <<<"$CONFIG")" '["msg.txt"]'
assert_eq "LABEL kept with the base's" "$(jq -c .config.Labels <<<"$CONFIG")" \
    '{"org.example.stage":"final","org.reprobox.fixture":"busybox"}'
assert_eq "created is the epoch" "$(jq -r .created <<<"$CONFIG")" "1970-01-01T00:00:00Z"
assert_eq "no host path in the history" "$(jq -r '.history[].created_by' <<<"$CONFIG" | grep -c "$RBX_TMP")" "0"
assert_eq "build ARG values stay out of Env" "$(jq -c '.config.Env' <<<"$CONFIG")" \
    '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'

expect_status "the docker archive runs" 0 rbx run "docker-archive:$RBX_TMP/basic.tar:basic:v1"
assert_eq "the docker archive holds the same image" "$OUT" "hello, world"

# The step cache: everything again, from the cache, to the same digest.
expect_status "second build" 0 build -t "oci:$RBX_TMP/out:v2" "$CTX"
assert_eq "same digest" "$OUT" "$DIGEST"
# 8 layer steps; the last WORKDIR names a directory COPY made: no layer, nothing to cache
assert_eq "every layer step cached" "$(grep -c 'CACHED' <<<"$ERR")" "8"
assert_not_contains "no RUN ran" "$ERR" "  | "

expect_status "a build arg changes what uses it" 0 build --build-arg GREETING=hi -t "oci:$RBX_TMP/out:v3" "$CTX"
check "another digest" [ "$OUT" != "$DIGEST" ]
assert_contains "the COPY before the RUN still hits" "$ERR" "[builder 6/10] COPY --chmod=0640 src/ ./  CACHED"
assert_contains "the RUN using it runs" "$(grep 'RUN mkdir' <<<"$ERR")" "DONE"
expect_status "run v3" 0 rbx run "oci:$RBX_TMP/out:v3"
assert_eq "--build-arg reached RUN" "$OUT" "hi, world"

expect_status "--no-cache" 0 build --no-cache "$CTX"
assert_eq "--no-cache: same image" "$OUT" "$DIGEST"
assert_not_contains "--no-cache: nothing cached" "$ERR" "CACHED"

expect_status "--target" 0 build --target builder -t "oci:$RBX_TMP/out:builder" "$CTX"
assert_not_contains "--target builds only what it needs" "$ERR" "stage-1"
expect_status "unused build arg warns" 0 build --build-arg NOBODY=x "$CTX"
assert_contains "docker's warning" "$ERR" "not consumed: [NOBODY]"
finish
