#!/usr/bin/env bash
# make-fixtures.sh — builds the OCI image layouts that the tests and the Quick start use (busybox,
# node, api, postgres), offline and byte-for-byte reproducibly from the host's busybox-static,
# nodejs and postgresql packages and the app sources in tests/fixtures/api.
#
# Usage: scripts/make-fixtures.sh [OUTDIR]   (default build/fixtures)
# OUTDIR/{busybox,node,api,postgres} are OCI image layouts; tests/fixtures.md says what each holds.
# A stamp in OUTDIR names the script and the host inputs it used; when they match, nothing is done.
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

OUTDIR=${1:-build/fixtures}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
STAMP_NAME=.make-fixtures.stamp
EPOCH_ISO=1970-01-01T00:00:00Z
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

MT_INDEX=application/vnd.oci.image.index.v1+json
MT_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_CONFIG=application/vnd.oci.image.config.v1+json
MT_LAYER=application/vnd.oci.image.layer.v1.tar

die() { echo "make-fixtures: error: $*" >&2; exit 1; }
note() { echo "make-fixtures: $*" >&2; }

for tool in tar gzip zstd jq sha256sum ldd; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/install-deps.sh)"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox) || die "busybox not found (install busybox-static)"
BUSYBOX=$(readlink -f "$BUSYBOX")
# A dynamic busybox would need the host's libc in the image; the fixture is one static binary.
if [[ $(ldd "$BUSYBOX" 2>&1) != *"not a dynamic executable"* ]]; then
    die "$BUSYBOX is not static (install busybox-static)"
fi
NODE=$(command -v node) || die "node not found (install nodejs)"
NODE=$(readlink -f "$NODE")
API_SRC=$(dirname "$SELF")/../tests/fixtures/api
[ -f "$API_SRC/dist/index.js" ] || die "$API_SRC: the api app's sources are missing"
API_SRC=$(readlink -f "$API_SRC")
# Debian's layout: /usr/lib/postgresql/<major>/{bin,lib}, /usr/share/postgresql/<major>.
PG_BINDIR=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
[ -n "$PG_BINDIR" ] && [ -x "$PG_BINDIR/postgres" ] || die "PostgreSQL server binaries not found (install postgresql)"
PG_MAJOR=$(basename "$(dirname "$PG_BINDIR")")
PG_LIBDIR=/usr/lib/postgresql/$PG_MAJOR/lib
PG_SHAREDIR=/usr/share/postgresql/$PG_MAJOR
[ -f "$PG_SHAREDIR/postgres.bki" ] || die "$PG_SHAREDIR/postgres.bki not found (install postgresql-$PG_MAJOR)"
# The server, initdb, pg_isready (for readiness probes), the modules initdb loads (PL/pgSQL,
# snowball, the encoding conversions);
# not the JIT, which pulls in LLVM.
mapfile -t PG_MODULES < <(find "$PG_LIBDIR" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' | sort)
PG_PROGRAMS=("$PG_BINDIR/postgres" "$PG_BINDIR/initdb" "$PG_BINDIR/pg_isready")

# The shared objects the dynamic loader maps for programs, at the paths ldd gives: "name =>
# /path (..)" lines, and the ELF interpreter, which ldd prints as a bare absolute path.
libs_of() {
    ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u
}
node_libs() { libs_of "$NODE"; }
mapfile -t NODE_LIBS < <(node_libs)
((${#NODE_LIBS[@]} > 0)) || die "ldd lists no libraries for $NODE"
mapfile -t PG_LIBS < <(libs_of "${PG_PROGRAMS[@]}" "${PG_MODULES[@]}")
((${#PG_LIBS[@]} > 0)) || die "ldd lists no libraries for $PG_BINDIR/postgres"

# Only root can record owners other than its own; images made without root differ, so the stamp
# says which kind OUTDIR holds.
if [ "$(id -u)" == 0 ]; then
    AS_ROOT=1
    OWNER_FLAGS=()
else
    AS_ROOT=0
    OWNER_FLAGS=(--owner=0 --group=0)
fi

# ---- up to date? -----------------------------------------------------------------------------
# The script's own digest, plus the host files that end up in the images: a package upgrade on
# the host gives new fixtures, as a new script version does.
stamp_text() {
    echo "script $(sha256sum <"$SELF" | cut -d' ' -f1)"
    echo "owners $( ((AS_ROOT)) && echo as-staged || echo all-0:0)"
    echo "inputs $(cat "$BUSYBOX" "$NODE" "${NODE_LIBS[@]}" | sha256sum | cut -d' ' -f1)"
    echo "api $(cd "$API_SRC" && find . -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
    echo "postgres $( (cat "${PG_PROGRAMS[@]}" "${PG_MODULES[@]}" "${PG_LIBS[@]}"
        find "$PG_SHAREDIR" -type f | sort | xargs cat) | sha256sum | cut -d' ' -f1)"
}
STAMP=$(stamp_text)
if [ -f "$OUTDIR/$STAMP_NAME" ] && [ "$(cat "$OUTDIR/$STAMP_NAME")" == "$STAMP" ] &&
    [ -f "$OUTDIR/busybox/index.json" ] && [ -f "$OUTDIR/node/index.json" ] &&
    [ -f "$OUTDIR/api/index.json" ] && [ -f "$OUTDIR/postgres/index.json" ]; then
    note "$OUTDIR is up to date"
    exit 0
fi
# OUTDIR is replaced as a whole: refuse to remove a directory this script did not make.
if [ -e "$OUTDIR" ] && [ ! -f "$OUTDIR/$STAMP_NAME" ] && [ -n "$(ls -A "$OUTDIR" 2>/dev/null)" ]; then
    die "$OUTDIR exists and was not made by make-fixtures.sh; remove it or choose another OUTDIR"
fi

((AS_ROOT)) ||
    note "not root: every entry is owned by 0:0 (/home/app and /usr/share/fixture/group-0640 lose their owners)"
mkdir -p "$(dirname "$OUTDIR")"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/make-fixtures.XXXXXX")
NEW=$(mktemp -d "$(dirname "$OUTDIR")/.fixtures-new.XXXXXX")
trap 'rm -rf "$WORK" "$NEW"' EXIT
chmod 755 "$NEW"

# ---- layers ----------------------------------------------------------------------------------

# chown_stage STAGE UID:GID PATH...: ownership is part of a fixture; root can record it.
chown_stage() {
    local stage=$1 owner=$2
    shift 2
    if ((AS_ROOT)); then
        local p
        for p in "$@"; do chown -h "$owner" "$stage/$p"; done
    fi
}

# Set by make_layer: the layer's blob file (not yet in a layout), media type and diff_id.
LAYER_FILE='' LAYER_MT='' LAYER_DIFF_ID=''
# make_layer STAGE NAME gzip-9|gzip-6|zstd|none: a sorted, time-clamped, numeric-owner PAX tar of
# STAGE's contents (entries without a "./" prefix, no entry for the root itself), then compressed.
make_layer() {
    local stage=$1 comp=$3 tarfile="$WORK/$2.tar"
    local -a top
    mapfile -t top < <(cd "$stage" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | sort)
    tar -C "$stage" --create --file="$tarfile" --sort=name --format=posix \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        --mtime=@0 --numeric-owner "${OWNER_FLAGS[@]}" -- "${top[@]}"
    LAYER_DIFF_ID=sha256:$(sha256sum <"$tarfile" | cut -d' ' -f1)
    case $comp in
    gzip-[69])
        gzip -n "-${comp#gzip-}" <"$tarfile" >"$tarfile.gz"
        LAYER_FILE=$tarfile.gz LAYER_MT=$MT_LAYER+gzip
        ;;
    zstd)
        zstd -19 --no-check --single-thread -q <"$tarfile" >"$tarfile.zst"
        LAYER_FILE=$tarfile.zst LAYER_MT=$MT_LAYER+zstd
        ;;
    none) LAYER_FILE=$tarfile LAYER_MT=$MT_LAYER ;;
    *) die "unknown compression $comp" ;;
    esac
}

# put_blob LAYOUT FILE: copy FILE into LAYOUT's blobs; sets BLOB_DIGEST and BLOB_SIZE.
BLOB_DIGEST='' BLOB_SIZE=''
put_blob() {
    local layout=$1 file=$2 hex
    hex=$(sha256sum <"$file" | cut -d' ' -f1)
    mkdir -p "$layout/blobs/sha256"
    [ -e "$layout/blobs/sha256/$hex" ] || cp "$file" "$layout/blobs/sha256/$hex"
    chmod 644 "$layout/blobs/sha256/$hex"
    BLOB_DIGEST=sha256:$hex
    BLOB_SIZE=$(stat -c %s "$file")
}

# put_json LAYOUT JSON: compact, keys sorted, no trailing newline; sets BLOB_DIGEST, BLOB_SIZE.
put_json() {
    local f="$WORK/json.tmp"
    printf '%s' "$2" | jq -cSj . >"$f"
    put_blob "$1" "$f"
}

# descriptor MEDIATYPE [JQ-EXTRA]: the descriptor of the last blob, as JSON.
descriptor() {
    jq -cn --arg mt "$1" --arg d "$BLOB_DIGEST" --argjson s "$BLOB_SIZE" \
        "{mediaType: \$mt, digest: \$d, size: \$s} ${2:+| $2}"
}

# write_layout LAYOUT ENTRY...: oci-layout and index.json over the given descriptors.
write_layout() {
    local layout=$1
    shift
    printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
    printf '%s\n' "$@" | jq -cSjs --arg mt "$MT_INDEX" '{schemaVersion: 2, mediaType: $mt, manifests: .}' \
        >"$layout/index.json"
    chmod 644 "$layout/oci-layout" "$layout/index.json"
}

# ref_name TAG: the jq filter that annotates a descriptor with its tag.
ref_name() { printf '.annotations = {"org.opencontainers.image.ref.name": "%s"}' "$1"; }

# image LAYOUT CONFIG-JSON LAYER-DESC-JSON-ARRAY: config and manifest blobs; sets BLOB_* to the
# manifest.
image() {
    local layout=$1 config=$2 layers=$3 cdesc
    put_json "$layout" "$config"
    cdesc=$(descriptor "$MT_CONFIG")
    put_json "$layout" "$(jq -cn --arg mt "$MT_MANIFEST" --argjson c "$cdesc" --argjson l "$layers" \
        '{schemaVersion: 2, mediaType: $mt, config: $c, layers: $l}')"
}

# ---- busybox ---------------------------------------------------------------------------------
note "building busybox image"
S1="$WORK/bb1"
mkdir -p "$S1"/{bin,etc,root,home/app,tmp,usr/local/bin,var/empty,opt/data,usr/share/fixture}
cp "$BUSYBOX" "$S1/bin/busybox"
chmod 755 "$S1/bin/busybox"
mapfile -t APPLETS < <("$BUSYBOX" --list | sort -u)
((${#APPLETS[@]} > 100)) || die "$BUSYBOX --list gave ${#APPLETS[@]} applets"
for a in "${APPLETS[@]}"; do
    [[ $a == */* || $a == busybox ]] && continue
    ln -s busybox "$S1/bin/$a"
done
[ -L "$S1/bin/sh" ] || ln -s busybox "$S1/bin/sh"

cat >"$S1/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
app:x:1000:1000:app:/home/app:/bin/sh
EOF
cat >"$S1/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
users:x:100:app
app:x:1000:
nogroup:x:65534:
EOF
echo "this file is deleted by layer 2" >"$S1/etc/removed-by-layer2"
echo a >"$S1/opt/data/a"
echo b >"$S1/opt/data/b"
echo "hardlinked" >"$S1/usr/share/fixture/hl1"
ln "$S1/usr/share/fixture/hl1" "$S1/usr/share/fixture/hl2"
echo "readable by root and group users" >"$S1/usr/share/fixture/group-0640"
ln -s /nonexistent "$S1/usr/share/fixture/dangling"
find "$S1" -type d -exec chmod 755 {} +
find "$S1" -type f ! -path "$S1/bin/busybox" -exec chmod 644 {} +
chmod 700 "$S1/root"
chmod 1777 "$S1/tmp"
chmod 640 "$S1/usr/share/fixture/group-0640"
chown_stage "$S1" 1000:1000 home/app
chown_stage "$S1" 0:100 usr/share/fixture/group-0640

S2="$WORK/bb2"
mkdir -p "$S2"/{etc,opt/data,usr/local/bin}
: >"$S2/etc/.wh.removed-by-layer2"
: >"$S2/opt/data/.wh..wh..opq"
echo c >"$S2/opt/data/c"
cat >"$S2/usr/local/bin/fixture-info" <<'EOF'
#!/bin/sh
echo "reprobox fixture: layer 2 script"
EOF
find "$S2" -type d -exec chmod 755 {} +
find "$S2" -type f -exec chmod 644 {} +
chmod 755 "$S2/usr/local/bin/fixture-info"

S3="$WORK/bb3"
mkdir -p "$S3/etc"
echo "reprobox fixture release 1" >"$S3/etc/fixture-release"
chmod 755 "$S3/etc"
chmod 644 "$S3/etc/fixture-release"

BB="$NEW/busybox"
mkdir -p "$BB"
BB_LAYERS=() BB_DIFF_IDS=()
# add_bb_layer: the layer make_layer just made, into the busybox image.
add_bb_layer() {
    put_blob "$BB" "$LAYER_FILE"
    BB_LAYERS+=("$(descriptor "$LAYER_MT")") BB_DIFF_IDS+=("$LAYER_DIFF_ID")
}
make_layer "$S1" bb1 gzip-9
BB1_FILE=$LAYER_FILE BB1_MT=$LAYER_MT BB1_DIFF_ID=$LAYER_DIFF_ID # the node image's base too
add_bb_layer
make_layer "$S2" bb2 zstd
add_bb_layer
make_layer "$S3" bb3 none
add_bb_layer
BB_LAYERS_JSON=$(printf '%s\n' "${BB_LAYERS[@]}" | jq -cs .)
BB_DIFF_IDS_JSON=$(printf '%s\n' "${BB_DIFF_IDS[@]}" | jq -Rcs 'split("\n") | map(select(. != ""))')

BB_CONFIG=$(jq -cn --arg t "$EPOCH_ISO" --arg path "$PATH_ENV" --argjson d "$BB_DIFF_IDS_JSON" '{
    architecture: "amd64", os: "linux", created: $t,
    config: {Env: [$path], Cmd: ["sh"], Labels: {"org.reprobox.fixture": "busybox"}},
    rootfs: {type: "layers", diff_ids: $d},
    history: [
        {created: $t, created_by: "fixture: busybox, its applets, users, whiteout targets"},
        {created: $t, created_by: "fixture: whiteout, opaque dir, /usr/local/bin/fixture-info"},
        {created: $t, created_by: "fixture: /etc/fixture-release"}
    ]}')

# variant CONFIG-FILTER HISTORY-LINE: the base config changed as a Dockerfile line would, with
# the line recorded as an empty-layer history entry.
variant() {
    jq -cn --argjson c "$BB_CONFIG" --arg t "$EPOCH_ISO" --arg h "$2" \
        "\$c | $1 | .history += [{created: \$t, created_by: \$h, empty_layer: true}]"
}

ENTRIES=()
image "$BB" "$BB_CONFIG" "$BB_LAYERS_JSON"
LATEST_DESC=$(descriptor "$MT_MANIFEST")
ENTRIES+=("$(jq -c "$(ref_name latest)" <<<"$LATEST_DESC")")

image "$BB" "$(variant '.config.Entrypoint = ["/bin/echo", "entry"] | .config.Cmd = ["default"]' \
    'ENTRYPOINT ["/bin/echo", "entry"] CMD ["default"]')" "$BB_LAYERS_JSON"
ENTRIES+=("$(descriptor "$MT_MANIFEST" "$(ref_name entrypoint)")")

image "$BB" "$(variant '.config.WorkingDir = "/srv/app" | .config.User = "app"' \
    'WORKDIR /srv/app USER app')" "$BB_LAYERS_JSON"
ENTRIES+=("$(descriptor "$MT_MANIFEST" "$(ref_name workdir)")")

image "$BB" "$(variant '.config.User = "1000:100"' 'USER 1000:100')" "$BB_LAYERS_JSON"
ENTRIES+=("$(descriptor "$MT_MANIFEST" "$(ref_name user)")")

image "$BB" "$(variant '.config.Env += ["FOO=from-image", "GREETING=hello"]' \
    'ENV FOO=from-image GREETING=hello')" "$BB_LAYERS_JSON"
ENTRIES+=("$(descriptor "$MT_MANIFEST" "$(ref_name env)")")

# multi: a nested index; amd64 is the latest manifest itself, arm64 the same layers under an
# arm64 config. No variant, so "--platform linux/arm64" names it exactly.
image "$BB" "$(variant '.architecture = "arm64"' 'PLATFORM linux/arm64')" "$BB_LAYERS_JSON"
ARM_DESC=$(descriptor "$MT_MANIFEST" '.platform = {architecture: "arm64", os: "linux"}')
AMD_DESC=$(jq -c '.platform = {architecture: "amd64", os: "linux"}' <<<"$LATEST_DESC")
put_json "$BB" "$(jq -cn --arg mt "$MT_INDEX" --argjson a "$AMD_DESC" --argjson b "$ARM_DESC" \
    '{schemaVersion: 2, mediaType: $mt, manifests: [$a, $b]}')"
ENTRIES+=("$(descriptor "$MT_INDEX" "$(ref_name multi)")")

write_layout "$BB" "${ENTRIES[@]}"

# ---- node ------------------------------------------------------------------------------------
note "building node image"
SN="$WORK/node"
mkdir -p "$SN/usr/local/bin"
cp "$NODE" "$SN/usr/local/bin/node"
chmod 755 "$SN/usr/local/bin/node"

# add_host_path_to STAGE P: the host's P at the same path in STAGE; a symlink is kept as a
# symlink and its target added too (the ELF interpreter is /lib64/ld-linux-x86-64.so.2 -> /lib/...).
add_host_path_to() {
    local stage=$1 p=$2 t
    [[ -e $stage$p || -L $stage$p ]] && return 0
    mkdir -p "$stage$(dirname "$p")"
    if [ -L "$p" ]; then
        t=$(readlink "$p")
        ln -s "$t" "$stage$p"
        [[ $t == /* ]] || t=$(realpath -m -s "$(dirname "$p")/$t")
        add_host_path_to "$stage" "$t"
    else
        [ -f "$p" ] || die "$p (a file of an image) is not a regular file"
        cp "$p" "$stage$p"
        chmod "$(stat -c %a "$p")" "$stage$p"
    fi
}
add_host_path() { add_host_path_to "$SN" "$1"; }
for lib in "${NODE_LIBS[@]}"; do add_host_path "$lib"; done
find "$SN" -type d -exec chmod 755 {} +

SA="$WORK/app"
mkdir -p "$SA/app"
cat >"$SA/app/server.js" <<'EOF'
// A tiny HTTP service for tests: GET /health answers 200 {"status":"ok"}, anything else 404.
'use strict';
const http = require('http');

const port = Number(process.env.PORT || 4000);
const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  const found = req.method === 'GET' && path === '/health';
  res.writeHead(found ? 200 : 404, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(found ? { status: 'ok' } : { error: 'not found' }));
});

server.listen(port, () => console.log(`server listening on port ${port}`));
// As pid 1 node has no default SIGTERM action: stop cleanly when asked to.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
EOF
cat >"$SA/app/package.json" <<'EOF'
{
  "name": "reprobox-fixture-server",
  "version": "1.0.0",
  "private": true,
  "main": "server.js",
  "scripts": { "start": "node server.js" }
}
EOF
chmod 755 "$SA/app"
chmod 644 "$SA/app/server.js" "$SA/app/package.json"

NL="$NEW/node"
mkdir -p "$NL"
NODE_LAYERS=() NODE_DIFF_IDS=()
put_blob "$NL" "$BB1_FILE"
NODE_LAYERS+=("$(descriptor "$BB1_MT")") NODE_DIFF_IDS+=("$BB1_DIFF_ID")
# -6: as small as -9 within 1% on this binary, and three times faster.
make_layer "$SN" node gzip-6
NODE_FILE=$LAYER_FILE NODE_MT=$LAYER_MT NODE_DIFF_ID=$LAYER_DIFF_ID # the api image's too
put_blob "$NL" "$LAYER_FILE"
NODE_LAYERS+=("$(descriptor "$LAYER_MT")") NODE_DIFF_IDS+=("$LAYER_DIFF_ID")
make_layer "$SA" app gzip-9
put_blob "$NL" "$LAYER_FILE"
NODE_LAYERS+=("$(descriptor "$LAYER_MT")") NODE_DIFF_IDS+=("$LAYER_DIFF_ID")

NODE_CONFIG=$(jq -cn --arg t "$EPOCH_ISO" --arg path "$PATH_ENV" \
    --argjson d "$(printf '%s\n' "${NODE_DIFF_IDS[@]}" | jq -Rcs 'split("\n") | map(select(. != ""))')" '{
    architecture: "amd64", os: "linux", created: $t,
    config: {Env: [$path, "NODE_ENV=production"], WorkingDir: "/app", Cmd: ["node", "server.js"],
             ExposedPorts: {"4000/tcp": {}}, Labels: {"org.reprobox.fixture": "node"}},
    rootfs: {type: "layers", diff_ids: $d},
    history: [
        {created: $t, created_by: "fixture: busybox, its applets, users, whiteout targets"},
        {created: $t, created_by: "fixture: node and the shared libraries it loads"},
        {created: $t, created_by: "fixture: /app/server.js, /app/package.json"}
    ]}')
image "$NL" "$NODE_CONFIG" "$(printf '%s\n' "${NODE_LAYERS[@]}" | jq -cs .)"
write_layout "$NL" "$(descriptor "$MT_MANIFEST" "$(ref_name latest)")"

# ---- api: the postmortem's service, once as it works and once for each way it broke -----------
note "building api image"
AL="$NEW/api"
mkdir -p "$AL"
put_blob "$AL" "$BB1_FILE"
API_BASE_LAYERS=("$(descriptor "$BB1_MT")") API_BASE_DIFF_IDS=("$BB1_DIFF_ID")
put_blob "$AL" "$NODE_FILE"
API_BASE_LAYERS+=("$(descriptor "$NODE_MT")") API_BASE_DIFF_IDS+=("$NODE_DIFF_ID")

# api_stage VARIANT: the app as tests/fixtures/api has it, then broken as VARIANT says; the
# stage dir is $WORK/api-VARIANT.
api_stage() {
    local v=$1 s="$WORK/api-$1" nm
    mkdir -p "$s/usr/bin"
    # npm's bin shims start with "#!/usr/bin/env node"; busybox has env in /bin only.
    ln -s /bin/busybox "$s/usr/bin/env"
    cp -R "$API_SRC" "$s/app"
    nm="$s/app/node_modules"
    mkdir -p "$nm/.bin"
    ln -s ../prisma/build/index.js "$nm/.bin/prisma"
    case $v in
    good) ;;
    express-missing) # a production prune that dropped a runtime dependency
        rm -rf "$nm/express" ;;
    prisma-client-location) # generated inside @prisma/client, not at node_modules/.prisma
        mv "$nm/.prisma" "$nm/@prisma/client/.prisma" ;;
    pnpm-migrate) # the migration script calls the package manager of the build stage
        cat >"$s/app/scripts/run-migrations.sh" <<'SH'
#!/bin/sh
# The migration task's command, as the monorepo runs its scripts.
set -e
echo "🔄 Running database migrations..."
pnpm db:migrate
echo "✅ Migrations completed successfully!"
SH
        ;;
    pnpm-symlinks) # pnpm's layout: links into a .pnpm store the final stage did not copy
        rm -rf "$nm/express" "$nm/@prisma/client" "$nm/prisma"
        ln -s .pnpm/express@4.21.2/node_modules/express "$nm/express"
        ln -s ../.pnpm/@prisma+client@5.22.0/node_modules/@prisma/client "$nm/@prisma/client"
        ln -s .pnpm/prisma@5.22.0/node_modules/prisma "$nm/prisma"
        ;;
    provider-mysql) # the schema (and the client generated from it) says mysql
        sed -i 's/provider = "postgresql"/provider = "mysql"/' "$s/app/prisma/schema.prisma" \
            "$s/app/prisma/migrations/migration_lock.toml"
        sed -i "s/provider: 'postgresql'/provider: 'mysql'/" "$nm/.prisma/client/default.js"
        ;;
    *) die "unknown api variant $v" ;;
    esac
    find "$s" -type d -exec chmod 755 {} +
    find "$s" -type f -exec chmod 644 {} +
    chmod 755 "$s/app/scripts/run-migrations.sh"
    if [ -f "$nm/prisma/build/index.js" ]; then chmod 755 "$nm/prisma/build/index.js"; fi
    if ((AS_ROOT)); then chown -hR 0:0 "$s"; fi
}

API_ENTRIES=()
# api_image TAG VARIANT [CONFIG-FILTER]: the base layers, VARIANT's app layer, a tagged manifest.
api_image() {
    local tag=$1 v=$2 filter=${3:-.} diffs config
    if [ ! -f "$WORK/api-$v.tar.gz" ]; then
        api_stage "$v"
        make_layer "$WORK/api-$v" "api-$v" gzip-9
    fi
    LAYER_DIFF_ID=sha256:$(sha256sum <"$WORK/api-$v.tar" | cut -d' ' -f1)
    put_blob "$AL" "$WORK/api-$v.tar.gz"
    local layers=("${API_BASE_LAYERS[@]}" "$(descriptor "$MT_LAYER+gzip")")
    diffs=$(printf '%s\n' "${API_BASE_DIFF_IDS[@]}" "$LAYER_DIFF_ID" | jq -Rcs 'split("\n") | map(select(. != ""))')
    config=$(jq -cn --arg t "$EPOCH_ISO" --arg path "$PATH_ENV" --arg v "$v" --argjson d "$diffs" '{
        architecture: "amd64", os: "linux", created: $t,
        config: {Env: [$path, "NODE_ENV=production", "PORT=4000"], WorkingDir: "/app",
                 Cmd: ["node", "dist/index.js"], ExposedPorts: {"4000/tcp": {}},
                 Labels: {"org.reprobox.fixture": "api"}},
        rootfs: {type: "layers", diff_ids: $d},
        history: [
            {created: $t, created_by: "fixture: busybox, its applets, users, whiteout targets"},
            {created: $t, created_by: "fixture: node and the shared libraries it loads"},
            {created: $t, created_by: ("fixture: the api app (" + $v + ")")}
        ]} | '"$filter")
    image "$AL" "$config" "$(printf '%s\n' "${layers[@]}" | jq -cs .)"
    API_ENTRIES+=("$(descriptor "$MT_MANIFEST" "$(ref_name "$tag")")")
}
api_image good good
api_image express-missing express-missing
api_image workdir-missing good '.config.WorkingDir = "/app/apps/api"'
api_image prisma-client-location prisma-client-location
api_image pnpm-migrate pnpm-migrate
api_image pnpm-symlinks pnpm-symlinks
api_image provider-mysql provider-mysql
write_layout "$AL" "${API_ENTRIES[@]}"

# ---- postgres: a sidecar made of the host's PostgreSQL server ----------------------------------
note "building postgres image"
SP="$WORK/pg"
mkdir -p "$SP"
for f in "${PG_PROGRAMS[@]}" "${PG_MODULES[@]}" "${PG_LIBS[@]}" /usr/share/zoneinfo/UTC; do
    add_host_path_to "$SP" "$f"
done
mkdir -p "$SP$(dirname "$PG_SHAREDIR")"
cp -R "$PG_SHAREDIR" "$SP$PG_SHAREDIR"
mkdir -p "$SP/etc" "$SP/usr/local/bin" "$SP/var/lib/postgresql"
cat >"$SP/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
app:x:1000:1000:app:/home/app:/bin/sh
postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh
PASSWD
cat >"$SP/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
users:x:100:app
app:x:1000:
postgres:x:999:
nogroup:x:65534:
GROUP
cat >"$SP/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# The official postgres image's entrypoint, reduced: on the first start a cluster (trust
# authentication, the POSTGRES_USER superuser, the POSTGRES_DB database), then the server in the
# foreground on 127.0.0.1:5432, durability off (a test database).
set -e
if [ "$1" = postgres ]; then
    shift
    : "${PGDATA:=/var/lib/postgresql/data}" "${POSTGRES_USER:=postgres}"
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        initdb -D "$PGDATA" -U "$POSTGRES_USER" --auth=trust --no-sync --no-locale -E UTF8 \
            >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log >&2; exit 1; }
        if [ "$POSTGRES_DB" != postgres ]; then
            echo "CREATE DATABASE \"$POSTGRES_DB\"" | postgres --single -D "$PGDATA" -c fsync=off postgres >/dev/null
        fi
        echo "database cluster initialised in $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
    fi
    exec postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -c port=5432 \
        -c unix_socket_directories=/tmp -c fsync=off -c synchronous_commit=off \
        -c full_page_writes=off "$@"
fi
exec "$@"
ENTRYPOINT
find "$SP" -type d -exec chmod 755 {} +
find "$SP/etc" "$SP$PG_SHAREDIR" -type f -exec chmod 644 {} +
chmod 755 "$SP/usr/local/bin/docker-entrypoint.sh"
# initdb makes PGDATA itself (0700, owned by the server's user): its parent is writable by all,
# as /tmp is, so the image needs no owner that only root could record.
chmod 1777 "$SP/var/lib/postgresql"
if ((AS_ROOT)); then chown -hR 0:0 "$SP"; fi

PL="$NEW/postgres"
mkdir -p "$PL"
PG_LAYERS=() PG_DIFF_IDS=()
put_blob "$PL" "$BB1_FILE"
PG_LAYERS+=("$(descriptor "$BB1_MT")") PG_DIFF_IDS+=("$BB1_DIFF_ID")
make_layer "$SP" postgres gzip-6
put_blob "$PL" "$LAYER_FILE"
PG_LAYERS+=("$(descriptor "$LAYER_MT")") PG_DIFF_IDS+=("$LAYER_DIFF_ID")
PG_CONFIG=$(jq -cn --arg t "$EPOCH_ISO" --arg bin "$PG_BINDIR" --arg major "$PG_MAJOR" \
    --argjson d "$(printf '%s\n' "${PG_DIFF_IDS[@]}" | jq -Rcs 'split("\n") | map(select(. != ""))')" '{
    architecture: "amd64", os: "linux", created: $t,
    config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:" + $bin + ":/usr/sbin:/usr/bin:/sbin:/bin",
                   "PGDATA=/var/lib/postgresql/data", "PG_MAJOR=" + $major],
             User: "postgres", Entrypoint: ["docker-entrypoint.sh"], Cmd: ["postgres"],
             StopSignal: "SIGINT", ExposedPorts: {"5432/tcp": {}},
             Labels: {"org.reprobox.fixture": "postgres"}},
    rootfs: {type: "layers", diff_ids: $d},
    history: [
        {created: $t, created_by: "fixture: busybox, its applets, users, whiteout targets"},
        {created: $t, created_by: "fixture: the host PostgreSQL server, initdb, their libraries and share files, the entrypoint"}
    ]}')
image "$PL" "$PG_CONFIG" "$(printf '%s\n' "${PG_LAYERS[@]}" | jq -cs .)"
write_layout "$PL" "$(descriptor "$MT_MANIFEST" "$(ref_name latest)")"

# ---- publish ---------------------------------------------------------------------------------
printf '%s\n' "$STAMP" >"$NEW/$STAMP_NAME"
chmod 644 "$NEW/$STAMP_NAME"
rm -rf "$OUTDIR"
# -T: never move NEW inside an OUTDIR that a concurrent run published meanwhile; if one did, its
# images are ours byte for byte.
if ! mv -T "$NEW" "$OUTDIR" 2>/dev/null; then
    [ "$(cat "$OUTDIR/$STAMP_NAME" 2>/dev/null)" == "$STAMP" ] || die "cannot publish $OUTDIR"
fi
note "wrote $OUTDIR/busybox, $OUTDIR/node, $OUTDIR/api and $OUTDIR/postgres"
