#!/usr/bin/env bash
# reprobox run: confinement and limits from the command line — capabilities, seccomp profiles,
# no_new_privs, masked paths, rlimits, pids and memory limits, --init, -t — as root and rootless,
# and what the report says about them.
. "$(dirname "$0")/lib.sh"
BB="oci:$(fixture busybox)"

want_caps=00000000800405fb # Docker's default set minus NET_RAW, MKNOD, AUDIT_WRITE

confine_checks() { # LABEL RUNNER...
    local label=$1
    shift
    expect_status "$label: status lines" 0 "$@" run "$BB" grep -E '^(CapBnd|CapEff|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status
    assert_contains "$label: CapBnd" "$OUT" "CapBnd:	$want_caps"
    assert_contains "$label: CapEff" "$OUT" "CapEff:	$want_caps"
    assert_contains "$label: CapInh empty" "$OUT" "CapInh:	0000000000000000"
    assert_contains "$label: CapAmb empty" "$OUT" "CapAmb:	0000000000000000"
    assert_contains "$label: no_new_privs" "$OUT" "NoNewPrivs:	1"
    assert_contains "$label: seccomp filter" "$OUT" "Seccomp:	2"

    expect_status "$label: --cap-drop ALL --cap-add CHOWN" 0 "$@" run --cap-drop ALL --cap-add chown "$BB" grep CapEff /proc/self/status
    assert_eq "$label: one capability" "$OUT" "CapEff:	0000000000000001"
    expect_status "$label: --cap-add NET_RAW" 0 "$@" run --cap-add NET_RAW "$BB" grep CapBnd /proc/self/status
    assert_eq "$label: NET_RAW added" "$OUT" "CapBnd:	00000000800425fb"
    expect_status "$label: unknown capability" 125 "$@" run --cap-add NOPE "$BB" true
    assert_one_error_line "$label: unknown capability"

    expect_status "$label: seccomp=unconfined" 0 "$@" run --security-opt seccomp=unconfined "$BB" grep '^Seccomp:' /proc/self/status
    assert_eq "$label: no filter" "$OUT" "Seccomp:	0"
    expect_status "$label: no-new-privileges accepted" 0 "$@" run --security-opt no-new-privileges "$BB" true
    expect_status "$label: no-new-privileges:false refused" 125 "$@" run --security-opt no-new-privileges:false "$BB" true
    assert_contains "$label: nnp always on" "$ERR" "always on"
    printf '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}' >"$RBX_TMP/profile.json"
    chmod 644 "$RBX_TMP/profile.json"
    expect_status "$label: seccomp=FILE" 1 "$@" run --security-opt "seccomp=$RBX_TMP/profile.json" "$BB" mkdir /tmp/x
    assert_contains "$label: the profile denies mkdir" "$ERR" "Operation not permitted"
    printf '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","nope":1}]}' >"$RBX_TMP/bad.json"
    chmod 644 "$RBX_TMP/bad.json"
    expect_status "$label: bad profile" 125 "$@" run --security-opt "seccomp=$RBX_TMP/bad.json" "$BB" true
    assert_one_error_line "$label: bad profile"
    assert_contains "$label: bad profile names the field" "$ERR" "syscalls[0].nope: unknown field"

    expect_status "$label: unshare is refused" 1 "$@" run "$BB" unshare -U true
    expect_status "$label: mount is refused" 1 "$@" run "$BB" mount -t tmpfs none /tmp
    assert_contains "$label: mount permission denied" "$ERR" "permission denied"
    expect_status "$label: /proc/sys is read-only" 0 "$@" run "$BB" sh -c 'echo x > /proc/sys/kernel/domainname 2>/dev/null; echo $?'
    assert_eq "$label: write refused" "$OUT" "1"
    expect_status "$label: /proc/keys masked" 0 "$@" run "$BB" sh -c 'wc -c < /proc/keys'
    assert_eq "$label: /proc/keys empty" "$OUT" "0"

    expect_status "$label: default nofile" 0 "$@" run "$BB" sh -c 'ulimit -n'
    assert_eq "$label: nofile 1024" "$OUT" "1024"
    expect_status "$label: --ulimit" 0 "$@" run --ulimit nofile=256:512 --ulimit core=0 "$BB" sh -c 'ulimit -n; ulimit -Hn; ulimit -c'
    assert_eq "$label: --ulimit applied" "$OUT" "256
512
0"
    expect_status "$label: bad --ulimit" 125 "$@" run --ulimit nofile=9:1 "$BB" true

    expect_status "$label: --pids-limit" 0 "$@" run --pids-limit 20 "$BB" sh -c '(i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo $#'
    check "$label: at most 20 processes ($OUT)" test "$OUT" -le 20

    expect_status "$label: --init reaps and passes the status" 3 "$@" run --init "$BB" sh -c 'echo $$; exit 3'
    assert_eq "$label: command is pid 2 under init" "$OUT" "2"
    expect_status "$label: -t gives a terminal" 0 "$@" run -t "$BB" tty
    assert_contains "$label: /dev/pts/0" "$OUT" "/dev/pts/0"
    expect_status "$label: without -t no terminal" 1 "$@" run "$BB" tty
}

confine_checks "root" rbx

# The report says what confined the run and what limited it.
expect_status "report" 0 rbx run --memory 64m --pids-limit 100 --cpus 0.5 --init --report "$RBX_TMP/r.json" "$BB" true
sb=$(jq -c '.sandbox' "$RBX_TMP/r.json")
assert_eq "report: seccomp" "$(jq -r '.sandbox.seccomp' "$RBX_TMP/r.json")" "default"
assert_eq "report: 11 capabilities" "$(jq -r '.sandbox.capabilities | length' "$RBX_TMP/r.json")" "11"
assert_eq "report: init" "$(jq -r '.sandbox.init' "$RBX_TMP/r.json")" "true"
assert_eq "report: cgroup v1 here" "$(jq -r '.sandbox.limits.cgroup' "$RBX_TMP/r.json")" "v1"
assert_eq "report: memory" "$(jq -r '.sandbox.limits.memory_bytes' "$RBX_TMP/r.json")" "67108864"
assert_eq "report: pids" "$(jq -r '.sandbox.limits.pids' "$RBX_TMP/r.json")" "100"
assert_eq "report: cpus" "$(jq -r '.sandbox.limits.cpus' "$RBX_TMP/r.json")" "0.5"
assert_eq "report: no OOM" "$(jq -r '.result.oom_killed' "$RBX_TMP/r.json")" "false"
[ -n "$sb" ] || not_ok "report has a sandbox section"

# A memory hog is killed by the OOM killer and the report says so (root: cgroup v1 here).
expect_status "OOM kill" 137 rbx run --memory 32m --report "$RBX_TMP/oom.json" "$BB" sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo ${#x}'
assert_eq "report: OOM" "$(jq -r '.result.oom_killed' "$RBX_TMP/oom.json")" "true"
assert_contains "OOM warned on stderr" "$ERR" "OOM killer"

# Rootless: the same confinement; limits degrade with one clear warning.
rootless_setup
RL_BB="oci:$(rootless_fixture busybox)"
BB_SAVED=$BB
BB=$RL_BB
confine_checks "rootless" rbx_rootless
BB=$BB_SAVED
expect_status "rootless: --memory warns once" 0 rbx_rootless run --memory 64m "oci:$(rootless_fixture busybox)" true
lines=$(printf '%s\n' "$ERR" | grep -c 'warning')
assert_eq "rootless: one warning line" "$lines" "1"
assert_contains "rootless: says what is not applied" "$ERR" "--memory and --cpus are not applied"
finish
