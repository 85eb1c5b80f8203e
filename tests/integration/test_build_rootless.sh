#!/usr/bin/env bash
# test_build_rootless.sh — an ordinary user builds (daemonless, rootless, owners from its
# subordinate ids) the image root builds, to the same manifest digest, and gets a shell where a
# step failed.
source "$(dirname "$0")/lib.sh"

rootless_setup
BUSYBOX=$(rootless_fixture busybox) || exit 77
CTX="$RBX_RL_DIR/ctx"
cp -a "$RBX_SOURCE_DIR/tests/fixtures/build/basic" "$CTX"
chmod -R a+rX "$CTX"

expect_status "root builds" 0 rbx build --progress plain --build-context "busybox=oci:$BUSYBOX" "$CTX"
ROOT_DIGEST=$OUT

expect_status "the user builds" 0 rbx_rootless build --progress plain \
    --build-context "busybox=oci:$BUSYBOX" -t "oci:$RBX_RL_DIR/user/out:v1" "$CTX"
assert_eq "the same digest as root's" "$OUT" "$ROOT_DIGEST"
expect_status "the user runs it" 0 rbx_rootless run "oci:$RBX_RL_DIR/user/out:v1" owners.txt
assert_eq "owners other than the user's, from its subordinate ids" "$(echo $OUT)" "1000:100 644 0:0 640"

expect_status "a failing step" 1 rbx_rootless build --progress plain --keep-failed \
    --build-context "busybox=oci:$BUSYBOX" -f "$CTX/Dockerfile.fail" "$CTX"
assert_contains "at its line" "$ERR" "Dockerfile.fail:4: RUN echo \"about to fail\" && false"
expect_status "shell --failed as the user" 0 rbx_rootless shell --failed -- cat /first
assert_eq "the step's rootfs" "$OUT" "first"
finish
