#!/usr/bin/env bash
# reprobox run on bad input: one clear line, docker's exit codes, nothing left in the cache.
. "$(dirname "$0")/lib.sh"
L=$(fixture busybox)

expect_status "command not found" 127 rbx run "oci:$L" pnpm db:migrate
assert_one_error_line "command not found"
assert_contains "names the command" "$ERR" '"pnpm"'
assert_contains "names the PATH" "$ERR" "PATH=/usr/local/sbin:/usr/local/bin"
expect_status "path not found" 127 rbx run "oci:$L" ./scripts/run-migrations.sh
assert_one_error_line "relative path not found"
expect_status "not executable" 126 rbx run "oci:$L" /etc/passwd
assert_one_error_line "not executable"
expect_status "a directory" 126 rbx run "oci:$L" /etc
expect_status "report on 127" 127 rbx run --report "$RBX_TMP/r.json" "oci:$L" nosuch
assert_eq "report kind" "$(jq -r .result.error.kind "$RBX_TMP/r.json")" "command-not-found"
assert_eq "report exit code" "$(jq -r .result.exit_code "$RBX_TMP/r.json")" "127"

expect_status "no such dir" 125 rbx run oci:/nonexistent/img true
assert_one_error_line "no such dir"
assert_contains "names the reference" "$ERR" "/nonexistent/img"
expect_status "unknown tag" 125 rbx run "oci:$L:v2" true
assert_one_error_line "unknown tag"
assert_contains "lists the tags" "$ERR" 'no tag "v2"'
assert_contains "tags listed" "$ERR" "latest"
expect_status "bad reference" 125 rbx run nonsense true
assert_one_error_line "bad reference"
expect_status "no image" 125 rbx run
assert_one_error_line "no image"
expect_status "unknown option" 125 rbx run --frobnicate "oci:$L" true
assert_one_error_line "unknown option"

# Corrupt copies of the fixture: each must fail with 125 and leave the store clean. Each uses a
# fresh store: a layer already unpacked is found by its diff_id and its blob is not read again
# (as containerd does), so a corrupt blob is only seen on a cold cache.
fresh_store() { RBX_ROOT="$RBX_TMP/store-$1"; }
corrupt() { # NAME -> a fresh copy of the fixture
    rm -rf "$RBX_TMP/$1"
    cp -a "$L" "$RBX_TMP/$1"
    echo "$RBX_TMP/$1"
}
manifest_of() { # LAYOUT -> the latest manifest blob path
    local d
    d=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="latest") | .digest' "$1/index.json")
    echo "$1/blobs/sha256/${d#sha256:}"
}
first_layer() { # LAYOUT -> path of the first layer blob
    local d
    d=$(jq -r '.layers[0].digest' "$(manifest_of "$1")")
    echo "$1/blobs/sha256/${d#sha256:}"
}
last_layer() {
    local d
    d=$(jq -r '.layers[-1].digest' "$(manifest_of "$1")")
    echo "$1/blobs/sha256/${d#sha256:}"
}

fresh_store digest
C=$(corrupt digest)
f=$(last_layer "$C"); chmod u+w "$f"; printf 'X' | dd of="$f" bs=1 seek=600 conv=notrunc 2>/dev/null
expect_status "layer digest mismatch" 125 rbx run "oci:$C" true
assert_one_error_line "digest mismatch"
assert_contains "digest mismatch named" "$ERR" "sha256:"
assert_store_clean "digest mismatch"
check "no layer published for the bad blob" test -z "$(ls "$RBX_ROOT/layers" 2>/dev/null | grep -F "$(basename "$f")")"

fresh_store truncated
C=$(corrupt truncated)
f=$(first_layer "$C"); chmod u+w "$f"; truncate -s 100 "$f"
expect_status "truncated blob" 125 rbx run "oci:$C" true
assert_one_error_line "truncated blob"
assert_store_clean "truncated blob"

fresh_store badjson
C=$(corrupt badjson)
chmod u+w "$C/index.json"; printf '{"schemaVersion": 2, "manifests": [' >"$C/index.json"
expect_status "malformed index.json" 125 rbx run "oci:$C" true
assert_one_error_line "malformed index.json"
assert_contains "malformed JSON located" "$ERR" "index.json"

C=$(corrupt badmanifest)
m=$(manifest_of "$C"); chmod u+w "$m"; printf '{"schemaVersion": 2, "config": 5}' >"$m"
expect_status "manifest replaced" 125 rbx run "oci:$C" true
assert_one_error_line "manifest content does not match its digest"

C=$(corrupt nolayout)
rm -f "$C/oci-layout"
expect_status "no oci-layout file" 125 rbx run "oci:$C" true
assert_one_error_line "no oci-layout"

assert_store_clean "after every failure"
finish
