#!/usr/bin/env bash
# Installs what the unikernel build and its tests need, only when missing:
# Debian's rustc 1.96 with the std sources (for -Zbuild-std), QEMU, curl.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in rustc-web cargo-web rust-web-src qemu-system-x86 curl; do
    have "$pkg" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
# The backported qemu-utils on this image conflicts with qemu-system-x86's
# dependencies; the trailing '-' keeps it installed.
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" qemu-utils-
