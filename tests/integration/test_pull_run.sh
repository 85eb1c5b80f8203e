#!/usr/bin/env bash
# test_pull_run.sh — `reprobox run docker://...` end to end: pulled on demand from a registry on
# loopback, unpacked, run; again offline from the store; and as an ordinary user (the rootless
# re-execution keeps the host's network and finds the CA and credentials it is given).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

registry_require
BUSYBOX=$(fixture busybox) || exit 77
# The sandbox must be able to run the fixture at all on this machine.
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
push "oci:$BUSYBOX:entrypoint" "docker://$R/busybox:entrypoint" --dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS"

expect_status "run pulls on demand" 0 rbx run "${AUTH[@]}" "docker://$R/busybox:latest" echo ok
assert_eq "run pulls on demand: the command's output" "$OUT" "ok"
assert_contains "run pulls on demand: what was pulled, on stderr" "$ERR" "Pulled docker://$R/busybox:latest"
expect_status "run with the image's entrypoint" 0 rbx run "${AUTH[@]}" "docker://$R/busybox:entrypoint"
assert_eq "run with the image's entrypoint: output" "$OUT" "entry default"

registry_kill main
expect_status "run offline from the store" 0 rbx run "docker://$R/busybox:latest" echo offline
assert_eq "run offline: output" "$OUT" "offline"
assert_not_contains "run offline: nothing pulled" "$ERR" "Pulled"
registry_start main "$REG_main_PORT" || skip "the registry did not restart"

# ---- rootless ---------------------------------------------------------------------------------------
rootless_setup
mkdir -p "$RBX_RL_DIR/ca"
cp "$CA/ca.crt" "$RBX_RL_DIR/ca/"
chmod -R a+rX "$RBX_RL_DIR/ca"
run_capture rbx_rootless pull --cert-dir "$RBX_RL_DIR/ca" --creds "$REG_USER:$REG_PASS" "docker://$R/busybox:latest"
if [[ "$ERR" == *"user namespace"* ]]; then
    echo "skip: rootless: ${ERR:0:200}"
else
    assert_eq "rootless pull (exit)" "$STATUS" 0
    run_capture rbx_rootless run "docker://$R/busybox:latest" echo rootless-ok
    assert_eq "rootless run from the pulled image" "$OUT" "rootless-ok"
fi

finish
