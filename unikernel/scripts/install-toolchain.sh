#!/usr/bin/env bash
# Installs what the unikernel build and its tests need for ARCH (x86_64, the
# default, or aarch64), only when missing: Debian's rustc 1.96 with the std
# sources (for -Zbuild-std), QEMU for ARCH, curl; for aarch64 also the GNU
# linker, C compiler and C headers (ring's C and assembly) of aarch64-linux-gnu.
#
# usage: scripts/install-toolchain.sh [x86_64|aarch64]...
set -euo pipefail

packages=(rustc-web cargo-web rust-web-src curl)
for arch in "${@:-x86_64}"; do
    case $arch in
    x86_64) packages+=(qemu-system-x86) ;;
    aarch64) packages+=(qemu-system-arm binutils-aarch64-linux-gnu gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
    *) echo "install-toolchain.sh: unknown architecture $arch (x86_64 or aarch64)" >&2; exit 2 ;;
    esac
done

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in "${packages[@]}"; do
    have "$pkg" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

echo "install-toolchain.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
# The backported qemu-utils on this image conflicts with QEMU's dependencies;
# the trailing '-' keeps it installed.
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" qemu-utils- >&2
