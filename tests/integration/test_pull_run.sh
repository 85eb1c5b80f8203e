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

# ---- unpack and build pull on demand too -------------------------------------------------------------
MAIN_ROOT=$RBX_ROOT
RBX_ROOT="$RBX_TMP/store-unpack"
expect_status "unpack pulls on demand" 0 rbx unpack "${AUTH[@]}" "docker://$R/busybox:latest" "$RBX_TMP/tree"
assert_contains "unpack pulls on demand: said" "$ERR" "Pulled docker://$R/busybox:latest"
check "unpack pulls on demand: the tree" test -x "$RBX_TMP/tree/bin/busybox" -a ! -e "$RBX_TMP/tree/etc/removed-by-layer2"
expect_status "unpack --bundle pulls on demand" 0 rbx unpack --bundle "${AUTH[@]}" "docker://$R/busybox:entrypoint" "$RBX_TMP/bundle"
assert_eq "unpack --bundle: the image's command" "$(jq -c .process.args "$RBX_TMP/bundle/config.json")" '["/bin/echo","entry","default"]'
expect_status "unpack --pull=never: from the store" 0 rbx unpack --pull=never "docker://$R/busybox:latest" "$RBX_TMP/tree2"
assert_not_contains "unpack --pull=never: nothing pulled" "$ERR" "Pulled"
expect_status "unpack --pull=never: absent is an error" 125 rbx unpack --pull=never "docker://$R/busybox:nosuchtag" "$RBX_TMP/tree3"
assert_one_error_line "unpack --pull=never"
expect_status "unpack: a wrong password" 125 rbx unpack --pull=always --cert-dir "$CA" --creds "$REG_USER:wrong" "docker://$R/busybox:latest" "$RBX_TMP/tree4"
assert_one_error_line "unpack: a wrong password"
assert_not_contains "unpack: the password is not printed" "$ERR" "wrong"
check "unpack: no DEST after a failed pull" test ! -e "$RBX_TMP/tree4"

RBX_ROOT="$RBX_TMP/store-build"
mkdir -p "$RBX_TMP/ctx"
printf 'FROM %s/busybox:latest\nRUN echo built >/built\nCMD ["cat", "/built"]\n' "$R" >"$RBX_TMP/ctx/Dockerfile"
expect_status "build: FROM a registry image, pulled on demand" 0 \
    rbx build -q "${AUTH[@]}" -t "oci:$RBX_TMP/built:1" "$RBX_TMP/ctx"
expect_status "build: the image runs" 0 rbx run "oci:$RBX_TMP/built:1"
assert_eq "build: the image runs: output" "$OUT" "built"
expect_status "build: FROM docker:// explicitly, --pull=never, from the store" 0 \
    rbx build -q --pull=never -f <(printf 'FROM docker://%s/busybox:latest\nRUN true\n' "$R") "$RBX_TMP/ctx"

# A recipe whose image and service are docker:// references: pulled on demand by replay and test.
RBX_ROOT="$RBX_TMP/store-recipe"
cat >"$RBX_TMP/pulled.json" <<JSON
{"name": "pulled", "image": "docker://$R/busybox:latest",
 "services": [{"name": "svc", "image": "docker://$R/busybox:entrypoint", "entrypoint": "sleep", "command": ["30"]}],
 "steps": [{"name": "hello", "command": ["sh", "-c", "cat /opt/data/c"], "expect": {"exit": 0, "stdout_contains": "c"}}]}
JSON
expect_status "replay: docker:// images pulled on demand" 0 rbx replay "${AUTH[@]}" "$RBX_TMP/pulled.json"
assert_contains "replay: the step passed" "$OUT" "hello"
expect_status "test: docker:// images from the store, --pull=never" 0 rbx test --pull=never "$RBX_TMP/pulled.json"
assert_contains "test: PASS" "$OUT" "PASS"
expect_status "replay: a wrong password" 125 rbx replay --pull=always --cert-dir "$CA" --creds "$REG_USER:wrong" "$RBX_TMP/pulled.json"
RBX_ROOT=$MAIN_ROOT

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
