#!/usr/bin/env bash
# Prepares the patched crates the unikernel build needs: for each
# patches/NAME-VERSION.patch, unpacks the stock NAME-VERSION from the cargo
# registry into build/patched/, applies the patch, and prints the
# `--config patch.crates-io...` flags that point the build at it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/patched"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
mkdir -p "$out"
(cd "$root" && /usr/bin/cargo fetch -q)

for patch in "$root"/patches/*.patch; do
    [ -e "$patch" ] || continue
    crate=$(basename "$patch" .patch)
    name=${crate%-*}
    dir="$out/$crate"
    stamp="$dir/.kith-patch"
    if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$patch"; then
        rm -rf "$dir"
        archive=$(ls "$cargo_home"/registry/cache/*/"$crate.crate" | head -n1)
        tar -xzf "$archive" -C "$out"
        patch -s -p1 -d "$dir" <"$patch"
        cp "$patch" "$stamp"
    fi
    echo "--config"
    echo "patch.crates-io.$name.path=\"$dir\""
done
