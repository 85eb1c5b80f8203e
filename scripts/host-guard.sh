#!/usr/bin/env bash
# host-guard.sh — the tests run as root and drive a tool that mounts, unpacks hostile archives and
# writes files for images: prove they left the host as they found it.
#   host-guard.sh prepare   create the users the rootless tests need (their only intended change)
#   host-guard.sh snapshot FILE
#   host-guard.sh check FILE   non-zero, naming what changed, when the host differs from FILE
set -euo pipefail

watched=(/etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/subuid /etc/subgid /etc/hosts
         /etc/hostname /etc/resolv.conf /etc/fstab /etc/sudoers /root/.bashrc)

snapshot() {
    local f
    for f in "${watched[@]}"; do
        if [ -e "$f" ]; then echo "$f $(sha256sum <"$f" | cut -c1-64) $(stat -c '%u:%g %a' "$f")"
        else echo "$f absent"; fi
    done
    # Mount points of the host's mount namespace (a sandbox's mounts must never show up here).
    awk '{print "mount " $5}' /proc/self/mountinfo | sort
    # Top-level entries of / (an escape tends to leave a file there).
    find / -maxdepth 1 -mindepth 1 -printf 'root %p\n' | sort
}

case ${1:-} in
prepare)
    [ "$(id -u)" = 0 ] || exit 0
    id rbxtest >/dev/null 2>&1 || useradd --create-home --shell /bin/sh rbxtest
    grep -q '^rbxtest:' /etc/subuid 2>/dev/null || echo 'rbxtest:200000:65536' >>/etc/subuid
    grep -q '^rbxtest:' /etc/subgid 2>/dev/null || echo 'rbxtest:200000:65536' >>/etc/subgid
    # A system account: useradd gives it no subordinate ids (the single-mapping rootless path).
    id rbxsingle >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/sh rbxsingle
    ;;
snapshot) snapshot >"$2" ;;
check)
    now=$(mktemp)
    snapshot >"$now"
    if ! diff -u "$2" "$now" >"$now.diff"; then
        echo "host-guard: the tests changed the host:" >&2
        cat "$now.diff" >&2
        rm -f "$now" "$now.diff"
        exit 1
    fi
    rm -f "$now" "$now.diff"
    echo "host-guard: host unchanged (${#watched[@]} files, mount table, /)"
    ;;
*) echo "usage: host-guard.sh prepare|snapshot FILE|check FILE" >&2; exit 2 ;;
esac
