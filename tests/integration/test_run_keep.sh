#!/usr/bin/env bash
# reprobox run --keep: the run's changes stay on disk, where reprobox says, and survive sweeps.
. "$(dirname "$0")/lib.sh"
BB="oci:$(fixture busybox)"

expect_status "--keep" 0 rbx run --keep "$BB" sh -c 'echo kept > /etc/kept-file; rm /etc/fixture-release'
assert_contains "says where" "$ERR" "kept the run's changes in "
dir=${ERR##*kept the run\'s changes in }
dir=${dir%%$'\n'*}
check "the kept dir exists" test -d "$dir"
assert_eq "the new file is there" "$(cat "$dir/etc/kept-file" 2>/dev/null)" "kept"
check "the deletion is a whiteout" test -c "$dir/etc/fixture-release"
# The fixture has no /proc, /dev or /sys: their mount points come from the store's init layer,
# not from the run's own changes.
assert_eq "only what the command changed" "$(cd "$dir" && find . -mindepth 1 | sort | tr '\n' ' ')" "./etc ./etc/fixture-release ./etc/kept-file "
check "the run stacks the layers it kept" test -s "$dir/../layers"
expect_status "another run" 0 rbx run "$BB" true
check "a later run's sweep leaves the kept dir" test -f "$dir/etc/kept-file"
expect_status "without --keep nothing stays" 0 rbx run "$BB" sh -c 'echo x > /etc/y'
assert_not_contains "no message without --keep" "$ERR" "kept"
check "only the kept run remains" test "$(find "$RBX_ROOT/runs" -mindepth 1 -maxdepth 1 -type d | wc -l)" == 1
# A run thrown away after is mounted volatile (its unmount syncs nothing); a kept one is not.
expect_status "a throwaway overlay" 0 rbx run "$BB" sh -c 'grep " / overlay " /proc/mounts'
assert_contains "is volatile" "$OUT" "fsync=volatile"
expect_status "a kept overlay" 0 rbx run --keep "$BB" sh -c 'grep " / overlay " /proc/mounts'
assert_not_contains "is not volatile" "$OUT" "volatile"
finish
