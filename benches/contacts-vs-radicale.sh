#!/usr/bin/env bash
# The same 10,000 contacts served by Kith (`kith serve contacts`) and by Radicale, both
# over TLS on 127.0.0.1 with password sign-in, driven by one client in one run: PROPFIND
# Depth 1 of the whole address book (getetag, getcontenttype: what vdirsyncer asks),
# addressbook-multiget of 100 contacts, and an incremental sync-collection after one
# change. Prints p50/p95 of each for both and the ratio radicale/kith (how many times
# faster Kith is), then each server's resident memory when idle.
#
#   benches/contacts-vs-radicale.sh [CONTACTS] [ROUNDS]   (default 10000 and 20)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
source "$here/radicale.sh"
cd "$KITH_ROOT"
TARGET="${CARGO_TARGET_DIR:-$KITH_ROOT/target}"
N="${1:-10000}"
ROUNDS="${2:-20}"
PY=/usr/bin/python3

need=()
command -v radicale >/dev/null || need+=(radicale)
if ((${#need[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release -q -p kith
KITH="$TARGET/release/kith"
W=$(mktemp -d /tmp/kith-contacts-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The data: N vCards of about 400 bytes, named <uid>.vcf.
mkdir -p "$W/book"
$PY - "$W/book" "$N" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    uid = f"bench-{i:05d}"
    card = (f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Person {i}\r\nN:{i};Person;;;\r\n"
            f"EMAIL;TYPE=work:person{i}@example.org\r\nTEL;TYPE=cell:+44 20 7946 {i:04d}\r\n"
            f"ADR;TYPE=home:;;{i} High Street;London;;N1 {i % 10}AA;United Kingdom\r\n"
            f"ORG:Example Ltd\r\nNOTE:Bench contact number {i}\r\nEND:VCARD\r\n")
    open(f"{d}/{uid}.vcf", "w", newline="").write(card)
PY

# Kith: an identity, the account, the book imported as one commit, the service.
export KITH_STORE="$W/store"
"$KITH" init --zone bench.home.arpa --device board >/dev/null
echo bench-pw | "$KITH" user add bench >/dev/null
"$KITH" import "$W/book" /contacts/bench/default -m "bench: $N contacts" >/dev/null
"$KITH" identity root-cert >"$W/root.pem"
"$KITH" serve contacts --listen 127.0.0.1:0 >"$W/kith.out" &
pids+=($!); KITH_PID=$!
for _ in $(seq 100); do [[ -s "$W/kith.out" ]] && break; sleep 0.1; done
KITH_URL=$(head -1 "$W/kith.out")

# Radicale: the same files in its folder layout, TLS with Kith's stored dav certificate.
start_radicale "$W/book" VADDRESSBOOK

$PY - "$KITH_URL" "https://127.0.0.1:$RPORT/" "$W/root.pem" "$N" "$ROUNDS" <<'PY'
import base64, http.client, random, re, ssl, statistics, sys, time, urllib.parse
kith_url, radicale_url, ca, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-pw").decode()}
BOOK = "/bench/default/"

def connect(url):
    u = urllib.parse.urlparse(url)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # both certificates chain to the root; names differ
    return http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=600)

def req(c, method, path, body=None, headers=None):
    h = dict(AUTH, **(headers or {}))
    c.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=h)
    r = c.getresponse()
    data = r.read()
    return r.status, data.decode("utf-8", "replace")

def timed(fn):
    t = time.perf_counter(); fn(); return (time.perf_counter() - t) * 1000

PROPFIND = '<propfind xmlns="DAV:"><prop><getetag/><getcontenttype/></prop></propfind>'
def multiget(prefix, uids):
    hrefs = "".join(f"<D:href>{prefix}{u}.vcf</D:href>" for u in uids)
    return ('<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
            f'<D:prop><D:getetag/><C:address-data/></D:prop>{hrefs}</C:addressbook-multiget>')
def sync(token):
    return (f'<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>')
def card(uid, v):
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Changed {v}\r\nEND:VCARD\r\n"

def run(name, url, prefix):
    c = connect(url)
    coll = prefix + "default/"
    res = {}
    s, body = req(c, "PROPFIND", coll, PROPFIND, {"Depth": "1"})
    assert s == 207 and body.count("<") > n, (name, s, body[:300])
    res["propfind depth 1"] = [timed(lambda: req(c, "PROPFIND", coll, PROPFIND, {"Depth": "1"})) for _ in range(rounds)]
    rng = random.Random(1)
    def mg():
        s, body = req(c, "REPORT", coll, multiget(coll, [f"bench-{rng.randrange(n):05d}" for _ in range(100)]), {"Depth": "1"})
        assert s == 207 and "BEGIN:VCARD" in body, (name, s, body[:300])
    res["multiget 100"] = [timed(mg) for _ in range(rounds)]
    s, body = req(c, "REPORT", coll, sync(""), {"Depth": "1"})
    token = re.findall(r"sync-token>([^<]+)</", body)[-1]
    times = []
    for i in range(rounds):
        uid = f"bench-{i:05d}"
        s, _ = req(c, "PUT", f"{coll}{uid}.vcf", card(uid, i), {"Content-Type": "text/vcard"})
        assert s in (201, 204), (name, s)
        out = {}
        def inc():
            out["s"], out["b"] = req(c, "REPORT", coll, sync(token), {"Depth": "1"})
        times.append(timed(inc))
        assert out["s"] == 207 and f"{uid}.vcf" in out["b"] and out["b"].count("<d:response>") + out["b"].count("<response>") <= 2, (name, out["b"][:500])
        token = re.findall(r"sync-token>([^<]+)</", out["b"])[-1]
    res["sync-collection after 1 change"] = times
    return res

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

kith = run("kith", kith_url, "/contacts/bench/")
radicale = run("radicale", radicale_url, "/bench/")
print(f"{n} contacts, {rounds} rounds each, one keep-alive TLS connection per server")
print(f"{'operation':34} {'kith p50':>10} {'kith p95':>10} {'radicale p50':>13} {'radicale p95':>13} {'ratio p50':>10}")
for op in kith:
    k, r = kith[op], radicale[op]
    print(f"{op:34} {pct(k,50):8.1f}ms {pct(k,95):8.1f}ms {pct(r,50):11.1f}ms {pct(r,95):11.1f}ms {pct(r,50)/pct(k,50):9.1f}x")
PY
sleep 3
rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$1/status"; }
echo "idle RSS after the run: kith $(rss "$KITH_PID"), radicale $(rss "$RADICALE_PID")"
