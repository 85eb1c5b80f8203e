#!/usr/bin/env bash
# test_unpack.sh — `reprobox unpack` on the fixture images: the flattened tree, DEST rules, the
# CLI's output; and the differential against umoci: for every fixture image and tag and every
# legitimate corpus case, the same paths, types, modes, owners, link targets, contents and
# hardlink groups as `umoci unpack`'s rootfs.
. "$(dirname "$0")/lib.sh"

BB=$(fixture busybox) || exit 77
NODE=$(fixture node) || exit 77

# ---- the busybox tree --------------------------------------------------------------------------
D="$RBX_TMP/bb"
expect_status "unpack busybox" 0 rbx unpack "oci:$BB" "$D"
assert_eq "nothing printed without a terminal" "$OUT$ERR" ""
check "whiteout carried out" test ! -e "$D/etc/removed-by-layer2"
assert_eq "opaque dir: only layer 2's c" "$(find "$D/opt/data" -mindepth 1 -printf '%P ')" "c "
assert_eq "no whiteout file" "$(find "$D" -name '.wh.*')" ""
assert_eq "no whiteout device" "$(find "$D" -type c)" ""
assert_eq "no overlay xattr on /opt/data" "$(getfattr --absolute-names -d -m - "$D/opt/data" 2>/dev/null)" ""
assert_eq "hardlinks kept" "$(stat -c %i "$D/usr/share/fixture/hl1")" "$(stat -c %i "$D/usr/share/fixture/hl2")"
assert_eq "owners and modes" "$(stat -c '%a %u:%g' "$D/usr/share/fixture/group-0640" "$D/home/app" "$D/tmp" "$D/root")" \
    "640 0:100
755 1000:1000
1777 0:0
700 0:0"
assert_eq "symlinks literal" "$(readlink "$D/usr/share/fixture/dangling")" /nonexistent
check "layer 3 on top" grep -q "reprobox fixture release 1" "$D/etc/fixture-release"
assert_eq "the rootfs is 0755" "$(stat -c %a "$D")" 755

# ---- DEST rules ------------------------------------------------------------------------------
expect_status "a non-empty DEST is refused" 125 rbx unpack "oci:$BB" "$D"
assert_one_error_line "non-empty DEST"
assert_contains "non-empty DEST: says so" "$ERR" "is not empty"
mkdir "$RBX_TMP/empty"
expect_status "an empty DEST is taken" 0 rbx unpack "oci:$BB" "$RBX_TMP/empty"
check "empty DEST filled" test -x "$RBX_TMP/empty/bin/busybox"
: >"$RBX_TMP/file"
expect_status "a file as DEST is refused" 125 rbx unpack "oci:$BB" "$RBX_TMP/file"
expect_status "a missing parent is refused" 125 rbx unpack "oci:$BB" "$RBX_TMP/no/such/dest"
assert_one_error_line "missing parent"
expect_status "another platform of a multi-platform image" 0 \
    rbx unpack --platform linux/arm64 "oci:$BB:multi" "$RBX_TMP/arm64"
check "arm64 tree" test -x "$RBX_TMP/arm64/bin/busybox"
expect_status "a missing image" 125 rbx unpack "oci:$RBX_TMP/nothing" "$RBX_TMP/x"
assert_one_error_line "missing image"
check "no DEST after a failure" test ! -e "$RBX_TMP/x"
expect_status "usage" 125 rbx unpack "oci:$BB"
assert_contains "usage says what is missing" "$ERR" "want IMAGE and DEST"
expect_status "--help" 0 rbx unpack --help
assert_contains "--help" "$OUT" "Usage: reprobox unpack"
expect_status "a layer over --max-layer-size" 125 rbx unpack --max-layer-size 64k "oci:$BB" "$RBX_TMP/capped"
assert_contains "the cap is named" "$ERR" "expands to more than 64.0 KiB"
check "no DEST after the cap" test ! -e "$RBX_TMP/capped"

# ---- --bundle: an OCI runtime bundle that runc and crun run as it is ------------------------------
BD="$RBX_TMP/bundle"
expect_status "--bundle" 0 rbx unpack --bundle "oci:$BB:workdir" "$BD"
assert_eq "--bundle: nothing printed without a terminal" "$OUT$ERR" ""
assert_eq "--bundle: config.json and rootfs" "$(ls "$BD")" "$(printf 'config.json\nrootfs')"
check "--bundle: a flat rootfs" test -x "$BD/rootfs/bin/busybox" -a ! -e "$BD/rootfs/etc/removed-by-layer2"
assert_eq "--bundle: the image's user" "$(jq -c '[.process.user.uid, .process.user.gid]' "$BD/config.json")" "[1000,1000]"
assert_eq "--bundle: the image's WorkingDir" "$(jq -r .process.cwd "$BD/config.json")" "/srv/app"
assert_eq "--bundle: root.path" "$(jq -r .root.path "$BD/config.json")" "rootfs"
BE="$RBX_TMP/bundle-entry"
expect_status "--bundle: Entrypoint and Cmd" 0 rbx unpack --bundle "oci:$BB:entrypoint" "$BE"
assert_eq "--bundle: process.args" "$(jq -c .process.args "$BE/config.json")" '["/bin/echo","entry","default"]'
expect_status "--bundle: reprobox run --bundle" 0 rbx run --bundle "$BE"
assert_eq "--bundle: reprobox run --bundle prints" "$OUT" "entry default"
if command -v runc >/dev/null; then
    run_capture runc --root "$RBX_TMP/runc" run -b "$BE" "rbx-unpack-$$"
    assert_eq "--bundle: runc runs it as it is" "$STATUS:$OUT" "0:entry default"
    runc --root "$RBX_TMP/runc" delete -f "rbx-unpack-$$" >/dev/null 2>&1
fi
if command -v crun >/dev/null; then
    # crun refuses any container on a cgroup v1 host whose v2 hierarchy has controllers enabled
    # ("cgroups in hybrid mode not supported"): there it runs in a mount namespace of its own
    # without that hierarchy, as scripts/bench.sh does.
    crun_here() {
        if grep -qs . /sys/fs/cgroup/unified/cgroup.controllers; then
            unshare -m --propagation private bash -c 'umount /sys/fs/cgroup/unified && exec "$@"' _ "$@"
        else
            "$@"
        fi
    }
    run_capture crun_here crun --root "$RBX_TMP/crun" run -b "$BE" "rbx-unpack-$$"
    assert_eq "--bundle: crun runs it as it is" "$STATUS:$OUT" "0:entry default"
    crun --root "$RBX_TMP/crun" delete -f "rbx-unpack-$$" >/dev/null 2>&1
fi
expect_status "--bundle: a non-empty DEST is refused" 125 rbx unpack --bundle "oci:$BB" "$BD"
assert_one_error_line "--bundle: non-empty DEST"
mkdir "$RBX_TMP/empty-bundle"
expect_status "--bundle: an empty DEST is taken" 0 rbx unpack --bundle "oci:$BB" "$RBX_TMP/empty-bundle"
check "--bundle: empty DEST filled" test -s "$RBX_TMP/empty-bundle/config.json"
expect_status "--bundle: a missing image" 125 rbx unpack --bundle "oci:$RBX_TMP/nothing" "$RBX_TMP/nob"
assert_one_error_line "--bundle: missing image"
check "--bundle: no DEST after a failure" test ! -e "$RBX_TMP/nob"
assert_eq "--bundle: no temporary dir left" "$(find "$RBX_TMP" -maxdepth 1 -name '.*.bundle-*')" ""
expect_status "--bundle with --max-layer-size" 125 rbx unpack --bundle --max-layer-size 1g "oci:$BB" "$RBX_TMP/x2"

# The progress bar, on a terminal only (script(1) gives one). script(1) can stop reading the
# terminal as soon as its child exits and lose the last line on a loaded machine: the child
# lingers a moment after reprobox so that the summary line is read.
if command -v script >/dev/null; then
    script -qec "$REPROBOX --root $RBX_ROOT unpack oci:$NODE $RBX_TMP/tty; s=\$?; sleep 0.5; exit \$s" /dev/null >"$RBX_TMP/tty.out" 2>&1
    assert_contains "progress on a terminal: layers" "$(cat "$RBX_TMP/tty.out")" "unpack "
    grep -q "unpacked 3 layers" "$RBX_TMP/tty.out" || tr '\r' '\n' <"$RBX_TMP/tty.out" | tail -n 4 | sed 's/^/  tty: /'
    OUT= ERR= assert_contains "progress on a terminal: summary" "$(cat "$RBX_TMP/tty.out")" "unpacked 3 layers"
    script -qec "$REPROBOX --root $RBX_ROOT unpack --quiet oci:$NODE $RBX_TMP/tty2" /dev/null >"$RBX_TMP/tty2.out" 2>&1
    assert_eq "--quiet on a terminal prints nothing" "$(cat "$RBX_TMP/tty2.out")" ""
fi

# ---- differential against umoci ---------------------------------------------------------------
# manifest ROOT: one line per path: path, type, mode, owner, size, link target, content hash,
# hardlink group (its first path, for non-directories with more than one link).
manifest() {
    local root=$1
    (cd "$root" && find . -type f -print0 | xargs -0r sha256sum) | sed 's|  \./|\x1f|' >"$RBX_TMP/.sums"
    (cd "$root" && find . -printf '%P\037%y\037%m\037%U:%G\037%s\037%l\037%i\037%n\n') | LC_ALL=C sort |
        awk -F'\037' -v sums="$RBX_TMP/.sums" 'BEGIN {
            OFS = "\t"
            while ((getline line < sums) > 0) { split(line, a, "\037"); h[a[2]] = substr(a[1], 1, 16) }
        }
        {
            grp = "-"
            if ($8 > 1 && $2 != "d") { if (!($7 in g)) g[$7] = $1; grp = g[$7] }
            print ($1 == "" ? "." : $1), $2, $3, $4, ($2 == "d" ? "-" : $5), $6, ($2 == "f" ? h[$1] : "-"), grp
        }'
}

# umoci 0.4 reads no zstd: a copy of the layout whose zstd layers are stored uncompressed.
dezstd() { # LAYOUT TAG -> prints the copy
    local src=$1 tag=$2 dst="$RBX_TMP/umoci-src/$(basename "$1")-$2" m new n i d tmp
    rm -rf "$dst"
    mkdir -p "$(dirname "$dst")"
    cp -a "$src" "$dst"
    tmp="$RBX_TMP/.blob"
    m=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
        "$dst/index.json" | cut -d: -f2)
    new=$(cat "$dst/blobs/sha256/$m")
    if [ "$(jq -r .mediaType <<<"$new")" == application/vnd.oci.image.index.v1+json ]; then
        echo "$dst"
        return
    fi
    n=$(jq '.layers | length' <<<"$new")
    for ((i = 0; i < n; i++)); do
        [[ $(jq -r ".layers[$i].mediaType" <<<"$new") == *+zstd ]] || continue
        zstd -dcq "$dst/blobs/sha256/$(jq -r ".layers[$i].digest" <<<"$new" | cut -d: -f2)" >"$tmp"
        d=$(sha256sum <"$tmp" | cut -d' ' -f1)
        mv "$tmp" "$dst/blobs/sha256/$d"
        new=$(jq -c --argjson i "$i" --arg d "sha256:$d" --argjson s "$(stat -c %s "$dst/blobs/sha256/$d")" \
            '.layers[$i] += {mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $d, size: $s}' <<<"$new")
    done
    printf '%s' "$new" >"$tmp"
    d=$(sha256sum <"$tmp" | cut -d' ' -f1)
    mv "$tmp" "$dst/blobs/sha256/$d"
    jq -c --arg m "sha256:$m" --arg d "sha256:$d" --argjson s "${#new}" \
        '.manifests |= map(if .digest == $m then .digest = $d | .size = $s else . end)' \
        "$dst/index.json" >"$tmp" && mv "$tmp" "$dst/index.json"
    echo "$dst"
}

differential() { # NAME LAYOUT TAG
    local name=$1 layout=$2 tag=$3 ours="$RBX_TMP/diff/$1.rbx" theirs="$RBX_TMP/diff/$1.umoci" copy
    mkdir -p "$RBX_TMP/diff"
    run_capture rbx unpack "oci:$layout:$tag" "$ours"
    if [ "$STATUS" != 0 ]; then not_ok "$name: reprobox unpack"; return; fi
    copy=$(dezstd "$layout" "$tag")
    run_capture umoci --log error unpack --image "$copy:$tag" "$theirs"
    if [ "$STATUS" != 0 ]; then not_ok "$name: umoci unpack"; return; fi
    if diff <(manifest "$ours") <(manifest "$theirs/rootfs") >"$RBX_TMP/diff/$name.diff"; then
        ok "$name: the same tree as umoci"
    else
        OUT=$(head -20 "$RBX_TMP/diff/$name.diff") ERR="" not_ok "$name: trees differ"
    fi
}

if [ "$(id -u)" != 0 ]; then
    echo "# not root: the umoci differential is skipped (owners would not be kept)"
else
    for tag in latest entrypoint workdir user env; do
        differential "busybox-$tag" "$BB" "$tag"
    done
    differential node "$NODE" latest
    GEN="${RBX_BUILD_DIR:-}/tests/rbx_make_corpus"
    if [ -x "$GEN" ]; then
        mkdir -p "$RBX_TMP/sentinel"
        "$GEN" "$RBX_TMP/corpus" "$RBX_TMP/sentinel" >/dev/null
        while IFS=$'\t' read -r name kind _; do
            [ "$kind" == legit ] && differential "$name" "$RBX_TMP/corpus/$name" latest
        done <"$RBX_TMP/corpus/cases.tsv"
    fi
fi

# ---- rootless: --bundle as an ordinary user, run again by reprobox --------------------------------
rootless_setup
RL_BB="oci:$(rootless_fixture busybox)"
install -d -o "$RBX_TEST_USER" "$RBX_RL_DIR/user/out"
expect_status "rootless: --bundle" 0 rbx_rootless unpack --bundle "$RL_BB:entrypoint" "$RBX_RL_DIR/user/out/b"
assert_eq "rootless: --bundle: the image's command" \
    "$(jq -c .process.args "$RBX_RL_DIR/user/out/b/config.json")" '["/bin/echo","entry","default"]'
expect_status "rootless: run --bundle" 0 rbx_rootless run --bundle "$RBX_RL_DIR/user/out/b"
assert_eq "rootless: run --bundle prints" "$OUT" "entry default"
finish
