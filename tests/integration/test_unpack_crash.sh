#!/usr/bin/env bash
# test_unpack_crash.sh — crash safety and concurrency of the cache: `reprobox unpack` and
# `reprobox run` killed with SIGKILL in the middle of extracting the node fixture's large layer
# never leave a half entry visible and the next run succeeds; eight concurrent cold runs of one
# image extract each layer exactly once (the store's journal counts extractions) and all succeed.
. "$(dirname "$0")/lib.sh"

NODE=$(fixture node) || exit 77

# wait_for TEST...: poll (10 ms) until the test holds, at most 10 s.
wait_for() {
    local i
    for ((i = 0; i < 1000; i++)); do
        "$@" && return 0
        sleep 0.01
    done
    return 1
}
has_entries() { [ -n "$(find "$1" -mindepth "${2:-1}" -maxdepth "${2:-1}" 2>/dev/null | head -1)" ]; }
# Every published layer is whole: it has its meta.json (written last, before the rename).
layers_whole() {
    local d bad=""
    for d in "$RBX_ROOT"/layers/*; do
        [ -e "$d" ] || continue
        [ -f "$d/meta.json" ] && [ -d "$d/rootfs" ] || bad+=" $d"
    done
    if [ -z "$bad" ]; then ok "$1: every published layer is whole"; else not_ok "$1: half layers:$bad"; fi
}

# ---- unpack killed in the middle ------------------------------------------------------------
DEST="$RBX_TMP/dest"
"$REPROBOX" --root "$RBX_ROOT" unpack "oci:$NODE" "$DEST" </dev/null >/dev/null 2>&1 &
pid=$!
# The node binary is being written: the staging dir beside DEST has files in usr/local/bin.
writing_node() { compgen -G "$RBX_TMP/.dest.reprobox-*/usr/local/bin/*" >/dev/null; }
if wait_for writing_node; then
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    check "unpack killed: no DEST" test ! -e "$DEST"
    check "unpack killed: its staging dir is there" test -n "$(find "$RBX_TMP" -maxdepth 1 -name '.dest.reprobox-*')"
    expect_status "the next unpack succeeds" 0 rbx unpack "oci:$NODE" "$DEST"
    check "node is whole" cmp -s "$DEST/usr/local/bin/node" "$(readlink -f "$(command -v node)")"
    assert_eq "the dead unpack's staging dir is gone" "$(find "$RBX_TMP" -maxdepth 1 -name '.dest.reprobox-*')" ""
else
    wait "$pid"
    not_ok "unpack was not caught extracting (finished first?)"
fi

# ---- run killed in the middle of extracting into the cache -------------------------------------
"$REPROBOX" --root "$RBX_ROOT" run "oci:$NODE" true </dev/null >/dev/null 2>&1 &
pid=$!
if wait_for has_entries "$RBX_ROOT/tmp"; then
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    check "run killed: its extraction is in tmp/" has_entries "$RBX_ROOT/tmp"
    layers_whole "run killed"
    expect_status "the next run succeeds" 0 rbx run "oci:$NODE" node -e 'process.exit(7 - 7)'
    assert_store_clean "after the next run"
    layers_whole "after the next run"
else
    wait "$pid"
    not_ok "run was not caught extracting"
fi

# ---- eight concurrent cold runs -------------------------------------------------------------
rm -rf "$RBX_ROOT"
pids=()
for i in 1 2 3 4 5 6 7 8; do
    "$REPROBOX" --root "$RBX_ROOT" run "oci:$NODE" true </dev/null >"$RBX_TMP/c$i.out" 2>&1 &
    pids+=($!)
done
fails=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { fails=$((fails + 1)); cat "$RBX_TMP/c$((i + 1)).out"; }
done
assert_eq "eight concurrent cold runs all succeed" "$fails" 0
n_layers=$(jq '.layers | length' "$NODE/blobs/sha256/$(jq -r '.manifests[0].digest' "$NODE/index.json" | cut -d: -f2)")
assert_eq "each layer extracted exactly once" \
    "$(awk '$3 == "extracted" { n[$4]++ } END { for (k in n) print n[k] }' "$RBX_ROOT/journal" | sort | uniq -c | awk '{ print $1 " x" $2 }')" \
    "$n_layers x1"
assert_eq "as many layer dirs as layers" "$(find "$RBX_ROOT/layers" -mindepth 1 -maxdepth 1 | wc -l)" "$n_layers"
assert_store_clean "after concurrent runs"
layers_whole "after concurrent runs"
assert_eq "the cache is private" "$(stat -c %a "$RBX_ROOT" "$RBX_ROOT/layers" "$RBX_ROOT/tmp" | sort -u)" 700
finish
