# Sourced by the *-vs-radicale.sh benches: starts Radicale on the same items Kith
# serves, over TLS with Kith's stored dav certificate and the same bench:bench-pw login.
#
#   start_radicale ITEMS_DIR TAG   (TAG: VADDRESSBOOK or VCALENDAR)
#
# Needs $W, $KITH, $KITH_STORE, $PY, free_port and the pids array of the caller; sets
# RPORT and RADICALE_PID and waits until Radicale listens.
start_radicale() {
  local items=$1 tag=$2 collection="$W/radicale/collection-root/bench/default"
  RPORT=$(free_port)
  mkdir -p "$collection"
  cp "$items"/* "$collection/"
  echo "{\"tag\": \"$tag\"}" >"$collection/.Radicale.props"
  "$KITH" get /identity/services/dav.pem >"$W/dav.pem"
  cp "$KITH_STORE/local/services/dav.key" "$W/dav.key"
  echo "bench:bench-pw" >"$W/htpasswd"
  cat >"$W/radicale.conf" <<CONF
[server]
hosts = 127.0.0.1:$RPORT
ssl = True
certificate = $W/dav.pem
key = $W/dav.key
[auth]
type = htpasswd
htpasswd_filename = $W/htpasswd
htpasswd_encryption = plain
[storage]
filesystem_folder = $W/radicale
[rights]
type = owner_only
[logging]
level = warning
CONF
  radicale --config "$W/radicale.conf" 2>"$W/radicale.log" &
  pids+=($!); RADICALE_PID=$!
  for _ in $(seq 100); do
    $PY -c "import socket; socket.create_connection(('127.0.0.1',$RPORT))" 2>/dev/null && break
    sleep 0.1
  done
}
