#!/usr/bin/env bash
# sandbox_rootless.sh — the sandbox_run suite again as ordinary users, the way reprobox runs for
# them: once for a user with subordinate ids (newuidmap/newgidmap), once for a system user
# without any (the single-id map). Creating the users needs root; otherwise this skips.
set -u
suite=${1:?usage: sandbox_rootless.sh PATH-TO-test_sandbox_run PATH-TO-test_sandbox_privilege}
probe=${2:?usage: sandbox_rootless.sh PATH-TO-test_sandbox_run PATH-TO-test_sandbox_privilege}

skip() { echo "skip: $*"; exit 77; }
[ "$(id -u)" == 0 ] || skip "creating the test users needs root"
command -v su >/dev/null || skip "su is not installed"

# The same user as tests/integration/lib.sh, with the same subordinate range.
with_subids=rbxtest
if ! id "$with_subids" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh "$with_subids" 2>/dev/null || skip "cannot create $with_subids"
fi
grep -q "^$with_subids:" /etc/subuid 2>/dev/null || echo "$with_subids:200000:65536" >>/etc/subuid
grep -q "^$with_subids:" /etc/subgid 2>/dev/null || echo "$with_subids:200000:65536" >>/etc/subgid
# System accounts get no subordinate ids from useradd.
single=rbxsingle
if ! id "$single" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /bin/sh "$single" 2>/dev/null || skip "cannot create $single"
fi

dir=$(mktemp -d /tmp/rbx-rootless.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
cp "$suite" "$dir/test_sandbox_run"
cp "$probe" "$dir/probe"
chmod 755 "$dir/test_sandbox_run" "$dir/probe"

status=0
fail() { echo "not ok - $*"; status=1; }

# The re-execution itself: root of a user namespace, the caller's uid remembered.
uid=$(id -u "$with_subids")
out=$(su -s /bin/sh "$with_subids" -c "cd /tmp && $dir/probe probe" 2>&1)
[ "$out" == "rootless ids=65537 real_uid=$uid euid=0" ] || fail "probe as $with_subids: $out"
out=$(su -s /bin/sh "$single" -c "cd /tmp && $dir/probe probe" 2>&1)
[ "$out" == "rootless ids=1 real_uid=$(id -u "$single") euid=0" ] || fail "probe as $single: $out"

# A SIGTERM sent to the original process reaches the re-executed one; its status comes back.
su -s /bin/sh "$with_subids" -c "cd /tmp && exec $dir/probe probe wait-term" >"$dir/term.out" 2>&1 &
su_pid=$!
original=
for _ in $(seq 50); do
    original=$(sed -n 's/^ready original=//p' "$dir/term.out")
    [ -n "$original" ] && break
    sleep 0.1
done
if [ -z "$original" ]; then
    fail "probe wait-term never got ready: $(cat "$dir/term.out")"
    kill "$su_pid" 2>/dev/null
else
    kill -TERM "$original"
fi
wait "$su_pid"
rc=$?
[ $rc == 3 ] && grep -q "got TERM" "$dir/term.out" || fail "SIGTERM not forwarded (exit $rc): $(cat "$dir/term.out")"
[ $status == 0 ] && echo "ok - re-execution, signal forwarding and exit status"

run_as() {
    echo "== as $1 ($2)"
    su -s /bin/sh "$1" -c "cd /tmp && env -i PATH=/usr/bin:/bin TMPDIR=/tmp $dir/test_sandbox_run"
    local rc=$?
    if [ $rc == 77 ]; then echo "(skipped as $1)"; elif [ $rc != 0 ]; then status=1; fi
}
run_as "$with_subids" "subordinate ids"
if grep -q "^$single:" /etc/subuid 2>/dev/null; then
    echo "== $single has subordinate ids here: the single-id case is not covered"
else
    run_as "$single" "no subordinate ids"
fi
exit $status
