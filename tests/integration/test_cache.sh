#!/usr/bin/env bash
# test_cache.sh — `reprobox images` and `reprobox cache du|prune` on a real store: records and
# sizes listed, the prune policy (recent images kept, gone sources dropped, kept runs kept,
# --all), warm docker-archive runs that import nothing, and a rootless store (files owned by
# subordinate ids) pruned from inside its user namespace.
. "$(dirname "$0")/lib.sh"

BB=$(fixture busybox) || exit 77
NODE=$(fixture node) || exit 77

cp -a "$BB" "$RBX_TMP/bb"
expect_status "run busybox" 0 rbx run "oci:$RBX_TMP/bb" true
expect_status "images" 0 rbx images
assert_contains "images lists the reference" "$OUT" "oci:$RBX_TMP/bb:latest"
assert_contains "images: platform and layers" "$OUT" "linux/amd64"
assert_contains "images: 3 of 3 layers cached" "$OUT" "3/3"
expect_status "images --layers" 0 rbx images --layers
assert_eq "three layer rows" "$(grep -c '^sha256:' <<<"$OUT")" 3
expect_status "images --json" 0 rbx images --json
assert_eq "json: one image" "$(jq '.images | length' <<<"$OUT")" 1
assert_eq "json: three layers used once" "$(jq '[.layers[].used_by] | add' <<<"$OUT")" 3

expect_status "cache du" 0 rbx cache du
assert_contains "du: layers row" "$OUT" "layers"
expect_status "cache du --json" 0 rbx cache du --json
assert_eq "du: three layers" "$(jq .layers.count <<<"$OUT")" 3
check "du: layer bytes counted" test "$(jq .layers.bytes <<<"$OUT")" -gt 1000000

# ---- docker-archive: a warm run imports nothing -------------------------------------------
if command -v skopeo >/dev/null; then
    skopeo copy -q "oci:$NODE:latest" "docker-archive:$RBX_TMP/node.tar:node:1" >/dev/null 2>&1
    expect_status "cold docker-archive run" 0 rbx run "docker-archive:$RBX_TMP/node.tar" true
    t0=$(date +%s%N)
    expect_status "warm docker-archive run" 0 rbx run "docker-archive:$RBX_TMP/node.tar" true
    t1=$(date +%s%N)
    assert_eq "the archive was imported once" "$(grep -c ' imported ' "$RBX_ROOT/journal")" 1
    echo "# warm docker-archive run: $(((t1 - t0) / 1000000)) ms"
    touch "$RBX_TMP/node.tar"
    expect_status "changed archive run" 0 rbx run "docker-archive:$RBX_TMP/node.tar" true
    assert_eq "a changed archive is imported again" "$(grep -c ' imported ' "$RBX_ROOT/journal")" 2
fi

# ---- prune ------------------------------------------------------------------------------------
expect_status "prune keeps what recent images use" 0 rbx cache prune
assert_contains "prune reports" "$OUT" "removed 0 image records, 0 layers, 0 blobs"
expect_status "images after prune" 0 rbx images --json
n_layers=$(jq '[.layers[]] | length' <<<"$OUT")
check "busybox and node layers kept" test "$n_layers" -ge 3
expect_status "a kept run" 0 rbx run --keep "oci:$RBX_TMP/bb" sh -c 'echo x >/kept'
rm -rf "$RBX_TMP/bb"
rm -f "$RBX_TMP/node.tar"
expect_status "prune after the sources are gone" 0 rbx cache prune
assert_contains "records of gone images forgotten" "$OUT" "removed 2 image records"
expect_status "du after prune" 0 rbx cache du --json
assert_eq "the kept run keeps its layers" "$(jq .layers.count <<<"$OUT")" 3
assert_eq "no blob left of the archive" "$(jq .blobs.count <<<"$OUT")" 0
expect_status "prune --all" 0 rbx cache prune --all
assert_contains "--all removes the kept run" "$OUT" "1 kept runs"
expect_status "du after prune --all" 0 rbx cache du --json
assert_eq "nothing left" "$(jq '[.blobs.count, .layers.count, .runs.count, .records.count] | add' <<<"$OUT")" 0
expect_status "--older-than bad" 125 rbx cache prune --older-than 3x
assert_one_error_line "--older-than bad"
expect_status "cache without a subcommand" 125 rbx cache

# ---- rootless: files of subordinate ids, pruned inside the user namespace ---------------------
if [ "$(id -u)" == 0 ] && rootless_setup 2>/dev/null; then
    RL_BB=$(rootless_fixture busybox)
    run_capture rbx_rootless run "oci:$RL_BB" true
    if [ "$STATUS" == 0 ]; then
        owner=$(stat -c %u "$RBX_RL_ROOT/layers/"*/rootfs/home/app 2>/dev/null | head -1)
        check "a rootless layer holds a subordinate id" test -n "$owner" -a "$owner" != "$(id -u "$RBX_TEST_USER")"
        mkdir -p "$RBX_RL_DIR/out"
        chown "$RBX_TEST_USER" "$RBX_RL_DIR/out"
        run_capture rbx_rootless unpack "oci:$RL_BB" "$RBX_RL_DIR/out/unpacked"
        assert_eq "rootless unpack" "$STATUS" 0
        assert_eq "rootless unpack: owners as mapped" "$(stat -c %u "$RBX_RL_DIR/out/unpacked/home/app")" "$owner"
        run_capture rbx_rootless cache prune --all
        assert_eq "rootless prune --all" "$STATUS" 0
        assert_eq "rootless store emptied" "$(find "$RBX_RL_ROOT/layers" -mindepth 1 | wc -l)" 0
    else
        echo "# rootless run unavailable here: $ERR"
    fi
fi
finish
