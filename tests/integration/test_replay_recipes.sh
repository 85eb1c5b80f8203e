#!/usr/bin/env bash
# reprobox replay and test on small recipes over busybox: bad recipes refused with their JSON path,
# steps sharing one rootfs, detach and probes, expectations of every kind, timeouts.
. "$(dirname "$0")/lib.sh"
BB="oci:$(fixture busybox)" || exit 77
NODE="oci:$(fixture node)" || exit 77

recipe() { # NAME JSON
    printf '%s\n' "$2" >"$RBX_TMP/$1.json"
    echo "$RBX_TMP/$1.json"
}

# ---- refused before anything runs --------------------------------------------------------------
r=$(recipe bad '{"image": "'"$BB"'", "steps": [{"name": "a"}, {"name": "b", "detach": true, "ready": {"http": 4000}}]}')
expect_status "a wrong type is a usage error" 125 rbx replay "$r"
assert_one_error_line "wrong type"
assert_contains "names the JSON path" "$ERR" "bad.json: steps[1].ready.http: expected a string"
r=$(recipe unknown '{"image": "'"$BB"'", "steps": [{"name": "a", "comand": ["true"]}]}')
expect_status "an unknown field" 125 rbx replay "$r"
assert_contains "unknown field" "$ERR" "unknown.json: steps[0].comand: unknown field"
expect_status "test counts a bad recipe as failed" 1 rbx test "$r"
assert_contains "FAIL with the message" "$OUT" "FAIL unknown.json: "
assert_contains "tally" "$OUT" "0 passed, 1 failed"
expect_status "no recipe" 125 rbx test
expect_status "missing file" 125 rbx replay "$RBX_TMP/nope.json"

run_capture rbx replay "$(recipe probe '{"image": "'"$BB"'", "steps": [{"name": "a", "command": ["true"]}]}')"
if [[ $ERR == *"has no pods"* ]]; then skip "this build's sandbox has no pods"; fi

# ---- steps share one container ------------------------------------------------------------------
r=$(recipe shared '{"image": "'"$BB"'", "env": {"GREETING": "hi"}, "steps": [
  {"name": "write", "command": ["sh", "-c", "echo $GREETING > /srv-marker"]},
  {"name": "read", "command": ["cat", "/srv-marker"],
   "expect": {"exit": 0, "stdout_contains": "hi", "files": [{"path": "/srv-marker", "contains": "hi"},
              {"path": "/etc/nope", "exists": false}]}}]}')
expect_status "a later step sees an earlier one's writes" 0 rbx test "$r"
assert_contains "PASS" "$OUT" "PASS shared"

# ---- expectations: met and unmet ----------------------------------------------------------------
r=$(recipe exits '{"image": "'"$BB"'", "steps": [{"name": "s", "command": ["sh", "-c", "echo out; echo err >&2; exit 3"],
   "expect": {"exit": 3, "stdout_matches": "^ou+t$", "stderr_contains": "err", "diagnosis": "exit-status", "max_seconds": 30}}]}')
expect_status "exit, output and diagnosis expectations" 0 rbx test "$r"
r=$(recipe unmet '{"image": "'"$BB"'", "steps": [{"name": "s", "command": ["sh", "-c", "exit 3"]}, {"name": "t", "command": ["true"]}]}')
expect_status "success is implied" 1 rbx test "$r"
assert_contains "the first unmet expectation" "$OUT" "FAIL unmet: s: expected success, got exit 3 (exit-status)"
expect_status "replay: a failed step exits 1" 1 rbx replay "$r"
assert_contains "the later step was not run" "$OUT" "t              not run"
r=$(recipe notfound '{"image": "'"$BB"'", "steps": [{"name": "s", "command": ["pnpm", "install"],
   "expect": {"exit": 127, "diagnosis": "command-not-found", "diagnosis_contains": "\"pnpm\" is not in the image"}}]}')
expect_status "a command the image lacks" 0 rbx test "$r"

# ---- timeouts -----------------------------------------------------------------------------------
r=$(recipe idle '{"image": "'"$BB"'", "init": true, "steps": [{"name": "s", "command": ["sleep", "60"], "idle_timeout": 1, "stop_timeout": 1,
   "expect": {"diagnosis": "hang-no-output", "max_seconds": 20}}]}')
expect_status "an idle timeout is a hang" 0 rbx test "$r"
r=$(recipe slow '{"image": "'"$BB"'", "init": true, "steps": [{"name": "s", "command": ["sh", "-c", "while :; do echo tick; sleep 0.2; done"], "timeout": 1, "stop_timeout": 1,
   "expect": {"diagnosis": "timeout", "stdout_contains": "tick"}}]}')
expect_status "a timeout" 0 rbx test "$r"

# ---- detach, probes, http checks ----------------------------------------------------------------
r=$(recipe server '{"image": "'"$NODE"'", "steps": [
  {"name": "web", "detach": true, "ready": {"http": "http://127.0.0.1:4000/health", "timeout": 15},
   "expect": {"http": [{"get": "/health", "status": 200, "body_matches": "\"status\": *\"ok\""}, {"get": "/nope", "status": 404}]}},
  {"name": "probe-from-inside", "command": ["wget", "-qO-", "http://127.0.0.1:4000/health"], "expect": {"stdout_contains": "ok"}},
  {"name": "after", "command": ["true"], "expect": {"http": [{"get": "http://127.0.0.1:4000/health", "body_contains": "ok"}]}}]}')
expect_status "detached server, ready probe, http checks, a later step reaches it" 0 rbx test "$r"
r=$(recipe wrongport '{"image": "'"$NODE"'", "env": {"PORT": "3000"}, "steps": [
  {"name": "web", "detach": true, "ready": {"tcp": 4000, "timeout": 5},
   "expect": {"diagnosis": "port-not-listening", "diagnosis_contains": "the pod listens on 3000"}}]}')
expect_status "a server on another port" 0 rbx test "$r"
r=$(recipe execprobe '{"image": "'"$BB"'", "steps": [
  {"name": "bg", "detach": true, "command": ["sh", "-c", "sleep 0.5; touch /tmp/up; sleep 60"], "stop_timeout": 1,
   "ready": {"exec": ["test", "-e", "/tmp/up"], "timeout": 10}}]}')
expect_status "an exec probe" 0 rbx test "$r"

# ---- a recipe that builds its image -------------------------------------------------------------
# The builder runs the Dockerfile; a command that only the build stage had is named with its line.
mkdir -p "$RBX_TMP/ctx"
cat >"$RBX_TMP/ctx/Dockerfile" <<'DOCKERFILE'
ARG BASE
FROM ${BASE} AS builder
RUN printf '#!/bin/sh\necho pnpm 9\n' >/usr/local/bin/pnpm && chmod 755 /usr/local/bin/pnpm && pnpm --version

FROM ${BASE} AS runner
WORKDIR /app
RUN echo built >/app/marker
CMD ["cat", "/app/marker"]
DOCKERFILE
r=$(recipe built '{"build": {"context": "ctx", "target": "runner", "args": {"BASE": "'"$BB"'"}}, "steps": [
  {"name": "show", "expect": {"stdout_contains": "built"}},
  {"name": "migrate", "command": ["pnpm", "db:migrate"],
   "expect": {"exit": 127, "diagnosis": "command-not-found",
              "diagnosis_contains": "it was only in the build stage \"builder\" (Dockerfile:3: RUN printf"}}]}')
expect_status "a recipe that builds its image" 0 rbx test "$r"
assert_contains "PASS" "$OUT" "PASS built"
expect_status "replay says where the command was" 1 rbx replay "$r"
assert_contains "the diagnosis line" "$OUT" 'migrate: exit 127 — command-not-found: "pnpm" is not in the image (PATH='
assert_contains "the build's steps in the log" "$ERR" "build      | [runner 3/4] RUN echo built >/app/marker"
check "no scratch layout left" test -z "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'reprobox-recipe-*' -newer "$r" 2>/dev/null)"

assert_store_clean "after replays"

# ---- as an ordinary user ------------------------------------------------------------------------
rootless_setup
RL_NODE=$(rootless_fixture node) || exit 77
printf '%s\n' '{"image": "oci:'"$RL_NODE"'", "steps": [
  {"name": "web", "detach": true, "ready": {"http": "http://127.0.0.1:4000/health", "timeout": 15},
   "expect": {"http": [{"get": "/health", "body_contains": "ok"}]}},
  {"name": "write", "command": ["sh", "-c", "echo hi > /tmp/x && cat /tmp/x"], "expect": {"stdout_contains": "hi"}}]}' \
    >"$RBX_RL_DIR/rootless.json"
chmod 644 "$RBX_RL_DIR/rootless.json"
run_capture rbx_rootless test "$RBX_RL_DIR/rootless.json"
assert_eq "rootless: a detached server and a step" "$STATUS" 0
assert_contains "rootless: PASS" "$OUT" "PASS rootless"
finish
