#!/usr/bin/env bash
# bench.sh — reprobox's benchmarks (not timed tests): each subcommand builds what it measures once
# into a cache dir outside git, measures with hyperfine and prints a Markdown section for
# docs/BENCHMARKS.md.
#
# Usage: scripts/bench.sh pull|build|all
# Environment:
#   REPROBOX        the binary (default: build/reprobox)
#   RBX_BENCH_DIR   where images and scratch space live (default: ~/.cache/reprobox-bench)
#   RBX_BENCH_RUNS  hyperfine runs per command (default: 5)
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPROBOX=$(realpath -m "${REPROBOX:-$SRC/build/reprobox}")
BENCH=${RBX_BENCH_DIR:-$HOME/.cache/reprobox-bench}
RUNS=${RBX_BENCH_RUNS:-5}

die() { echo "bench: error: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }
need() { for t in "$@"; do command -v "$t" >/dev/null || die "$t not found (run scripts/install-deps.sh)"; done; }

# ---- pull ------------------------------------------------------------------------------------

# A Distribution registry (Debian's docker-registry) on a free loopback port, TLS with a
# certificate made here, no auth: what is measured is the transfer, verification and storing.
cmd_pull() {
    need hyperfine skopeo docker-registry openssl jq curl ss
    [ -x "$REPROBOX" ] || die "no reprobox binary at $REPROBOX (set REPROBOX)"
    mkdir -p "$BENCH"
    local s=$BENCH/pull src what
    rm -rf "$s"
    mkdir -p "$s/ca" "$s/data"
    # The realistic image when scripts/bench.sh unpack-image has built it, else the node fixture.
    if [ -f "$BENCH/image/.stamp" ]; then
        src="oci:$BENCH/image:latest"
        what="the realistic benchmark image (\`scripts/bench.sh unpack-image\`)"
    else
        "$SRC/scripts/make-fixtures.sh" "$BENCH/fixtures" >/dev/null 2>&1 || die "make-fixtures.sh failed"
        src="oci:$BENCH/fixtures/node:latest"
        what="the node fixture (\`tests/fixtures.md\`)"
    fi
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext "subjectAltName=IP:127.0.0.1" -keyout "$s/key.pem" -out "$s/ca/ca.crt" \
        >/dev/null 2>&1 || die "openssl failed"
    local port pid=""
    for _ in $(seq 20); do
        port=$((20000 + RANDOM % 40000))
        ss -ltnH "sport = :$port" | grep -q . && continue
        cat >"$s/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $s/data}}
http: {addr: "127.0.0.1:$port", secret: bench, tls: {certificate: $s/ca/ca.crt, key: $s/key.pem}}
EOF
        docker-registry serve "$s/config.yml" >"$s/registry.log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do
            curl -s -o /dev/null --cacert "$s/ca/ca.crt" "https://127.0.0.1:$port/v2/" && break 2
            sleep 0.1
        done
        kill "$pid" 2>/dev/null
        pid=""
    done
    [ -n "$pid" ] || die "docker-registry did not start (see $s/registry.log)"
    # shellcheck disable=SC2064
    trap "kill $pid 2>/dev/null" EXIT
    local ref="docker://127.0.0.1:$port/bench:latest"
    skopeo copy -q --dest-cert-dir "$s/ca" "$src" "$ref" || die "skopeo could not push $src"
    local layers size_mb
    layers=$(skopeo inspect --cert-dir "$s/ca" --raw "$ref" | jq '.layers | length')
    size_mb=$(skopeo inspect --cert-dir "$s/ca" --raw "$ref" | jq '[.layers[].size] | add / 1048576 | floor')
    note "pulling $src ($layers layers, $size_mb MiB) from 127.0.0.1:$port"

    hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$s/pull.json" \
        -n "reprobox pull" --prepare "rm -rf $s/store" \
        "$REPROBOX --root $s/store --quiet pull --cert-dir $s/ca $ref" \
        -n "skopeo copy" --prepare "rm -rf $s/oci" \
        "skopeo copy -q --src-cert-dir $s/ca $ref oci:$s/oci:latest" >&2
    hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$s/present.json" \
        -n "reprobox pull (all present)" \
        "$REPROBOX --root $s/store --quiet pull --cert-dir $s/ca $ref" >&2
    kill "$pid" 2>/dev/null
    trap - EXIT

    local median
    median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }
    local r_rbx r_sk r_present
    r_rbx=$(median "$s/pull.json" "reprobox pull")
    r_sk=$(median "$s/pull.json" "skopeo copy")
    r_present=$(median "$s/present.json" "reprobox pull (all present)")
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
    ms() { awk -v a="$1" 'BEGIN { printf "%.0f ms", a * 1000 }'; }
    cat <<EOF
## pull

Image: $what, $layers gzip layers, $size_mb MiB, pushed with skopeo to Debian's
\`docker-registry\` $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null) on 127.0.0.1 (TLS with a
self-signed CA, no auth). Both fetch every blob and verify it: reprobox into its store
(\`--max-concurrent\` 3, the default), skopeo $(skopeo --version | awk '{ print $3 }') into an OCI layout.
$(nproc) CPUs ($(awk -F: '/model name/ { sub(/^ /, "", $2); print $2; exit }' /proc/cpuinfo)),
$(uname -r). Medians of $RUNS runs, \`scripts/bench.sh pull\`.

| what | median | vs skopeo | target |
|---|---|---|---|
| \`reprobox pull\`, empty store | $(ms "$r_rbx") | $(ratio "$r_rbx" "$r_sk")× | ≤ 0.8× |
| \`skopeo copy docker://… oci:…\` | $(ms "$r_sk") | 1.00× | |
| \`reprobox pull\`, every blob present (the tag resolved again) | $(ms "$r_present") | $(ratio "$r_present" "$r_sk")× | |
EOF
}

# ---- build -----------------------------------------------------------------------------------

# The Node workspace of tests/fixtures/build/node (multi-stage, a build step, a pruned production
# stage), offline, on the node fixture, with `reprobox build` and `buildah bud --isolation chroot
# --timestamp 0`, both with a step cache and both writing the image (an OCI layout; buildah's
# containers-storage). Cold: the base image ready, no step cached. Warm: every step cached.
cmd_build() {
    need hyperfine buildah jq
    [ -x "$REPROBOX" ] || die "no reprobox binary at $REPROBOX (set REPROBOX)"
    mkdir -p "$BENCH"
    local s=$BENCH/build fix=$BENCH/fixtures ctx=$SRC/tests/fixtures/build/node
    rm -rf "$s"
    mkdir -p "$s"
    "$SRC/scripts/make-fixtures.sh" "$fix" >/dev/null 2>&1 || die "make-fixtures.sh failed"
    local B="buildah --root $s/buildah --runroot $s/buildah-run --storage-driver overlay"
    local base="$B pull -q oci:$fix/node:latest >/dev/null && $B tag \$($B images -q | head -1) localhost/node-fixture:latest"
    sh -c "$base" || die "buildah cannot read the node fixture"
    # The base image unpacked once in a store kept aside; each cold run starts from a copy.
    "$REPROBOX" --root "$s/base" --quiet run "oci:$fix/node" true || die "reprobox cannot run the fixture"
    local rbx="$REPROBOX --root $s/store --quiet build --build-context node=oci:$fix/node -t oci:$s/out:bench $ctx"
    local bah="$B bud --quiet --isolation chroot --timestamp 0 --layers --build-arg NODE_IMAGE=localhost/node-fixture:latest -t localhost/bench:latest $ctx"
    note "cold: no step cached"
    hyperfine --style basic --runs "$RUNS" --export-json "$s/cold.json" \
        -n "reprobox build (cold)" --prepare "rm -rf $s/store $s/out && cp -a $s/base $s/store && sync" "$rbx" \
        -n "buildah bud (cold)" --prepare "$B rmi --all --force >/dev/null 2>&1; $base && sync" "$bah" >&2
    note "warm: every step cached"
    hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$s/warm.json" \
        -n "reprobox build (warm)" "$rbx" -n "buildah bud (warm)" "$bah" >&2

    median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
    ms() { awk -v a="$1" 'BEGIN { printf "%.0f ms", a * 1000 }'; }
    local rc bc rw bw
    rc=$(median "$s/cold.json" "reprobox build (cold)")
    bc=$(median "$s/cold.json" "buildah bud (cold)")
    rw=$(median "$s/warm.json" "reprobox build (warm)")
    bw=$(median "$s/warm.json" "buildah bud (warm)")
    cat <<EOF
## build

The Node workspace of \`tests/fixtures/build/node\` (three stages: dependencies, a build step
that resolves pnpm's symlinks and deploys the production dependencies, a pruned production
stage), offline, on the node fixture, built by \`reprobox build -t oci:…\` and by buildah
$(buildah --version | awk '{ print $3 }') \`bud --isolation chroot --timestamp 0 --layers\` (overlay
storage, as root). Cold: the base image ready (reprobox: unpacked in its store; buildah: in its
storage), no step cached. Warm: every step cached, the image written again.
$(nproc) CPUs ($(awk -F: '/model name/ { sub(/^ /, "", $2); print $2; exit }' /proc/cpuinfo)),
$(uname -r). Medians of $RUNS runs, \`scripts/bench.sh build\`.

| what | median | vs buildah | target |
|---|---|---|---|
| \`reprobox build\`, cold | $(ms "$rc") | $(ratio "$rc" "$bc")× | ≤ 0.5× |
| \`buildah bud\`, cold | $(ms "$bc") | 1.00× | |
| \`reprobox build\`, warm | $(ms "$rw") | $(ratio "$rw" "$bw")× | ≤ 0.2× |
| \`buildah bud\`, warm | $(ms "$bw") | 1.00× | |
EOF
}

case ${1:-} in
pull) cmd_pull ;;
build) cmd_build ;;
all) cmd_pull; echo; cmd_build ;;
*) echo "Usage: scripts/bench.sh pull|build|all" >&2; exit 2 ;;
esac
