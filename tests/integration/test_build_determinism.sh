#!/usr/bin/env bash
# test_build_determinism.sh — the same build in two directories, under another TZ, umask,
# hostname, environment order, locale, HOME and a later clock, each with a cold store, gives the
# same manifest digest; --check finds what is not reproducible and names the layer, the file
# and the field.
source "$(dirname "$0")/lib.sh"

BUSYBOX=$(fixture busybox) || exit 77
NODE=$(fixture node) || exit 77
SRC="$RBX_SOURCE_DIR/tests/fixtures/build"

# Two copies of the contexts: another path, every file with another mtime.
mkdir -p "$RBX_TMP/a" "$RBX_TMP/elsewhere/b-with-another-name"
cp -a "$SRC/basic" "$SRC/node" "$RBX_TMP/a/"
cp -a "$SRC/basic" "$SRC/node" "$RBX_TMP/elsewhere/b-with-another-name/"
find "$RBX_TMP/elsewhere" -exec touch -h -d '2001-02-03 04:05:06' {} +

build_a() { # CTX STORE -> digest in $OUT
    ( umask 022; cd "$RBX_TMP/a" && TZ=UTC LC_ALL=C "$REPROBOX" --root "$2" build --progress plain \
        --build-context "busybox=oci:$BUSYBOX" --build-context "node=oci:$NODE" "$1" )
}
build_b() { # CTX STORE: other umask, TZ, locale, HOME, environment order, hostname
    local cmd=(env -i ZZZ=last HOME="$RBX_TMP/elsewhere" LANG=de_DE.UTF-8 LC_ALL=de_DE.UTF-8
               TZ=America/St_Johns PATH="$PATH" AAA=first
               "$REPROBOX" --root "$2" build --progress plain
               --build-context "busybox=oci:$BUSYBOX" --build-context "node=oci:$NODE" "$1")
    if unshare --uts true 2>/dev/null; then
        ( umask 077; cd "$RBX_TMP/elsewhere" && unshare --uts sh -c 'hostname other-builder && exec "$@"' sh "${cmd[@]}" )
    else
        echo "note: no UTS namespace here: the hostname is not varied"
        ( umask 077; cd "$RBX_TMP/elsewhere" && "${cmd[@]}" )
    fi
}

for ctx in basic node; do
    expect_status "$ctx: first build" 0 build_a "$RBX_TMP/a/$ctx" "$RBX_TMP/store-a"
    first=$OUT
    sleep 1 # a later clock
    expect_status "$ctx: second build elsewhere, other conditions, cold store" 0 \
        build_b "$RBX_TMP/elsewhere/b-with-another-name/$ctx" "$RBX_TMP/store-b-$ctx"
    assert_contains "$ctx: the second build ran its steps" "$ERR" "RUN"
    assert_not_contains "$ctx: nothing from a cache" "$ERR" "CACHED"
    assert_eq "$ctx: same manifest digest" "$OUT" "$first"
done

# --check on builds that are not reproducible.
mkdir -p "$RBX_TMP/nr"
cat >"$RBX_TMP/nr/Dockerfile" <<'EOF'
FROM busybox
RUN echo stable > /stable
RUN date +%s%N > /built-at
EOF
expect_status "--check: a timestamp in a file" 1 rbx build --check --report "$RBX_TMP/nr.json" \
    --build-context "busybox=oci:$BUSYBOX" "$RBX_TMP/nr"
assert_contains "names the layer and its step" "$ERR" "first difference: layer 5 (Dockerfile:3 RUN date +%s%N > /built-at)"
assert_contains "names the file and the field" "$ERR" "\"built-at\": content"
assert_eq "report: not reproducible" "$(jq -r .check.reproducible "$RBX_TMP/nr.json")" "false"
assert_eq "report: field" "$(jq -r .check.difference.field "$RBX_TMP/nr.json")" "content"
assert_eq "report: path" "$(jq -r .check.difference.path "$RBX_TMP/nr.json")" "built-at"
assert_eq "report: layer" "$(jq -r .check.difference.layer "$RBX_TMP/nr.json")" "5"
assert_contains "report: what was varied" "$(jq -r '.check.variations[]' "$RBX_TMP/nr.json")" "umask 077"

# With an epoch in the future, mtimes are not clamped: the second build's differ.
cat >"$RBX_TMP/nr/Dockerfile" <<'EOF'
FROM busybox
RUN echo same > /same
EOF
expect_status "--check: mtimes after the epoch" 1 rbx build --check --source-date-epoch 4000000000 \
    --build-context "busybox=oci:$BUSYBOX" "$RBX_TMP/nr"
assert_contains "names the mtime" "$ERR" "\"same\": mtime"

expect_status "--check: the same with the default epoch" 0 rbx build --check \
    --build-context "busybox=oci:$BUSYBOX" "$RBX_TMP/nr"
assert_contains "reproducible" "$ERR" "check: reproducible"
finish
