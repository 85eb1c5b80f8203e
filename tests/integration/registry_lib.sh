# registry_lib.sh — a real Distribution registry (Debian's docker-registry) on 127.0.0.1 for the
# pull tests: TLS with a certificate made here, htpasswd (bcrypt) or token auth, fixture images
# pushed with skopeo. Source it after lib.sh.

REG_USER=alice
REG_PASS='s3cret-Pa55'

registry_require() {
    command -v docker-registry >/dev/null || skip "docker-registry not installed (scripts/install-deps.sh)"
    command -v skopeo >/dev/null || skip "skopeo not installed"
    command -v openssl >/dev/null || skip "openssl not installed"
    command -v htpasswd >/dev/null || skip "htpasswd not installed (apache2-utils)"
    command -v curl >/dev/null || skip "curl not installed"
}

# A free TCP port on 127.0.0.1 (the kernel picks one; a race with another binder is retried by
# registry_start).
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        ss -ltnH "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
    done
    return 1
}

# A self-signed certificate for 127.0.0.1 and localhost; the CA dir holds it as ca.crt, as
# skopeo's --cert-dir and reprobox's expect.
make_cert() { # DIR
    mkdir -p "$1/ca"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1 || return 1
    cp "$1/cert.pem" "$1/ca/ca.crt"
}

# registry_config NAME MODE: MODE is tls-htpasswd, plain (no TLS, no auth) or tls-token
# (needs TOKEN_REALM, TOKEN_CERT). Sets REG_<NAME>_DIR.
registry_config() {
    local name=$1 mode=$2 dir="$RBX_TMP/registry-$1"
    mkdir -p "$dir/data"
    eval "REG_${name}_DIR=$dir"
    {
        echo "version: 0.1"
        echo "log: {level: info, accesslog: {disabled: false}}"
        echo "storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}"
        echo "http:"
        echo "  addr: 127.0.0.1:PORT"
        echo "  secret: reprobox-test-secret"
        if [ "$mode" != plain ]; then
            echo "  tls: {certificate: $RBX_TMP/tls/cert.pem, key: $RBX_TMP/tls/key.pem}"
        fi
        if [ "$mode" == tls-htpasswd ]; then
            htpasswd -Bbn "$REG_USER" "$REG_PASS" >"$dir/htpasswd"
            echo "auth: {htpasswd: {realm: reprobox-test, path: $dir/htpasswd}}"
        elif [ "$mode" == tls-token ]; then
            echo "auth:"
            echo "  token: {realm: \"$TOKEN_REALM\", service: reprobox-test-registry, issuer: reprobox-test-issuer, rootcertbundle: $TOKEN_CERT}"
        fi
    } >"$dir/config.tmpl"
}

# registry_start NAME [PORT]: start (or restart on the same port) and wait until /v2/ answers.
# Sets REG_<NAME>_PORT and REG_<NAME>_PID.
registry_start() {
    local name=$1 port=${2:-} dir pid scheme=https
    eval "dir=\$REG_${name}_DIR"
    grep -q "tls:" "$dir/config.tmpl" || scheme=http
    for _ in 1 2 3 4 5; do
        [ -n "$port" ] || port=$(free_port) || return 1
        sed "s/PORT/$port/" "$dir/config.tmpl" >"$dir/config.yml"
        docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do
            if curl -s -k -o /dev/null "$scheme://127.0.0.1:$port/v2/"; then
                eval "REG_${name}_PORT=$port REG_${name}_PID=$pid"
                RBX_CLEANUPS+=("kill $pid 2>/dev/null")
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null
        [ -n "${2:-}" ] && return 1 # a fixed port that does not come up
        port=
    done
    return 1
}

registry_kill() { # NAME
    local pid
    eval "pid=\$REG_${1}_PID"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# push NAME SRC DEST-REF [skopeo options...]: copy a fixture into the registry.
push() {
    local src=$1 dst=$2
    shift 2
    skopeo copy -q "$@" "$src" "$dst" >"$RBX_TMP/.push.log" 2>&1 ||
        { cat "$RBX_TMP/.push.log"; return 1; }
}

# The blob file a registry serves for a digest (to damage it on purpose).
registry_blob_file() { # NAME DIGEST
    local dir hex=${2#sha256:}
    eval "dir=\$REG_${1}_DIR"
    echo "$dir/data/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

# The store's record of a pulled reference (refs/<sha256 of the name>.json).
store_record() { # CANONICAL-NAME
    local h
    h=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)
    echo "$RBX_ROOT/refs/$h.json"
}
