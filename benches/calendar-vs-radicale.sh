#!/usr/bin/env bash
# The same 10,000 events (one in ten recurring: weekly without end, or daily for 30
# days) served by Kith (`kith serve calendar`) and by Radicale, both over TLS on
# 127.0.0.1 with password sign-in, driven by one client in one run: PROPFIND Depth 1 of
# the whole calendar, calendar-query with a one-week and a one-year time-range (the
# match counts of both servers are compared), calendar-multiget of 100 events, and an
# incremental sync-collection after one change. Prints p50/p95 of each for both and the
# ratio radicale/kith (how many times faster Kith is), then each server's idle memory.
#
#   benches/calendar-vs-radicale.sh [EVENTS] [ROUNDS]   (default 10000 and 20)
#
# KITH_BIN=path uses an already built kith instead of `cargo build --release -p kith`.
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

if [[ -n "${KITH_BIN:-}" ]]; then
  KITH="$KITH_BIN"
else
  cargo build --release -q -p kith
  KITH="$TARGET/release/kith"
fi
W=$(mktemp -d /tmp/kith-calendar-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The data: N events of about 350 bytes named <uid>.ics, a tenth of them recurring.
mkdir -p "$W/cal"
$PY - "$W/cal" "$N" <<'PY'
import datetime, sys
d, n = sys.argv[1], int(sys.argv[2])
base = datetime.datetime(2026, 1, 1)
for i in range(n):
    uid = f"bench-{i:05d}"
    start = base + datetime.timedelta(days=i % 365, hours=8 + i % 10)
    rule = ""
    if i % 10 == 0:
        rule = "RRULE:FREQ=WEEKLY\r\n" if i % 20 == 0 else "RRULE:FREQ=DAILY;COUNT=30\r\n"
    ev = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kith bench//EN\r\nBEGIN:VEVENT\r\n"
          f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start:%Y%m%dT%H%M%S}Z\r\n"
          f"DURATION:PT1H\r\n{rule}SUMMARY:Bench event {i}\r\nLOCATION:Room {i % 50}\r\n"
          f"DESCRIPTION:Benchmark event number {i}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    open(f"{d}/{uid}.ics", "w", newline="").write(ev)
PY

# Kith: an identity, the account, the calendar imported as one commit, the service.
export KITH_STORE="$W/store"
"$KITH" init --zone bench.home.arpa --device board >/dev/null
echo bench-pw | "$KITH" user add bench >/dev/null
"$KITH" import "$W/cal" /calendar/bench/default -m "bench: $N events" >/dev/null
"$KITH" identity root-cert >"$W/root.pem"
"$KITH" serve calendar --listen 127.0.0.1:0 >"$W/kith.out" &
pids+=($!); KITH_PID=$!
for _ in $(seq 100); do [[ -s "$W/kith.out" ]] && break; sleep 0.1; done
KITH_URL=$(head -1 "$W/kith.out")

# Radicale: the same files in its folder layout, TLS with Kith's stored dav certificate.
start_radicale "$W/cal" VCALENDAR

$PY - "$KITH_URL" "https://127.0.0.1:$RPORT/" "$W/root.pem" "$N" "$ROUNDS" <<'PY'
import base64, http.client, random, re, ssl, sys, time, urllib.parse
kith_url, radicale_url, ca, n, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-pw").decode()}

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
def query(start, end):
    return ('<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
            f'<C:comp-filter name="VEVENT"><C:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/>'
            '</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>')
def multiget(prefix, uids):
    hrefs = "".join(f"<D:href>{prefix}{u}.ics</D:href>" for u in uids)
    return ('<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f'<D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>')
def sync(token):
    return (f'<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>')
def event(uid, v):
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kith bench//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20260101T000000Z\r\nDTSTART:20260601T100000Z\r\nDURATION:PT1H\r\nSUMMARY:Changed {v}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")
def responses(body):
    return body.count("<d:response>") + body.count("<response>") + body.count("<D:response>")

UTC = __import__("datetime").timezone.utc
dt = __import__("datetime")
WEEKS = [dt.datetime(2026, 1, 5, tzinfo=UTC) + dt.timedelta(weeks=w) for w in range(rounds)]
YEARS = [dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(days=10 * w) for w in range(rounds)]

def run(name, url, prefix):
    c = connect(url)
    coll = prefix + "default/"
    res, counts = {}, {}
    s, body = req(c, "PROPFIND", coll, PROPFIND, {"Depth": "1"})
    assert s == 207 and body.count("<") > n, (name, s, body[:300])
    res["propfind depth 1"] = [timed(lambda: req(c, "PROPFIND", coll, PROPFIND, {"Depth": "1"})) for _ in range(rounds)]
    for label, starts, span in [("calendar-query 1 week", WEEKS, dt.timedelta(weeks=1)),
                                ("calendar-query 1 year", YEARS, dt.timedelta(days=365))]:
        times, found = [], []
        for start in starts:
            out = {}
            def q():
                out["s"], out["b"] = req(c, "REPORT", coll, query(start, start + span), {"Depth": "1"})
            times.append(timed(q))
            assert out["s"] == 207, (name, out["s"], out["b"][:300])
            found.append(responses(out["b"]))
        res[label], counts[label] = times, found
    rng = random.Random(1)
    def mg():
        s, body = req(c, "REPORT", coll, multiget(coll, [f"bench-{rng.randrange(n):05d}" for _ in range(100)]), {"Depth": "1"})
        assert s == 207 and "BEGIN:VEVENT" in body, (name, s, body[:300])
    res["calendar-multiget 100"] = [timed(mg) for _ in range(rounds)]
    s, body = req(c, "REPORT", coll, sync(""), {"Depth": "1"})
    token = re.findall(r"sync-token>([^<]+)</", body)[-1]
    times = []
    for i in range(rounds):
        uid = f"bench-{i:05d}"
        s, _ = req(c, "PUT", f"{coll}{uid}.ics", event(uid, i), {"Content-Type": "text/calendar"})
        assert s in (201, 204), (name, s)
        out = {}
        def inc():
            out["s"], out["b"] = req(c, "REPORT", coll, sync(token), {"Depth": "1"})
        times.append(timed(inc))
        assert out["s"] == 207 and f"{uid}.ics" in out["b"] and responses(out["b"]) <= 2, (name, out["b"][:500])
        token = re.findall(r"sync-token>([^<]+)</", out["b"])[-1]
    res["sync-collection after 1 change"] = times
    return res, counts

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

kith, kith_counts = run("kith", kith_url, "/calendar/bench/")
radicale, radicale_counts = run("radicale", radicale_url, "/bench/")
print(f"{n} events ({n // 10} recurring), {rounds} rounds each, one keep-alive TLS connection per server")
for label in kith_counts:
    same = "same" if kith_counts[label] == radicale_counts[label] else "DIFFERENT"
    print(f"{label} matches per round: kith {kith_counts[label][:5]}..., radicale {radicale_counts[label][:5]}... ({same})")
print(f"{'operation':34} {'kith p50':>10} {'kith p95':>10} {'radicale p50':>13} {'radicale p95':>13} {'ratio p50':>10}")
for op in kith:
    k, r = kith[op], radicale[op]
    print(f"{op:34} {pct(k,50):8.1f}ms {pct(k,95):8.1f}ms {pct(r,50):11.1f}ms {pct(r,95):11.1f}ms {pct(r,50)/pct(k,50):9.1f}x")
PY
sleep 3
rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$1/status"; }
echo "idle RSS after the run: kith $(rss "$KITH_PID"), radicale $(rss "$RADICALE_PID")"
