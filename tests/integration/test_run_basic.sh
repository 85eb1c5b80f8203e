#!/usr/bin/env bash
# reprobox run: output, exit codes, signal deaths, pid 1, hostname, network, writes that vanish.
. "$(dirname "$0")/lib.sh"
BB="oci:$(fixture busybox)"

expect_status "echo" 0 rbx run "$BB" echo hello
assert_eq "echo output" "$OUT" "hello"

expect_status "exit code passes through" 3 rbx run "$BB" sh -c 'exit 3'
expect_status "exit 255" 255 rbx run "$BB" sh -c 'exit 255'

expect_status "default Cmd (sh) reads stdin" 0 rbx run "$BB"

expect_status "the command is pid 1" 0 rbx run "$BB" sh -c 'echo $$'
assert_eq "pid 1" "$OUT" "1"

expect_status "hostname" 0 rbx run "$BB" hostname
assert_eq "default hostname" "$OUT" "reprobox"
expect_status "--hostname" 0 rbx run --hostname api-1 "$BB" sh -c 'hostname; echo $HOSTNAME'
assert_eq "--hostname sets both" "$OUT" "api-1
api-1"

expect_status "network none: only lo" 0 rbx run "$BB" ls /sys/class/net
assert_eq "only lo in /sys/class/net" "$OUT" "lo"
expect_status "loopback is up" 0 rbx run "$BB" sh -c 'cat /sys/class/net/lo/operstate; ip addr show lo 2>/dev/null | grep -c "127.0.0.1" || true'
assert_contains "lo has 127.0.0.1" "$OUT" "1"



expect_status "/dev is minimal" 0 rbx run "$BB" ls /dev
for d in null zero full random urandom tty pts shm fd stdin stdout stderr; do
    assert_contains "/dev/$d" "$OUT" "$d"
done
assert_not_contains "no host disks in /dev" "$OUT" "vda"
expect_status "/dev/null works" 0 rbx run "$BB" sh -c 'echo x > /dev/null && head -c 4 /dev/zero | wc -c'
assert_eq "/dev/zero" "$OUT" "4"

expect_status "/sys is read-only" 1 rbx run "$BB" sh -c 'echo 1 > /sys/kernel/profiling 2>/dev/null || { grep " /sys " /proc/mounts | grep -q "ro[,\ ]" && exit 1; }'

expect_status "no_new_privs" 0 rbx run "$BB" grep NoNewPrivs /proc/self/status
assert_contains "NoNewPrivs: 1" "$OUT" "1"

expect_status "write in the rootfs" 0 rbx run "$BB" sh -c 'echo x > /etc/marker && rm /bin/busybox.not-there 2>/dev/null; cat /etc/marker'
expect_status "writes do not survive the run" 1 rbx run "$BB" test -e /etc/marker

expect_status "stderr passes through" 0 rbx run "$BB" sh -c 'echo out; echo err >&2'
assert_eq "stdout" "$OUT" "out"
assert_eq "stderr" "$ERR" "err"

echo "from stdin" >"$RBX_TMP/in"
"$REPROBOX" --root "$RBX_ROOT" run "$BB" cat <"$RBX_TMP/in" >"$RBX_TMP/out" 2>&1
assert_eq "stdin passes through" "$(cat "$RBX_TMP/out")" "from stdin"

# A signal death: kill the sandbox's pid 1 from outside, reprobox reports 128+9.
rbx run "$BB" sh -c 'echo ready; exec sleep 6017' >"$RBX_TMP/sig.out" 2>&1 &
rpid=$!
for _ in $(seq 1 100); do
    pid=$(pgrep -f '^sleep 6017$' -n || true)
    [ -n "$pid" ] && break
    sleep 0.05
done
if [ -n "${pid:-}" ]; then kill -9 "$pid"; fi
wait $rpid
assert_eq "killed by SIGKILL -> 137" "$?" "137"

# SIGTERM from outside reaches a command that handles it.
# (the binary itself, not the rbx function: $! must be reprobox's pid)
"$REPROBOX" --root "$RBX_ROOT" run "$BB" sh -c 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done' >"$RBX_TMP/term.out" 2>&1 &
rpid=$!
for _ in $(seq 1 100); do grep -q ready "$RBX_TMP/term.out" && break; sleep 0.05; done
kill -TERM $rpid
wait $rpid
assert_eq "SIGTERM forwarded to the command" "$?" "7"
assert_contains "trap ran" "$(cat "$RBX_TMP/term.out")" "got-term"

assert_store_clean "after runs"

# A run that changed nothing leaves its dir to the next reprobox, which sweeps it (a thread,
# done before it exits); one that wrote something is removed as it ends.
runs_left() { find "$RBX_ROOT/runs" -mindepth 1 -maxdepth 1 -type d | wc -l; }
rbx run "$BB" true
assert_eq "an unchanged run's dir is left for the sweep" "$(runs_left)" "1"
rbx run "$BB" sh -c 'echo x >/new-file'
assert_eq "the next run swept it; a changed run is removed at once" "$(runs_left)" "0"
rbx run "$BB" true
rbx images >/dev/null
assert_eq "any command opening the store sweeps" "$(runs_left)" "0"
finish
