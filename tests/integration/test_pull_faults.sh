#!/usr/bin/env bash
# test_pull_faults.sh — pulls that go wrong on the registry's side: a blob served with the wrong
# bytes (refused, nothing published), a pull killed mid-layer (the next one resumes with Range),
# the registry killed mid-pull and restarted (the same pull retries and resumes).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

registry_require
BUSYBOX=$(fixture busybox) || exit 77
NODE=$(fixture node) || exit 77
make_cert "$RBX_TMP/tls" || skip "openssl could not make a certificate"
CA="$RBX_TMP/tls/ca"
registry_config main tls-htpasswd
registry_start main || skip "docker-registry did not start"
R="127.0.0.1:$REG_main_PORT"
AUTH=(--cert-dir "$CA" --creds "$REG_USER:$REG_PASS")
DEST=(--dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS")
push "oci:$BUSYBOX:latest" "docker://$R/busybox:latest" "${DEST[@]}" || skip "skopeo could not push"
push "oci:$NODE:latest" "docker://$R/node:latest" "${DEST[@]}"

# The manifest as the registry has it (skopeo gzips the fixtures' uncompressed layer on push).
registry_manifest() { # REPO:TAG
    skopeo inspect --raw --cert-dir "$CA" --creds "$REG_USER:$REG_PASS" "docker://$R/$1"
}
ACCESS_LOG="$REG_main_DIR/registry.log"
ranged_gets() { grep -c "GET /v2/node/blobs/$1 HTTP/[0-9.]*\" 206" "$ACCESS_LOG"; }

# ---- a corrupted blob --------------------------------------------------------------------------
# The registry keeps blobs as files and serves them without checking: change bytes in the middle
# of busybox's top layer (same size) and the pull must refuse it.
BAD=$(registry_manifest busybox:latest | jq -r '.layers[2].digest')
BAD_FILE=$(registry_blob_file main "$BAD")
cp "$BAD_FILE" "$RBX_TMP/good-blob"
printf 'XXXX' | dd of="$BAD_FILE" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_status "corrupted blob" 125 rbx pull "${AUTH[@]}" "docker://$R/busybox:latest"
assert_one_error_line "corrupted blob"
assert_contains "corrupted blob: a digest mismatch naming the layer" "$ERR" "layer $BAD"
assert_contains "corrupted blob: digest mismatch" "$ERR" "digest mismatch"
check "corrupted blob: not published" test ! -e "$RBX_ROOT/blobs/sha256/${BAD#sha256:}"
check "corrupted blob: no record" test ! -e "$(store_record "$R/busybox:latest")"
check "corrupted blob: no partial file kept" test -z "$(ls "$RBX_ROOT/tmp")"
assert_store_clean "corrupted blob"
cp "$RBX_TMP/good-blob" "$BAD_FILE"
expect_status "repaired blob" 0 rbx pull "${AUTH[@]}" "docker://$R/busybox:latest"

# ---- a pull killed mid-layer resumes from the partial file ---------------------------------------
BIG=$(registry_manifest node:latest | jq -r '[.layers[]] | max_by(.size) | .digest')
BIG_SIZE=$(registry_manifest node:latest | jq -r '[.layers[]] | max_by(.size) | .size')
PARTIAL="$RBX_ROOT/tmp/partial-${BIG#sha256:}"
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
wait_partial() { # BYTES: wait until the partial file holds at least BYTES
    for _ in $(seq 300); do
        [ "$(size_of "$PARTIAL")" -ge "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

# In the background, the binary itself (not a shell function) so that the kill reaches it.
"$REPROBOX" --root "$RBX_ROOT" pull "${AUTH[@]}" --limit-rate 4m "docker://$R/node:latest" >"$RBX_TMP/pull1.out" 2>&1 &
PULL=$!
check "killed pull: the download started" wait_partial $((3 << 20))
kill -9 "$PULL"
wait "$PULL" 2>/dev/null
HAD=$(size_of "$PARTIAL")
check "killed pull: the partial file stays for the next pull" test "$HAD" -gt 0 -a "$HAD" -lt "$BIG_SIZE"
BEFORE=$(ranged_gets "$BIG")
expect_status "pull after a kill" 0 rbx pull "${AUTH[@]}" "docker://$R/node:latest"
assert_contains "pull after a kill: resumed" "$OUT" "1 resumed"
check "pull after a kill: the registry served a Range request" test "$(ranged_gets "$BIG")" -gt "$BEFORE"
check "pull after a kill: the layer is stored" test -f "$RBX_ROOT/blobs/sha256/${BIG#sha256:}"
assert_eq "pull after a kill: it hashes to its name" "sha256:$(sha256sum <"$RBX_ROOT/blobs/sha256/${BIG#sha256:}" | cut -d' ' -f1)" "$BIG"
DL=$(grep -o '[0-9]* downloaded ([^)]*)' <<<"$OUT")
check "pull after a kill: the partial file is gone" test ! -e "$PARTIAL"
echo "  (after $HAD of $BIG_SIZE bytes: $DL)"
assert_store_clean "pull after a kill"

# ---- the registry killed mid-pull and restarted: the same pull resumes ---------------------------
rm -rf "$RBX_ROOT"
BEFORE=$(ranged_gets "$BIG")
"$REPROBOX" --root "$RBX_ROOT" pull "${AUTH[@]}" --limit-rate 4m "docker://$R/node:latest" >"$RBX_TMP/pull2.out" 2>&1 &
PULL=$!
check "registry killed: the download started" wait_partial $((3 << 20))
registry_kill main
sleep 0.5
registry_start main "$REG_main_PORT" || not_ok "the registry did not restart on port $REG_main_PORT"
wait "$PULL"
STATUS=$?
OUT=$(cat "$RBX_TMP/pull2.out")
ERR=
assert_eq "registry killed: the pull still succeeds" "$STATUS" 0
assert_contains "registry killed: resumed" "$OUT" "1 resumed"
check "registry killed: the restarted registry served a Range request" test "$(ranged_gets "$BIG")" -gt "$BEFORE"
assert_eq "registry killed: the layer hashes to its name" "sha256:$(sha256sum <"$RBX_ROOT/blobs/sha256/${BIG#sha256:}" | cut -d' ' -f1)" "$BIG"
assert_store_clean "registry killed"

finish
