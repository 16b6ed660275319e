#!/usr/bin/env bash
# Merging two branches that each changed 1,000 different files of a 100,000-file tree:
# `kith merge` against `git merge` (which also updates its work tree) and
# `git merge-tree --write-tree` (git's merge without a work tree), same data, one run.
#
#   benches/merge-vs-git.sh [--quick]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
cd "$KITH_ROOT"
TARGET="${CARGO_TARGET_DIR:-$KITH_ROOT/target}"
N=100000 CHANGED=1000 RUNS=3
[[ "${1:-}" == "--quick" ]] && { N=20000; CHANGED=200; }

cargo build --release -q -p kith
KITH="$TARGET/release/kith"
W=$(mktemp -d /tmp/kith-merge-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME="$W"
git config --global init.defaultBranch main
git config --global gc.auto 0

python3 - "$W" "$N" "$CHANGED" <<'PY'
import os, sys
w, n, changed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for side in ("base", "ours", "theirs"):
    d = os.path.join(w, side, "data")
    for i in range(n):
        sub = os.path.join(d, f"{i % 100:02}")
        if i < 100: os.makedirs(sub)
        body = f"item {i}\n" * 20
        if side == "ours" and i % 2 == 0 and i // 2 < changed: body += "changed by ours\n"
        if side == "theirs" and i % 2 == 1 and i // 2 < changed: body += "changed by theirs\n"
        with open(os.path.join(sub, f"{i:06}.txt"), "w") as f: f.write(body)
PY

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f}')" "$1" "$2"; }
median() { python3 -c "import sys, statistics; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }

kith_times=() git_times=() tree_times=()
for run in $(seq 1 $RUNS); do
  S="$W/k$run"
  "$KITH" --store "$S" init --device bench >/dev/null
  "$KITH" --store "$S" import "$W/base/data" /data >/dev/null
  "$KITH" --store "$S" branch theirs
  "$KITH" --store "$S" import "$W/ours/data" /data >/dev/null
  "$KITH" --store "$S" --branch theirs import "$W/theirs/data" /data >/dev/null
  t0=$(now); "$KITH" --store "$S" merge theirs >/dev/null; t1=$(now)
  kith_times+=("$(secs $t0 $t1)")
  [[ $("$KITH" --store "$S" --json conflicts) == "[]" ]] || { echo "unexpected conflicts" >&2; exit 1; }

  G="$W/g$run"; mkdir "$G"; cd "$G"; git init -q
  cp -r "$W/base/data" data; git add -A; git commit -qm base
  git checkout -qb theirs; cp -r "$W/theirs/data/." data/; git commit -qam theirs
  git checkout -q main; cp -r "$W/ours/data/." data/; git commit -qam ours
  t0=$(now); git merge-tree --write-tree main theirs >/dev/null; t1=$(now)
  tree_times+=("$(secs $t0 $t1)")
  t0=$(now); git merge -q --no-edit theirs >/dev/null; t1=$(now)
  git_times+=("$(secs $t0 $t1)")
  cd "$KITH_ROOT"
  cmp -s <("$KITH" --store "$S" get /data/00/000000.txt) "$G/data/00/000000.txt" || { echo "results differ" >&2; exit 1; }
  cmp -s <("$KITH" --store "$S" get /data/01/000001.txt) "$G/data/01/000001.txt" || { echo "results differ" >&2; exit 1; }
done
k=$(median "${kith_times[@]}"); g=$(median "${git_times[@]}"); t=$(median "${tree_times[@]}")
printf '%-58s %8s\n' "merge, $CHANGED + $CHANGED changed files of $N (median of $RUNS)" "seconds"
printf '%-58s %8s\n' "kith merge" "$k" "git merge (updates the work tree)" "$g" "git merge-tree --write-tree" "$t"
python3 -c "import sys; k,g,t=map(float,sys.argv[1:]); print(f'ratio kith/git merge: {k/g:.2f}x   kith/git merge-tree: {k/t:.2f}x')" "$k" "$g" "$t"
