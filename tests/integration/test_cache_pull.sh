#!/usr/bin/env bash
# test_cache_pull.sh — prune and pulled images: a recent docker:// image keeps its blobs, its
# refs/ record and its layers; forgotten (--all), everything of it goes, and the next run pulls
# it again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

registry_require
BUSYBOX=$(fixture busybox) || exit 77
run_capture rbx run "oci:$BUSYBOX:latest" true
[ "$STATUS" == 0 ] || skip "reprobox run cannot run the busybox fixture here: ${ERR:0:300}"
rm -rf "$RBX_ROOT"

make_cert "$RBX_TMP/tls" || skip "openssl could not make a certificate"
CA="$RBX_TMP/tls/ca"
registry_config main tls-htpasswd
registry_start main || skip "docker-registry did not start"
R="127.0.0.1:$REG_main_PORT"
AUTH=(--cert-dir "$CA" --creds "$REG_USER:$REG_PASS")
push "oci:$BUSYBOX:latest" "docker://$R/busybox:latest" --dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS" || skip "skopeo could not push"

expect_status "run a pulled image" 0 rbx run "${AUTH[@]}" "docker://$R/busybox:latest" true
expect_status "images lists it" 0 rbx images
assert_contains "images: the docker reference" "$OUT" "docker://$R/busybox:latest"
blobs=$(find "$RBX_ROOT/blobs/sha256" -type f | wc -l)
expect_status "prune keeps a recent pulled image" 0 rbx cache prune
assert_contains "nothing removed" "$OUT" "removed 0 image records, 0 layers, 0 blobs"
assert_eq "its blobs stay" "$(find "$RBX_ROOT/blobs/sha256" -type f | wc -l)" "$blobs"
registry_kill main
expect_status "offline run after the prune" 0 rbx run "${AUTH[@]}" "docker://$R/busybox:latest" true
expect_status "prune --all" 0 rbx cache prune --all
assert_eq "no blob left" "$(find "$RBX_ROOT/blobs/sha256" -type f | wc -l)" 0
assert_eq "no refs record left" "$(find "$RBX_ROOT/refs" -type f 2>/dev/null | wc -l)" 0
registry_start main || skip "docker-registry did not restart"
R2="127.0.0.1:$REG_main_PORT"
[ "$R2" == "$R" ] || push "oci:$BUSYBOX:latest" "docker://$R2/busybox:latest" --dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS"
expect_status "pulled again after --all" 0 rbx run "${AUTH[@]}" "docker://$R2/busybox:latest" true
registry_kill main
finish
