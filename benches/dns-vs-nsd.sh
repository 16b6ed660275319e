#!/usr/bin/env bash
# The same zone served by Kith (`kith serve dns`) and by NSD on 127.0.0.1, each driven by
# dnsperf with the same query mix in one run; prints queries per second of each and the
# ratio. Then the time from an accepted RFC 2136 update (knsupdate returns) to kdig
# seeing the new answer, p50 and p90 over 50 updates (kdig's own start-up included).
#
#   benches/dns-vs-nsd.sh [SECONDS]      (default 10 s of load per server)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
cd "$KITH_ROOT"
TARGET="${CARGO_TARGET_DIR:-$KITH_ROOT/target}"
SECONDS_EACH="${1:-10}"
ZONE=bench.home.arpa

need=()
for tool in nsd:nsd dnsperf:dnsperf kdig:knot-dnsutils knsupdate:knot-dnsutils; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if ((${#need[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release -q -p kith
KITH="$TARGET/release/kith"
W=$(mktemp -d /tmp/kith-dns-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Kith: a new identity, a device to sign updates, the server without rate limiting.
export KITH_STORE="$W/store"
"$KITH" init --zone "$ZONE" --device board >/dev/null
"$KITH" --json device add bencher >"$W/bundle.json"
KEY=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["tsig"]; print(":".join([t["algorithm"], t["name"], t["secret"]]))' "$W/bundle.json")
"$KITH" serve dns --listen 127.0.0.1:0 --rrl-rate 0 >"$W/kith.out" &
pids+=($!)
for _ in $(seq 50); do [[ -s "$W/kith.out" ]] && break; sleep 0.1; done
KITH_PORT=$(sed -n 's|^dns://127.0.0.1:||p' "$W/kith.out")

# NSD: the zone as Kith transfers it (AXFR with the device's key, without the closing
# SOA), on its own port.
kdig @127.0.0.1 -p "$KITH_PORT" -y "$KEY" +nocomments +nostats "$ZONE" AXFR \
  | grep -v -e '^;' -e '	TSIG	' -e '^$' | awk '!/\tSOA\t/ || !soa++' >"$W/$ZONE.zone"
NSD_PORT=$(free_port)
cat >"$W/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$NSD_PORT
  port: $NSD_PORT
  username: ""
  zonesdir: "$W"
  pidfile: "$W/nsd.pid"
  database: ""
  xfrdfile: "$W/xfrd.state"
  zonelistfile: "$W/zone.list"
  logfile: "$W/nsd.log"
  server-count: $(nproc)
  verbosity: 0
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: $ZONE
  zonefile: $ZONE.zone
CONF
nsd -d -c "$W/nsd.conf" &
pids+=($!)
nsd_up() { kdig @127.0.0.1 -p "$NSD_PORT" +short +timeout=1 "$ZONE" SOA | grep -q .; }
for _ in $(seq 50); do nsd_up && break; sleep 0.1; done
nsd_up || { echo "nsd did not start:" >&2; cat "$W/nsd.log" "$W/$ZONE.zone" >&2; exit 1; }

# Both servers run without response rate limiting (Kith: --rrl-rate 0; NSD:
# rrl-ratelimit 0), which would otherwise throttle a single loopback client.
# The query mix: every type the zone publishes, plus NODATA and NXDOMAIN.
cat >"$W/queries" <<Q
$ZONE SOA
$ZONE NS
$ZONE MX
$ZONE TXT
board.$ZONE A
board.$ZONE AAAA
_imaps._tcp.$ZONE SRV
_submissions._tcp.$ZONE SRV
_kith-sync._tcp.$ZONE SRV
_993._tcp.board.$ZONE TLSA
kith._domainkey.$ZONE TXT
board.$ZONE MX
nothing.$ZONE A
Q
qps() {
  dnsperf -s 127.0.0.1 -p "$1" -d "$W/queries" -l "$SECONDS_EACH" -c 8 -q 200 -S 0 2>&1 \
    | tee "$W/dnsperf-$1.txt" | awk '/Queries per second/ {print $4}'
}
kith_qps=$(qps "$KITH_PORT")
nsd_qps=$(qps "$NSD_PORT")
lost() { awk '/Queries lost/ {print $3}' "$W/dnsperf-$1.txt"; }
echo "kith: $kith_qps queries/s (lost $(lost "$KITH_PORT"))"
echo "nsd:  $nsd_qps queries/s (lost $(lost "$NSD_PORT"))"
python3 -c "import sys; print(f'ratio kith/nsd: {float(sys.argv[1])/float(sys.argv[2]):.2f}x')" "$kith_qps" "$nsd_qps"

# Update to answer: knsupdate returns once the update is accepted (committed), then kdig
# polls until it sees the new address.
lat=()
for i in $(seq 1 50); do
  addr="192.0.2.$i"
  printf 'server 127.0.0.1 %s\nzone %s.\nupdate delete bencher.%s. A\nupdate add bencher.%s. 60 A %s\nsend\n' \
    "$KITH_PORT" "$ZONE" "$ZONE" "$ZONE" "$addr" | knsupdate -y "$KEY" -t 3 -r 0
  t0=$(date +%s%N)
  until [[ "$(kdig @127.0.0.1 -p "$KITH_PORT" +short +timeout=1 "bencher.$ZONE" A)" == "$addr" ]]; do :; done
  lat+=($(( ($(date +%s%N) - t0) / 1000 )))
done
printf '%s\n' "${lat[@]}" | sort -n | awk '{a[NR]=$1} END {printf "update to answer: p50 %.1f ms, p90 %.1f ms (n=%d)\n", a[int(NR*0.5)+1]/1000, a[int(NR*0.9)]/1000, NR}'
echo "commits: $("$KITH" --json log -n 100 | grep -c '"author": "bencher"') by bencher"
