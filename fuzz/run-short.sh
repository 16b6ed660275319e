#!/usr/bin/env bash
# Runs every fuzz target for a short while and fails on the first crash.
#
#   fuzz/run-short.sh [SECONDS]      (default 20 seconds per target)
#
# cargo-fuzz needs nightly features; the stable toolchain provides them with
# RUSTC_BOOTSTRAP=1. Crashing inputs are left in fuzz/artifacts/<target>/; replay one
# with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>` in fuzz/.
set -euo pipefail

seconds="${1:-20}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

failed=()
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    dict=()
    [[ -f "$target.dict" ]] && dict=(-dict="$target.dict")
    [[ "$target" == vcard_input || "$target" == calendar_query ]] && dict=(-dict=dav.dict)
    [[ "$target" == ical_input ]] && dict=(-dict=merge_ical.dict)
    [[ "$target" == pack_* && -f pack.dict ]] && dict=(-dict=pack.dict)
    echo "== fuzzing $target for ${seconds}s"
    if ! cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}"; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crashes in $(cargo fuzz list | wc -l) targets"
