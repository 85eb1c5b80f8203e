#!/usr/bin/env bash
# Where overlayfs cannot hold the run, `reprobox run` falls back to a flat copy of the image and
# says so once: a store on overlayfs (a container's own rootfs: decided before anything runs),
# and a kernel that refuses the overlay mount itself (seen at the first run, remembered).
#
# Both need filesystems mounted for the test: the script re-executes itself in a mount namespace
# of its own (private propagation), so nothing it mounts is seen by, or left on, the host.
if [ -z "${RBX_FLAT_MNTNS:-}" ]; then
    [ "$(id -u)" == 0 ] || { echo "skip: mounts a test overlayfs: needs root"; exit 77; }
    exec env RBX_FLAT_MNTNS=1 unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
# Unmount ours before the scratch dir goes, or the host keeps its empty mount points.
RBX_CLEANUPS+=("findmnt -rn -o TARGET | grep '^$RBX_TMP/' | sort -r | xargs -r -n1 umount -l")

BB="oci:$(fixture busybox)"
# mount_overlay DIR: an overlayfs on DIR, its layers on a tmpfs of its own.
mount_overlay() {
    local base="$RBX_TMP/ovl-$(basename "$1")"
    mkdir -p "$base" "$1"
    mount -t tmpfs tmpfs "$base" && mkdir "$base/l" "$base/u" "$base/w" &&
        mount -t overlay overlay -o "lowerdir=$base/l,upperdir=$base/u,workdir=$base/w" "$1"
}
layers_cached() { find "$1/layers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# ---- the store on overlayfs ------------------------------------------------------------------
mount_overlay "$RBX_TMP/ovl" || skip "cannot mount a test overlayfs here"
RBX_ROOT="$RBX_TMP/ovl/store"
expect_status "store on overlayfs: the run works" 0 rbx run "$BB" sh -c 'echo hello; cat /opt/data/c'
assert_eq "store on overlayfs: output" "$OUT" "$(printf 'hello\nc')"
assert_contains "store on overlayfs: said" "$ERR" "overlayfs is not usable here (the store $RBX_ROOT is on overlayfs)"
assert_eq "store on overlayfs: said in one line" "$(printf '%s\n' "$ERR" | wc -l)" 1
check "store on overlayfs: remembered" test -f "$RBX_ROOT/overlay-unusable"
assert_eq "store on overlayfs: no layer cached" "$(layers_cached "$RBX_ROOT")" 0
expect_status "flat: a whiteout applied" 1 rbx run "$BB" test -e /etc/removed-by-layer2
assert_eq "flat: said once only" "$ERR" ""
expect_status "flat: an opaque dir applied" 0 rbx run "$BB" ls /opt/data
assert_eq "flat: the opaque dir holds only the upper layer's file" "$OUT" "c"
expect_status "flat: the command's exit code" 3 rbx run "$BB" sh -c 'exit 3'
expect_status "flat: a write" 0 rbx run "$BB" sh -c 'echo x >/etc/written && rm /bin/ls'
expect_status "flat: the write did not survive the run" 0 rbx run "$BB" sh -c 'test ! -e /etc/written && test -e /bin/ls'
expect_status "flat: -w, -u and -e" 0 rbx run -w /made -u 1000 -e A=b "$BB" sh -c 'echo "$(pwd) $(id -u) $A"'
assert_eq "flat: -w, -u and -e: output" "$OUT" "/made 1000 b"
expect_status "flat: --report" 0 rbx run --report "$RBX_TMP/r.json" "$BB" true
assert_eq "flat: the report" "$(jq -r .result.exit_code "$RBX_TMP/r.json")" 0
expect_status "flat: --keep" 0 rbx run --keep "$BB" sh -c 'echo kept >/kept'
kept=$(sed -n 's/^reprobox: kept the run.s rootfs in //p' <<<"$ERR")
check "flat: --keep says where the rootfs is" test -n "$kept"
assert_eq "flat: --keep kept the rootfs" "$(cat "$kept/kept" 2>/dev/null)" "kept"
expect_status "flat: spec writes a bundle" 0 rbx spec "$BB" "$RBX_TMP/bundle"
check "flat: the bundle's rootfs" test -x "$RBX_TMP/bundle/rootfs/bin/busybox"
expect_status "flat: doctor looks at a flat copy" 0 rbx doctor "$BB"
assert_eq "flat: doctor says nothing of overlayfs again" "$(grep -c overlayfs <<<"$ERR")" 0
printf '{"name": "flat", "image": "%s", "steps": [{"name": "read", "command": ["cat", "/opt/data/c"], "expect": {"exit": 0, "stdout_contains": "c"}}]}\n' \
    "$BB" >"$RBX_TMP/flat.json"
expect_status "flat: a recipe replays" 0 rbx replay "$RBX_TMP/flat.json"
expect_status "flat: a recipe as a test" 0 rbx test "$RBX_TMP/flat.json"
assert_eq "flat: still no layer cached" "$(layers_cached "$RBX_ROOT")" 0
assert_eq "flat: only the kept run dir is left" "$(find "$RBX_ROOT/runs" -mindepth 1 -maxdepth 1 ! -name '*.kept' ! -path "${kept%/rootfs}" | wc -l)" 0

# A first doctor on another store on overlayfs says it, as run does.
RBX_ROOT="$RBX_TMP/ovl/store2"
expect_status "store on overlayfs: doctor first" 0 rbx doctor "$BB"
assert_contains "store on overlayfs: doctor says it" "$ERR" "overlayfs is not usable here"

# ---- the kernel refuses the overlay mount ----------------------------------------------------
# Layers on a tmpfs (cached as usual), run dirs on overlayfs: an overlay's upper dir cannot be
# on overlayfs, so the kernel refuses the mount with EINVAL; the run goes flat and remembers.
RBX_ROOT="$RBX_TMP/refused"
mkdir -p "$RBX_ROOT" && mount -t tmpfs tmpfs "$RBX_ROOT" && mount_overlay "$RBX_ROOT/runs" ||
    skip "cannot mount the test filesystems"
expect_status "overlay refused: the run works" 0 rbx run "$BB" sh -c 'echo hello'
assert_eq "overlay refused: output" "$OUT" "hello"
assert_contains "overlay refused: said, with the kernel's reason" "$ERR" "not supported as upperdir"
assert_contains "overlay refused: said what happens" "$ERR" "use a flat copy of the image"
assert_eq "overlay refused: said in one line" "$(printf '%s\n' "$ERR" | wc -l)" 1
check "overlay refused: remembered" test -f "$RBX_ROOT/overlay-unusable"
expect_status "overlay refused: the next run" 0 rbx run "$BB" cat /opt/data/c
assert_eq "overlay refused: the next run says nothing" "$ERR" ""
assert_eq "overlay refused: the next run's output" "$OUT" "c"
expect_status "overlay refused: a missing command is still 127" 127 rbx run "$BB" no-such-command
assert_store_clean "overlay refused"

# ---- rootless, the store on overlayfs --------------------------------------------------------
rootless_setup
BB="oci:$(rootless_fixture busybox)"
mount_overlay "$RBX_TMP/rlovl" || skip "cannot mount a test overlayfs here"
install -d -o "$RBX_TEST_USER" -m 755 "$RBX_TMP/rlovl/user"
RBX_RL_ROOT="$RBX_TMP/rlovl/user/store"
expect_status "rootless, store on overlayfs: the run works" 0 rbx_rootless run "$BB" sh -c 'id -u; cat /opt/data/c'
assert_eq "rootless, store on overlayfs: output" "$OUT" "$(printf '0\nc')"
assert_contains "rootless, store on overlayfs: said" "$ERR" "is on overlayfs"
expect_status "rootless, flat: a whiteout applied" 1 rbx_rootless run "$BB" test -e /etc/removed-by-layer2
expect_status "rootless, flat: doctor" 0 rbx_rootless doctor "$BB"
finish
