#!/usr/bin/env bash
# reprobox run: supervision — --timeout and --idle-timeout stop the whole sandbox (SIGTERM, then
# SIGKILL after --stop-timeout), logs are capped, and kill -9 of reprobox at any moment leaves no
# process, no mount in the host's mount table and no cgroup (stale ones swept at the next start).
. "$(dirname "$0")/lib.sh"
BB="oci:$(fixture busybox)"

expect_status "--timeout: pid 1 ignoring SIGTERM is killed after the grace" 137 \
    rbx run --timeout 300ms --stop-timeout 200ms --report "$RBX_TMP/t.json" "$BB" sleep 30
assert_eq "report: stop reason" "$(jq -r .result.stop_reason "$RBX_TMP/t.json")" "timeout"
assert_eq "report: killed after grace" "$(jq -r .result.killed_after_grace "$RBX_TMP/t.json")" "true"
assert_contains "warned" "$ERR" "--timeout: the command was stopped"
expect_status "--timeout: a handler exits in time" 7 \
    rbx run --timeout 300ms "$BB" sh -c "trap 'exit 7' TERM; while :; do sleep 0.05; done"
expect_status "--idle-timeout: silence is a hang" 137 \
    rbx run --idle-timeout 300ms --stop-timeout 100ms --report "$RBX_TMP/i.json" "$BB" sh -c 'echo started; sleep 30'
assert_eq "report: idle" "$(jq -r .result.stop_reason "$RBX_TMP/i.json")" "idle-timeout"
assert_eq "output before the hang" "$OUT" "started"
expect_status "--init forwards the stop" 143 rbx run --init --timeout 300ms "$BB" sleep 30
expect_status "bad duration" 125 rbx run --timeout soon "$BB" true
assert_one_error_line "bad duration"

mkdir -p "$RBX_TMP/logs"
expect_status "--log-dir" 0 rbx run --log-dir "$RBX_TMP/logs" "$BB" sh -c 'echo out; echo err >&2'
assert_eq "stdout.log" "$(cat "$RBX_TMP/logs/stdout.log")" "out"
assert_eq "stderr.log" "$(cat "$RBX_TMP/logs/stderr.log")" "err"

# ---- kill -9 of the supervisor -----------------------------------------------------------------

# Processes still running from a run whose reprobox is gone: anything with our marker argument.
leftover_procs() { pgrep -f "sleep 4242" || true; }
# Mounts of a run in the host's mount table: the store's paths would show there.
leftover_mounts() { grep -F "$1" /proc/self/mountinfo || true; }
# Our cgroups whose owner is gone.
leftover_cgroups() { # PID
    find /sys/fs/cgroup -maxdepth 6 -type d -name "reprobox-$1-*" 2>/dev/null || true
}

# The reprobox the user started (not its rootless re-execution): its parent is no reprobox. Only
# ours: other tests run the same binary at the same time, each with a store of its own.
outer_reprobox() { # BINARY STORE
    local p
    for p in $(pgrep -f "^$1 --root $2 run "); do
        [ "$(ps -o comm= -p "$(ps -o ppid= -p "$p" | tr -d ' ')")" != reprobox ] && echo "$p"
    done
}

kill9_at() { # LABEL DELAY STORE BINARY [su wrapper...]
    local label=$1 delay=$2 store=$3 bin=$4
    shift 4
    "$@" "$bin" --root "$store" run "${KILL9_RUN_OPTS[@]}" "$BB" sh -c 'sleep 4242 & sleep 4242 & exec sleep 4242' >/dev/null 2>&1 &
    local job=$!
    sleep "$delay"
    local pid=""
    for _ in $(seq 100); do
        pid=$(outer_reprobox "$bin" "$store")
        [ -n "$pid" ] && break
        sleep 0.01
    done
    # The process the user started; rootless, its re-executed child dies with it.
    [ -n "$pid" ] && kill -9 $pid 2>/dev/null
    wait "$job" 2>/dev/null
    local p=""
    for _ in $(seq 50); do
        p=$(leftover_procs)
        [ -z "$p" ] && break
        sleep 0.1
    done
    assert_eq "$label: no process left (kill -9 after ${delay}s)" "$p" ""
    assert_eq "$label: no mount left (after ${delay}s)" "$(leftover_mounts "$store")" ""
    KILLED=$pid
}

KILL9_RUN_OPTS=()
pids=()
for d in 0.01 0.05 0.1 0.3 1; do
    kill9_at root "$d" "$RBX_ROOT" "$REPROBOX"
    pids+=("$KILLED")
done
# Killed once running, a reprobox leaves its (empty) cgroups: the next start sweeps them.
check "the last killed left a cgroup to sweep" test -n "$(leftover_cgroups "${pids[4]}")"
expect_status "a run after the kills" 0 rbx run "$BB" true
for p in "${pids[@]}"; do
    assert_eq "root: no cgroup of killed reprobox $p left" "$(leftover_cgroups "$p")" ""
done
assert_store_clean "after kill -9"
# A command that is not root in the sandbox: changing uid cleared its death signal, which the
# sandbox arms again, so it still dies with reprobox.
KILL9_RUN_OPTS=(-u 1000:1000)
for d in 0.3 1; do
    kill9_at "uid 1000" "$d" "$RBX_ROOT" "$REPROBOX"
done
KILL9_RUN_OPTS=()

rootless_setup
RL_BB="oci:$(rootless_fixture busybox)"
BB=$RL_BB
rl_su() { # BINARY ARGS...: as the test user, without the function wrappers (for pgrep)
    local q="" a
    for a in "$@"; do q+=" $(printf '%q' "$a")"; done
    su -s /bin/sh "$RBX_TEST_USER" -c "cd /tmp && exec env -i HOME='$RBX_RL_HOME' PATH=/usr/bin:/bin $q"
}
for d in 0.05 0.3 1; do
    kill9_at rootless "$d" "$RBX_RL_ROOT" "$RBX_RL_DIR/bin/reprobox" rl_su
done
expect_status "rootless: a run after the kills" 0 rbx_rootless run "$BB" true
finish
