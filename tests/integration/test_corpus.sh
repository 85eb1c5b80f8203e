#!/usr/bin/env bash
# test_corpus.sh — the hostile layer corpus (tests/corpus/make_corpus.c, written here) through
# `reprobox unpack` and `reprobox run`: every hostile case refused with one clear line or
# neutralised inside the root, a sentinel dir outside proving nothing leaked, the cache clean.
. "$(dirname "$0")/lib.sh"

GEN="${RBX_BUILD_DIR:-}/tests/rbx_make_corpus"
[ -x "$GEN" ] || skip "rbx_make_corpus not built"
BB=$(fixture busybox) || exit 77

# ---- the corpus, over the busybox base layer (so `run` has a shell) ---------------------------
SENT="$RBX_TMP/sentinel"
mkdir -p "$SENT/sub"
echo secret >"$SENT/secret"
echo inner >"$SENT/sub/inner"
snapshot() { (cd "$SENT" && find . -printf '%P %y %m %s %T@ %n\n' | sort; sha256sum secret sub/inner); }
BEFORE=$(snapshot)

base_blob=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest") | .digest' \
    "$BB/index.json" | cut -d: -f2)
base_layer=$(jq -r '.layers[0].digest' "$BB/blobs/sha256/$base_blob" | cut -d: -f2)
gzip -dc "$BB/blobs/sha256/$base_layer" >"$RBX_TMP/base.tar"
C="$RBX_TMP/corpus"
run_capture "$GEN" "$C" "$SENT" "$RBX_TMP/base.tar"
assert_eq "corpus written" "$STATUS" 0
[ -f "$C/cases.tsv" ] || finish

# The busybox base layer in the store first: afterwards a refused case adds no layer dir.
run_capture rbx run "oci:$C/legit-whiteouts" true
assert_eq "warm-up run" "$STATUS" 0

layers_now() { find "$RBX_ROOT/layers" -mindepth 1 -maxdepth 1 | sort; }
sentinel_intact() { # CASE
    if [ "$(snapshot)" == "$BEFORE" ]; then ok "$1: sentinel intact"; else not_ok "$1: sentinel changed"; fi
}
no_staging() { # CASE
    local left
    left=$(find "$RBX_TMP" -maxdepth 1 -name '.out-*.reprobox-*')
    if [ -z "$left" ]; then ok "$1: no staging dir left"; else not_ok "$1: left $left"; fi
}

# in_rootfs CASE CMD...: a check run inside the case's container.
in_rootfs() {
    local c=$1
    shift
    run_capture rbx run "oci:$C/$c" "$@"
}

while IFS=$'\t' read -r name kind expect; do
    img="oci:$C/$name"
    dest="$RBX_TMP/out-$name"
    before_layers=$(layers_now)
    export REPROBOX_MAX_LAYER_SIZE=256m # the bomb claims 1 GiB
    case $kind in
    refused)
        expect_status "$name: unpack refused" 125 rbx unpack "$img" "$dest"
        assert_one_error_line "$name: unpack"
        assert_contains "$name: unpack says why" "$ERR" "$expect"
        check "$name: no $dest" test ! -e "$dest"
        expect_status "$name: run refused" 125 rbx run "$img" true
        assert_one_error_line "$name: run"
        assert_contains "$name: run says why" "$ERR" "$expect"
        # A layer hardlinking into a missing lower file is itself complete and verified (it may
        # be cached); the image is refused before its links dir exists.
        if [[ $name == hardlink-* ]]; then
            assert_eq "$name: no links dir" "$(layers_now | grep -c /links-)" 0
        else
            assert_eq "$name: no layer dir published" "$(layers_now)" "$before_layers"
        fi
        ;;
    neutralised | legit)
        expect_status "$name: unpack" 0 rbx unpack "$img" "$dest"
        assert_eq "$name: unpack prints nothing" "$OUT$ERR" ""
        expect_status "$name: run" 0 rbx run "$img" true
        ;;
    esac
    unset REPROBOX_MAX_LAYER_SIZE
    sentinel_intact "$name"
    no_staging "$name"
    assert_store_clean "$name"
done <"$C/cases.tsv"

# ---- where the neutralised entries landed: inside -------------------------------------------
S=${SENT#/}
check "absolute name lands inside" test -f "$RBX_TMP/out-absolute-name/$S/planted"
in_rootfs absolute-name test -f "/$S/planted"
assert_eq "absolute name inside the container" "$STATUS" 0
for c in symlink-escape-one-layer symlink-escape-across-layers; do
    d="$RBX_TMP/out-$c"
    check "$c: the link is kept literally" test "$(readlink "$d/out")" == "$SENT"
    check "$c: out/planted inside" test -f "$d/$S/planted"
    check "$c: up/.../planted2 inside" test -f "$d/$S/planted2"
done
in_rootfs symlink-escape-one-layer sh -c "test -f /$S/planted && test -f /$S/planted2 && test -f /out/planted"
assert_eq "one layer: the links were followed inside the container's root" "$STATUS" 0
# Overlay form, as docker's overlay2: an upper layer's path through a lower layer's symlink is a
# real directory of the upper layer, which hides the link. Inside the root either way.
in_rootfs symlink-escape-across-layers sh -c "test -f /out/planted && test -f /up$SENT/planted2 && test ! -e /$S/planted"
assert_eq "across layers: the upper layer's dirs shadow the links" "$STATUS" 0
check "across layers: a dir through the link stays inside" test -d "$RBX_TMP/out-symlink-escape-across-layers/$S/newdir"
check "whiteout through a symlink: the link stays" test -L "$RBX_TMP/out-whiteout-through-symlink/out"
if command -v getfattr >/dev/null; then
    assert_eq "forged overlay xattrs dropped (unpack)" \
        "$(getfattr --absolute-names -d -m '.*overlay.*' "$RBX_TMP/out-forged-overlay-xattrs/forged/file" 2>&1)" ""
fi
in_rootfs forged-overlay-xattrs cat /forged/file
assert_eq "forged overlay xattrs: the file is a file inside" "$OUT" x
assert_eq "no whiteout file in any unpacked tree" "$(find "$RBX_TMP"/out-* -name '.wh.*')" ""
assert_eq "no whiteout device in any unpacked tree" \
    "$(find "$RBX_TMP"/out-* -type c -exec stat -c '%t:%T %n' {} + | grep '^0:0 ')" ""

# ---- the cache: private, and clean -------------------------------------------------------------
assert_eq "store is 0700" "$(stat -c %a "$RBX_ROOT")" 700
for d in blobs layers tmp locks runs images archives; do
    assert_eq "store/$d is 0700" "$(stat -c %a "$RBX_ROOT/$d")" 700
done
for d in "$RBX_ROOT"/layers/*; do
    [ -f "$d/meta.json" ] || not_ok "$d has no meta.json"
done
finish
