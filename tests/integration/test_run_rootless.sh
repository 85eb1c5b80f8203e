#!/usr/bin/env bash
# reprobox run as an ordinary user: the caller is root inside, its subordinate ids map the rest,
# and nothing needs privileges it does not have.
. "$(dirname "$0")/lib.sh"
rootless_setup
L=$(rootless_fixture busybox)
N=$(rootless_fixture node)

expect_status "rootless echo" 0 rbx_rootless run "oci:$L" echo hello
assert_eq "rootless output" "$OUT" "hello"
expect_status "rootless: root inside" 0 rbx_rootless run "oci:$L" sh -c 'id -u; echo $$; hostname; ls /sys/class/net'
assert_eq "uid 0, pid 1, hostname, lo" "$OUT" "0
1
reprobox
lo"
expect_status "rootless: -u 1000 (subordinate ids)" 0 rbx_rootless run -u app "oci:$L" sh -c 'id -u; touch /home/app/x && echo wrote'
assert_eq "rootless -u app" "$OUT" "1000
wrote"
expect_status "rootless: image ownership kept" 0 rbx_rootless run "oci:$L" stat -c '%u:%g' /home/app
assert_eq "/home/app owned 1000:1000" "$OUT" "1000:1000"
expect_status "rootless: whiteouts" 0 rbx_rootless run "oci:$L" sh -c 'test ! -e /etc/removed-by-layer2 && ls /opt/data'
assert_eq "rootless opaque dir" "$OUT" "c"
expect_status "rootless: exit code" 42 rbx_rootless run "oci:$L" sh -c 'exit 42'
expect_status "rootless: write" 0 rbx_rootless run "oci:$L" touch /etc/marker
expect_status "rootless: writes do not survive" 1 rbx_rootless run "oci:$L" test -e /etc/marker
expect_status "rootless: not found" 127 rbx_rootless run "oci:$L" nosuchcommand
assert_one_error_line "rootless not found"
expect_status "rootless: node" 0 rbx_rootless run "oci:$N" node -e 'console.log(1+1)'
assert_eq "rootless node" "$OUT" "2"
check "rootless store is private" test "$(stat -c %a "$RBX_RL_ROOT")" == 700
check "rootless store owned by the user" test "$(stat -c %U "$RBX_RL_ROOT")" == "$RBX_TEST_USER"
finish
