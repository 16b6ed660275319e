#!/usr/bin/env bash
# The same 10,000 messages served by Kith (`kith serve mail`, IMAP over TLS on
# 127.0.0.1) and by Dovecot (its `imap` binary in preauth mode over a pipe, Maildir,
# run as `nobody`: no TLS, no login, so Dovecot's figure is, if anything, flattered).
# One Python imaplib client times `UID FETCH 1:* (BODY.PEEK[HEADER])` on each, after a
# warm-up round; prints p50 and p95 for both, the ratio kith/dovecot (how many
# times slower Kith is; below 1 means faster), and the resident memory of each after
# the run: the whole Kith mail service once its client logged out, Dovecot's `imap`
# process (one per connection) before its client logs out.
#
#   benches/imap-vs-dovecot.sh [MESSAGES] [ROUNDS]   (default 10000 and 10)
#
# KITH=path/to/kith uses that binary instead of building a release one.
#
# Needs root (to run Dovecot as `nobody`) or an unprivileged user that can run it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
cd "$KITH_ROOT"
TARGET="${CARGO_TARGET_DIR:-$KITH_ROOT/target}"
N="${1:-10000}"
ROUNDS="${2:-10}"
PY=/usr/bin/python3

if [[ ! -x /usr/lib/dovecot/imap ]]; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dovecot-imapd >/dev/null
fi

if [[ -z "${KITH:-}" ]]; then
  cargo build --release -q -p kith
  KITH="$TARGET/release/kith"
fi
W=$(mktemp -d /tmp/kith-imap-bench.XXXXXX)
chmod 755 "$W"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

# The data: N messages of about 600 bytes, as an mbox for Kith and a Maildir for Dovecot.
mkdir -p "$W/Maildir"/{cur,new,tmp} "$W/run"
$PY - "$W" "$N" <<'PY'
import sys
w, n = sys.argv[1], int(sys.argv[2])
with open(f"{w}/all.mbox", "w", newline="") as mbox:
    for i in range(n):
        msg = (f"From: Sender {i} <sender{i}@example.org>\r\nTo: me@bench.home.arpa\r\n"
               f"Subject: bench message {i}\r\nMessage-ID: <{i}@example.org>\r\n"
               f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
               + f"Line {i} of a bench message body.\r\n" * 12)
        mbox.write("From sender@example.org Mon Jan  1 00:00:00 2024\n")
        mbox.write(msg.replace("\r\n", "\n") + "\n")
        open(f"{w}/Maildir/cur/{i:06d}.bench:2,", "w", newline="").write(msg)
PY

export KITH_STORE="$W/store"
"$KITH" init --zone bench.home.arpa --device board >/dev/null
echo bench-pw | "$KITH" user add me >/dev/null
"$KITH" import "$W/all.mbox" /mail/me/INBOX -m "bench: $N messages" >/dev/null
"$KITH" identity root-cert >"$W/root.pem"
"$KITH" serve mail --smtp 127.0.0.1:0 --imap 127.0.0.1:0 >"$W/kith.out" &
pids+=($!); KITH_PID=$!
for _ in $(seq 100); do [[ $(wc -l <"$W/kith.out") -ge 2 ]] && break; sleep 0.1; done
IMAP_PORT=$(sed -n 's|^imaps://127.0.0.1:||p' "$W/kith.out")

cat >"$W/dovecot.conf" <<EOF
mail_location = maildir:$W/Maildir
ssl = no
log_path = $W/dovecot.log
base_dir = $W/run
EOF
chown -R nobody:nogroup "$W/Maildir" "$W/run" "$W/dovecot.conf"
DOVECOT="setpriv --reuid=nobody --regid=nogroup --clear-groups env MAIL=maildir:$W/Maildir HOME=$W USER=nobody /usr/lib/dovecot/imap -c $W/dovecot.conf"

$PY - "$IMAP_PORT" "$W/root.pem" "$DOVECOT" "$N" "$ROUNDS" "$KITH_PID" <<'PY'
import imaplib, socket, ssl, statistics, sys, time
port, root, command, n, rounds = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
kith_pid = int(sys.argv[6])

def rss_kb(pid):
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))

def largest_rss_kb(pid):
    children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    return max([rss_kb(pid)] + [largest_rss_kb(int(c)) for c in children])

class Kith(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname="mail.bench.home.arpa")

def kith():
    c = Kith("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=root), timeout=600)
    c.login("me", "bench-pw")
    return c

def dovecot():
    return imaplib.IMAP4_stream(command)

def times(connect):
    c = connect()
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK" and int(data[0]) == n, (typ, data)
    out = []
    for r in range(rounds + 1):
        start = time.perf_counter()
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER])")
        elapsed = time.perf_counter() - start
        assert typ == "OK" and sum(isinstance(d, tuple) for d in data) == n
        if r:
            out.append(elapsed)
    rss = largest_rss_kb(c.process.pid) if hasattr(c, "process") else None
    c.logout()
    return out, rss

(k, _), (d, dovecot_rss) = times(kith), times(dovecot)
time.sleep(1)
p = lambda xs, q: statistics.quantiles(xs, n=100)[q - 1] if len(xs) > 1 else xs[0]
print(f"UID FETCH 1:* (BODY.PEEK[HEADER]) of {n} messages, {rounds} rounds")
print(f"  kith     p50 {statistics.median(k)*1000:8.1f} ms   p95 {p(k, 95)*1000:8.1f} ms")
print(f"  dovecot  p50 {statistics.median(d)*1000:8.1f} ms   p95 {p(d, 95)*1000:8.1f} ms")
print(f"  ratio kith/dovecot (p50): {statistics.median(k)/statistics.median(d):.2f}")
print(f"  resident memory after the run: kith mail service {rss_kb(kith_pid)} KB, dovecot imap {dovecot_rss} KB")
PY
echo "kith resident memory (ps -o rss): $(ps -o rss= -p "$KITH_PID") KB"
