#!/usr/bin/env bash
# reprobox spec and run --bundle: the bundle reprobox writes runs under runc as it is, and the
# command sees the same thing under runc and under reprobox (uid/gid, capabilities,
# no_new_privs, seccomp mode, hostname, mount points, masked paths, rlimits). Bundles with fields
# reprobox does not run are refused, naming the field.
. "$(dirname "$0")/lib.sh"
BB="oci:$(fixture busybox)"

# What the command reports about its confinement, one fact per line, sorted where order is
# the runtime's business.
PROBE='id -u; id -g; id -G
grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status
hostname
echo mounts: $(cut -d" " -f5 /proc/self/mountinfo | sort)
for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/interrupts; do
  [ -e $f ] && echo "$f: $(wc -c < $f)"; done
for d in /proc/acpi /proc/scsi /sys/firmware; do [ -d $d ] && echo "$d: $(ls $d | wc -l)"; done
echo x 2>/dev/null > /proc/sys/kernel/domainname; echo "proc/sys write: $?"
ulimit -a | sort'

bundle="$RBX_TMP/bundle"
expect_status "spec writes a bundle" 0 rbx spec --hostname conform -u app --ulimit nofile=512:1024 \
    --pids-limit 500 "$BB" "$bundle" sh -c "$PROBE"
check "config.json" test -s "$bundle/config.json"
check "flat rootfs: busybox" test -x "$bundle/rootfs/bin/busybox"
check "flat rootfs: layer 2 whiteout applied" test ! -e "$bundle/rootfs/etc/removed-by-layer2"
check "flat rootfs: opaque dir" test "$(ls "$bundle/rootfs/opt/data")" == c
check "flat rootfs: hardlink kept" test "$(stat -c %i "$bundle/rootfs/usr/share/fixture/hl1")" == \
    "$(stat -c %i "$bundle/rootfs/usr/share/fixture/hl2")"
check "flat rootfs: owner kept" test "$(stat -c %u:%g "$bundle/rootfs/home/app")" == 1000:1000
assert_eq "config: uid" "$(jq .process.user.uid "$bundle/config.json")" "1000"
assert_eq "config: seccomp default EPERM" "$(jq -r .linux.seccomp.defaultAction "$bundle/config.json")" "SCMP_ACT_ERRNO"
assert_eq "config: no_new_privs" "$(jq .process.noNewPrivileges "$bundle/config.json")" "true"
expect_status "spec refuses an existing rootfs" 125 rbx spec "$BB" "$bundle"

expect_status "reprobox run --bundle" 0 rbx run --bundle "$bundle"
ours=$OUT
assert_contains "bundle: uid app" "$ours" "1000"
assert_contains "bundle: hostname" "$ours" "conform"

if command -v runc >/dev/null; then
    run_capture runc --root "$RBX_TMP/runc" run -b "$bundle" "rbx-conform-$$"
    if [ "$STATUS" != 0 ]; then
        not_ok "runc runs the bundle as it is (exit $STATUS)"
    else
        ok "runc runs the bundle as it is"
        theirs=$OUT
        if [ "$ours" == "$theirs" ]; then
            ok "runc and reprobox: the command sees the same"
        else
            not_ok "runc and reprobox differ: $(diff <(echo "$theirs") <(echo "$ours") | head -20)"
        fi
    fi
    runc --root "$RBX_TMP/runc" delete -f "rbx-conform-$$" >/dev/null 2>&1
else
    echo "note: runc is not installed; the conformance part was skipped"
fi

# The bundle's config decides; unsupported fields are refused by name.
cp "$bundle/config.json" "$RBX_TMP/orig.json"
edit_config() { jq "$1" "$RBX_TMP/orig.json" >"$bundle/config.json"; }
edit_config '.process.apparmorProfile = "x"'
expect_status "unknown field refused" 125 rbx run --bundle "$bundle"
assert_contains "names the field" "$ERR" "process.apparmorProfile: not supported"
edit_config '.linux.sysctl = {"net.ipv4.ip_forward": "1"}'
expect_status "sysctl refused" 125 rbx run --bundle "$bundle"
assert_contains "names linux.sysctl" "$ERR" "linux.sysctl"
edit_config '.process.noNewPrivileges = false'
expect_status "no_new_privs false refused" 125 rbx run --bundle "$bundle"
edit_config '.linux.maskedPaths += ["/etc/shadow"]'
expect_status "another masked path refused" 125 rbx run --bundle "$bundle"
assert_contains "names the entry" "$ERR" "linux.maskedPaths["
edit_config '.process.args = ["sh", "-c", "id -u; hostname"] | .hostname = "edited"'
expect_status "edited bundle runs" 0 rbx run --bundle "$bundle"
assert_eq "edited bundle" "$OUT" "1000
edited"
edit_config 'del(.linux.seccomp) | .process.args = ["grep", "^Seccomp:", "/proc/self/status"]'
expect_status "no seccomp in the bundle: none" 0 rbx run --bundle "$bundle"
assert_eq "unconfined" "$OUT" "Seccomp:	0"
expect_status "--bundle with an image" 125 rbx run --bundle "$bundle" "$BB"
assert_one_error_line "--bundle with an image"

# Rootless: spec and run --bundle as an ordinary user.
rootless_setup
RL_BB="oci:$(rootless_fixture busybox)"
rl_bundle="$RBX_RL_DIR/user/bundle"
expect_status "rootless: spec" 0 rbx_rootless spec "$RL_BB" "$rl_bundle" sh -c 'id -u; grep ^CapEff /proc/self/status'
expect_status "rootless: run --bundle" 0 rbx_rootless run --bundle "$rl_bundle"
assert_eq "rootless: bundle runs" "$OUT" "0
CapEff:	00000000800405fb"
finish
