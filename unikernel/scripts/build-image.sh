#!/usr/bin/env bash
# Builds a unikernel image: the example EXAMPLE (a std program under
# examples/) for ARCH-unknown-hermit, linked with kith-unikernel into a PVH
# ELF. Prints the image path (a stripped copy, beside the unstripped one).
#
# usage: scripts/build-image.sh EXAMPLE [x86_64]
set -euo pipefail

example=${1:?usage: build-image.sh EXAMPLE [x86_64]}
arch=${2:-x86_64}
[ "$arch" = x86_64 ] || { echo "build-image.sh: only x86_64 is supported so far" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
target=$arch-unknown-hermit
jobs=${KITH_BUILD_JOBS:-2}

config=()
while read -r flag; do config+=("$flag"); done < <("$root/scripts/patch-crates.sh")

# ring's C and assembly: the host compiler targets the same ABI.
export CC_x86_64_unknown_hermit=${CC_x86_64_unknown_hermit:-cc}
export AR_x86_64_unknown_hermit=${AR_x86_64_unknown_hermit:-ar}
export RUSTC_BOOTSTRAP=1
export RUSTC=/usr/bin/rustc
export CARGO_TARGET_DIR="$root/target"
export RUSTFLAGS="-C linker=ld -C linker-flavor=ld -C relocation-model=static \
-C link-arg=-T$root/kernel/link.ld -C link-arg=--no-dynamic-linker ${KITH_RUSTFLAGS:-}"

cd "$root"
/usr/bin/cargo build --release -q -j "$jobs" \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=compiler-builtins-mem \
    --target "$target" -p "$example" "${config[@]}" >&2

image="$root/target/$target/release/$example"
strip -o "$image.img" "$image"
echo "$image.img"
