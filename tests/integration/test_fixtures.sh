#!/usr/bin/env bash
# test_fixtures.sh — the fixture images are what tests/fixtures.md promises, checked with skopeo,
# umoci, tar and jq only (never reprobox, never running anything from the images on the host).
source "$(dirname "$0")/lib.sh"

for tool in skopeo umoci jq zstd gzip tar sha256sum file; do
    command -v "$tool" >/dev/null || skip "$tool not installed (scripts/install-deps.sh)"
done
BB=$(fixture busybox) || exit 77
NODE_IMG=$(fixture node) || exit 77
MAKE="$RBX_SOURCE_DIR/scripts/make-fixtures.sh"

blob() { echo "$1/blobs/sha256/${2#sha256:}"; } # LAYOUT DIGEST -> file
# manifest_of LAYOUT TAG: the digest index.json names for TAG.
manifest_of() {
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
        "$1/index.json"
}
# layer_cat LAYOUT DESCRIPTOR-JSON: the layer's uncompressed tar on stdout.
layer_cat() {
    local f
    f=$(blob "$1" "$(jq -r .digest <<<"$2")")
    case $(jq -r .mediaType <<<"$2") in
    *.tar+gzip) gzip -dc "$f" ;;
    *.tar+zstd) zstd -dcq "$f" ;;
    *.tar) cat "$f" ;;
    *) return 1 ;;
    esac
}

# ---- every descriptor reachable from index.json names a blob of that size and digest ---------
check_layout() { # NAME LAYOUT
    local name=$1 layout=$2 d mt f bad="" queue seen=""
    assert_eq "$name: oci-layout" "$(cat "$layout/oci-layout")" '{"imageLayoutVersion":"1.0.0"}'
    queue=$(jq -c '.manifests[]' "$layout/index.json")
    while [ -n "$queue" ]; do
        d=$(head -n1 <<<"$queue")
        queue=$(tail -n +2 <<<"$queue")
        f=$(blob "$layout" "$(jq -r .digest <<<"$d")")
        mt=$(jq -r .mediaType <<<"$d")
        seen+="$(basename "$f")"$'\n'
        if [ ! -f "$f" ]; then bad+=" missing:$f"; continue; fi
        [ "$(stat -c %s "$f")" == "$(jq -r .size <<<"$d")" ] || bad+=" size:$f"
        [ "sha256:$(sha256sum <"$f" | cut -d' ' -f1)" == "$(jq -r .digest <<<"$d")" ] || bad+=" digest:$f"
        case $mt in
        *image.index.v1+json) queue+=$'\n'$(jq -c '.manifests[]' "$f") ;;
        *image.manifest.v1+json) queue+=$'\n'$(jq -c '.config, .layers[]' "$f") ;;
        esac
        queue=$(sed '/^$/d' <<<"$queue")
    done
    assert_eq "$name: every descriptor matches its blob" "$bad" ""
    assert_eq "$name: no blob that nothing references" \
        "$(find "$layout/blobs/sha256" -type f -printf '%f\n' | sort)" "$(sort -u <<<"$seen" | sed '/^$/d')"
}
check_layout busybox "$BB"
check_layout node "$NODE_IMG"

# ---- busybox: tags, configs, layers ------------------------------------------------------------
assert_eq "busybox: tags in index.json" \
    "$(jq -r '[.manifests[].annotations["org.opencontainers.image.ref.name"]] | join(" ")' "$BB/index.json")" \
    "latest entrypoint workdir user env multi"

run_capture skopeo inspect --raw "oci:$BB:latest"
assert_eq "skopeo inspect --raw latest" "$STATUS" 0
assert_eq "latest: layer media types" "$(jq -r '[.layers[].mediaType] | join(" ")' <<<"$OUT")" \
    "application/vnd.oci.image.layer.v1.tar+gzip application/vnd.oci.image.layer.v1.tar+zstd application/vnd.oci.image.layer.v1.tar"
LATEST_MANIFEST=$OUT

PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
declare -A WANT=(
    [latest]='{"Cmd":["sh"],"Env":["'$PATH_ENV'"],"Labels":{"org.reprobox.fixture":"busybox"}}'
    [entrypoint]='{"Cmd":["default"],"Entrypoint":["/bin/echo","entry"],"Env":["'$PATH_ENV'"],"Labels":{"org.reprobox.fixture":"busybox"}}'
    [workdir]='{"Cmd":["sh"],"Env":["'$PATH_ENV'"],"Labels":{"org.reprobox.fixture":"busybox"},"User":"app","WorkingDir":"/srv/app"}'
    [user]='{"Cmd":["sh"],"Env":["'$PATH_ENV'"],"Labels":{"org.reprobox.fixture":"busybox"},"User":"1000:100"}'
    [env]='{"Cmd":["sh"],"Env":["'$PATH_ENV'","FOO=from-image","GREETING=hello"],"Labels":{"org.reprobox.fixture":"busybox"}}'
    [multi]='{"Cmd":["sh"],"Env":["'$PATH_ENV'"],"Labels":{"org.reprobox.fixture":"busybox"}}'
)
DIFF_IDS=""
for tag in latest entrypoint workdir user env multi; do
    run_capture skopeo inspect "oci:$BB:$tag"
    assert_eq "skopeo inspect $tag" "$STATUS" 0
    assert_eq "$tag: platform" "$(jq -r '.Os + "/" + .Architecture' <<<"$OUT")" linux/amd64
    run_capture skopeo inspect --config "oci:$BB:$tag"
    assert_eq "$tag: config" "$(jq -cS .config <<<"$OUT")" "${WANT[$tag]}"
    assert_eq "$tag: created" "$(jq -r .created <<<"$OUT")" 1970-01-01T00:00:00Z
    assert_eq "$tag: one history entry per layer" \
        "$(jq '[.history[] | select(.empty_layer != true)] | length' <<<"$OUT")" 3
    ids=$(jq -c .rootfs.diff_ids <<<"$OUT")
    [ -n "$DIFF_IDS" ] || DIFF_IDS=$ids
    assert_eq "$tag: the same layers as latest" "$ids" "$DIFF_IDS"
done

# diff_ids are the digests of the uncompressed layers.
for i in 0 1 2; do
    d=$(jq -c ".layers[$i]" <<<"$LATEST_MANIFEST")
    got=sha256:$(layer_cat "$BB" "$d" | sha256sum | cut -d' ' -f1)
    assert_eq "latest: layer $i diff_id" "$got" "$(jq -r ".[$i]" <<<"$DIFF_IDS")"
    listing=$(layer_cat "$BB" "$d" | tar -tv --full-time --numeric-owner)
    assert_eq "latest: layer $i entries all at mtime 0" \
        "$(awk '{print $4 " " $5}' <<<"$listing" | sort -u)" "1970-01-01 00:00:00"
    assert_eq "latest: layer $i names are relative, without ./" \
        "$(layer_cat "$BB" "$d" | tar -t | grep -E '^(/|\./)' || true)" ""
done
assert_contains "layer 2 holds the whiteout" "$(layer_cat "$BB" "$(jq -c '.layers[1]' <<<"$LATEST_MANIFEST")" | tar -t)" \
    "etc/.wh.removed-by-layer2"
assert_contains "layer 2 holds the opaque marker" "$(layer_cat "$BB" "$(jq -c '.layers[1]' <<<"$LATEST_MANIFEST")" | tar -t)" \
    "opt/data/.wh..wh..opq"

# ---- multi: a nested index, linux/arm64 selectable -------------------------------------------
run_capture skopeo inspect --raw "oci:$BB:multi"
assert_eq "multi: is an index" "$(jq -r .mediaType <<<"$OUT")" application/vnd.oci.image.index.v1+json
assert_eq "multi: platforms" "$(jq -r '[.manifests[].platform | .os + "/" + .architecture] | join(" ")' <<<"$OUT")" \
    "linux/amd64 linux/arm64"
assert_eq "multi: amd64 is the latest manifest" \
    "$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' <<<"$OUT")" "$(manifest_of "$BB" latest)"
run_capture skopeo --override-os linux --override-arch arm64 inspect --config "oci:$BB:multi"
assert_eq "multi: arm64 selected by platform" "$(jq -r .architecture <<<"$OUT")" arm64
assert_eq "multi: arm64 has the same layers" "$(jq -c .rootfs.diff_ids <<<"$OUT")" "$DIFF_IDS"

# ---- node -------------------------------------------------------------------------------------
run_capture skopeo inspect --config "oci:$NODE_IMG:latest"
assert_eq "node: skopeo inspect --config" "$STATUS" 0
assert_eq "node: config" "$(jq -cS .config <<<"$OUT")" \
    '{"Cmd":["node","server.js"],"Env":["'$PATH_ENV'","NODE_ENV=production"],"ExposedPorts":{"4000/tcp":{}},"Labels":{"org.reprobox.fixture":"node"},"WorkingDir":"/app"}'
run_capture skopeo inspect --raw "oci:$NODE_IMG:latest"
assert_eq "node: base layer is busybox layer 1" "$(jq -r '.layers[0].digest' <<<"$OUT")" \
    "$(jq -r '.layers[0].digest' <<<"$LATEST_MANIFEST")"
assert_eq "node: three layers" "$(jq '.layers | length' <<<"$OUT")" 3

# ---- unpacked with umoci: whiteouts, opaque dirs, hardlinks, owners ----------------------------
# umoci 0.4 reads no zstd: unpack a private copy whose zstd layers are stored uncompressed.
decompress_zstd_layers() { # LAYOUT TAG
    local layout=$1 m mf new tmp="$RBX_TMP/.layer" i n mt d
    m=$(manifest_of "$layout" "$2")
    mf=$(blob "$layout" "$m")
    new=$(cat "$mf")
    n=$(jq '.layers | length' <<<"$new")
    for ((i = 0; i < n; i++)); do
        mt=$(jq -r ".layers[$i].mediaType" <<<"$new")
        [[ $mt == *+zstd ]] || continue
        zstd -dcq "$(blob "$layout" "$(jq -r ".layers[$i].digest" <<<"$new")")" >"$tmp"
        d=sha256:$(sha256sum <"$tmp" | cut -d' ' -f1)
        mv "$tmp" "$(blob "$layout" "$d")"
        new=$(jq -c --argjson i "$i" --arg d "$d" --argjson s "$(stat -c %s "$(blob "$layout" "$d")")" \
            '.layers[$i] += {mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $d, size: $s}' <<<"$new")
    done
    printf '%s' "$new" >"$tmp"
    d=sha256:$(sha256sum <"$tmp" | cut -d' ' -f1)
    mv "$tmp" "$(blob "$layout" "$d")"
    jq -c --arg m "$m" --arg d "$d" --argjson s "${#new}" \
        '.manifests |= map(if .digest == $m then .digest = $d | .size = $s else . end)' \
        "$layout/index.json" >"$tmp" && mv "$tmp" "$layout/index.json"
}

# in_root ROOT PATH: PATH resolved inside ROOT, following symlinks as the image would (a symlink
# only as the last component; a linked directory on the way is refused).
in_root() {
    local root=$1 p=$2 t hops=0 dir
    while [ -L "$root$p" ] && ((hops++ < 16)); do
        t=$(readlink "$root$p")
        [[ $t == /* ]] && p=$t || p=$(realpath -m -s "$(dirname "$p")/$t")
    done
    dir=$(dirname "$p")
    while [ "$dir" != / ]; do
        [ -d "$root$dir" ] && [ ! -L "$root$dir" ] || return 1
        dir=$(dirname "$dir")
    done
    [ -e "$root$p" ] && echo "$root$p"
}

if [ "$(id -u)" != 0 ]; then
    echo "# not root: umoci unpack checks skipped (owners would not be kept)"
else
    cp -a "$BB" "$RBX_TMP/bb"
    decompress_zstd_layers "$RBX_TMP/bb" latest
    run_capture umoci unpack --image "$RBX_TMP/bb:latest" "$RBX_TMP/bb-bundle"
    assert_eq "umoci unpack busybox:latest" "$STATUS" 0
    R="$RBX_TMP/bb-bundle/rootfs"
    check "whiteout removed /etc/removed-by-layer2" test ! -e "$R/etc/removed-by-layer2"
    assert_eq "opaque dir hides layer 1's /opt/data" "$(find "$R/opt/data" -mindepth 1 -printf '%P ')" "c "
    assert_eq "no whiteout file left" "$(find "$R" -name '.wh.*')" ""
    assert_eq "hl1 and hl2 share an inode" "$(stat -c '%i %h' "$R/usr/share/fixture/hl1")" \
        "$(stat -c '%i %h' "$R/usr/share/fixture/hl2")"
    assert_eq "hl1 has two links" "$(stat -c %h "$R/usr/share/fixture/hl1")" 2
    assert_eq "dangling symlink" "$(readlink "$R/usr/share/fixture/dangling")" /nonexistent
    assert_eq "group-0640 mode and owner" "$(stat -c '%a %u:%g' "$R/usr/share/fixture/group-0640")" "640 0:100"
    assert_eq "/home/app owner" "$(stat -c '%a %u:%g' "$R/home/app")" "755 1000:1000"
    assert_eq "/root mode" "$(stat -c %a "$R/root")" 700
    assert_eq "/tmp mode" "$(stat -c %a "$R/tmp")" 1777
    check "/usr/local/bin and /var/empty exist" test -d "$R/usr/local/bin" -a -d "$R/var/empty"
    check "/etc/hostname absent" test ! -e "$R/etc/hostname"
    assert_eq "/bin/sh -> busybox" "$(readlink "$R/bin/sh")" busybox
    check "/bin/busybox is the host's" cmp -s "$R/bin/busybox" "$(readlink -f "$(command -v busybox)")"
    applets=$(busybox --list | sort -u | grep -cvx busybox)
    assert_eq "every applet is a /bin symlink" \
        "$(find "$R/bin" -type l -lname busybox | wc -l)" "$applets"
    assert_eq "applets only in /bin" "$(find "$R" -type l -lname busybox ! -path "$R/bin/*")" ""
    assert_contains "/etc/passwd root" "$(cat "$R/etc/passwd")" "root:x:0:0:root:/root:/bin/sh"
    assert_contains "/etc/passwd app" "$(cat "$R/etc/passwd")" "app:x:1000:1000:app:/home/app:/bin/sh"
    assert_contains "/etc/passwd nobody" "$(cat "$R/etc/passwd")" "nobody:x:65534:65534:"
    assert_contains "/etc/group users" "$(cat "$R/etc/group")" "users:x:100:app"
    assert_contains "/etc/group nogroup" "$(cat "$R/etc/group")" "nogroup:x:65534:"
    assert_eq "/etc/fixture-release" "$(cat "$R/etc/fixture-release")" "reprobox fixture release 1"
    assert_eq "fixture-info mode" "$(stat -c %a "$R/usr/local/bin/fixture-info")" 755
    assert_contains "fixture-info prints its line" "$(cat "$R/usr/local/bin/fixture-info")" \
        'echo "reprobox fixture: layer 2 script"'

    cp -a "$NODE_IMG" "$RBX_TMP/node"
    run_capture umoci unpack --image "$RBX_TMP/node:latest" "$RBX_TMP/node-bundle"
    assert_eq "umoci unpack node:latest" "$STATUS" 0
    R="$RBX_TMP/node-bundle/rootfs"
    check "node is the host's node" cmp -s "$R/usr/local/bin/node" "$(readlink -f "$(command -v node)")"
    missing=""
    for lib in $(ldd "$(readlink -f "$(command -v node)")" |
        awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }'); do
        f=$(in_root "$R" "$lib") && cmp -s "$f" "$lib" || missing+=" $lib"
    done
    assert_eq "every library ldd names, at its path" "$missing" ""
    interp=$(file -b "$R/usr/local/bin/node" | sed -n 's/.*interpreter \([^,]*\),.*/\1/p')
    check "ELF interpreter $interp resolves inside the image" test -n "$(in_root "$R" "$interp")"
    check "the busybox base is there" test -L "$R/bin/sh"
    check "server.js parses" node --check "$R/app/server.js"
    assert_contains "server.js serves /health" "$(cat "$R/app/server.js")" "'/health'"
    assert_eq "package.json main" "$(jq -r .main "$R/app/package.json")" server.js
fi

# ---- api and postgres ------------------------------------------------------------------------
API=$(fixture api) || exit 77
PG=$(fixture postgres) || exit 77
check_layout api "$API"
check_layout postgres "$PG"
assert_eq "api: tags in index.json" \
    "$(jq -r '[.manifests[].annotations["org.opencontainers.image.ref.name"]] | join(" ")' "$API/index.json")" \
    "good express-missing workdir-missing prisma-client-location pnpm-migrate pnpm-symlinks provider-mysql"
api_manifest() { cat "$(blob "$API" "$(manifest_of "$API" "$1")")"; }
api_config() { cat "$(blob "$API" "$(api_manifest "$1" | jq -r .config.digest)")"; }
assert_eq "api: config" "$(api_config good | jq -cS .config)" \
    '{"Cmd":["node","dist/index.js"],"Env":["'$PATH_ENV'","NODE_ENV=production","PORT=4000"],"ExposedPorts":{"4000/tcp":{}},"Labels":{"org.reprobox.fixture":"api"},"WorkingDir":"/app"}'
assert_eq "api: workdir-missing's WorkingDir" "$(api_config workdir-missing | jq -r .config.WorkingDir)" "/app/apps/api"
assert_eq "api: workdir-missing has good's layers" "$(api_manifest workdir-missing | jq -c .layers)" \
    "$(api_manifest good | jq -c .layers)"
assert_eq "api: layer 1 is busybox layer 1" "$(api_manifest good | jq -r '.layers[0].digest')" \
    "$(jq -r '.layers[0].digest' "$(blob "$BB" "$(manifest_of "$BB" latest)")")"
assert_eq "api: layer 2 is node's layer 2" "$(api_manifest good | jq -r '.layers[1].digest')" \
    "$(jq -r '.layers[1].digest' "$(blob "$NODE_IMG" "$(manifest_of "$NODE_IMG" latest)")")"
app_layer() { layer_cat "$API" "$(api_manifest "$1" | jq -c '.layers[2]')"; }
app_list() { app_layer "$1" | tar -tv --numeric-owner 2>/dev/null; }
assert_contains "api good: express" "$(app_list good)" "app/node_modules/express/index.js"
assert_contains "api good: the prisma bin link" "$(app_list good)" "app/node_modules/.bin/prisma -> ../prisma/build/index.js"
assert_contains "api good: /usr/bin/env" "$(app_list good)" "usr/bin/env -> /bin/busybox"
assert_not_contains "api express-missing: no express" "$(app_list express-missing)" "app/node_modules/express/"
assert_contains "api prisma-client-location: client inside @prisma/client" \
    "$(app_list prisma-client-location)" "app/node_modules/@prisma/client/.prisma/client/default.js"
assert_not_contains "api prisma-client-location: none at node_modules/.prisma" \
    "$(app_list prisma-client-location)" " app/node_modules/.prisma/"
assert_contains "api pnpm-symlinks: a link into .pnpm" "$(app_list pnpm-symlinks)" \
    "app/node_modules/express -> .pnpm/express@4.21.2/node_modules/express"
assert_not_contains "api pnpm-symlinks: no .pnpm store" "$(app_list pnpm-symlinks)" "app/node_modules/.pnpm/"
assert_contains "api pnpm-migrate: the script calls pnpm" \
    "$(app_layer pnpm-migrate | tar -xO app/scripts/run-migrations.sh)" "pnpm db:migrate"
assert_contains "api provider-mysql: the schema says mysql" \
    "$(app_layer provider-mysql | tar -xO app/prisma/schema.prisma)" 'provider = "mysql"'
mkdir -p "$RBX_TMP/app-good"
app_layer good | tar -x -C "$RBX_TMP/app-good"
bad_js=""
while read -r js; do node --check "$js" 2>/dev/null || bad_js+=" $js"; done < <(find "$RBX_TMP/app-good/app" -name '*.js')
assert_eq "api: every .js parses" "$bad_js" ""
PG_CFG=$(cat "$(blob "$PG" "$(jq -r .config.digest "$(blob "$PG" "$(manifest_of "$PG" latest)")")")")
assert_eq "postgres: user, entrypoint, cmd, stop signal" \
    "$(jq -c '[.config.User, .config.Entrypoint, .config.Cmd, .config.StopSignal]' <<<"$PG_CFG")" \
    '["postgres",["docker-entrypoint.sh"],["postgres"],"SIGINT"]'
PG_LIST=$(layer_cat "$PG" "$(jq -c '.layers[1]' "$(blob "$PG" "$(manifest_of "$PG" latest)")")" | tar -tv --numeric-owner)
for f in bin/postgres bin/initdb bin/pg_isready; do
    assert_contains "postgres: $f" "$PG_LIST" "/$f"
done
assert_contains "postgres: postgres.bki" "$PG_LIST" "postgres.bki"
assert_contains "postgres: /var/lib/postgresql is writable by all" "$PG_LIST" "drwxrwxrwt 0/0"
assert_contains "postgres: the entrypoint" "$PG_LIST" "-rwxr-xr-x 0/0"

# ---- determinism and idempotence ------------------------------------------------------------
run_capture "$MAKE" "$RBX_TMP/again"
assert_eq "make-fixtures into a new dir" "$STATUS" 0
for img in busybox node api postgres; do
    assert_eq "$img: index.json is the same on a second run" \
        "$(sha256sum <"$RBX_TMP/again/$img/index.json")" "$(sha256sum <"$RBX_FIXTURES/$img/index.json")"
    assert_eq "$img: the same blobs on a second run" \
        "$(find "$RBX_TMP/again/$img/blobs/sha256" -type f -printf '%f\n' | sort)" \
        "$(find "$RBX_FIXTURES/$img/blobs/sha256" -type f -printf '%f\n' | sort)"
done
run_capture "$MAKE" "$RBX_TMP/again"
assert_contains "make-fixtures skips an up-to-date dir" "$ERR" "up to date"
mkdir -p "$RBX_TMP/foreign" && touch "$RBX_TMP/foreign/keep"
expect_status "make-fixtures refuses a dir it did not make" 1 "$MAKE" "$RBX_TMP/foreign"
check "the foreign dir is untouched" test -e "$RBX_TMP/foreign/keep"

finish
