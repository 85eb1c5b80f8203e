#!/usr/bin/env bash
# test_build_interop.sh — what reprobox build writes, read by other tools: skopeo inspects and
# copies it (verifying every digest), umoci unpacks it to the same tree (modes, owners, content,
# symlinks) that reprobox run shows, and the docker archive reads back.
source "$(dirname "$0")/lib.sh"

NODE=$(fixture node) || exit 77
command -v skopeo >/dev/null || skip "skopeo not installed"
command -v umoci >/dev/null || skip "umoci not installed"
CTX="$RBX_SOURCE_DIR/tests/fixtures/build/node"

expect_status "build" 0 rbx build --progress plain --build-context "node=oci:$NODE" \
    -t "oci:$RBX_TMP/img:api" -t "docker-archive:$RBX_TMP/api.tar:ws/api:2.1.0" "$CTX"
DIGEST=$OUT

expect_status "skopeo inspect" 0 skopeo inspect "oci:$RBX_TMP/img:api"
assert_eq "skopeo sees our digest" "$(jq -r .Digest <<<"$OUT")" "$DIGEST"
expect_status "skopeo inspect --raw" 0 skopeo inspect --raw "oci:$RBX_TMP/img:api"
assert_eq "the manifest is canonical (what we hashed)" "$(printf %s "$OUT" | sha256sum | cut -d' ' -f1)" "${DIGEST#sha256:}"
expect_status "skopeo copy verifies every blob" 0 skopeo copy --quiet "oci:$RBX_TMP/img:api" "oci:$RBX_TMP/copy:api"
expect_status "skopeo copies the docker archive (layers checked against diff_ids)" 0 \
    skopeo copy --quiet "docker-archive:$RBX_TMP/api.tar" "oci:$RBX_TMP/from-archive:api"
assert_eq "docker archive tag" "$(tar -xOf "$RBX_TMP/api.tar" manifest.json | jq -r '.[0].RepoTags[0]')" "ws/api:2.1.0"

# The tree: umoci's unpack of the image against what a container of it sees.
listing='cd "$1" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev \) -prune -o -print |
    LC_ALL=C sort | while IFS= read -r f; do
        t=$(stat -c %F "$f"); m=$(stat -c "%a %u:%g" "$f")
        case "$t" in
        regular*) c=$(sha256sum <"$f" | cut -c1-16);;
        symbolic*) c=$(readlink "$f");;
        *) c=-;;
        esac
        echo "$f|$t|$m|$c"
    done'
expect_status "umoci unpack" 0 umoci unpack --image "$RBX_TMP/img:api" "$RBX_TMP/bundle"
expect_status "umoci's tree" 0 sh -c "$listing" sh "$RBX_TMP/bundle/rootfs"
UMOCI=$OUT
expect_status "the container's tree" 0 rbx run --user 0 "oci:$RBX_TMP/img:api" sh -c "$listing" sh /
OURS=$OUT
check "the trees are not empty" [ "$(wc -l <<<"$OURS")" -gt 100 ]
if [ "$UMOCI" == "$OURS" ]; then ok "umoci unpacks the same tree reprobox runs"
else
    not_ok "umoci unpacks the same tree reprobox runs"
    diff <(echo "$UMOCI") <(echo "$OURS") | head -20
fi
if "$REPROBOX" unpack --help >/dev/null 2>&1; then
    expect_status "reprobox unpack" 0 rbx unpack "oci:$RBX_TMP/img:api" "$RBX_TMP/flat"
    expect_status "reprobox unpack's tree" 0 sh -c "$listing" sh "$RBX_TMP/flat"
    assert_eq "reprobox unpack gives umoci's tree" "$OUT" "$UMOCI"
else
    echo "note: no 'reprobox unpack' in this build: compared with the container's own view"
fi
finish
