#!/usr/bin/env bash
# Kith's store against git on the same generated data, in one run, printing each figure
# and the ratio kith/git (below 1.0 means Kith is faster or smaller).
#
#   benches/store-vs-git.sh [--quick]     (--quick: smaller sizes, for a smoke run)
#
# Figures: import 10,000 ~4 KB vCards as one commit (time, bytes on disk); 1,000
# single-file commits through the CLI and through the API (git: one `git add` +
# `git commit` per file, and `git fast-import` as its bulk API); reading every file back;
# `log` of 1,000 commits; bytes written by one insert into a 100,000-entry folder; peak RSS
# while importing 1,000,000 small files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
cd "$KITH_ROOT"
TARGET="${CARGO_TARGET_DIR:-$KITH_ROOT/target}"

quick=0; [[ "${1:-}" == "--quick" ]] && quick=1
N_VCARDS=10000 N_COMMITS=1000 N_BIG=100000 N_SMALL=1000000
((quick)) && { N_VCARDS=2000; N_COMMITS=100; N_BIG=20000; N_SMALL=50000; }

command -v git >/dev/null || { echo "needs git" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { apt-get install -y -qq time >/dev/null; }
cargo build --release --locked -q -p kith
cargo bench --locked -q -p kith-store --bench api --no-run 2>/dev/null
KITH="$TARGET/release/kith"
API=$(ls -t "$TARGET"/release/deps/api-* | grep -v '\.d$' | head -1)

W=$(mktemp -d /tmp/kith-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME="$W"   # no user git config changes what git does
git config --global init.defaultBranch main
git config --global gc.auto 0

now() { date +%s.%N; }
ratio() { python3 -c "import sys; k,g=float(sys.argv[1]),float(sys.argv[2]); print(f'{k/g:.2f}x' if g else 'n/a')" "$1" "$2"; }
row() { printf '%-46s %14s %14s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f}')" "$1" "$2"; }
du_b() { du -sb "$1" | cut -f1; }
du_k() { du -sk "$1" | cut -f1; }

echo "generating data in $W ..." >&2
python3 - "$W/vcards" "$N_VCARDS" <<'PY'
import os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
rnd = random.Random(42)
words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(3, 9))) for _ in range(2000)]
for i in range(n):
    lines = ["BEGIN:VCARD", "VERSION:4.0", f"UID:urn:uuid:{i:08x}-7a1c-4b7e-9d3e-{rnd.getrandbits(48):012x}",
             f"FN:{rnd.choice(words).title()} {rnd.choice(words).title()}", f"N:{rnd.choice(words).title()};{rnd.choice(words).title()};;;",
             f"EMAIL;TYPE=home:{rnd.choice(words)}@{rnd.choice(words)}.org", f"TEL;TYPE=cell:+44 7700 {rnd.randint(0, 999999):06}",
             f"ADR;TYPE=home:;;{rnd.randint(1, 300)} {rnd.choice(words).title()} Street;{rnd.choice(words).title()};;AB1 2CD;UK"]
    while sum(len(l) + 2 for l in lines) < 3950:
        lines.append("NOTE:" + ' '.join(rnd.choice(words) for _ in range(10)))
    lines.append("END:VCARD")
    with open(os.path.join(out, f"{i:05}.vcf"), "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
PY

printf '%-46s %14s %14s %8s\n' "figure" "kith" "git" "ratio"

# 1. Import 10,000 vCards as one commit.
t0=$(now); "$KITH" --store "$W/k1" init --device bench >/dev/null
"$KITH" --store "$W/k1" import "$W/vcards" /contacts/me/default >/dev/null; t1=$(now)
mkdir "$W/g1"; t2=$(now); (cd "$W/g1" && git init -q && cp -r "$W/vcards" contacts && git add -A && git commit -qm import); t3=$(now)
row "import $N_VCARDS vCards (s)" "$(secs $t0 $t1)" "$(secs $t2 $t3)"
row "  bytes on disk (apparent, store vs .git)" "$(du_b "$W/k1")" "$(du_b "$W/g1/.git")"
row "  disk use (KiB in blocks)" "$(du_k "$W/k1")" "$(du_k "$W/g1/.git")"

# 2. Reading every file back.
t0=$(now); "$KITH" --store "$W/k1" export /contacts/me/default "$W/out-k" >/dev/null; t1=$(now)
mkdir "$W/out-g"; t2=$(now); git -C "$W/g1" --work-tree="$W/out-g" checkout -q HEAD -- .; t3=$(now)
row "read every file back (export vs checkout) (s)" "$(secs $t0 $t1)" "$(secs $t2 $t3)"
diff -r "$W/vcards" "$W/out-k" >/dev/null || { echo "export differs from the source!" >&2; exit 1; }

# 3. 1,000 single-file commits through the CLI.
"$KITH" --store "$W/k2" init --device bench >/dev/null; mkdir "$W/g2"; git -C "$W/g2" init -q
t0=$(now); for i in $(seq 1 "$N_COMMITS"); do echo "note $i" | "$KITH" --store "$W/k2" put "/notes/$i.txt" -m "note $i" >/dev/null; done; t1=$(now)
t2=$(now); for i in $(seq 1 "$N_COMMITS"); do echo "note $i" > "$W/g2/$i.txt"; git -C "$W/g2" add "$i.txt"; git -C "$W/g2" commit -qm "note $i"; done; t3=$(now)
row "$N_COMMITS single-file commits, CLI (s)" "$(secs $t0 $t1)" "$(secs $t2 $t3)"

# 4. The same through the API (git: fast-import, its bulk interface).
api=$("$API" "$W/k3" "$N_COMMITS")
api_secs=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['commit_secs'])" "$api")
bulk_secs=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['bulk_secs'])" "$api")
mkdir "$W/g3"; git -C "$W/g3" init -q
python3 - "$N_COMMITS" > "$W/fi" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    data = f"note {i}\n"
    msg = f"note {i}"
    print(f"commit refs/heads/main\ncommitter bench <b@example.org> {1700000000 + i} +0000\ndata {len(msg)}\n{msg}")
    print(f"M 100644 inline notes/{i:05}.txt\ndata {len(data)}\n{data}", end="")
PY
t2=$(now); git -C "$W/g3" fast-import --quiet < "$W/fi"; t3=$(now)
row "$N_COMMITS single-file commits, API, bulk (s)" "$bulk_secs" "$(secs $t2 $t3)"
printf '%-46s %14s %14s\n' "  API, each commit durable (fsync each) (s)" "$api_secs" "(no peer)"

# 5. log of 1,000 commits.
t0=$(now); "$KITH" --store "$W/k2" log > /dev/null; t1=$(now)
t2=$(now); git -C "$W/g2" log > /dev/null; t3=$(now)
row "log of $N_COMMITS commits (s)" "$(secs $t0 $t1)" "$(secs $t2 $t3)"

# 6. Bytes written by one insert into a 100,000-entry folder.
python3 -c "
import os, sys
d = sys.argv[1]; os.makedirs(d)
for i in range(int(sys.argv[2])):
    with open(os.path.join(d, f'{i:08}.eml'), 'w') as f: f.write(f'message {i}\n')
" "$W/big/inbox" "$N_BIG"
"$KITH" --store "$W/k4" init --device bench >/dev/null
"$KITH" --store "$W/k4" import "$W/big" /mail >/dev/null
mkdir "$W/g4"; (cd "$W/g4" && git init -q && cp -r "$W/big/inbox" inbox && git add -A && git commit -qm big)
b0=$(du_b "$W/k4"); echo "new message" | "$KITH" --store "$W/k4" put /mail/inbox/new.eml >/dev/null; b1=$(du_b "$W/k4")
g0=$(du_b "$W/g4/.git"); (cd "$W/g4" && echo "new message" > inbox/new.eml && git add inbox/new.eml && git commit -qm one); g1=$(du_b "$W/g4/.git")
row "bytes written by 1 insert into $N_BIG-entry dir" "$((b1 - b0))" "$((g1 - g0))"

# 7. Peak RSS importing 1,000,000 small files (1,000 folders of 1,000).
python3 -c "
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f'{i // 1000:04}')
    if i % 1000 == 0: os.makedirs(d)
    with open(os.path.join(d, f'{i:07}'), 'w') as f: f.write(f'small object {i}\n')
" "$W/small" "$N_SMALL"
"$KITH" --store "$W/k5" init --device bench >/dev/null
/usr/bin/time -f '%M' -o "$W/rss-k" "$KITH" --store "$W/k5" import "$W/small" /small >/dev/null
mkdir "$W/g5"; git -C "$W/g5" init -q
/usr/bin/time -f '%M' -o "$W/rss-g" sh -c "cd '$W/g5' && git --work-tree='$W/small' add -A && git --work-tree='$W/small' commit -qm small"
row "peak RSS importing $N_SMALL small files (KiB)" "$(tail -1 "$W/rss-k")" "$(tail -1 "$W/rss-g")"
"$KITH" --store "$W/k5" fsck >/dev/null && echo "(fsck of the 1M-object store: clean)" >&2
