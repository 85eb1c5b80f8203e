#!/usr/bin/env bash
# test_pull_token.sh — the Bearer token flow against the real registry in token-auth mode: a
# small token server (node) signs JWTs the registry verifies; reprobox follows the
# WWW-Authenticate challenge (realm, service, scope) with Basic credentials to the token server.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/registry_lib.sh"

registry_require
command -v node >/dev/null || skip "node not installed (the token server is written in it)"
BUSYBOX=$(fixture busybox) || exit 77
make_cert "$RBX_TMP/tls" || skip "openssl could not make a certificate"
CA="$RBX_TMP/tls/ca"

# The token signing key and its certificate (the registry's rootcertbundle).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=reprobox-test-issuer \
    -keyout "$RBX_TMP/sign.key" -out "$RBX_TMP/sign.crt" >/dev/null 2>&1 || skip "openssl failed"
TOKEN_PORT=$(free_port)
TOKEN_REALM="https://127.0.0.1:$TOKEN_PORT/token"
TOKEN_CERT="$RBX_TMP/sign.crt"

cat >"$RBX_TMP/token-server.js" <<'EOF'
// A token server as the Distribution token spec describes: GET /token?service=&scope=, Basic
// credentials checked, an RS256 JWT with the signing certificate in x5c. Each request is logged.
const https = require('https'), crypto = require('crypto'), fs = require('fs');
const [port, tlsKey, tlsCert, signKey, signCert, user, pass, log] = process.argv.slice(2);
const key = fs.readFileSync(signKey), der = new crypto.X509Certificate(fs.readFileSync(signCert)).raw;
const b64u = (b) => Buffer.from(b).toString('base64url');
https.createServer({ key: fs.readFileSync(tlsKey), cert: fs.readFileSync(tlsCert) }, (req, res) => {
    const url = new URL(req.url, 'https://x');
    const auth = req.headers.authorization || '';
    const given = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : null;
    fs.appendFileSync(log, `${url.pathname} service=${url.searchParams.get('service')} scope=${url.searchParams.getAll('scope').join(' ')} basic=${given === null ? 'none' : given === `${user}:${pass}` ? 'good' : 'bad'}\n`);
    if (url.pathname !== '/token') { res.writeHead(404); return res.end(); }
    if (given !== null && given !== `${user}:${pass}`) { res.writeHead(401); return res.end('{"details":"bad credentials"}'); }
    // Anonymous callers get a token with no access: the registry then refuses them.
    const access = given === null ? [] : url.searchParams.getAll('scope').map((s) => {
        const [type, name, actions] = s.split(':');
        return { type, name, actions: actions.split(',') };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = { iss: 'reprobox-test-issuer', sub: given === null ? '' : user,
        aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now,
        jti: crypto.randomBytes(8).toString('hex'), access };
    const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
    const sig = crypto.sign('sha256', Buffer.from(input), key);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: `${input}.${b64u(sig)}`, expires_in: 300 }));
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
EOF
TOKEN_LOG="$RBX_TMP/token.log"
: >"$TOKEN_LOG"
node "$RBX_TMP/token-server.js" "$TOKEN_PORT" "$RBX_TMP/tls/key.pem" "$RBX_TMP/tls/cert.pem" \
    "$RBX_TMP/sign.key" "$RBX_TMP/sign.crt" "$REG_USER" "$REG_PASS" "$TOKEN_LOG" >"$RBX_TMP/token.out" 2>&1 &
TOKEN_PID=$!
RBX_CLEANUPS+=("kill $TOKEN_PID 2>/dev/null")
for _ in $(seq 100); do grep -q listening "$RBX_TMP/token.out" && break; sleep 0.1; done
grep -q listening "$RBX_TMP/token.out" || skip "the token server did not start: $(cat "$RBX_TMP/token.out")"

registry_config main tls-token
registry_start main || skip "docker-registry did not start in token mode"
R="127.0.0.1:$REG_main_PORT"
push "oci:$BUSYBOX:latest" "docker://$R/team/busybox:latest" --dest-cert-dir "$CA" --dest-creds "$REG_USER:$REG_PASS" ||
    skip "skopeo could not push through the token server"

: >"$TOKEN_LOG"
expect_status "bearer: pull with credentials" 0 rbx pull --cert-dir "$CA" --creds "$REG_USER:$REG_PASS" "docker://$R/team/busybox:latest"
assert_contains "bearer: summary" "$OUT" "3 layers, 3 downloaded"
TOKENS=$(cat "$TOKEN_LOG")
assert_contains "bearer: asked the token server for this repository" "$TOKENS" "service=reprobox-test-registry scope=repository:team/busybox:pull basic=good"
assert_not_contains "bearer: never sent bad credentials" "$TOKENS" "basic=bad"
assert_eq "bearer: one token for the whole pull" "$(grep -c . "$TOKEN_LOG")" 1

: >"$TOKEN_LOG"
expect_status "bearer: wrong password" 125 rbx pull --cert-dir "$CA" --creds "$REG_USER:nope-nope" "docker://$R/team/busybox:latest"
assert_one_error_line "bearer: wrong password"
assert_contains "bearer: the token server refused" "$ERR" "the token server refused the credentials from --creds"
assert_not_contains "bearer: the password is not shown" "$ERR" "nope-nope"

expect_status "bearer: anonymous" 125 env HOME="$RBX_TMP/nohome" XDG_RUNTIME_DIR= REGISTRY_AUTH_FILE= DOCKER_CONFIG= \
    "$REPROBOX" --root "$RBX_TMP/store2" pull --cert-dir "$CA" "docker://$R/team/busybox:latest"
assert_contains "bearer: anonymous is told credentials are needed" "$ERR" "authentication required"
check "bearer: anonymous asked without credentials" grep -q "basic=none" "$TOKEN_LOG"

finish
