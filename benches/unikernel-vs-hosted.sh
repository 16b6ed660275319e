#!/usr/bin/env bash
# Each service's unikernel image (`kith build SERVICE`, booted by `kith run` on QEMU
# -M microvm, x86_64) against the same service as a hosted process (`kith serve
# SERVICE`), on the same store data: one store folder, which the hosted process serves and
# `kith disk write` copies onto the image's disk (`kith serve` cannot open a `disk:`
# store: it keeps its secrets and run files in the store's local folder). 127.0.0.1 only.
# For each service whose image can be built it prints, in one run:
#   - the image size against the target (1.5 MB; mail 2.5 MB);
#   - the time from starting `kith run` (or `kith serve`) to the first answered request,
#     the median of ROUNDS starts: DNS, a SOA query over UDP answered (the answer is then
#     checked with kdig); contacts and calendar, a signed-in PROPFIND answered 207. The
#     requests start once the server prints that it serves (the image's console line,
#     `kith serve`'s endpoint): QEMU's user network holds a packet sent before the guest's
#     network is up for about a second (1.1-1.5 s to a DNS answer instead of 0.2-0.3 s),
#     which would time QEMU, not the guest;
#   - the smallest `kith run --memory` (MiB) in which the image boots and answers that
#     request, by binary search between 8 and 128 MiB (mail must also sign a user in
#     over IMAP and fetch the message: Argon2 is what needs memory there);
#   - requests per second for a fixed count: DNS, 2,000 SOA queries over UDP (dnsperf,
#     32 in flight); contacts and calendar, 300 PROPFIND Depth 0 over one keep-alive
#     HTTPS connection; sync, 20 `kith fetch` runs of a laptop replica (each a new
#     mutual-TLS connection and a fetch with nothing new); mail, 200 messages delivered
#     over one SMTP session on port 25; and the ratio hosted/image.
# First answers: DNS, a SOA query over UDP; contacts and calendar, a signed-in PROPFIND
# answered 207; sync, a laptop's `kith fetch` that succeeds; mail, a message delivered
# over SMTP (250 after DATA). Mail's SPF, DKIM and DMARC lookups go to the zone's own
# `kith serve dns` on the host, for the image (as 10.0.2.2) and the hosted process alike.
# QEMU uses KVM when /dev/kvm opens read-write and is not the nested PVM hypervisor
# (what `kith run` checks), else TCG; the output says which. The 40 ms boot target is
# about KVM: TCG figures do not measure it.
# A service whose image `kith build` cannot build yet is skipped with a printed line.
#
#   benches/unikernel-vs-hosted.sh [SERVICES] [ROUNDS]   (default "dns contacts calendar sync mail", 5)
#
# KITH_BIN=path uses an already built kith instead of `cargo build --release -p kith`;
# KITH_UNIKERNEL_TARGET_DIR is the image builds' cargo target folder (see unikernel/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
cd "$KITH_ROOT"
TARGET="${CARGO_TARGET_DIR:-$KITH_ROOT/target}"
SERVICES="${1:-dns contacts calendar sync mail}"
ROUNDS="${2:-5}"
PY=/usr/bin/python3
ZONE=bench.home.arpa
DNS_QUERIES=2000
DAV_REQUESTS=300
SYNC_REQUESTS=20
MAIL_MESSAGES=200

need=()
for tool in kdig:knot-dnsutils dnsperf:dnsperf qemu-system-x86_64:qemu-system-x86 swaks:swaks; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if ((${#need[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" qemu-utils- >/dev/null
fi

if [[ -n "${KITH_BIN:-}" ]]; then
  KITH="$KITH_BIN"
else
  cargo build --release -q -p kith
  KITH="$TARGET/release/kith"
fi
W=$(mktemp -d /tmp/kith-unikernel-bench.XXXXXX)
pids=()
# The probes stop the servers they start (kith run stops its QEMU); this stops the
# background kith run of the kdig check if the script is interrupted.
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

# KVM as `kith run --accel auto` decides it, said here so the figures are labelled.
if ACCEL_WHY=$($PY - 2>&1 <<'PY'
import os, sys
try:
    os.close(os.open("/dev/kvm", os.O_RDWR))
except OSError as e:
    sys.exit(f"/dev/kvm: {e.strerror}")
if os.path.exists("/sys/module/kvm_pvm"):
    sys.exit("/dev/kvm is the nested PVM hypervisor, which cannot run these guests")
PY
); then
  ACCEL=kvm
else
  ACCEL=tcg
fi

# The data: one zone with the account bench (password bench-pw) and its empty INBOX, and
# a laptop enrolled as a device, written onto a disk image (with the service keys, as
# `kith disk write` does).
"$KITH" --store "$W/store" init --zone "$ZONE" --device board --address 10.0.2.15 >/dev/null
echo bench-pw | "$KITH" --store "$W/store" user add bench >/dev/null
"$KITH" --store "$W/store" identity root-cert >"$W/root.pem"
"$KITH" --store "$W/store" device add bench-laptop -o "$W/laptop.json" >/dev/null
: >"$W/empty.mbox"
"$KITH" --store "$W/store" import "$W/empty.mbox" /mail/bench/INBOX >/dev/null
"$KITH" --store "$W/store" disk write "$W/site.raw" --size 32 >/dev/null

# probe.py MODE SERVICE PORT TIMEOUT -- COMMAND...: starts COMMAND (the server) and
# measures from that moment. MODE "first": prints the milliseconds to the first answered
# request, or exits 1 if none came within TIMEOUT s (or the command ended). MODE "load":
# waits for that first answer, then prints requests per second over the fixed count.
# Either way it stops the command (SIGTERM, then SIGKILL) before exiting.
cat >"$W/probe.py" <<'PY'
import base64, imaplib, os, random, signal, smtplib, socket, ssl, struct, subprocess, sys, time, http.client
mode, service, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
cmd = sys.argv[sys.argv.index("--") + 1:]
zone, ca, log = os.environ["ZONE"], os.environ["ROOT_PEM"], os.environ["PROBE_LOG"]

def soa_query(qid):
    name = b"".join(bytes([len(p)]) + p.encode() for p in zone.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 6, 1)

def dns_first(deadline, proc):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.01)
    qid = random.randrange(65536)
    while time.monotonic() < deadline and proc.poll() is None:
        s.sendto(soa_query(qid), ("127.0.0.1", port))
        end = time.monotonic() + 0.02
        while time.monotonic() < end:
            try:
                data = s.recv(1500)
            except (socket.timeout, ConnectionRefusedError):
                continue
            # An answer to our query, NOERROR, with one answer record.
            if len(data) > 12 and struct.unpack(">H", data[:2])[0] == qid and data[3] & 0xF == 0 \
                    and struct.unpack(">H", data[6:8])[0] >= 1:
                return True
    return False

AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-pw").decode(), "Depth": "0"}
HOME = {"contacts": "/contacts/bench/", "calendar": "/calendar/bench/"}.get(service, "")
CTX = ssl.create_default_context(cafile=ca)

def dav_connect(handshake_timeout):
    raw = socket.create_connection(("127.0.0.1", port), timeout=handshake_timeout)
    tls = CTX.wrap_socket(raw, server_hostname=f"dav.{zone}")  # handshake within the timeout
    tls.settimeout(60)
    c = http.client.HTTPSConnection("127.0.0.1", port, context=CTX)
    c.sock = tls
    return c

def propfind(c):
    c.request("PROPFIND", HOME, headers=AUTH)
    r = c.getresponse()
    r.read()
    return r.status

def dav_first(deadline, proc):
    # QEMU's user network accepts a host connection before the guest listens and
    # retries the guest's SYN only later, so an attempt whose handshake stalls is
    # dropped and made again, soon at first and with more patience later.
    tries = 0
    while time.monotonic() < deadline and proc.poll() is None:
        tries += 1
        try:
            c = dav_connect(0.3 if tries <= 30 else 3)
        except (OSError, ssl.SSLError):
            time.sleep(0.01)
            continue
        try:
            status = propfind(c)
        except (OSError, http.client.HTTPException):
            continue
        if status != 207:
            sys.exit(f"PROPFIND {HOME} answered {status}, not 207")
        return c
    return None

def fetch(timeout):
    # The laptop replica's fetch from the sync service (its origin points at PORT).
    return subprocess.run([os.environ["KITH"], "--store", os.environ["LAPTOP"], "fetch"],
                          capture_output=True, timeout=timeout).returncode == 0

def sync_first(deadline, proc):
    while time.monotonic() < deadline and proc.poll() is None:
        if fetch(30):
            return True
        time.sleep(0.01)
    return False

MESSAGE = b"From: bob@example.org\r\nTo: bench@" + zone.encode() + b"\r\nSubject: bench\r\n\r\n" \
    + b"Kept byte for byte.\r\n" * 50

def deliver(s):
    refused = s.sendmail("bob@example.org", [f"bench@{zone}"], MESSAGE)
    if refused:
        sys.exit(f"SMTP refused {refused}")

def mail_first(deadline, proc):
    # Like dav_first: a connection whose greeting stalls is dropped and made again.
    tries = 0
    while time.monotonic() < deadline and proc.poll() is None:
        tries += 1
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=0.5 if tries <= 30 else 5)
            s.sock.settimeout(60)
            s.ehlo("bench.example.org")
            deliver(s)
            return s
        except (OSError, smtplib.SMTPException):
            time.sleep(0.01)
    return None

class Imap(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", int(os.environ["IMAP_PORT"])), timeout)
        return CTX.wrap_socket(sock, server_hostname=f"mail.{zone}")

def imap_fetch():
    # Signs in (an Argon2 check), selects INBOX and fetches the newest message.
    imap = Imap(f"mail.{zone}", 0, ssl_context=CTX, timeout=60)
    imap.login("bench", "bench-pw")
    status, counts = imap.select("INBOX")
    status, data = imap.fetch(counts[0].decode(), "(BODY.PEEK[])")
    imap.logout()
    if not data[0][1].endswith(MESSAGE):
        sys.exit("IMAP fetched another message than the one delivered")

FIRST = {"dns": dns_first, "sync": sync_first, "mail": mail_first}

def wait_ready(deadline, proc):
    # The server's own line saying it serves (see the top of the script).
    ready = os.environ["PROBE_READY"]
    while time.monotonic() < deadline and proc.poll() is None:
        with open(log, errors="replace") as f:
            if ready in f.read():
                return True
        time.sleep(0.005)
    return False

def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)
started = time.monotonic()
try:
    deadline = started + timeout
    answered = wait_ready(deadline, proc) and FIRST.get(service, dav_first)(deadline, proc)
    if not answered:
        sys.exit(1)
    elapsed = time.monotonic() - started
    if mode == "first":
        print(f"{elapsed * 1000:.0f}")
    elif mode == "fits":
        if service == "mail":
            imap_fetch()
        print(f"{elapsed * 1000:.0f}")
    elif service == "sync":
        n = int(os.environ["SYNC_REQUESTS"])
        t = time.perf_counter()
        for _ in range(n):
            if not fetch(60):
                sys.exit("kith fetch failed during the load")
        print(f"{n / (time.perf_counter() - t):.1f}", 0)
    elif service == "mail":
        n = int(os.environ["MAIL_MESSAGES"])
        t = time.perf_counter()
        for _ in range(n):
            deliver(answered)
        print(f"{n / (time.perf_counter() - t):.0f}", 0)
    elif service == "dns":
        with open(os.environ["QUERIES"], "w") as q:
            q.write(f"{zone} SOA\n" * int(os.environ["DNS_QUERIES"]))
        out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", os.environ["QUERIES"],
                              "-n", "1", "-c", "1", "-q", "32", "-t", "2", "-S", "0"],
                             capture_output=True, text=True, timeout=300).stdout
        qps = [l.split()[3] for l in out.splitlines() if "Queries per second" in l]
        lost = [l.split()[2] for l in out.splitlines() if "Queries lost" in l]
        if not qps:
            sys.exit(f"dnsperf: {out}")
        print(f"{float(qps[0]):.0f}", lost[0] if lost else "?")
    else:
        n = int(os.environ["DAV_REQUESTS"])
        t = time.perf_counter()
        for _ in range(n):
            status = propfind(answered)
            if status != 207:
                sys.exit(f"PROPFIND answered {status} during the load")
        print(f"{n / (time.perf_counter() - t):.0f}", 0)
finally:
    stop(proc)
PY
export ZONE ROOT_PEM="$W/root.pem" QUERIES="$W/queries" DNS_QUERIES DAV_REQUESTS SYNC_REQUESTS MAIL_MESSAGES
export KITH LAPTOP="$W/laptop"

# Mail's name server: the zone's own DNS server on the host, started when mail is benched.
DNS_PORT=
start_resolver() {
  [[ -n $DNS_PORT ]] && return
  "$KITH" --store "$W/store" serve dns --listen 127.0.0.1:0 >"$W/resolver.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "^dns://" "$W/resolver.out" && break; sleep 0.1; done
  DNS_PORT=$(head -1 "$W/resolver.out" | sed 's/.*://')
}

# The laptop replica, cloned once from the hosted sync service; each probe points its
# origin at the server being measured.
clone_laptop() {
  [[ -d $W/laptop ]] && return
  local port
  port=$(free_port)
  "$KITH" --store "$W/store" serve sync --listen "127.0.0.1:$port" >"$W/clone-sync.out" 2>&1 &
  local sync_pid=$!
  for _ in $(seq 100); do grep -q "://127.0.0.1:$port" "$W/clone-sync.out" && break; sleep 0.1; done
  "$KITH" clone --bundle "$W/laptop.json" "kith://127.0.0.1:$port" "$W/laptop" >/dev/null
  kill "$sync_pid"; wait "$sync_pid" 2>/dev/null || true
}

point_laptop_at() {
  "$KITH" --store "$W/laptop" remote remove origin >/dev/null
  "$KITH" --store "$W/laptop" remote add origin "kith://127.0.0.1:$1" >/dev/null
}

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# image_cmd SERVICE PORT MIB: the `kith run` command line booting SERVICE's image on a
# copy of the site's disk, forwarding PORT on 127.0.0.1 to the guest.
image_cmd() {
  local service=$1 port=$2 mib=$3
  cp "$W/site.raw" "$W/$service-vm.raw"
  case $service in
    dns) echo "$KITH" run "$W/$service.img" --accel "$ACCEL" --memory "$mib" --disk "$W/$service-vm.raw" \
           --forward "udp:$port:53" --forward "$port:53" -- 53 ;;
    sync) echo "$KITH" run "$W/$service.img" --accel "$ACCEL" --memory "$mib" --disk "$W/$service-vm.raw" \
         --forward "$port:7447" -- 7447 ;;
    mail) echo "$KITH" run "$W/$service.img" --accel "$ACCEL" --memory "$mib" --disk "$W/$service-vm.raw" \
         --forward "$port:25" --forward "$IMAP_PORT:993" -- "10.0.2.2:$DNS_PORT" ;;
    *) echo "$KITH" run "$W/$service.img" --accel "$ACCEL" --memory "$mib" --disk "$W/$service-vm.raw" \
         --forward "$port:443" -- 443 ;;
  esac
}

# hosted_cmd SERVICE PORT: `kith serve SERVICE` on the store folder the disk was written
# from (DNS without response rate limiting, which the image does not have either).
hosted_cmd() {
  local service=$1 port=$2
  case $service in
    dns) echo "$KITH" --store "$W/store" serve dns --listen "127.0.0.1:$port" --rrl-rate 0 ;;
    mail) echo "$KITH" --store "$W/store" serve mail --smtp "127.0.0.1:$port" --submission 127.0.0.1:0 \
          --submissions 127.0.0.1:0 --imap "127.0.0.1:$IMAP_PORT" --resolver "127.0.0.1:$DNS_PORT" ;;
    *) echo "$KITH" --store "$W/store" serve "$service" --listen "127.0.0.1:$port" ;;
  esac
}

# probe MODE SERVICE TIMEOUT image|hosted [MIB]: runs probe.py against a fresh start.
probe() {
  local mode=$1 service=$2 timeout=$3 kind=$4 mib=${5:-128} port cmd ready
  port=$(free_port)
  IMAP_PORT=$(free_port)
  export IMAP_PORT
  [[ $service == sync ]] && point_laptop_at "$port"
  # What each prints once it serves: the image "SERVICE: serving ZONE on port N", kith
  # serve its endpoint ("dns://127.0.0.1:N", "https://127.0.0.1:N/").
  if [[ $kind == image ]]; then cmd=$(image_cmd "$service" "$port" "$mib") ready="$service: serving"
  else cmd=$(hosted_cmd "$service" "$port") ready="://127.0.0.1:$port"; fi
  # shellcheck disable=SC2086 # the command line is split on purpose (no spaces in $W)
  PROBE_READY=$ready PROBE_LOG="$W/$service-$kind.log" $PY "$W/probe.py" "$mode" "$service" "$port" "$timeout" -- $cmd
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "unikernel vs hosted, x86_64, QEMU -M microvm under $(tr a-z A-Z <<<"$ACCEL"), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $ACCEL == tcg ]]; then
  echo "  TCG, not KVM ($ACCEL_WHY): boot times are QEMU's emulator, not the 40 ms target, which is about KVM"
fi
rows=()
status=0
for service in $SERVICES; do
  echo "== $service"
  if ! "$KITH" build "$service" -o "$W/$service.img" >"$W/build-$service.out" 2>"$W/build-$service.err"; then
    if grep -q "cannot be built as an image yet" "$W/build-$service.err"; then
      echo "$service: skipped: \`kith build $service\` has no image yet"
      rows+=("$service|skipped: no image yet|||||||")
    else
      echo "$service: FAILED: kith build $service:" >&2
      tail -n 20 "$W/build-$service.err" >&2
      rows+=("$service|kith build failed|||||||")
      status=1
    fi
    continue
  fi
  [[ $service == mail ]] && start_resolver
  [[ $service == sync ]] && clone_laptop
  bytes=$(stat -c %s "$W/$service.img")
  target=1.5; [[ $service == mail ]] && target=2.5
  mb=$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b / 1e6}')
  verdict=$(awk -v b="$bytes" -v t="$target" 'BEGIN {print (b <= t * 1e6) ? "within" : "over"}')
  echo "image: $bytes bytes, $mb MB ($verdict the $target MB target)"

  # The answer itself, once: kdig's SOA from the image, or the 207 the probe insists on.
  if [[ $service == dns ]]; then
    port=$(free_port)
    # shellcheck disable=SC2046
    timeout 120 $(image_cmd dns "$port" 128) >"$W/dns-check.log" 2>&1 &
    check_pid=$!
    pids+=("$check_pid")
    soa=
    for _ in $(seq 60); do
      soa=$(kdig @127.0.0.1 -p "$port" +short +timeout=1 +retry=0 SOA "$ZONE" 2>/dev/null) && [[ -n $soa ]] && break
    done
    kill "$check_pid" 2>/dev/null; wait "$check_pid" 2>/dev/null || true
    if [[ $soa != *"$ZONE. "* ]]; then
      echo "dns: FAILED: the image does not answer kdig SOA (got '$soa')" >&2
      cat "$W/dns-check.log" >&2
      rows+=("$service|$bytes|$mb|kdig failed||||||"); status=1; continue
    fi
    echo "kdig SOA from the image: $soa"
  fi

  times_vm=() times_host=()
  for _ in $(seq "$ROUNDS"); do
    t=$(probe first "$service" 120 image) || { echo "$service: FAILED: the image did not answer:" >&2; cat "$W/$service-image.log" >&2; status=1; break; }
    times_vm+=("$t")
    t=$(probe first "$service" 60 hosted) || { echo "$service: FAILED: kith serve did not answer:" >&2; cat "$W/$service-hosted.log" >&2; status=1; break; }
    times_host+=("$t")
  done
  ((${#times_host[@]} == ROUNDS)) || { rows+=("$service|$bytes|$mb|failed||||||"); continue; }
  vm_ms=$(printf '%s\n' "${times_vm[@]}" | median)
  host_ms=$(printf '%s\n' "${times_host[@]}" | median)
  echo "first answer, image ($ACCEL): ${times_vm[*]} ms; median $vm_ms ms"
  echo "first answer, hosted: ${times_host[*]} ms; median $host_ms ms"

  # The smallest memory that serves: 128 MiB must, then bisect down to 8 MiB.
  # A failed probe's last console line (what the guest said, if anything) is kept.
  lo=8 hi=128 why=
  fits() {
    probe fits "$service" 60 image "$1" >/dev/null 2>"$W/fits.err" && return 0
    why=$(tr -d '\r' <"$W/$service-image.log" | grep . | tail -n 2 | paste -sd' ')
    return 1
  }
  if fits "$hi"; then
    if fits "$lo"; then
      hi=$lo
      echo "smallest --memory that serves: 8 MiB or less (8 is the lowest tried)"
    else
      while ((hi - lo > 1)); do
        mid=$(((lo + hi) / 2))
        if fits "$mid"; then hi=$mid; else lo=$mid; fi
      done
      echo "smallest --memory that serves: $hi MiB; $lo MiB does not (its last console lines: ${why:-none})"
    fi
    min_mib=$hi
  else
    min_mib="> 128"
    echo "$service: does not serve in 128 MiB" >&2
    status=1
  fi

  read -r vm_rps vm_lost < <(probe load "$service" 120 image) || { echo "$service: FAILED: load on the image:" >&2; cat "$W/$service-image.log" >&2; status=1; continue; }
  read -r host_rps host_lost < <(probe load "$service" 60 hosted) || { echo "$service: FAILED: load on kith serve" >&2; status=1; continue; }
  case $service in
    dns) count="$DNS_QUERIES queries" ;;
    sync) count="$SYNC_REQUESTS fetches" ;;
    mail) count="$MAIL_MESSAGES messages" ;;
    *) count="$DAV_REQUESTS PROPFINDs" ;;
  esac
  echo "requests/s over $count: image $vm_rps (lost $vm_lost), hosted $host_rps (lost $host_lost)"
  rows+=("$service|$bytes|$mb ($verdict $target)|$vm_ms|$host_ms|$(awk -v a="$vm_ms" -v b="$host_ms" 'BEGIN {printf "%.1fx", a / b}')|$min_mib|$vm_rps|$host_rps|$(awk -v a="$host_rps" -v b="$vm_rps" 'BEGIN {printf "%.1fx", a / b}')")
done

echo
echo "boot: median ms from starting kith run / kith serve to the first answered request ($ROUNDS starts each; image under $(tr a-z A-Z <<<"$ACCEL"))"
printf '%-9s %9s %-18s %9s %9s %8s %8s %10s %10s %8s\n' service bytes "MB (target)" "boot vm" "boot host" vm/host "min MiB" "rps vm" "rps host" host/vm
for row in "${rows[@]}"; do
  IFS='|' read -r s b m bv bh br mm rv rh rr <<<"$row"
  printf '%-9s %9s %-18s %9s %9s %8s %8s %10s %10s %8s\n' "$s" "$b" "$m" "$bv" "$bh" "$br" "$mm" "$rv" "$rh" "$rr"
done
exit "$status"
