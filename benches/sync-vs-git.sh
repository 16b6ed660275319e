#!/usr/bin/env bash
# Kith's sync against git's on the same data, in one run, over loopback: clone time and
# bytes on the wire, and the bytes and time to bring a replica up to date after one change.
# Prints each figure and the ratio kith/git (below 1.0: Kith faster or smaller).
#
#   benches/sync-vs-git.sh [--quick]      (--quick: 2,000 cards instead of 10,000)
#
# Kith runs `kith serve sync` (mutual TLS 1.3) and `kith clone --bundle` / `kith sync`;
# git runs `git daemon` (git://, no encryption) and `git clone` / `git pull --ff-only`.
# Bytes on the wire are counted by the same small relay for both (both directions).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
cd "$KITH_ROOT"
TARGET="${CARGO_TARGET_DIR:-$KITH_ROOT/target}"
N=10000; [[ "${1:-}" == "--quick" ]] && N=2000

command -v git >/dev/null || { echo "needs git" >&2; exit 1; }
[[ -x /usr/bin/time ]] || apt-get install -y -qq time >/dev/null
cargo build --release --locked -q -p kith
KITH="$TARGET/release/kith"
W=$(mktemp -d /tmp/kith-sync-bench.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$W"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@example.org
export GIT_CONFIG_NOSYSTEM=1 HOME="$W"
git config --global init.defaultBranch main

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.3f}')" "$1" "$2"; }
ratio() { python3 -c "import sys; k,g=float(sys.argv[1]),float(sys.argv[2]); print(f'{k/g:.2f}x' if g else 'n/a')" "$1" "$2"; }
row() { printf '%-44s %12s %12s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A relay on a free port (left in $relay_port) to 127.0.0.1:$1 that counts the bytes of
# its connections in both directions into the file $2.
relay() {
  relay_port=$(free_port)
  python3 - "$relay_port" "$1" "$2" >/dev/null 2>&1 <<'PY' &
import socket, sys, threading
listen, target, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
total = [0]; lock = threading.Lock()
def pump(a, b):
    while True:
        try: data = a.recv(65536)
        except OSError: data = b""
        if not data: break
        with lock:
            total[0] += len(data)
            open(out, "w").write(str(total[0]))
        try: b.sendall(data)
        except OSError: break
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen)); srv.listen(16)
open(out, "w").write("0")
while True:
    c, _ = srv.accept(); s = socket.create_connection(("127.0.0.1", target))
    for a, b in ((c, s), (s, c)): threading.Thread(target=pump, args=(a, b), daemon=True).start()
PY
  pids+=($!)
  sleep 0.3
}
bytes() { cat "$1"; }

echo "generating $N vCards in $W ..." >&2
python3 - "$W/vcards" "$N" <<'PY'
import os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
rnd = random.Random(42)
words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(3, 9))) for _ in range(2000)]
for i in range(n):
    lines = ["BEGIN:VCARD", "VERSION:4.0", f"UID:urn:uuid:{i:08x}-7a1c-4b7e-9d3e-{rnd.getrandbits(48):012x}",
             f"FN:{rnd.choice(words).title()} {rnd.choice(words).title()}", f"EMAIL:{rnd.choice(words)}@{rnd.choice(words)}.org"]
    while sum(len(l) + 2 for l in lines) < 3950:
        lines.append("NOTE:" + ' '.join(rnd.choice(words) for _ in range(10)))
    lines.append("END:VCARD")
    with open(os.path.join(out, f"{i:05}.vcf"), "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
PY

# The serving replicas: Kith with an identity, git with one commit of the same files.
"$KITH" --store "$W/home" init --zone alice.home.arpa --device board >/dev/null
"$KITH" --store "$W/home" import "$W/vcards" /contacts/me/default >/dev/null
"$KITH" --store "$W/home" device add laptop -o "$W/laptop.json" >/dev/null
"$KITH" --store "$W/home" serve sync --listen 127.0.0.1:0 > "$W/serve.out" 2>/dev/null &
pids+=($!)
while ! grep -q kith:// "$W/serve.out" 2>/dev/null; do sleep 0.1; done
kport=$(sed 's/.*://' "$W/serve.out")
mkdir -p "$W/git/home"; cp -r "$W/vcards" "$W/git/home/contacts"
(cd "$W/git/home" && git init -q && git add -A && git commit -qm import)
gport=$(free_port)
git daemon --reuseaddr --export-all --base-path="$W/git" --listen=127.0.0.1 --port="$gport" "$W/git" &
pids+=($!)
sleep 0.5

printf '%-44s %12s %12s %8s\n' "figure" "kith" "git" "ratio"

# CPU seconds (user + system) of a process so far, from /proc.
cpu_of() { python3 -c "import os,sys; f=open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')',1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))" "$1"; }
# CPU seconds of a command and the processes it waited for.
cpu_run() { /usr/bin/time -f '%U %S' -o "$W/cpu" "$@" >/dev/null; awk '{print $1+$2}' "$W/cpu"; }
serve_pid=$(pgrep -f "kith --store $W/home serve sync" | head -1)

# Clone, timed without the relay.
t0=$(now); "$KITH" clone --bundle "$W/laptop.json" "kith://127.0.0.1:$kport" "$W/laptop" >/dev/null; t1=$(now)
t2=$(now); git clone -q "git://127.0.0.1:$gport/home" "$W/git-laptop"; t3=$(now)
row "clone $N vCards (s)" "$(secs $t0 $t1)" "$(secs $t2 $t3)"
# CPU of both ends: kith's client plus its server process; git's clone plus the
# upload-pack it runs over file:// (the same pack protocol, its server side as a child).
s0=$(cpu_of "$serve_pid")
kc=$(cpu_run "$KITH" clone --bundle "$W/laptop.json" "kith://127.0.0.1:$kport" "$W/laptop-cpu")
s1=$(cpu_of "$serve_pid")
gc=$(cpu_run git clone -q --no-local "file://$W/git/home" "$W/git-laptop-cpu")
row "  CPU, both ends (s)" "$(python3 -c "print(f'{$kc + $s1 - $s0:.2f}')")" "$gc"
"$KITH" --store "$W/laptop" export /contacts/me/default "$W/laptop-out" >/dev/null
diff -r "$W/vcards" "$W/laptop-out" >/dev/null || { echo "the clone differs from the source!" >&2; exit 1; }

# Clone again through the counting relays: bytes on the wire.
relay "$kport" "$W/kbytes"; krelay=$relay_port
relay "$gport" "$W/gbytes"; grelay=$relay_port
"$KITH" clone --bundle "$W/laptop.json" "kith://127.0.0.1:$krelay" "$W/laptop2" >/dev/null
git clone -q "git://127.0.0.1:$grelay/home" "$W/git-laptop2"
sleep 0.3
row "  bytes on the wire" "$(bytes "$W/kbytes")" "$(bytes "$W/gbytes")"

# One changed card, then bring the second replica up to date.
python3 - "$W/vcards/00042.vcf" <<'PY'
import sys; p = sys.argv[1]; t = open(p, newline="").read()
open(p, "w", newline="").write(t.replace("END:VCARD", "TEL:+44 1632 960000\r\nEND:VCARD"))
PY
"$KITH" --store "$W/home" put /contacts/me/default/00042.vcf "$W/vcards/00042.vcf" >/dev/null
cp "$W/vcards/00042.vcf" "$W/git/home/contacts/00042.vcf"; git -C "$W/git/home" commit -qam "one change"
k0=$(bytes "$W/kbytes"); g0=$(bytes "$W/gbytes")
t0=$(now); "$KITH" --store "$W/laptop2" sync >/dev/null; t1=$(now)
t2=$(now); git -C "$W/git-laptop2" pull -q --ff-only; t3=$(now)
sleep 0.3
row "sync one change: bytes on the wire" "$(($(bytes "$W/kbytes") - k0))" "$(($(bytes "$W/gbytes") - g0))"
row "  time, through the relay (s)" "$(secs $t0 $t1)" "$(secs $t2 $t3)"
cmp <("$KITH" --store "$W/laptop2" get /contacts/me/default/00042.vcf) "$W/vcards/00042.vcf"
echo "(kith over mutual TLS 1.3 with its handshake; git over plain git://; same relay for both)"
