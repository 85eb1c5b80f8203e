#!/usr/bin/env bash
# test_pull.sh — reprobox pull against a real registry (TLS, htpasswd): by tag and by digest,
# a two-platform index, credentials from flags and auth files, refusals that say why and write
# nothing, plain HTTP only when asked, the pull policy, and digests compared with skopeo's.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

registry_require
BUSYBOX=$(fixture busybox) || exit 77
make_cert "$RBX_TMP/tls" || skip "openssl could not make a certificate"
CA="$RBX_TMP/tls/ca"
registry_config main tls-htpasswd
registry_start main || skip "docker-registry did not start (see $REG_main_DIR/registry.log)"
R="127.0.0.1:$REG_main_PORT"
AUTH=(--cert-dir "$CA" --creds "$REG_USER:$REG_PASS")
SK=(--src-cert-dir "$CA" --src-creds "$REG_USER:$REG_PASS")

push "oci:$BUSYBOX:latest" "docker://$R/busybox:latest" --dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS" || skip "skopeo could not push"
push "oci:$BUSYBOX:multi" "docker://$R/busybox:multi" --all --dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS"
push "oci:$BUSYBOX:entrypoint" "docker://$R/team/busybox:v1.0" --dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS"

blob() { echo "$RBX_ROOT/blobs/sha256/${1#sha256:}"; }
store_blobs() { find "$RBX_ROOT/blobs/sha256" -type f 2>/dev/null | wc -l; }

# ---- refusals first: the store must stay empty ------------------------------------------------
expect_status "wrong password" 125 rbx pull --cert-dir "$CA" --creds "$REG_USER:wrong-password" "docker://$R/busybox:latest"
assert_one_error_line "wrong password"
assert_contains "wrong password: says the credentials were refused" "$ERR" "refused the credentials from --creds"
assert_not_contains "wrong password: the password is not shown" "$ERR" "wrong-password"
assert_eq "wrong password: no blob written" "$(store_blobs)" 0
check "wrong password: no record written" test ! -e "$RBX_ROOT/refs"
assert_store_clean "wrong password"

expect_status "no credentials" 125 env HOME="$RBX_TMP/nohome" XDG_RUNTIME_DIR= REGISTRY_AUTH_FILE= DOCKER_CONFIG= \
    "$REPROBOX" --root "$RBX_ROOT" pull --cert-dir "$CA" "docker://$R/busybox:latest"
assert_contains "no credentials: says so" "$ERR" "authentication required"

expect_status "self-signed certificate without its CA" 125 rbx pull --creds "$REG_USER:$REG_PASS" "docker://$R/busybox:latest"
assert_contains "untrusted certificate: names the problem and the way out" "$ERR" "--cert-dir"
assert_not_contains "untrusted certificate: the password is not shown" "$ERR" "$REG_PASS"

expect_status "not a docker:// reference" 125 rbx pull "oci:$BUSYBOX"
expect_status "invalid reference" 125 rbx pull "docker://$R/BusyBox"
assert_contains "invalid reference: says why" "$ERR" "invalid image reference"
expect_status "unknown tag" 125 rbx pull "${AUTH[@]}" "docker://$R/busybox:nope"
assert_contains "unknown tag: not found" "$ERR" "tag nope: not found"
assert_eq "refusals: still no blob" "$(store_blobs)" 0

# ---- by tag -----------------------------------------------------------------------------------
expect_status "pull by tag" 0 rbx pull "${AUTH[@]}" "docker://$R/busybox:latest"
assert_contains "pull by tag: summary" "$OUT" "3 layers, 3 downloaded"
SKOPEO_DIGEST=$(skopeo inspect "${SK[@]/--src-/--}" --format '{{.Digest}}' "docker://$R/busybox:latest")
assert_contains "pull by tag: the manifest digest is skopeo's" "$OUT" "$SKOPEO_DIGEST"
REC=$(store_record "$R/busybox:latest")
assert_eq "pull by tag: the record names skopeo's digest" "$(jq -r .digest "$REC")" "$SKOPEO_DIGEST"
check "pull by tag: the manifest blob is stored" test -f "$(blob "$SKOPEO_DIGEST")"
CONFIG=$(jq -r .config.digest "$(blob "$SKOPEO_DIGEST")")
SKOPEO_CONFIG="sha256:$(skopeo inspect "${SK[@]/--src-/--}" --config --raw "docker://$R/busybox:latest" | sha256sum | cut -d' ' -f1)"
assert_eq "pull by tag: the config digest is skopeo's" "$CONFIG" "$SKOPEO_CONFIG"
assert_eq "pull by tag: the stored config hashes to its name" "sha256:$(sha256sum <"$(blob "$CONFIG")" | cut -d' ' -f1)" "$CONFIG"
for l in $(jq -r '.layers[].digest' "$(blob "$SKOPEO_DIGEST")"); do
    assert_eq "pull by tag: layer ${l:7:12} hashes to its name" "sha256:$(sha256sum <"$(blob "$l")" | cut -d' ' -f1)" "$l"
done
assert_store_clean "pull by tag"
check "pull by tag: no lock left behind" test -z "$(ls "$RBX_ROOT/locks" | grep '^blob-')"

expect_status "pull again" 0 rbx pull "${AUTH[@]}" "docker://$R/busybox:latest"
assert_contains "pull again: nothing downloaded" "$OUT" "0 downloaded (0 B), 3 present"

# ---- by digest, another repository sharing the layers ------------------------------------------
expect_status "pull by digest" 0 rbx pull "${AUTH[@]}" "docker://$R/busybox@$SKOPEO_DIGEST"
assert_contains "pull by digest: the store had it" "$OUT" "Present"
EP_DIGEST=$(skopeo inspect "${SK[@]/--src-/--}" --format '{{.Digest}}' "docker://$R/team/busybox:v1.0")
expect_status "pull by digest (nested repository)" 0 rbx pull "${AUTH[@]}" "docker://$R/team/busybox@$EP_DIGEST"
assert_contains "pull by digest: the layers were there" "$OUT" "0 downloaded (0 B), 3 present"
assert_contains "pull by digest: the digest asked for" "$OUT" "$EP_DIGEST"
expect_status "a digest the registry lacks" 125 rbx pull "${AUTH[@]}" "docker://$R/busybox@sha256:$(printf x | sha256sum | cut -d' ' -f1)"
assert_contains "a digest the registry lacks: not found" "$ERR" "not found"

# ---- an index with two platforms --------------------------------------------------------------
INDEX_DIGEST=$(skopeo inspect "${SK[@]/--src-/--}" --raw "docker://$R/busybox:multi" | sha256sum | cut -d' ' -f1)
ARM_DIGEST=$(skopeo inspect "${SK[@]/--src-/--}" --raw "docker://$R/busybox:multi" | jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest')
expect_status "multi: linux/arm64" 0 rbx pull "${AUTH[@]}" --platform linux/arm64 "docker://$R/busybox:multi"
assert_contains "multi: the arm64 manifest" "$OUT" "(linux/arm64) $ARM_DIGEST (index sha256:$INDEX_DIGEST)"
ARM_CONFIG=$(skopeo inspect "${SK[@]/--src-/--}" --override-arch arm64 --config --raw "docker://$R/busybox:multi" | sha256sum | cut -d' ' -f1)
assert_eq "multi: the arm64 config is skopeo's" "$(jq -r .config.digest "$(blob "$ARM_DIGEST")")" "sha256:$ARM_CONFIG"
expect_status "multi: the host's platform" 0 rbx pull "${AUTH[@]}" "docker://$R/busybox:multi"
assert_contains "multi: amd64 is latest's manifest" "$OUT" "(linux/amd64) $SKOPEO_DIGEST"
expect_status "multi: a platform it lacks" 125 rbx pull "${AUTH[@]}" --platform linux/s390x "docker://$R/busybox:multi"
assert_contains "multi: lists what there is" "$ERR" "no manifest for platform linux/s390x (available: linux/amd64, linux/arm64)"

# ---- Docker v2 schema 2 media types ---------------------------------------------------------------
NODE=$(fixture node) || exit 77
push "oci:$NODE:latest" "docker://$R/node:v2s2" --format v2s2 --dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS"
V2_RAW=$(skopeo inspect "${SK[@]/--src-/--}" --raw "docker://$R/node:v2s2")
assert_eq "v2s2: the registry holds a Docker manifest" "$(jq -r .mediaType <<<"$V2_RAW")" "application/vnd.docker.distribution.manifest.v2+json"
expect_status "v2s2: pull" 0 rbx pull "${AUTH[@]}" "docker://$R/node:v2s2"
assert_contains "v2s2: the Docker manifest's digest" "$OUT" "sha256:$(printf '%s' "$V2_RAW" | sha256sum | cut -d' ' -f1)"
assert_eq "v2s2: stored with its media type" "$(jq -r .mediaType "$(store_record "$R/node:v2s2")")" "application/vnd.docker.distribution.manifest.v2+json"

# ---- credentials from files (never printed) ------------------------------------------------------
B64=$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)
mkdir -p "$RBX_TMP/home/.docker" "$RBX_TMP/xdg/containers"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$R" "$B64" >"$RBX_TMP/auth.json"
env_pull() { env HOME="$RBX_TMP/home" XDG_RUNTIME_DIR="$RBX_TMP/xdg" REGISTRY_AUTH_FILE= DOCKER_CONFIG= "$@"; }
expect_status "REGISTRY_AUTH_FILE" 0 env_pull REGISTRY_AUTH_FILE="$RBX_TMP/auth.json" "$REPROBOX" --root "$RBX_TMP/store2" pull --cert-dir "$CA" "docker://$R/busybox:latest"
printf '{"auths":{"https://%s/v1/":{"auth":"%s"}}}' "$R" "$B64" >"$RBX_TMP/home/.docker/config.json"
expect_status "~/.docker/config.json" 0 env_pull "$REPROBOX" --root "$RBX_TMP/store3" pull --cert-dir "$CA" "docker://$R/busybox:latest"
printf '{"auths":{"%s/team":{"auth":"%s"}}}' "$R" "$B64" >"$RBX_TMP/xdg/containers/auth.json"
rm "$RBX_TMP/home/.docker/config.json"
expect_status "auth.json scoped to a namespace" 0 env_pull "$REPROBOX" --root "$RBX_TMP/store4" pull --cert-dir "$CA" "docker://$R/team/busybox:v1.0"
expect_status "auth.json scoped elsewhere" 125 env_pull "$REPROBOX" --root "$RBX_TMP/store4" pull --cert-dir "$CA" "docker://$R/busybox:latest"
rm "$RBX_TMP/xdg/containers/auth.json"
printf '{"auths":{"%s":{}},"credHelpers":{"%s":"evil"}}' "$R" "$R" >"$RBX_TMP/home/.docker/config.json"
mkdir -p "$RBX_TMP/bin"
printf '#!/bin/sh\ntouch %s/helper-ran\n' "$RBX_TMP" >"$RBX_TMP/bin/docker-credential-evil"
chmod +x "$RBX_TMP/bin/docker-credential-evil"
expect_status "a credential helper is not run" 125 env_pull PATH="$RBX_TMP/bin:$PATH" "$REPROBOX" --root "$RBX_TMP/store5" pull --cert-dir "$CA" "docker://$R/busybox:latest"
assert_contains "credential helper: named in the error" "$ERR" 'credential helper "evil"'
check "credential helper: never executed" test ! -e "$RBX_TMP/helper-ran"
printf '{"auths":{"%s":{"auth":"bm90LWJhc2U2NA"}}}' "$R" >"$RBX_TMP/home/.docker/config.json"
expect_status "a malformed auth entry" 125 env_pull "$REPROBOX" --root "$RBX_TMP/store5" pull --cert-dir "$CA" "docker://$R/busybox:latest"
assert_contains "malformed auth: names the file and key" "$ERR" "config.json: auths.\"$R\".auth"
assert_not_contains "malformed auth: not the value" "$ERR" "bm90LWJhc2U2NA"

# ---- pulls at once into one store: each blob downloaded once -------------------------------------
PIDS=()
for i in 1 2 3; do
    "$REPROBOX" --root "$RBX_TMP/store6" pull "${AUTH[@]}" "docker://$R/team/busybox:v1.0" >"$RBX_TMP/par$i.out" 2>&1 &
    PIDS+=($!)
done
wait "${PIDS[@]}" # not a bare wait: the registry is a child too
PAR=$(cat "$RBX_TMP"/par*.out)
assert_eq "pulls at once: all succeed" "$(grep -c '^Pulled' <<<"$PAR")" 3
DOWNLOADED=$(grep -o '[0-9]* downloaded' <<<"$PAR" | awk '{ n += $1 } END { print n }')
assert_eq "pulls at once: each layer downloaded once" "$DOWNLOADED" 3
check "pulls at once: no lock or partial left" test -z "$(find "$RBX_TMP/store6/locks" "$RBX_TMP/store6/tmp" -mindepth 1)"

# ---- pull policy: offline opens from the store ---------------------------------------------------
registry_kill main
# Opened from the store, then run (or refused by a sandbox this machine cannot make): either
# way the registry was not needed.
run_capture rbx run --pull=never "docker://$R/busybox:latest" true
assert_not_contains "--pull=never offline: found in the store" "$ERR" "not in the store"
run_capture rbx run "docker://$R/busybox:latest" true
assert_not_contains "--pull=missing offline: found in the store" "$ERR" "onnect"
expect_status "--pull=never: an image not pulled" 125 rbx run --pull=never "docker://$R/busybox:entrypoint" true
assert_contains "--pull=never: says so" "$ERR" "not in the store (--pull=never"
expect_status "--pull=always offline: the registry is needed" 125 rbx run --pull=always --cert-dir "$CA" "docker://$R/busybox:latest" true
assert_contains "--pull=always offline: a network error" "$ERR" "onnect"

# ---- plain HTTP, only when asked, only on loopback --------------------------------------------------
registry_config plain plain
registry_start plain || skip "the plain registry did not start"
P="127.0.0.1:$REG_plain_PORT"
push "oci:$BUSYBOX:latest" "docker://$P/busybox:latest" --dest-tls-verify=false
expect_status "plain HTTP without --tls-verify=false" 125 rbx pull "docker://$P/busybox:latest"
assert_contains "plain HTTP: refused with a hint" "$ERR" "--tls-verify=false"
expect_status "plain HTTP with --tls-verify=false" 0 rbx pull --tls-verify=false "docker://$P/busybox:latest"
expect_status "localhost is loopback too" 0 rbx pull --tls-verify=false "docker://localhost:$REG_plain_PORT/busybox:latest"

finish
