#!/usr/bin/env bash
# reprobox doctor on real images: the postmortem's failures named from the recipe fixtures before
# anything runs, silence on their fixed twins, images made here for what the fixtures lack (a glibc
# binary on a musl-like image, a library taken out by a whiteout), the JSON report, exit codes.
. "$(dirname "$0")/lib.sh"
A=$(fixture api)
B=$(fixture busybox)
N=$(fixture node)
export RBX_FIXTURES
EX="$RBX_SOURCE_DIR/recipes/examples"

# doctor_finds NAME CHECK ARGS...: exit 1 and the check named in the report.
doctor_finds() {
    local name=$1 check=$2
    shift 2
    expect_status "$name" 1 rbx doctor "$@"
    assert_contains "$name: $check" "$OUT" "  $check"
}
# doctor_silent NAME ARGS...: exit 0, nothing to say.
doctor_silent() {
    local name=$1
    shift
    expect_status "$name" 0 rbx doctor "$@"
    assert_contains "$name: no problems" "$OUT" "no problems found"
}

# ---- the postmortem, from its recipes: found before anything runs ----------------------------
doctor_finds "class 1: express pruned" module-not-found --recipe "$EX/01-express-missing.json"
assert_contains "class 1 names express" "$OUT" "'express', a dependency in package.json"
doctor_finds "class 3: WORKDIR not copied" workdir-missing --recipe "$EX/03-workdir-missing.json"
assert_contains "class 3 says where the app is" "$OUT" "dist/index.js is at /app/dist/index.js"
doctor_finds "class 4: Prisma client inside @prisma/client" prisma-client-missing \
    --recipe "$EX/04-prisma-client-location.json"
assert_contains "class 4 names where it is" "$OUT" "/app/node_modules/@prisma/client/.prisma/client"
doctor_finds "class 5: pnpm in the migration script" command-not-found --recipe "$EX/05-pnpm-not-found.json"
assert_contains "class 5 names the script line" "$OUT" "/app/scripts/run-migrations.sh:5: pnpm db:migrate"
assert_contains "class 5 hints the command" "$OUT" "./node_modules/.bin/prisma migrate deploy"
doctor_finds "class 7: pnpm store not copied" broken-symlinks --recipe "$EX/07-pnpm-symlinks.json"
assert_contains "class 7 groups the links" "$OUT" "4 links under /app/node_modules point into /app/node_modules/.pnpm"
doctor_finds "class 8: provider mysql, database postgresql" provider-mismatch \
    --recipe "$EX/08-provider-mismatch.json"
assert_not_contains "class 8 prints no password" "$OUT" "app:app@"

# ... and silent on every fixed twin
for r in "$EX"/0*-fixed.json; do
    doctor_silent "fixed twin $(basename "$r" .json)" --recipe "$r"
done

# class 2 when the recipe says what the service needs
jq '. + {requires_env: ["JWT_SECRET", "DATABASE_URL"]}' "$EX/02-jwt-secret-missing.json" >"$RBX_TMP/02.json"
jq '. + {requires_env: ["JWT_SECRET", "DATABASE_URL"], env_file: "'"$EX"'/staging.env"}' \
    "$EX/02-jwt-secret-missing-fixed.json" >"$RBX_TMP/02-fixed.json"
doctor_finds "class 2: JWT_SECRET required" env-missing --recipe "$RBX_TMP/02.json"
assert_contains "class 2 names the variable" "$OUT" "JWT_SECRET is required"
doctor_silent "class 2 fixed: from the env file" --recipe "$RBX_TMP/02-fixed.json"

# ---- images on the command line ------------------------------------------------------------------
doctor_silent "api:good, its own Cmd" "oci:$A:good"
doctor_silent "node image" "oci:$N"
doctor_silent "busybox" "oci:$B"
doctor_finds "a command the image lacks" command-not-found "oci:$B" nosuchcmd
doctor_finds "sh -c string" command-not-found "oci:$B" sh -c 'cd /tmp && pnpm install'
expect_status "WORKDIR missing, absolute command: a warning" 0 rbx doctor "oci:$B:workdir"
assert_contains "workdir warning" "$OUT" "workdir-missing"
assert_contains "workdir warning, not error" "$OUT" "Warnings:"
doctor_finds "an amd64 busybox in an arm64 image" elf-arch-mismatch --platform linux/arm64 "oci:$B:multi"
doctor_finds "-w and -u as for run" user-unknown -u nobody2 -w /app "oci:$A:good"

# JSON: one document, the finding with its evidence
expect_status "--json" 1 rbx doctor --json "oci:$A:express-missing" -- node dist/index.js
assert_eq "json schema" "$(jq -r .schema <<<"$OUT")" "reprobox.doctor/v1"
assert_eq "json errors" "$(jq -r .errors <<<"$OUT")" "1"
assert_eq "json check" "$(jq -r '.findings[0].check' <<<"$OUT")" "module-not-found"
assert_eq "json evidence" "$(jq -r '.findings[0].evidence[] | select(startswith("required at"))' <<<"$OUT")" \
    "required at /app/dist/index.js:3"

# reprobox's own failures: 125, one line
expect_status "no such image" 125 rbx doctor "oci:$RBX_TMP/nothing"
assert_one_error_line "no such image"
expect_status "usage" 125 rbx doctor
assert_one_error_line "usage"
expect_status "--recipe with a command" 125 rbx doctor --recipe "$EX/01-express-missing.json" -- node
assert_one_error_line "--recipe with a command"

# ---- images made here --------------------------------------------------------------------------
# derive NAME BASE_LAYOUT STAGE [JQ-CONFIG-FILTER]: BASE's latest image plus one layer of STAGE.
derive() {
    local name=$1 base=$2 stage=$3 filter=${4:-.} out="$RBX_TMP/$1" m cfg tar diff d s
    mkdir -p "$out/blobs/sha256"
    m=$(jq -r '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "latest")][0].digest' \
        "$base/index.json" | cut -d: -f2)
    cfg=$(jq -r .config.digest "$base/blobs/sha256/$m" | cut -d: -f2)
    for d in $(jq -r '.layers[].digest' "$base/blobs/sha256/$m" | cut -d: -f2); do
        cp "$base/blobs/sha256/$d" "$out/blobs/sha256/$d"
    done
    # uncompressed: node is 100 MB, and compressing it is all the time this would take
    tar="$RBX_TMP/$name.tar"
    tar -C "$stage" --sort=name --numeric-owner --owner=0 --group=0 -cf "$tar" .
    d=$(sha256sum <"$tar" | cut -d' ' -f1)
    diff=sha256:$d
    s=$(stat -c %s "$tar")
    mv "$tar" "$out/blobs/sha256/$d"
    jq -cj --arg diff "$diff" ".rootfs.diff_ids += [\$diff] | $filter" "$base/blobs/sha256/$cfg" >"$RBX_TMP/cfg"
    local cd cs md ms
    cd=$(sha256sum <"$RBX_TMP/cfg" | cut -d' ' -f1)
    cs=$(stat -c %s "$RBX_TMP/cfg")
    cp "$RBX_TMP/cfg" "$out/blobs/sha256/$cd"
    jq -cj --arg d "sha256:$d" --argjson s "$s" --arg cd "sha256:$cd" --argjson cs "$cs" \
        '.layers += [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $d, size: $s}]
         | .config.digest = $cd | .config.size = $cs' "$base/blobs/sha256/$m" >"$RBX_TMP/man"
    md=$(sha256sum <"$RBX_TMP/man" | cut -d' ' -f1)
    ms=$(stat -c %s "$RBX_TMP/man")
    cp "$RBX_TMP/man" "$out/blobs/sha256/$md"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
    jq -cn --arg d "sha256:$md" --argjson s "$ms" '{schemaVersion: 2, manifests: [{mediaType:
        "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
        annotations: {"org.opencontainers.image.ref.name": "latest"}}]}' >"$out/index.json"
    echo "$out"
}

# A glibc node on a musl-like image: busybox, node without its libraries, musl's loader.
HOST_NODE=$(readlink -f "$(command -v node)")
S="$RBX_TMP/stage-musl"
mkdir -p "$S/usr/local/bin" "$S/lib"
cp "$HOST_NODE" "$S/usr/local/bin/node"
cp "$B/oci-layout" "$S/lib/ld-musl-x86_64.so.1"
MUSL=$(derive musl "$B" "$S" '.config.Cmd = ["node", "-e", "1"]')
doctor_finds "glibc binary on a musl image" musl-glibc-mismatch "oci:$MUSL"
assert_contains "musl names the loaders" "$OUT" "built for glibc, but the image has musl's loader /lib/ld-musl-x86_64.so.1"
rm "$S/lib/ld-musl-x86_64.so.1"
NOLOADER=$(derive noloader "$B" "$S" '.config.Cmd = ["node", "-e", "1"]')
doctor_finds "ELF loader not copied" elf-loader-missing "oci:$NOLOADER"

# A library of node's taken out by a whiteout in a later layer.
LIB=$(ldd "$HOST_NODE" | awk '$2 == "=>" && $3 ~ /^\// && $1 !~ /^(libc|libm|ld-linux)/ { print $3; exit }')
if [ -n "$LIB" ]; then
    S="$RBX_TMP/stage-wh"
    mkdir -p "$S$(dirname "$LIB")"
    : >"$S$(dirname "$LIB")/.wh.$(basename "$LIB")"
    WH=$(derive whiteout "$N" "$S")
    doctor_finds "a library deleted by a whiteout" library-missing "oci:$WH"
    assert_contains "the library is named" "$OUT" "$(basename "$LIB")"
else
    ok "no shared library of node to take out (skipped)"
fi

# ---- as an ordinary user ------------------------------------------------------------------------
if (rootless_setup) >/dev/null 2>&1; then
    rootless_setup
    RA=$(rootless_fixture api)
    expect_status "rootless: class 1" 1 rbx_rootless doctor "oci:$RA:express-missing"
    assert_contains "rootless: class 1 named" "$OUT" "module-not-found"
    expect_status "rootless: fixed" 0 rbx_rootless doctor "oci:$RA:good"
else
    ok "rootless set-up not possible here (skipped)"
fi

finish
