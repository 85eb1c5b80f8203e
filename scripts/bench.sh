#!/usr/bin/env bash
# bench.sh — reprobox's benchmarks (not timed tests): each subcommand builds what it measures once
# into a cache dir outside git, measures with hyperfine and prints a Markdown section for
# docs/BENCHMARKS.md.
#
# Usage: scripts/bench.sh unpack|pull|start|build|doctor|all   (unpack-image: build its image only)
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
# The median time of a command in hyperfine's JSON export: median FILE NAME.
median() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .median' "$1"; }

# ---- the realistic image: Debian minbase, node, an npm app, a layer of whiteouts -------------

MT_INDEX=application/vnd.oci.image.index.v1+json
MT_MANIFEST=application/vnd.oci.image.manifest.v1+json
MT_CONFIG=application/vnd.oci.image.config.v1+json
MT_GZIP=application/vnd.oci.image.layer.v1.tar+gzip

# The Debian mirror apt uses here (deb822 sources first, then the one-line form).
apt_mirror() {
    local m
    m=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null)
    [ -n "$m" ] || m=$(awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
    echo "${m:-http://deb.debian.org/debian}"
}

# layer_from STAGE OUT: a sorted, numeric-owner PAX tar of STAGE as docker writes one, gzip'd at
# docker's default level. Prints "DIFF_ID".
layer_from() {
    local stage=$1 out=$2
    local -a top
    mapfile -t top < <(cd "$stage" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | sort)
    tar -C "$stage" --create --sort=name --format=posix --numeric-owner --xattrs \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -- "${top[@]}" >"$out.tar"
    sha256sum <"$out.tar" | awk '{ print "sha256:" $1 }'
    gzip -n -6 <"$out.tar" >"$out"
    rm -f "$out.tar"
}

blob_put() { # LAYOUT FILE -> "DIGEST SIZE"
    local hex
    hex=$(sha256sum <"$2" | cut -d' ' -f1)
    mkdir -p "$1/blobs/sha256"
    cp "$2" "$1/blobs/sha256/$hex"
    echo "sha256:$hex $(stat -c %s "$2")"
}

build_unpack_image() {
    local img=$BENCH/image stamp_want
    stamp_want="bench-image v1" # bump when build_unpack_image changes
    if [ -f "$img/.stamp" ] && [ "$(cat "$img/.stamp")" == "$stamp_want" ]; then
        return 0
    fi
    need debootstrap npm node tar gzip jq sha256sum
    [ "$(id -u)" == 0 ] || die "building the benchmark image needs root (debootstrap)"
    note "building the benchmark image in $img (debootstrap, npm install: a few minutes, once)"
    local work
    work=$(mktemp -d "$BENCH/.work.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    mkdir -p "$work/layers"

    # 1: Debian minbase.
    debootstrap --variant=minbase bookworm "$work/deb" "$(apt_mirror)" >"$work/debootstrap.log" 2>&1 ||
        { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$work/deb/var/cache/apt/archives/"*.deb "$work/deb/var/lib/apt/lists/"*_Packages
    local d1 d2 d3 d4
    d1=$(layer_from "$work/deb" "$work/layers/1")

    # 2: node and its libraries, staged as the node fixture is.
    "$SRC/scripts/make-fixtures.sh" "$BENCH/fixtures" >/dev/null 2>&1 || die "make-fixtures.sh failed"
    mkdir -p "$work/node"
    local nblob
    nblob=$(jq -r '.layers[1].digest' "$BENCH/fixtures/node/blobs/sha256/$(jq -r '.manifests[0].digest' \
        "$BENCH/fixtures/node/index.json" | cut -d: -f2)" | cut -d: -f2)
    tar -C "$work/node" -xzf "$BENCH/fixtures/node/blobs/sha256/$nblob"
    d2=$(layer_from "$work/node" "$work/layers/2")

    # 3: an app with thousands of files from the npm registry.
    mkdir -p "$work/app/app"
    (cd "$work/app/app" && npm init -y >/dev/null &&
        npm install --no-audit --no-fund --loglevel=error express typescript lodash >/dev/null) ||
        die "npm install failed"
    d3=$(layer_from "$work/app" "$work/layers/3")

    # 4: whiteouts: apt's lists and docs gone, one opaque dir, single files removed across layers.
    local w=$work/wh
    mkdir -p "$w/usr/share/doc" "$w/var/lib/apt/lists" "$w/app/node_modules/typescript/lib" "$w/etc"
    : >"$w/usr/share/doc/.wh..wh..opq"
    : >"$w/var/lib/apt/lists/.wh..wh..opq"
    : >"$w/etc/.wh.motd"
    local f n=0
    while IFS= read -r f; do
        : >"$w/app/node_modules/typescript/lib/.wh.$(basename "$f")"
        n=$((n + 1))
    done < <(find "$work/app/app/node_modules/typescript/lib" -maxdepth 1 -name '*.d.ts' | sort | head -200)
    d4=$(layer_from "$w" "$work/layers/4")
    rm -rf "$work/deb" "$work/node" "$work/app" "$w"

    # The layout.
    local new=$work/image descs=() diffs=("$d1" "$d2" "$d3" "$d4") i dg sz
    mkdir -p "$new"
    for i in 1 2 3 4; do
        read -r dg sz < <(blob_put "$new" "$work/layers/$i")
        descs+=("$(jq -cn --arg mt $MT_GZIP --arg d "$dg" --argjson s "$sz" '{mediaType:$mt,digest:$d,size:$s}')")
    done
    jq -cSj -n --argjson d "$(printf '%s\n' "${diffs[@]}" | jq -Rcs 'split("\n")|map(select(.!=""))')" '{
        architecture: "amd64", os: "linux",
        config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                 WorkingDir: "/app", Cmd: ["node", "-e", "require(\"express\")"]},
        rootfs: {type: "layers", diff_ids: $d}}' >"$work/config.json"
    read -r dg sz < <(blob_put "$new" "$work/config.json")
    jq -cSj -n --arg mt $MT_MANIFEST --arg cmt $MT_CONFIG --arg d "$dg" --argjson s "$sz" \
        --argjson l "$(printf '%s\n' "${descs[@]}" | jq -cs .)" \
        '{schemaVersion:2, mediaType:$mt, config:{mediaType:$cmt,digest:$d,size:$s}, layers:$l}' \
        >"$work/manifest.json"
    read -r dg sz < <(blob_put "$new" "$work/manifest.json")
    printf '{"imageLayoutVersion":"1.0.0"}' >"$new/oci-layout"
    jq -cSj -n --arg mt $MT_INDEX --arg m $MT_MANIFEST --arg d "$dg" --argjson s "$sz" \
        '{schemaVersion:2, mediaType:$mt, manifests:[{mediaType:$m,digest:$d,size:$s,
          annotations:{"org.opencontainers.image.ref.name":"latest"}}]}' >"$new/index.json"
    echo "$stamp_want" >"$new/.stamp"
    rm -rf "$img"
    mv "$new" "$img"
    note "benchmark image ready: $img"
}

# ---- unpack ------------------------------------------------------------------------------------

# Layer blobs of the image, lowest first.
image_layers() {
    local img=$BENCH/image m
    m=$(jq -r '.manifests[0].digest' "$img/index.json" | cut -d: -f2)
    jq -r '.layers[].digest' "$img/blobs/sha256/$m" | sed "s|^sha256:|$img/blobs/sha256/|"
}

cmd_unpack() {
    need hyperfine umoci tar jq /usr/bin/time
    [ -x "$REPROBOX" ] || die "no reprobox binary at $REPROBOX (set REPROBOX)"
    mkdir -p "$BENCH"
    build_unpack_image
    local img=$BENCH/image s=$BENCH/scratch
    rm -rf "$s"
    mkdir -p "$s/trash"
    local layers=() l
    mapfile -t layers < <(image_layers)
    local tarcmd="" pigzcmd=""
    for l in "${layers[@]}"; do
        tarcmd+="tar -xzf $l -C $s/dest && "
        pigzcmd+="pigz -dc $l | tar -xf - -C $s/dest && "
    done
    tarcmd+=true
    pigzcmd+=true
    # Fresh targets are moved aside, never deleted, while measuring: on ext4 a large rm -rf slows
    # the next extractions for minutes (the inode allocator skips recently deleted inodes, and
    # the window is longer while their table blocks wait for a journal checkpoint). The trash
    # (a few GiB) goes at the end; run the benchmark a few minutes after any large deletion.
    local aside="mkdir -p $s/trash/\$\$ && { mv $s/dest $s/store $s/trash/\$\$/ 2>/dev/null || true; } && mkdir -p $s/dest"
    local size_mb
    size_mb=$(du -cm "${layers[@]}" | tail -1 | cut -f1)

    note "image: ${#layers[@]} layers, ${size_mb} MiB compressed"
    # Warm up the page cache with the blobs, and the store for the warm run.
    cat "${layers[@]}" >/dev/null
    "$REPROBOX" --root "$s/warm" --quiet run "oci:$img:latest" true ||
        die "reprobox run failed on the benchmark image"

    local cmds=(
        -n "reprobox unpack (cold)" --prepare "$aside" "$REPROBOX --root $s/store --quiet unpack oci:$img:latest $s/dest/rootfs"
        -n "umoci unpack" --prepare "$aside && rmdir $s/dest" "umoci --log error unpack --image $img:latest $s/dest"
        -n "tar -xzf per layer (floor)" --prepare "$aside" "$tarcmd"
    )
    command -v pigz >/dev/null && cmds+=(-n "pigz -dc | tar -xf per layer" --prepare "$aside" "$pigzcmd")
    hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$s/cold.json" "${cmds[@]}" >&2
    hyperfine --style basic --runs $((RUNS * 4)) --warmup 2 --export-json "$s/warm.json" \
        -n "reprobox run IMG true (warm)" "$REPROBOX --root $s/warm --quiet run oci:$img:latest true" >&2

    # Peak RSS of a cold unpack.
    eval "$aside"
    /usr/bin/time -v "$REPROBOX" --root "$s/store" --quiet unpack "oci:$img:latest" "$s/dest/rootfs" \
        2>"$s/time.txt" >/dev/null
    local rss_kb
    rss_kb=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$s/time.txt")
    local files
    files=$(find "$s/dest/rootfs" | wc -l)
    rm -rf "$s/trash" "$s/dest" "$s/store"

    local r_cold r_umoci r_tar r_pigz r_warm
    r_cold=$(median "$s/cold.json" "reprobox unpack (cold)")
    r_umoci=$(median "$s/cold.json" "umoci unpack")
    r_tar=$(median "$s/cold.json" "tar -xzf per layer (floor)")
    r_pigz=$(median "$s/cold.json" "pigz -dc | tar -xf per layer")
    r_warm=$(median "$s/warm.json" "reprobox run IMG true (warm)")
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
    ms() { awk -v a="$1" 'BEGIN { printf "%.0f ms", a * 1000 }'; }

    cat <<EOF
## unpack

Image: Debian bookworm minbase (debootstrap), the node fixture's layer, an app layer
(\`npm install express typescript lodash\`), a layer of whiteouts: ${#layers[@]} gzip layers,
${size_mb} MiB compressed, ${files} paths unpacked. Blobs in the page cache; targets on
$(df -T "$BENCH" | awk 'NR==2 { print $2 }'); $(nproc) CPUs ($(awk -F: '/model name/ { sub(/^ /, "", $2); print $2; exit }' /proc/cpuinfo)),
$(uname -r). Medians of $RUNS runs (warm run: $((RUNS * 4))), \`scripts/bench.sh unpack\`.

| what | median | vs tar floor | vs umoci | target |
|---|---|---|---|---|
| \`reprobox unpack\`, cold cache | $(ms "$r_cold") | $(ratio "$r_cold" "$r_tar")× | $(ratio "$r_cold" "$r_umoci")× | ≤ 0.8× floor, ≤ 0.5× umoci |
| \`umoci unpack\` | $(ms "$r_umoci") | $(ratio "$r_umoci" "$r_tar")× | 1.00× | |
| GNU \`tar -xzf\` per layer (the floor) | $(ms "$r_tar") | 1.00× | $(ratio "$r_tar" "$r_umoci")× | |
EOF
    [ -n "$r_pigz" ] && [ "$r_pigz" != null ] &&
        echo "| \`pigz -dc \| tar -xf\` per layer | $(ms "$r_pigz") | $(ratio "$r_pigz" "$r_tar")× | $(ratio "$r_pigz" "$r_umoci")× | |"
    cat <<EOF
| \`reprobox run IMG true\`, warm cache | $(ms "$r_warm") | | | ≤ 50 ms |

Peak RSS of \`reprobox unpack\` (cold, /usr/bin/time -v): $((rss_kb / 1024)) MiB (target < 32 MiB).
EOF
}

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

# ---- doctor ------------------------------------------------------------------------------------

# reprobox doctor on the realistic image, its layers in the cache (warm): the whole command,
# mounting included; and how many findings it makes there (the false positives: it is a working
# image). Then a recipe fixture of the postmortem for scale.
cmd_doctor() {
    need hyperfine jq
    [ -x "$REPROBOX" ] || die "no reprobox binary at $REPROBOX (set REPROBOX)"
    mkdir -p "$BENCH"
    local s=$BENCH/doctor img what
    rm -rf "$s"
    mkdir -p "$s"
    if [ ! -f "$BENCH/image/.stamp" ] && declare -F build_unpack_image >/dev/null; then
        build_unpack_image
    fi
    "$SRC/scripts/make-fixtures.sh" "$BENCH/fixtures" >/dev/null 2>&1 || die "make-fixtures.sh failed"
    if [ -f "$BENCH/image/.stamp" ]; then
        img="oci:$BENCH/image:latest"
        what="the realistic benchmark image (\`scripts/bench.sh unpack-image\`: Debian minbase, node, express, typescript and lodash from npm, a layer of whiteouts)"
    else
        note "the realistic image is not built (scripts/bench.sh unpack-image): measuring the api fixture"
        img="oci:$BENCH/fixtures/api:good"
        what="the api fixture (\`tests/fixtures.md\`)"
    fi
    export RBX_FIXTURES=$BENCH/fixtures
    local rbx="$REPROBOX --root $s/store --quiet" rc=0
    # the first runs unpack the layers into the store: what follows is warm
    $rbx doctor --json "$img" >"$s/report.json" || rc=$?
    ((rc <= 1)) || die "doctor failed on $img"
    local recipe=$SRC/recipes/examples/07-pnpm-symlinks.json
    rc=0
    $rbx doctor --recipe "$recipe" >/dev/null || rc=$?
    ((rc <= 1)) || die "doctor failed on $recipe"
    hyperfine --style basic --runs "$RUNS" --warmup 1 --export-json "$s/doctor.json" -i \
        -n "doctor image" "$rbx doctor $img" \
        -n "doctor recipe" "$rbx doctor --recipe $recipe" >&2

    local findings errors entries links
    findings=$(jq '.findings | length' "$s/report.json")
    errors=$(jq .errors "$s/report.json")
    entries=$(jq .entries_walked "$s/report.json")
    links=$(jq .links_elsewhere "$s/report.json")
    ms() { awk -v a="$1" 'BEGIN { printf "%.0f ms", a * 1000 }'; }
    cat <<EOF
## doctor

Image: $what; $entries entries walked. \`reprobox doctor\` with the layers in the cache: the
image opened and verified, its overlay mounted in a container where nothing runs, every check,
the report. $(nproc) CPUs ($(awk -F: '/model name/ { sub(/^ /, "", $2); print $2; exit }' /proc/cpuinfo)),
$(uname -r). Medians of $RUNS runs, \`scripts/bench.sh doctor\`.

| what | median | target |
|---|---|---|
| \`reprobox doctor\` on the image | $(ms "$(median "$s/doctor.json" "doctor image")") | < 1 s |
| \`reprobox doctor --recipe 07-pnpm-symlinks.json\` (api fixture, 4 errors) | $(ms "$(median "$s/doctor.json" "doctor recipe")") | |

Findings on the image, a working one: $findings ($errors errors). Broken links away from the
processes' directories and PATH, counted and not listed: $links.
EOF
}

# ---- start -------------------------------------------------------------------------------------

# Starting a sandbox on a warm cache: `reprobox run IMG true` with every protection on (user, pid,
# mount, net, uts, ipc, cgroup namespaces, cgroups, seccomp, capabilities, masks, no_new_privs),
# against crun and runc on the bundle `reprobox spec` writes for the same run (Docker's default
# seccomp profile, the same masks and capabilities), bwrap, and the floor: namespaces and a
# chroot, nothing else. All on the busybox fixture's rootfs. Run as root.
# crun refuses a hybrid host whose cgroup2 mount has controllers ("drop all controllers from
# cgroupv2"): run such a host's measurements in a private mount namespace without that mount,
# every contender alike.
without_unified() {
    if grep -qs . /sys/fs/cgroup/unified/cgroup.controllers; then
        unshare -m --propagation private bash -c 'umount /sys/fs/cgroup/unified && exec "$@"' _ "$@"
    else
        "$@"
    fi
}

cmd_start() {
    need hyperfine crun runc bwrap unshare jq
    [ -x "$REPROBOX" ] || die "no reprobox binary at $REPROBOX (set REPROBOX)"
    [ "$(id -u)" == 0 ] || die "start: run as root (crun and runc run the bundle as root)"
    local runs=${RBX_BENCH_RUNS:-100} rounds=${RBX_BENCH_ROUNDS:-5}
    local per=$(((runs + rounds - 1) / rounds))
    local s=$BENCH/start
    rm -rf "$s"
    mkdir -p "$s"
    "$SRC/scripts/make-fixtures.sh" "$BENCH/fixtures" >/dev/null 2>&1 || die "make-fixtures.sh failed"
    local img="oci:$BENCH/fixtures/busybox:latest"
    # A warm cache: layers unpacked, the seccomp filter compiled and kept.
    "$REPROBOX" --root "$s/store" --quiet run "$img" true || die "reprobox run failed"
    "$REPROBOX" --root "$s/store" --quiet spec "$img" "$s/bundle" /bin/true || die "reprobox spec failed"
    local rootfs=$s/bundle/rootfs
    without_unified crun --root "$s/crun" run -b "$s/bundle" rbx-bench-crun || die "crun cannot run the bundle"
    runc --root "$s/runc" run -b "$s/bundle" rbx-bench-runc || die "runc cannot run the bundle"
    # The set-up runs above leave work behind them (network namespaces freed by a kernel worker,
    # dirty pages): let it finish before anything is timed.
    sync
    sleep 3
    # In rounds: this shared machine's speed drifts by a third within a minute, and hyperfine
    # runs one command's runs before the next's; a round of every command every few seconds
    # puts that drift on all of them alike.
    note "timing $((per * rounds)) runs each in $rounds rounds (machine load: $(cut -d' ' -f1-3 /proc/loadavg))"
    local round
    for ((round = 1; round <= rounds; round++)); do
        without_unified hyperfine -N --style basic --runs "$per" --warmup 3 --export-json "$s/round.$round.json" \
            -n "reprobox run" "$REPROBOX --root $s/store --quiet run $img true" \
            -n "crun run" "crun --root $s/crun run -b $s/bundle rbx-bench-crun" \
            -n "runc run" "runc --root $s/runc run -b $s/bundle rbx-bench-runc" \
            -n "bwrap --unshare-all" "bwrap --unshare-all --ro-bind $rootfs / --proc /proc --dev /dev /bin/true" \
            -n "unshare (floor)" "unshare -U -r -mpfnui --mount-proc chroot $rootfs /bin/true" >&2
    done
    # Every round's times of a command together, and their median.
    jq -s '{results: ([.[].results[]] | group_by(.command)
           | map({command: .[0].command, times: ([.[].times[]] | sort)})
           | map(. + {median: (.times | if length % 2 == 1 then .[length / 2 | floor]
                                        else (.[length / 2 - 1] + .[length / 2]) / 2 end)}))}' \
        "$s"/round.*.json >"$s/start.json"

    local r_rbx r_crun r_runc r_bwrap r_floor
    r_rbx=$(median "$s/start.json" "reprobox run")
    r_crun=$(median "$s/start.json" "crun run")
    r_runc=$(median "$s/start.json" "runc run")
    r_bwrap=$(median "$s/start.json" "bwrap --unshare-all")
    r_floor=$(median "$s/start.json" "unshare (floor)")
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
    ms() { awk -v a="$1" 'BEGIN { printf "%.1f ms", a * 1000 }'; }
    cat <<EOF
## start

A sandbox started on a warm cache, the command \`true\`, the busybox fixture's rootfs for all.
\`reprobox run\` with every protection on (user, pid, mount, network, uts, ipc and cgroup
namespaces, a cgroup with the default pids limit, Docker's default seccomp profile from the
on-disk cache, 11 capabilities, masked and read-only paths, no_new_privs, an overlay rootfs
and its scratch dir made and removed); crun $(crun --version | awk 'NR==1 { print $3 }') and runc $(runc --version | awk 'NR==1 { print $3 }') on the bundle
\`reprobox spec\` writes for the same run (same seccomp profile, masks, capabilities, mounts);
bubblewrap $(bwrap --version | awk '{ print $2 }') with \`--unshare-all\`; the floor is
\`unshare -U -r -mpfnui --mount-proc chroot ROOTFS true\`.
$(nproc) CPUs ($(awk -F: '/model name/ { sub(/^ /, "", $2); print $2; exit }' /proc/cpuinfo)), $(uname -r), load
$(cut -d' ' -f1 /proc/loadavg) when measured. Medians of $((per * rounds)) runs each, in $rounds rounds of $per runs of every
command (hyperfine -N), \`scripts/bench.sh start\`.

| what | median | vs crun | target |
|---|---|---|---|
| \`reprobox run IMG true\` | $(ms "$r_rbx") | $(ratio "$r_rbx" "$r_crun")× | ≤ 8 ms, ≤ 0.3× crun |
| \`crun run\` (Docker's seccomp profile) | $(ms "$r_crun") | 1.00× | |
| \`runc run\` (Docker's seccomp profile) | $(ms "$r_runc") | $(ratio "$r_runc" "$r_crun")× | |
| \`bwrap --unshare-all\` | $(ms "$r_bwrap") | $(ratio "$r_bwrap" "$r_crun")× | reprobox ≤ 2× this |
| floor: \`unshare -U -r -mpfnui --mount-proc chroot\` | $(ms "$r_floor") | $(ratio "$r_floor" "$r_crun")× | |
EOF
}

# ---- build -----------------------------------------------------------------------------------

# The Node workspace of tests/fixtures/build/node (multi-stage, a build step, a pruned production
# stage), offline, on the node fixture, with `reprobox build` and `buildah bud --isolation chroot
# --timestamp 0`, both with a step cache and both writing the image (an OCI layout; buildah's
# containers-storage). Cold: the base image ready, no step cached. Warm: every step cached.
cmd_build() {
    need hyperfine buildah skopeo jq
    [ -x "$REPROBOX" ] || die "no reprobox binary at $REPROBOX (set REPROBOX)"
    mkdir -p "$BENCH"
    local s=$BENCH/build fix=$BENCH/fixtures ctx=$SRC/tests/fixtures/build/node
    rm -rf "$s"
    mkdir -p "$s"
    "$SRC/scripts/make-fixtures.sh" "$fix" >/dev/null 2>&1 || die "make-fixtures.sh failed"
    local B="buildah --root $s/buildah --runroot $s/buildah-run --storage-driver overlay"
    # skopeo names the image itself: buildah pull would name it after the layout's path, which
    # it refuses when a component starts with a dot (~/.cache).
    local base="skopeo copy -q oci:$fix/node:latest 'containers-storage:[overlay@$s/buildah+$s/buildah-run]localhost/node-fixture:latest'"
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
unpack) cmd_unpack ;;
unpack-image) mkdir -p "$BENCH" && build_unpack_image ;; # build the image only
pull) cmd_pull ;;
start) cmd_start ;;
build) cmd_build ;;
doctor) cmd_doctor ;;
all) cmd_unpack && echo && cmd_pull && echo && cmd_start && echo && cmd_build && echo && cmd_doctor ;;
*) echo "Usage: scripts/bench.sh unpack|pull|start|build|doctor|all" >&2; exit 2 ;;
esac
