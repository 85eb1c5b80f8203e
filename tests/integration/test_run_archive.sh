#!/usr/bin/env bash
# reprobox run on docker-archive (made by skopeo) and oci-archive references, and platforms.
. "$(dirname "$0")/lib.sh"
L=$(fixture busybox)
command -v skopeo >/dev/null || skip "skopeo is not installed"

N=$(fixture node)
# Docker archives carry no zstd layers, so the node image (gzip layers only) is the one copied.
skopeo copy -q "oci:$N:latest" "docker-archive:$RBX_TMP/node.tar:fixture/node:1.0" >"$RBX_TMP/skopeo.log" 2>&1 ||
    { OUT=$(cat "$RBX_TMP/skopeo.log"); not_ok "skopeo copy to docker-archive"; finish; }
expect_status "docker-archive, the only image" 0 rbx run "docker-archive:$RBX_TMP/node.tar" node -v
assert_eq "docker-archive runs node" "$OUT" "$(node -v)"
expect_status "docker-archive by repo:tag, image Cmd and WorkingDir" 0 rbx run "docker-archive:$RBX_TMP/node.tar:fixture/node:1.0" sh -c 'pwd; test -f server.js'
assert_eq "docker-archive WorkingDir" "$OUT" "/app"
expect_status "docker-archive unknown tag" 125 rbx run "docker-archive:$RBX_TMP/node.tar:fixture/node:2.0" true
assert_one_error_line "docker-archive unknown tag"
assert_contains "lists RepoTags" "$ERR" "fixture/node:1.0"

(cd "$L" && tar -cf "$RBX_TMP/bb-oci.tar" .)
expect_status "oci-archive" 0 rbx run "oci-archive:$RBX_TMP/bb-oci.tar:entrypoint"
assert_eq "oci-archive tag" "$OUT" "entry default"

expect_status "whiteouts applied" 0 rbx run "oci:$L" sh -c 'test ! -e /etc/removed-by-layer2 && ls /opt/data'
assert_eq "opaque dir shows only the upper layer" "$OUT" "c"
expect_status "hardlinks kept" 0 rbx run "oci:$L" sh -c 'stat -c %i /usr/share/fixture/hl1 /usr/share/fixture/hl2 | uniq | wc -l'
assert_eq "hardlink pair shares an inode" "$OUT" "1"

expect_status "nested index, host platform" 0 rbx run "oci:$L:multi" uname -m
assert_eq "amd64 chosen" "$OUT" "x86_64"
expect_status "--platform linux/arm64 is selected" 0 rbx run --report "$RBX_TMP/arm.json" --platform linux/arm64 "oci:$L:multi" true
expect_status "host platform report" 0 rbx run --report "$RBX_TMP/amd.json" "oci:$L:multi" true
check "arm64 and amd64 configs differ" test "$(jq -r .image.config_digest "$RBX_TMP/arm.json")" != "$(jq -r .image.config_digest "$RBX_TMP/amd.json")"
run_capture rbx run --platform linux/s390x "oci:$L:multi" true
assert_eq "unknown platform -> 125" "$STATUS" "125"
assert_contains "names the platform" "$ERR" "linux/s390x"
finish
