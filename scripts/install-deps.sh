#!/usr/bin/env bash
# install-deps.sh — every build and test dependency of reprobox, from Debian packages.
# Idempotent: installs only what is missing. Run as root (or through sudo).
set -euo pipefail

build=(build-essential cmake pkg-config clang clang-format
       libarchive-dev libseccomp-dev libcap-dev libjansson-dev libcurl4-openssl-dev libssl-dev
       zlib1g-dev libzstd-dev libisal-dev check)
# What tests and fixtures use: the fixture images are made from these packages' files, the
# differential and conformance tests compare with these tools.
test=(busybox-static nodejs skopeo umoci runc crun bubblewrap uidmap jq gzip zstd tar
      iproute2 procps util-linux passwd curl ca-certificates file
      docker-registry openssl apache2-utils hyperfine debootstrap pigz attr buildah)

missing=()
for p in "${build[@]}" "${test[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    echo "install-deps: everything is installed"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
    exec sudo "$0" "$@"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# docker-registry's package would start a system-wide registry on :5000; the tests start their
# own on loopback ports, so services are not started here.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
