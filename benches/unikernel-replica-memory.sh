#!/usr/bin/env bash
# What keeping a replica in step costs a DAV service image in memory: for contacts and
# calendar, the smallest `kith run --memory` (MiB, bisected between 8 and 64) in which
# the image takes a signed-in PUT, once serving alone and once also syncing (`--sync`
# to `kith serve sync` on the host's store, as under `kith up --unikernel`), where the
# PUT must also reach the host's store. Both runs are in this script, on the same site
# and image; it prints both and the difference. x86_64, 127.0.0.1 only.
#
#   benches/unikernel-replica-memory.sh [SERVICES]   (default "contacts calendar")
#
# KITH_BIN=path uses an already built kith instead of `cargo build --release -p kith`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
cd "$KITH_ROOT"
SERVICES="${1:-contacts calendar}"

KITH=${KITH_BIN:-}
if [[ -z $KITH ]]; then
  cargo build -q --release -p kith
  KITH="${CARGO_TARGET_DIR:-$KITH_ROOT/target}/release/kith"
fi

W=$(mktemp -d)
sync_pid=
cleanup() {
  [[ -n $sync_pid ]] && kill "$sync_pid" 2>/dev/null
  pkill -f "[q]emu-system.*$W/" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$KITH" --store "$W/store" init --zone bench.home.arpa --device board --address 10.0.2.15 >/dev/null
printf 'ada-pw\n' | "$KITH" --store "$W/store" user add ada >/dev/null 2>&1
"$KITH" --store "$W/store" identity root-cert >"$W/root.pem"
SYNC_PORT=$(free_port)
"$KITH" --store "$W/store" serve sync --listen "127.0.0.1:$SYNC_PORT" >"$W/sync.out" 2>&1 &
sync_pid=$!

# dav PORT METHOD PATH [CURL OPTIONS...]: a signed-in request; prints the status code.
dav() {
  local port=$1 method=$2 path=$3
  shift 3
  curl -sS --max-time 30 --cacert "$W/root.pem" -u ada:ada-pw -o /dev/null -w '%{http_code}' \
    --resolve "dav.bench.home.arpa:$port:127.0.0.1" -X "$method" "$@" \
    "https://dav.bench.home.arpa:$port/$path" 2>/dev/null || true
}

# fits SERVICE MIB sync|alone: boots the image in MIB MiB on a fresh disk, PUTs an item
# (a new one each time) and, when syncing, waits for it in the host's store.
n=0
fits() {
  local service=$1 mib=$2 mode=$3 port pid ok=1 folder item path
  n=$((n + 1))
  port=$(free_port)
  "$KITH" --store "$W/store" disk write "$W/disk.raw" --size 16 --key dav >/dev/null
  local args=(-- 443)
  [[ $mode == sync ]] && args+=(--sync "10.0.2.2:$SYNC_PORT")
  timeout 90 "$KITH" run "$W/$service.img" --memory "$mib" --disk "$W/disk.raw" \
    --forward "$port:443" "${args[@]}" >"$W/console" 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q "$service: serving" "$W/console" && break; sleep 0.05; done
  if [[ $service == contacts ]]; then
    folder=contacts/ada/bench
    dav "$port" MKCOL "$folder/" >/dev/null
    item="$folder/m$n.vcf"
    printf 'BEGIN:VCARD\r\nVERSION:4.0\r\nUID:m%s\r\nFN:Memory %s\r\nEND:VCARD\r\n' "$n" "$n" >"$W/item"
    [[ $(dav "$port" PUT "$item" -H 'Content-Type: text/vcard' --data-binary "@$W/item") == 201 ]] || ok=0
  else
    folder=calendar/ada/bench
    dav "$port" MKCALENDAR "$folder/" >/dev/null
    item="$folder/m$n.ics"
    printf 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//kith//bench//EN\r\nBEGIN:VEVENT\r\nUID:m%s\r\nDTSTAMP:20261206T090000Z\r\nDTSTART:20261207T090000Z\r\nSUMMARY:Memory %s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n' "$n" "$n" >"$W/item"
    [[ $(dav "$port" PUT "$item" -H 'Content-Type: text/calendar' --data-binary "@$W/item") == 201 ]] || ok=0
  fi
  if ((ok)) && [[ $mode == sync ]]; then
    ok=0
    for _ in $(seq 80); do
      "$KITH" --store "$W/store" get "/$item" 2>/dev/null | cmp -s - "$W/item" && ok=1 && break
      sleep 0.25
    done
  fi
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  ((ok))
}

# smallest SERVICE MODE: the smallest MiB that fits, by bisection between 8 and 64.
smallest() {
  local lo=8 hi=64 mid
  fits "$1" "$hi" "$2" || { echo "> $hi"; return; }
  fits "$1" "$lo" "$2" && { echo "$lo"; return; }
  while ((hi - lo > 1)); do
    mid=$(((lo + hi) / 2))
    if fits "$1" "$mid" "$2"; then hi=$mid; else lo=$mid; fi
  done
  echo "$hi"
}

printf '%-9s %12s %14s %6s\n' service "alone MiB" "syncing MiB" extra
for service in $SERVICES; do
  "$KITH" build "$service" -o "$W/$service.img" >"$W/build.log" 2>&1 || { cat "$W/build.log"; exit 1; }
  alone=$(smallest "$service" alone)
  syncing=$(smallest "$service" sync)
  extra=$( [[ $alone =~ ^[0-9]+$ && $syncing =~ ^[0-9]+$ ]] && echo "+$((syncing - alone))" || echo "?")
  printf '%-9s %12s %14s %6s\n' "$service" "$alone" "$syncing" "$extra"
done
