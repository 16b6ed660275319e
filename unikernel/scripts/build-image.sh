#!/usr/bin/env bash
# Builds a unikernel image: the example EXAMPLE (a std program under
# examples/) for ARCH-unknown-hermit, linked with kith-unikernel into an ELF
# that QEMU boots with -kernel (a PVH kernel on x86_64, a bare ELF for -M virt
# on aarch64). Prints the image path (a stripped copy, beside the unstripped
# one); cargo's progress goes to stderr.
#
# usage: scripts/build-image.sh EXAMPLE [x86_64|aarch64]
# $KITH_UNIKERNEL_TARGET_DIR: cargo's target folder (default: target/ here).
set -euo pipefail

example=${1:?usage: build-image.sh EXAMPLE [x86_64|aarch64]}
arch=${2:-x86_64}
root=$(cd "$(dirname "$0")/.." && pwd)
target=$arch-unknown-hermit
jobs=${KITH_BUILD_JOBS:-2}

case $arch in
x86_64)
    # ring's C and assembly: the host compiler targets the same ABI.
    export CC_x86_64_unknown_hermit=${CC_x86_64_unknown_hermit:-cc}
    export AR_x86_64_unknown_hermit=${AR_x86_64_unknown_hermit:-ar}
    linker=ld
    strip=strip
    ;;
aarch64)
    export CC_aarch64_unknown_hermit=${CC_aarch64_unknown_hermit:-aarch64-linux-gnu-gcc}
    export AR_aarch64_unknown_hermit=${AR_aarch64_unknown_hermit:-aarch64-linux-gnu-ar}
    linker=aarch64-linux-gnu-ld
    strip=aarch64-linux-gnu-strip
    ;;
*)
    echo "build-image.sh: unknown architecture $arch (x86_64 or aarch64)" >&2
    exit 2
    ;;
esac

config=()
while read -r flag; do config+=("$flag"); done < <("$root/scripts/patch-crates.sh")

export RUSTC_BOOTSTRAP=1
export RUSTC=/usr/bin/rustc
export CARGO_TARGET_DIR=${KITH_UNIKERNEL_TARGET_DIR:-$root/target}
export RUSTFLAGS="-C linker=$linker -C linker-flavor=ld -C relocation-model=static \
-C link-arg=-T$root/kernel/link-$arch.ld -C link-arg=--no-dynamic-linker ${KITH_RUSTFLAGS:-}"

# std is built with `optimize_for_size` (smaller sort and formatting code: the DAV
# images shrink by 2.4%), like the crates at opt-level "z".
# Each image resolves its own features: unified over the workspace, the mail image's
# mail-auth would turn on mail-parser's `full_encoding` in the DAV images too (calcard
# links mail-parser), adding encoding_rs (144 KB) to images that never decode a
# legacy charset.
cd "$root"
/usr/bin/cargo build --release -j "$jobs" \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=compiler-builtins-mem,optimize_for_size \
    --target "$target" -p "$example" "${config[@]}" >&2

image="$CARGO_TARGET_DIR/$target/release/$example"
$strip -o "$image.img" "$image"
echo "$image.img"
