#!/usr/bin/env bash
# Builds the example images with `kith build` and boots them with `kith run`
# under QEMU, on x86_64 (microvm) and aarch64 (virt), and checks what they
# do: the hello image (console, heap, threads, clocks, exit status), the HTTPS
# server (curl on 127.0.0.1 through QEMU's hostfwd, the guest's address from
# QEMU's DHCP server; an idle guest's CPU use; and on a tap device in a network
# namespace made for the test, over IPv6 and IPv4; x86_64 unless named),
# the UDP echo server (datagrams through a UDP hostfwd), outgoing TCP (the
# connect example reaching a server on the host over IPv4 and IPv6, blocking,
# through tokio, and refused; x86_64 only, the network code is the same on both),
# the disk image (/dev/vda kept across reboots and across SIGKILL to QEMU),
# the DNS service image (`kith build dns`; a zone written onto a disk image
# with `kith disk write`, answered over UDP and TCP, again after a reboot),
# the contacts service image (`kith build contacts`; CardDAV over HTTPS with the
# zone's certificate, driven by curl: 401 without a password, PROPFIND, a vCard
# PUT and read back byte for byte after a reboot, fsck and export on the host,
# and every acknowledged PUT kept when QEMU is killed mid-loop),
# the calendar service image (`kith build calendar`; CalDAV driven by the python
# caldav library: a calendar made, an event PUT and found by a time-range search,
# again after a reboot, fsck on the host),
# the sync service image (`kith build sync`; a laptop replica enrolled on the host
# clones from it over mutual TLS and pushes a change with `kith sync`, which the
# disk holds after the guest stops; x86_64 unless named),
# the contacts image as a replica (`--sync` to `kith serve sync` on the host: a
# card PUT to the guest reaches the host's store; with the sync service down, the
# guest and the host each edit the card, and once it is back the guest merges
# both edits property by property and pushes the merge; x86_64 unless named),
# and the mail service image (`kith build mail`; swaks delivers to a user, python's
# imaplib fetches the message over TLS byte for byte, relaying without AUTH is
# refused, fsck on the host; x86_64 unless named), and `kith up --unikernel` (the
# five service VMs from one store, each answering, all stopped with it; x86_64
# unless named). KVM where it
# works, else TCG (as on this machine kind, see README.md).
# By default aarch64 runs hello and the services only: the https, disk and echo
# examples exercise no aarch64 kernel path the services leave out (TLS over tokio,
# virtio-blk writes kept across SIGKILL, UDP: contacts and dns; the idle CPU woken
# by the NIC's interrupt: contacts), and connect's outgoing TCP is code shared by
# both architectures, so they run there only when named.
# Prints each build's and each check's seconds ("time: ...").
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
#
# usage: tests/run.sh [CHECK...]   CHECK: hello https tap disk echo connect dns contacts calendar sync mail up (default: all);
# $KITH_ARCHS picks the architectures (default "x86_64 aarch64").
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
"$here/scripts/install-toolchain.sh" x86_64 aarch64 || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
work=$(mktemp -d)
qemu_pid=
tap_ns=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    [ -n "$tap_ns" ] && ip netns del "$tap_ns" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

pass() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAILED: $1"; failed=$((failed + 1)); }

# The images are built and booted through the command line's `kith build` and
# `kith run` (the binary from $KITH_BIN, else built here).
kith=${KITH_BIN:-}
if [ -z "$kith" ]; then
    # shellcheck source=/dev/null
    source "$root/scripts/env.sh"
    cargo build -q --locked -p kith --manifest-path "$root/Cargo.toml" ||
        { echo "FAILED: build the kith binary"; echo "0 passed, 1 failed"; exit 1; }
    kith="${CARGO_TARGET_DIR:-$root/target}/debug/kith"
fi

# kith_run SECONDS IMAGE [KITH RUN OPTIONS...]: becomes (exec) `kith run`
# booting IMAGE for at most SECONDS, the console going to $work/console. Call
# it in a subshell, `(kith_run ...)`, or in the background, where $! is then
# its (timeout's) PID; `kith run` stops QEMU when it is terminated.
kith_run() {
    local seconds=$1 image=$2
    shift 2
    exec timeout "$seconds" "$kith" run "$image" --memory 128 "$@" >"$work/console" 2>&1
}

# boot SECONDS IMAGE [KITH RUN OPTIONS...]: runs the guest to its end; its exit
# status (which `kith run` passes on) goes to $work/status.
boot() {
    (kith_run "$@")
    echo $? >"$work/status"
}

guest_status() { cat "$work/status"; }

# console_has TEXT: the console has a line that is exactly TEXT.
console_has() { tr -d '\r' <"$work/console" | grep -qxF "$1"; }

# build NAME ARCH: builds an image with `kith build` quietly (its log is shown
# only on failure), checks that it reports the image and its size, and prints
# the image's path. NAME is an example, or a service ("dns", "contacts").
build() {
    local image="$work/$1-$2.img" log="$work/build-$1-$2" what=(--example "$1")
    # kith up builds its images itself; the tap check boots the https example.
    [ "$1" = up ] && { echo "(kith up)"; return 0; }
    [ "$1" = tap ] && what=(--example https)
    case $1 in dns | contacts | calendar | sync | mail) what=("$1") ;; replica) what=(contacts) ;; esac
    "$kith" build "${what[@]}" --arch "$2" -o "$image" >"$log.out" 2>"$log.err" ||
        { cat "$log.err" >&2; return 1; }
    grep -qE "^$image \\([0-9]+ KB\\)$" "$log.out" || { cat "$log.out" >&2; return 1; }
    echo "$image"
}

# free_port: a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# qemu_of IMAGE: the PID of the QEMU booting IMAGE (a path unique to this run).
# "[q]" keeps the pattern from matching another pgrep's own command line.
qemu_of() { pgrep -f "[q]emu-system.*-kernel $1"; }

check_hello() {
    local arch=$1 image=$2 started elapsed
    started=$(date +%s%N)
    boot 60 "$image" -- one two
    elapsed=$((($(date +%s%N) - started) / 1000000))
    # `kith run` takes KVM only where it can run these guests, and says so otherwise.
    echo "$arch accelerator: $(grep -q "running under TCG" "$work/console" && echo tcg || echo kvm)"
    for line in "hello from kith-unikernel" "heap ok: 1000 entries, sum 332833500" \
        "thread ok: worker done, counter 200" 'args: ["kith", "one", "two"]' \
        "resolve ok: [127.0.0.1:80]" \
        "sockets ok: tcp 0.0.0.0:8080, udp 0.0.0.0:5353, tcp6 [::]:8081, accept on the clone's mode would block: true"; do
        if console_has "$line"; then pass "$arch hello prints '$line'"; else fail "$arch hello prints '$line'"; fi
    done
    if grep -qE "clock ok: slept (2[0-9]|[3-9][0-9]) ms, unix time [0-9]{10} s" "$work/console"; then
        pass "$arch hello reads the clocks"
    else
        fail "$arch hello reads the clocks"
    fi
    if [ "$(guest_status)" = 7 ]; then
        pass "$arch hello exits with status 7 (${elapsed} ms)"
    else
        fail "$arch hello exit status: $(guest_status)"
        cat "$work/console"
    fi
}

# https_get PORT PATH [SECONDS]: the body curl gets from the guest.
https_get() { curl -sk --max-time "${3:-10}" "https://127.0.0.1:$1$2"; }

# idle_cpu PID: the percentage of a host CPU the process uses over 3 s.
idle_cpu() {
    local before after
    before=$(awk '{print $14 + $15}' "/proc/$1/stat")
    sleep 3
    after=$(awk '{print $14 + $15}' "/proc/$1/stat")
    echo $(((after - before) * 100 / $(getconf CLK_TCK) / 3))
}

check_https() {
    local arch=$1 image=$2 port started elapsed answer='' try limit
    port=$(free_port)
    started=$(date +%s%N)
    # The guest takes its IPv4 address from QEMU's DHCP server (`ip=dhcp`, as on
    # a cloud VM), so curl answered proves the lease was taken on.
    kith_run 300 "$image" --forward "$port:443" --kernel-options ip=dhcp -- 443 &
    qemu_pid=$!
    # Curl once the guest says it listens: QEMU's user network accepts on the
    # host at once and only retransmits its SYN to the guest later if the
    # guest was not listening yet, which would measure QEMU, not the guest.
    for _ in $(seq 1 3000); do
        grep -q "https: listening on port 443" "$work/console" && break
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.01
    done
    for try in $(seq 1 240); do
        limit=0.5
        [ "$try" -le 20 ] || limit=2
        answer=$(https_get "$port" /kith "$limit") && break
        answer=
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.05
    done
    elapsed=$((($(date +%s%N) - started) / 1000000))
    if [ "$answer" = "hello from kith-unikernel over https: /kith" ]; then
        pass "$arch https answers curl (${elapsed} ms from kith run)"
    else
        fail "$arch https answers curl (got '$answer')"
    fi
    if grep -q "IPv4 by DHCP" "$work/console" && console_has "[kith] net: 10.0.2.15/24 via 10.0.2.2"; then
        pass "$arch https took its address by DHCP"
    else
        fail "$arch https took its address by DHCP: $(cat "$work/console")"
    fi
    answer=$(https_get "$port" /again)
    if [ "$answer" = "hello from kith-unikernel over https: /again" ]; then
        pass "$arch https answers a second connection"
    else
        fail "$arch https answers a second connection (got '$answer')"
    fi
    # A burst of connections queues in the backlog instead of being reset.
    local pids=() i answered
    for i in $(seq 1 20); do
        curl -sk --max-time 60 "https://127.0.0.1:$port/burst$i" -o "$work/burst-$arch-$i" &
        pids+=($!)
    done
    wait "${pids[@]}"
    answered=$(cat "$work"/burst-"$arch"-* 2>/dev/null | grep -c "over https: /burst")
    if [ "$answered" = 20 ]; then
        pass "$arch https answers 20 parallel connections"
    else
        fail "$arch https answers 20 parallel connections (only $answered did)"
    fi
    # The NIC's interrupt wakes the CPU (GIC on aarch64, microvm's second
    # I/O APIC on x86_64), so an idle guest sleeps instead of polling.
    local qemu cpu limit=2
    qemu=$(qemu_of "$image")
    cpu=$(idle_cpu "$qemu")
    if [ "$cpu" -le "$limit" ]; then
        pass "$arch idle https guest uses ${cpu}% of a host CPU"
    else
        fail "$arch idle https guest uses ${cpu}% of a host CPU (more than ${limit}%)"
    fi
    kill "$qemu_pid" 2>/dev/null
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=
    if kill -0 "$qemu" 2>/dev/null; then
        fail "$arch stopping kith run stops QEMU"
    else
        pass "$arch stopping kith run stops QEMU"
    fi
    grep -q "https: listening on port 443" "$work/console" || cat "$work/console"
}

check_disk() {
    local arch=$1 image=$2 disk="$work/disk-$arch.raw" log="$work/log-$arch.raw"
    truncate -s 1M "$disk"
    boot 60 "$image" --disk "$disk" -- write "kept-across-boots"
    if [ "$(guest_status)" = 0 ] && console_has "wrote 64 bytes at 1000; 3 of 10 fit before the end"; then
        pass "$arch disk writes /dev/vda (unaligned, and short at the end)"
    else
        fail "$arch disk writes /dev/vda: $(cat "$work/console")"
    fi
    boot 60 "$image" --disk "$disk" -- read
    if [ "$(guest_status)" = 0 ] && console_has "read: kept-across-boots"; then
        pass "$arch disk reads back after a reboot what the previous boot wrote"
    else
        fail "$arch disk reads back after a reboot: $(cat "$work/console")"
    fi
    # SIGKILL to QEMU while the guest appends records: every record whose
    # write had returned ("acked N") must be there at the next boot.
    truncate -s 1M "$log"
    kith_run 120 "$image" --disk "$log" -- log &
    qemu_pid=$!
    for _ in $(seq 1 400); do
        [ "$(grep -ac acked "$work/console")" -ge 200 ] && break
        sleep 0.05
    done
    kill -KILL "$(qemu_of "$image")"
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=
    local acked intact
    acked=$(grep -ao "acked [0-9]*" "$work/console" | tail -n1 | cut -d' ' -f2)
    boot 60 "$image" --disk "$log" -- check
    intact=$(grep -ao "intact: [0-9]*" "$work/console" | cut -d' ' -f2)
    if [ -n "$acked" ] && [ -n "$intact" ] && [ "$intact" -gt "$acked" ]; then
        pass "$arch disk keeps all $((acked + 1)) acknowledged records after QEMU is killed ($intact intact)"
    else
        fail "$arch disk after SIGKILL: acked up to '${acked}', intact '${intact}'"
    fi
}

# udp_exchange PORT TEXT...: sends each TEXT as a datagram to 127.0.0.1:PORT
# (retrying the first until the guest listens) and prints each answer.
udp_exchange() {
    python3 - "$@" <<'PY'
import socket, sys
port, texts = int(sys.argv[1]), sys.argv[2:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for i, text in enumerate(texts):
    for _ in range(100 if i == 0 else 4):
        s.sendto(text.encode(), ("127.0.0.1", port))
        try:
            print(s.recvfrom(1500)[0].decode())
            break
        except socket.timeout:
            pass
PY
}

check_echo() {
    local arch=$1 image=$2 port answers
    port=$(free_port)
    kith_run 120 "$image" --forward "udp:$port:7" -- 7 &
    qemu_pid=$!
    answers=$(udp_exchange "$port" one two)
    if [ "$answers" = $'echo: one\necho: two' ]; then
        pass "$arch echo answers UDP datagrams"
    else
        fail "$arch echo answers UDP datagrams (got '$answers')"
    fi
    python3 -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"quit", ("127.0.0.1", int(sys.argv[1])))' "$port"
    wait "$qemu_pid"
    local status=$?
    qemu_pid=
    if [ "$status" = 3 ] && grep -qE "^echo: quit from 10\.0\.2\.2:[0-9]+" "$work/console"; then
        pass "$arch echo sees the sender's address and exits with status 3"
    else
        fail "$arch echo quit (status $status): $(cat "$work/console")"
    fi
}

check_connect() {
    local arch=$1 image=$2 server port closed family host
    # Over IPv4 to 10.0.2.2, and over IPv6 to fec0::2: QEMU's user network
    # takes both to the host's loopback (127.0.0.1, ::1).
    for family in 4 6; do
        rm -f "$work/pong.port"
        # A server on the host's loopback answering a line "X" with "pong X".
        python3 - "$work/pong.port" "$family" >/dev/null 2>&1 <<'PY' &
import socket, socketserver, sys
class Pong(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"pong " + self.rfile.readline().strip() + b"\n")
class Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6 if sys.argv[2] == "6" else socket.AF_INET
server = Server(("::1" if sys.argv[2] == "6" else "127.0.0.1", 0), Pong)
open(sys.argv[1], "w").write(str(server.server_address[1]))
server.serve_forever()
PY
        server=$!
        for _ in $(seq 100); do [ -s "$work/pong.port" ] && break; sleep 0.1; done
        port=$(cat "$work/pong.port")
        closed=$(free_port)
        host=10.0.2.2
        [ "$family" = 6 ] && host="[fec0::2]"
        boot 120 "$image" -- "$host:$port" "$closed"
        kill "$server" 2>/dev/null
        wait "$server" 2>/dev/null
        if [ "$(guest_status)" = 0 ] && console_has "connect: blocking: pong blocking" &&
            console_has "connect: tokio: pong tokio" &&
            console_has "connect: read timeout: gave up after the timeout" &&
            console_has "connect: closed port: Err(ConnectionRefused)"; then
            pass "$arch connect over IPv$family reaches a host server (std and tokio), times a read out and sees a refusal"
        else
            fail "$arch connect over IPv$family (status $(guest_status)): $(cat "$work/console")"
        fi
    done
}

# dig_answer PORT [KDIG OPTIONS...]: kdig's short answer from the guest, retried
# over UDP until the guest answers (at most 60 s).
dig_answer() {
    local port=$1 answer
    shift
    for _ in $(seq 1 120); do
        answer=$(kdig @127.0.0.1 -p "$port" +short +timeout=1 +retry=0 "$@" 2>/dev/null) &&
            [ -n "$answer" ] && { echo "$answer"; return 0; }
        sleep 0.4
    done
    return 1
}

# dns_zone: a store holding the zone test.home.arpa (device "board"), made once.
dns_zone() {
    local store="$work/zone-store"
    [ -d "$store" ] ||
        "$kith" --store "$store" init --zone test.home.arpa --device board --address 10.0.2.15 >/dev/null ||
        return 1
    echo "$store"
}

# dns_boot ARCH IMAGE DISK PORT WHEN: boots the DNS image on DISK, checks that
# it answers SOA over UDP and SRV over TCP, and stops it. WHEN names the boot.
dns_boot() {
    local arch=$1 image=$2 disk=$3 port=$4 when=$5 started elapsed soa srv
    started=$(date +%s%N)
    : >"$work/console"
    kith_run 300 "$image" --disk "$disk" --forward "udp:$port:53" --forward "$port:53" -- 53 &
    qemu_pid=$!
    # kdig once the guest says it serves: a query sent earlier costs kdig's 1 s timeout.
    for _ in $(seq 1 6000); do
        grep -q "dns: serving" "$work/console" && break
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.01
    done
    soa=$(dig_answer "$port" SOA test.home.arpa)
    elapsed=$((($(date +%s%N) - started) / 1000000))
    if [[ "$soa" == *"test.home.arpa. "* ]]; then
        pass "$arch dns answers SOA over UDP $when (${elapsed} ms from kith run)"
    else
        fail "$arch dns answers SOA over UDP $when (got '$soa'): $(cat "$work/console")"
    fi
    srv=$(kdig @127.0.0.1 -p "$port" +tcp +short +timeout=5 SRV _kith-sync._tcp.test.home.arpa 2>&1)
    if [ "$srv" = "0 1 7447 board.test.home.arpa." ]; then
        pass "$arch dns answers SRV over TCP $when"
    else
        fail "$arch dns answers SRV over TCP $when (got '$srv')"
    fi
    kill "$qemu_pid" 2>/dev/null
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=
}

check_dns() {
    local arch=$1 image=$2 disk="$work/zone-$arch.raw" store port fsck
    if store=$(dns_zone) && "$kith" --store "$store" disk write "$disk" --size 16 >/dev/null; then
        pass "$arch kith disk write puts the zone's store onto a disk image"
    else
        fail "$arch kith disk write"
        return
    fi
    port=$(free_port)
    dns_boot "$arch" "$image" "$disk" "$port" "from the disk"
    dns_boot "$arch" "$image" "$disk" "$port" "after a reboot"
    if fsck=$("$kith" --store "disk:$disk" fsck 2>&1); then
        pass "$arch kith fsck on the disk image after the VM stopped: ${fsck##*: }"
    else
        fail "$arch kith fsck on the disk image: $fsck"
    fi
}

# contacts_site: a store with the zone test.home.arpa and the DAV account ada
# (password "ada-pw"), made once; the zone's root certificate goes to $work/root.pem.
contacts_site() {
    local store="$work/contacts-store"
    if [ ! -d "$store" ]; then
        "$kith" --store "$store" init --zone test.home.arpa --device board --address 10.0.2.15 >/dev/null &&
            printf 'ada-pw\n' | "$kith" --store "$store" user add ada >/dev/null 2>&1 &&
            "$kith" --store "$store" identity root-cert >"$work/root.pem" || return 1
    fi
    echo "$store"
}

# dav PORT METHOD PATH [CURL OPTIONS...]: curl to the contacts guest under its
# certificate's name (dav.test.home.arpa, verified against the zone's root);
# prints the body, then the status code on a line of its own.
dav() {
    local port=$1 method=$2 path=$3
    shift 3
    curl -sS --max-time 30 --cacert "$work/root.pem" \
        --resolve "dav.test.home.arpa:$port:127.0.0.1" -X "$method" -o - -w '\n%{http_code}' \
        "$@" "https://dav.test.home.arpa:$port/$path"
}

# dav_code PORT METHOD PATH [CURL OPTIONS...]: only the status code.
dav_code() { dav "$@" | tail -n1; }

# dav_first PORT METHOD PATH [CURL OPTIONS...]: dav for the first request after a
# boot, retried while the connection fails (code 000): QEMU's user network
# sometimes refuses or drops the very first forwarded connection of a new
# QEMU although the guest listens (seen after a reboot on the same port).
dav_first() {
    local answer
    for _ in $(seq 1 20); do
        answer=$(dav "$@" 2>/dev/null)
        [ "$(tail -n1 <<<"$answer")" != 000 ] && break
        sleep 0.25
    done
    printf '%s' "$answer"
}

# dav_boot NAME IMAGE DISK PORT [GUEST_PORT [ARGS...]]: boots the service image
# NAME (contacts, calendar, sync) listening on GUEST_PORT (default 443) forwarded
# from PORT, with the program's further ARGS (see guest_boot).
dav_boot() {
    guest_boot "$1" "$2" "$3" --forward "$4:${5:-443}" -- "${5:-443}" "${@:6}"
}

# guest_boot NAME IMAGE DISK [KITH RUN OPTIONS...]: boots the service image NAME
# on DISK in the background ($qemu_pid) and waits until it says it serves;
# $listening is then the milliseconds that took.
guest_boot() {
    local name=$1 image=$2 disk=$3 started
    shift 3
    : >"$work/console"
    started=$(date +%s%N)
    kith_run 300 "$image" --disk "$disk" "$@" &
    qemu_pid=$!
    for _ in $(seq 1 6000); do
        grep -q "$name: serving" "$work/console" && break
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.01
    done
    listening=$((($(date +%s%N) - started) / 1000000))
}

# stop_guest IMAGE: stops the `kith run` in $qemu_pid and waits until IMAGE's
# QEMU is gone (so the next boot can forward the same port).
stop_guest() {
    kill "$qemu_pid" 2>/dev/null
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=
    for _ in $(seq 1 500); do
        qemu_of "$1" >/dev/null || return 0
        sleep 0.02
    done
}

# dav_disk NAME ARCH: writes the DAV site (and the dav key) onto the disk image
# $work/NAME-ARCH.raw for the NAME guest; fails (and says so) if it cannot.
dav_disk() {
    local store
    if store=$(contacts_site) && "$kith" --store "$store" disk write "$work/$1-$2.raw" --size 16 >/dev/null; then
        pass "$2 kith disk write puts the $1 site (and the dav key) onto a disk image"
    else
        fail "$2 kith disk write for $1"
        return 1
    fi
}

check_contacts() {
    local arch=$1 image=$2 disk="$work/contacts-$arch.raw" port listening answered code card
    dav_disk contacts "$arch" || return
    port=$(free_port)
    dav_boot contacts "$image" "$disk" "$port"
    local started
    started=$(date +%s%N)
    code=$(dav_first "$port" PROPFIND contacts/ada/ -H "Depth: 0" | tail -n1)
    answered=$((listening + ($(date +%s%N) - started) / 1000000))
    if [ "$code" = 401 ]; then
        pass "$arch contacts answers 401 without a password (${answered} ms from kith run, listening at ${listening} ms)"
    else
        fail "$arch contacts without a password (got '$code'): $(cat "$work/console")"
    fi
    card=$'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:vm-1\r\nFN:Ada VM\r\nN:VM;Ada;;;\r\nEMAIL;TYPE=work:ada@example.org\r\nEND:VCARD\r\n'
    printf '%s' "$card" >"$work/card.vcf"
    code=$(dav_code "$port" MKCOL contacts/ada/default/ -u ada:ada-pw)
    local put
    put=$(dav_code "$port" PUT contacts/ada/default/vm-1.vcf -u ada:ada-pw \
        -H "Content-Type: text/vcard" --data-binary "@$work/card.vcf")
    if [ "$code" = 201 ] && [ "$put" = 201 ]; then
        pass "$arch contacts MKCOL and PUT of a vCard over https (201, 201)"
    else
        fail "$arch contacts MKCOL ($code) and PUT ($put)"
    fi
    local listing
    listing=$(dav "$port" PROPFIND contacts/ada/default/ -u ada:ada-pw -H "Depth: 1")
    if [ "$(tail -n1 <<<"$listing")" = 207 ] && grep -q "/contacts/ada/default/vm-1.vcf" <<<"$listing"; then
        pass "$arch contacts PROPFIND Depth 1 lists the card (207)"
    else
        fail "$arch contacts PROPFIND Depth 1: $listing"
    fi
    # The https example checks this too, but does not run on aarch64 by default.
    local cpu
    cpu=$(idle_cpu "$(qemu_of "$image")")
    if [ "$cpu" -le 2 ]; then
        pass "$arch idle contacts guest uses ${cpu}% of a host CPU"
    else
        fail "$arch idle contacts guest uses ${cpu}% of a host CPU (more than 2%)"
    fi
    stop_guest "$image"
    dav_boot contacts "$image" "$disk" "$port"
    # The body, without the line dav adds with the status code ("\n200").
    dav_first "$port" GET contacts/ada/default/vm-1.vcf -u ada:ada-pw | head -c -4 >"$work/got.vcf"
    if cmp -s "$work/card.vcf" "$work/got.vcf"; then
        pass "$arch contacts GET after a reboot returns the card byte for byte (listening at ${listening} ms)"
    else
        fail "$arch contacts GET after a reboot: $(cat "$work/got.vcf" 2>/dev/null) $(cat "$work/console")"
    fi
    contacts_kill "$arch" "$image" "$disk" "$port"
    local fsck
    if fsck=$("$kith" --store "disk:$disk" fsck 2>&1); then
        pass "$arch kith fsck on the contacts disk after SIGKILL: ${fsck##*: }"
    else
        fail "$arch kith fsck on the contacts disk: $fsck"
    fi
    rm -rf "$work/export-$arch"
    if "$kith" --store "disk:$disk" export /contacts/ada/default "$work/export-$arch" >/dev/null 2>&1 &&
        cmp -s "$work/card.vcf" "$work/export-$arch/vm-1.vcf"; then
        pass "$arch kith export from the disk image has the card byte for byte"
    else
        fail "$arch kith export from the disk image"
    fi
}

# contacts_kill ARCH IMAGE DISK PORT: with the guest of dav_boot running,
# PUTs cards in a loop, kills QEMU with SIGKILL in the middle, and checks after
# a reboot that every PUT answered 201 is there.
contacts_kill() {
    local arch=$1 image=$2 disk=$3 port=$4 i code acked=() missing=0 listening killed=no
    for i in $(seq 1 40); do
        printf 'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:kill-%s\r\nFN:Card %s\r\nEND:VCARD\r\n' "$i" "$i" >"$work/kill.vcf"
        code=$(dav_code "$port" PUT "contacts/ada/default/kill-$i.vcf" -u ada:ada-pw --max-time 10 \
            -H "Content-Type: text/vcard" --data-binary "@$work/kill.vcf" 2>/dev/null)
        [ "$code" = 201 ] && acked+=("$i")
        if [ "$i" = 6 ]; then
            # shellcheck disable=SC2046 # one PID per word
            (sleep 0.3 && kill -KILL $(qemu_of "$image")) &
        fi
        if [ "$i" -gt 6 ] && ! qemu_of "$image" >/dev/null; then
            killed=yes
            break
        fi
    done
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=
    dav_boot contacts "$image" "$disk" "$port"
    dav_first "$port" OPTIONS contacts/ >/dev/null
    for i in "${acked[@]}"; do
        [ "$(dav_code "$port" GET "contacts/ada/default/kill-$i.vcf" -u ada:ada-pw)" = 200 ] ||
            missing=$((missing + 1))
    done
    stop_guest "$image"
    if [ "$killed" = yes ] && [ "${#acked[@]}" -gt 0 ] && [ "$missing" = 0 ]; then
        pass "$arch contacts keeps all ${#acked[@]} acknowledged PUTs after QEMU is killed mid-loop"
    else
        fail "$arch contacts after SIGKILL (killed: $killed): $missing of ${#acked[@]} acknowledged PUTs missing"
    fi
}

# caldav PORT ARGS...: tests/caldav_event.py (the python caldav library) against
# the calendar guest as ada, under the certificate's name; prints its output.
caldav() {
    local port=$1
    shift
    timeout 120 /usr/bin/python3 "$here/tests/caldav_event.py" "https://dav.test.home.arpa:$port/" \
        "$work/root.pem" ada ada-pw "$@" 2>&1 | tail -n3
}

check_calendar() {
    local arch=$1 image=$2 disk="$work/calendar-$arch.raw" port listening code answer fsck
    dav_disk calendar "$arch" || return
    port=$(free_port)
    dav_boot calendar "$image" "$disk" "$port"
    code=$(dav_first "$port" PROPFIND calendar/ada/ -H "Depth: 0" | tail -n1)
    if [ "$code" = 401 ]; then
        pass "$arch calendar answers 401 without a password (listening at ${listening} ms)"
    else
        fail "$arch calendar without a password (got '$code'): $(cat "$work/console")"
    fi
    answer=$(caldav "$port" put)
    if [ "$answer" = ok ]; then
        pass "$arch calendar: python caldav makes a calendar, PUTs an event and finds it by time range"
    else
        fail "$arch calendar: python caldav put: $answer"
    fi
    # The check itself: asked for an event that was never PUT, it must fail.
    answer=$(caldav "$port" get never-put)
    if [ "$answer" != ok ] && [[ "$answer" == *"not [never-put]"* ]]; then
        pass "$arch calendar: the time-range check fails for an event that is not there"
    else
        fail "$arch calendar: the time-range check passed for an event never PUT: $answer"
    fi
    stop_guest "$image"
    dav_boot calendar "$image" "$disk" "$port"
    dav_first "$port" OPTIONS calendar/ >/dev/null
    answer=$(caldav "$port" get)
    if [ "$answer" = ok ]; then
        pass "$arch calendar: the event is found by time range after a reboot (listening at ${listening} ms)"
    else
        fail "$arch calendar after a reboot: $answer $(cat "$work/console")"
    fi
    stop_guest "$image"
    if fsck=$("$kith" --store "disk:$disk" fsck 2>&1); then
        pass "$arch kith fsck on the calendar disk: ${fsck##*: }"
    else
        fail "$arch kith fsck on the calendar disk: $fsck"
    fi
}

# sync_with KITH_ARGS...: runs a `kith` command that reaches the sync guest,
# retried while the connection fails (see dav_first); its output goes to
# $work/sync.out.
sync_with() {
    for _ in $(seq 1 10); do
        "$kith" "$@" >"$work/sync.out" 2>&1 && return 0
        grep -qiE "connect|refused|reset|closed|eof|timed out" "$work/sync.out" || return 1
        sleep 0.5
    done
    return 1
}

check_sync() {
    local arch=$1 image=$2 disk="$work/sync-$arch.raw" store laptop="$work/laptop-$arch" port
    local device="laptop-${arch//_/-}"
    local board_note="written on the board before the disk" laptop_note="pushed from the laptop"
    if store=$(contacts_site) &&
        printf '%s' "$board_note" | "$kith" --store "$store" put "/notes/board-$arch" - >/dev/null &&
        "$kith" --store "$store" device add "$device" -o "$work/$device.json" >/dev/null &&
        "$kith" --store "$store" disk write "$disk" --size 16 >/dev/null; then
        pass "$arch kith disk write puts the zone (and the sync key) onto a disk image"
    else
        fail "$arch kith disk write for sync"
        return
    fi
    port=$(free_port)
    dav_boot sync "$image" "$disk" "$port" 7447
    if sync_with clone --bundle "$work/$device.json" "kith://127.0.0.1:$port" "$laptop" &&
        [ "$("$kith" --store "$laptop" get "/notes/board-$arch")" = "$board_note" ]; then
        pass "$arch a new laptop replica clones from the sync guest (listening at ${listening} ms) and has the board's note"
    else
        fail "$arch kith clone from the sync guest: $(cat "$work/sync.out") $(cat "$work/console")"
    fi
    if printf '%s' "$laptop_note" | "$kith" --store "$laptop" put "/notes/laptop-$arch" - >/dev/null &&
        sync_with --store "$laptop" sync && ! grep -qi conflict "$work/sync.out"; then
        pass "$arch kith sync pushes the laptop's note to the sync guest"
    else
        fail "$arch kith sync to the sync guest: $(cat "$work/sync.out")"
    fi
    stop_guest "$image"
    if fsck=$("$kith" --store "disk:$disk" fsck 2>&1) &&
        [ "$("$kith" --store "disk:$disk" get "/notes/laptop-$arch")" = "$laptop_note" ]; then
        pass "$arch the sync disk passes kith fsck and holds the pushed note: ${fsck##*: }"
    else
        fail "$arch the sync disk after the push: $fsck"
    fi
}

# swaks_to PORT ARGS...: swaks against the guest's port, retried while the
# connection fails (see dav_first); its transcript goes to $work/swaks.out.
swaks_to() {
    local port=$1
    shift
    for _ in $(seq 1 10); do
        timeout 120 swaks --server "127.0.0.1:$port" --timeout 60 "$@" >"$work/swaks.out" 2>&1
        grep -q "^<" "$work/swaks.out" && return 0
        sleep 0.5
    done
}

check_mail() {
    local arch=$1 image=$2 disk="$work/mail-$arch.raw" store dns_pid resolver answer
    if store=$(contacts_site) && : >"$work/empty.mbox" &&
        "$kith" --store "$store" import "$work/empty.mbox" /mail/ada/INBOX >/dev/null &&
        "$kith" --store "$store" disk write "$disk" --size 32 >/dev/null; then
        pass "$arch kith disk write puts ada's mailbox (and the mail and DKIM keys) onto a disk image"
    else
        fail "$arch kith disk write for mail"
        return
    fi
    # The zone's own DNS server on the host answers the guest's SPF, DKIM and DMARC
    # questions (refusing names outside the zone), so nothing leaves the machine.
    "$kith" --store "$store" serve dns --listen 127.0.0.1:0 >"$work/dns.out" 2>&1 &
    dns_pid=$!
    for _ in $(seq 1 100); do grep -q "^dns://" "$work/dns.out" && break; sleep 0.1; done
    resolver="10.0.2.2:$(head -1 "$work/dns.out" | sed 's/.*://')"
    smtp_port=$(free_port) imap_port=$(free_port)
    guest_boot mail "$image" "$disk" --forward "$smtp_port:25" --forward "$imap_port:993" -- "$resolver"
    # swaks ends the data it is given with a line break of its own: message.eml is
    # what the server receives.
    printf 'From: bob@example.org\r\nTo: ada@test.home.arpa\r\nSubject: booted\r\n\r\nKept byte for byte: caf\xc3\xa9.' >"$work/message.data"
    printf '\r\n' | cat "$work/message.data" - >"$work/message.eml"
    swaks_to "$smtp_port" --to ada@test.home.arpa --from bob@example.org --data "@$work/message.data"
    if grep -q "^<-  250 2.0.0 Ok: delivered" "$work/swaks.out"; then
        pass "$arch swaks delivers to ada on the mail guest (listening at ${listening} ms)"
    else
        fail "$arch swaks to the mail guest: $(tail -5 "$work/swaks.out") $(cat "$work/console")"
    fi
    answer=$(timeout 120 /usr/bin/python3 "$here/tests/imap_fetch.py" "$imap_port" "$work/root.pem" \
        mail.test.home.arpa ada ada-pw "$work/message.eml" 2>&1)
    if [ "$answer" = ok ]; then
        pass "$arch imaplib fetches the message over TLS, byte for byte"
    else
        fail "$arch imaplib on the mail guest: $answer"
    fi
    swaks_to "$smtp_port" --to someone@elsewhere.example --from bob@example.org
    if grep -qE "^<\*\* +55[0-9]" "$work/swaks.out"; then
        pass "$arch the mail guest refuses to relay to another domain without AUTH"
    else
        fail "$arch relaying through the mail guest: $(tail -5 "$work/swaks.out")"
    fi
    stop_guest "$image"
    kill "$dns_pid" 2>/dev/null
    wait "$dns_pid" 2>/dev/null
    if fsck=$("$kith" --store "disk:$disk" fsck 2>&1); then
        pass "$arch kith fsck on the mail disk: ${fsck##*: }"
    else
        fail "$arch kith fsck on the mail disk: $fsck"
    fi
}

# kith up --unikernel: every service as its own VM from one store (a site of its
# own, with ada's INBOX); kith status lists their endpoints, each answers a real
# client (kdig, curl, swaks), and stopping kith up stops every QEMU.
check_up() {
    local arch=$1 store="$work/up-store-$1" up_pid lines=0 port
    if "$kith" --store "$store" init --zone up.home.arpa --device board --address 10.0.2.15 >/dev/null &&
        printf 'ada-pw\n' | "$kith" --store "$store" user add ada >/dev/null 2>&1 &&
        "$kith" --store "$store" identity root-cert >"$work/up-root.pem" &&
        : >"$work/empty.mbox" &&
        "$kith" --store "$store" import "$work/empty.mbox" /mail/ada/INBOX >/dev/null &&
        "$kith" --store "$store" device add laptop -o "$work/up-laptop-$arch.json" >/dev/null; then
        :
    else
        fail "$arch a site for kith up --unikernel"
        return
    fi
    "$kith" --store "$store" up --unikernel --arch "$arch" >"$work/up.out" 2>"$work/up.err" &
    up_pid=$!
    # Eight endpoints: dns, sync, contacts, calendar and mail's four.
    for _ in $(seq 1 3000); do
        lines=$(wc -l <"$work/up.out")
        [ "$lines" -ge 8 ] && break
        kill -0 "$up_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$lines" -ge 8 ] &&
        [ "$("$kith" --store "$store" status --json | python3 -c 'import json, sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["services"]))')" = "calendar contacts dns mail sync" ]; then
        pass "$arch kith up --unikernel boots the five service VMs and kith status lists them"
    else
        fail "$arch kith up --unikernel: $(cat "$work/up.out" "$work/up.err" | tail -20)"
        kill "$up_pid" 2>/dev/null
        wait "$up_pid" 2>/dev/null
        return
    fi
    endpoint() { grep "^$1://" "$work/up.out" | head -1 | sed 's/.*://; s|/$||'; }
    port=$(endpoint dns)
    if kdig @127.0.0.1 -p "$port" +short +timeout=5 +retry=3 SOA up.home.arpa | grep -q "up.home.arpa"; then
        pass "$arch the DNS VM of kith up answers kdig SOA"
    else
        fail "$arch the DNS VM of kith up (port $port)"
    fi
    local dav_port
    dav_port=$(endpoint https)
    # up_dav METHOD PATH [CURL OPTIONS...]: signed-in curl to the contacts VM; prints
    # the body, then the status code on a line of its own.
    up_dav() {
        local method=$1 path=$2
        shift 2
        curl -sS --max-time 60 --retry 3 --cacert "$work/up-root.pem" -u ada:ada-pw \
            --resolve "dav.up.home.arpa:$dav_port:127.0.0.1" -X "$method" -o - \
            -w '\n%{http_code}' "$@" "https://dav.up.home.arpa:$dav_port/$path"
    }
    if [ "$(up_dav PROPFIND contacts/ada/ -H 'Depth: 0' | tail -n1)" = 207 ]; then
        pass "$arch the contacts VM of kith up answers a signed-in PROPFIND"
    else
        fail "$arch the contacts VM of kith up (port $dav_port)"
    fi
    check_up_sync "$arch" "$store"
    swaks_to "$(endpoint smtp)" --to ada@up.home.arpa --from bob@example.org \
        --header "Subject: kith vm test"
    if grep -q "^<-  250 2.0.0 Ok: delivered" "$work/swaks.out"; then
        pass "$arch the mail VM of kith up takes mail for ada"
    else
        fail "$arch the mail VM of kith up: $(tail -5 "$work/swaks.out")"
    fi
    # The message reaches the laptop's replica through the sync VM.
    local message='' folder
    for _ in $(seq 1 60); do
        "$kith" --store "$work/up-laptop-$arch" sync >/dev/null 2>&1
        for folder in .cur .new; do
            message=$("$kith" --store "$work/up-laptop-$arch" ls "/mail/ada/INBOX/$folder" 2>/dev/null | grep '\.eml$' | head -1)
            [ -n "$message" ] && message="/mail/ada/INBOX/$folder/$message" && break
        done
        [ -n "$message" ] && break
        sleep 1
    done
    if [ -n "$message" ] && "$kith" --store "$work/up-laptop-$arch" get "$message" | grep -q "^Subject: kith vm test"; then
        pass "$arch mail the mail VM took reaches a laptop through the sync VM"
    else
        fail "$arch mail from the mail VM on the laptop: $(tail -5 "$store/local/unikernel/mail.console")"
    fi
    kill "$up_pid"
    wait "$up_pid" 2>/dev/null
    if ! pgrep -f "[q]emu-system.*$store/local/unikernel" >/dev/null &&
        [ "$("$kith" --store "$store" status --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["services"]))')" = 0 ]; then
        pass "$arch stopping kith up --unikernel stops every VM and kith status lists none"
    else
        fail "$arch after kith up --unikernel stopped: $(pgrep -af "[q]emu-system.*$store" | head -3)"
    fi
    # Every disk (read once the VMs are stopped) holds its own service's secrets and no
    # other's: the service key, and the DKIM key for mail, the TSIG secrets for DNS.
    disk_secrets() {
        local disk="disk:$store/local/unikernel/$1.raw"
        "$kith" --store "$disk" --branch local/services ls / | tr '\n' ' '
        "$kith" --store "$disk" --branch local/services ls /services | tr '\n' ' '
    }
    if [ "$(disk_secrets contacts)" = "services/ dav.key " ] &&
        [ "$(disk_secrets mail)" = "dkim.key services/ mail.key " ] &&
        [ "$(disk_secrets dns)" = "services/ tsig/ dns.key " ]; then
        pass "$arch each VM's disk holds only its own service's secrets"
    else
        fail "$arch the secrets on the VMs' disks: $(disk_secrets contacts)/ $(disk_secrets mail)/ $(disk_secrets dns)"
    fi
}

# The contacts image syncing with `kith serve sync` on the host's store (the
# guest reaches it as 10.0.2.2): a PUT reaches the host; edits made on both
# sides while the sync service is down are merged by the guest once it is back.
check_replica() {
    local arch=$1 image=$2 disk="$work/replica-$arch.raw" site store="$work/replica-store-$1"
    local port sync_port sync_pid found='' path=/contacts/ada/default/grace.vcf
    # A copy of the DAV site (the same identity), so the other checks' site stays as made.
    if ! site=$(contacts_site) || ! cp -a "$site" "$store" ||
        ! "$kith" --store "$store" disk write "$disk" --size 16 --key dav >/dev/null; then
        fail "$arch kith disk write for the replica check"
        return
    fi
    port=$(free_port)
    sync_port=$(free_port)
    serve_sync() {
        "$kith" --store "$store" serve sync --listen "127.0.0.1:$sync_port" >"$work/replica-sync.out" 2>&1 &
        sync_pid=$!
    }
    serve_sync
    dav_boot contacts "$image" "$disk" "$port" 443 --sync "10.0.2.2:$sync_port"
    local base=$'BEGIN:VCARD\r\nVERSION:4.0\r\nUID:replica-grace\r\nFN:Grace Hopper\r\nEND:VCARD\r\n'
    printf '%s' "$base" >"$work/replica-base.vcf"
    dav_code "$port" MKCOL contacts/ada/default/ -u ada:ada-pw >/dev/null
    local put
    put=$(dav_code "$port" PUT "${path#/}" -u ada:ada-pw -H "Content-Type: text/vcard" \
        --data-binary "@$work/replica-base.vcf")
    for _ in $(seq 1 60); do
        "$kith" --store "$store" get "$path" 2>/dev/null | cmp -s - "$work/replica-base.vcf" && found=yes && break
        sleep 0.5
    done
    if [ "$put" = 201 ] && [ -n "$found" ]; then
        pass "$arch a card PUT to the contacts guest reaches the host's store through its sync service"
    else
        fail "$arch the guest's card on the host (PUT $put): $(tail -5 "$work/console")"
    fi
    # Both sides edit the card while the sync service is down.
    kill "$sync_pid"
    wait "$sync_pid" 2>/dev/null
    local crlf=$'\r\n'
    printf '%s' "${base/END:VCARD/TEL;TYPE=cell:+1 555 0101${crlf}END:VCARD}" >"$work/replica-guest.vcf"
    printf '%s' "${base/END:VCARD/EMAIL:grace@example.org${crlf}END:VCARD}" >"$work/replica-host.vcf"
    put=$(dav_code "$port" PUT "${path#/}" -u ada:ada-pw -H "Content-Type: text/vcard" \
        --data-binary "@$work/replica-guest.vcf")
    "$kith" --store "$store" put "$path" "$work/replica-host.vcf" >/dev/null
    serve_sync
    found=''
    for _ in $(seq 1 120); do
        "$kith" --store "$store" get "$path" >"$work/replica-got.vcf" 2>/dev/null
        grep -q "^TEL;TYPE=cell:+1 555 0101" "$work/replica-got.vcf" &&
            grep -q "^EMAIL:grace@example.org" "$work/replica-got.vcf" && found=yes && break
        sleep 0.5
    done
    if [[ $put == 20[04] ]] && [ -n "$found" ] &&
        "$kith" --store "$store" log | grep -q "Z contacts-image sync: merge main of sync"; then
        pass "$arch edits made on the guest and the host while apart are merged by the guest, property by property"
    else
        fail "$arch the guest's merge (PUT $put): $(cat "$work/replica-got.vcf") $(tail -5 "$work/console")"
    fi
    dav "$port" GET "${path#/}" -u ada:ada-pw | head -c -4 >"$work/replica-served"
    if cmp -s "$work/replica-served" "$work/replica-got.vcf"; then
        pass "$arch the guest serves the merged card, byte for byte as the host holds it"
    else
        fail "$arch the merged card on the guest: $(cat "$work/replica-served")"
    fi
    kill "$sync_pid"
    wait "$sync_pid" 2>/dev/null
    stop_guest "$image"
}

# check_up_sync ARCH STORE: with kith up's VMs running, a card PUT to the contacts
# VM reaches a laptop cloned from the sync VM, byte for byte, and a card the laptop
# syncs reaches the contacts VM.
check_up_sync() {
    local arch=$1 store=$2 laptop="$work/up-laptop-$1" code put found=''
    local card=$'BEGIN:VCARD\r\nVERSION:4.0\r\nUID:up-grace\r\nFN:Grace Hopper\r\nEMAIL;TYPE=work:grace@example.org\r\nX-SOCIALPROFILE;TYPE=mastodon:https://example.org/@grace\r\nEND:VCARD\r\n'
    printf '%s' "$card" >"$work/up-grace.vcf"
    code=$(up_dav MKCOL contacts/ada/default/ | tail -n1)
    put=$(up_dav PUT contacts/ada/default/grace.vcf -H "Content-Type: text/vcard" \
        --data-binary "@$work/up-grace.vcf" | tail -n1)
    local started
    started=$(date +%s%N)
    if [ "$code" != 201 ] || [ "$put" != 201 ] ||
        ! "$kith" clone --bundle "$work/up-laptop-$arch.json" "kith://127.0.0.1:$(endpoint kith)" "$laptop" >/dev/null; then
        fail "$arch MKCOL ($code), PUT ($put) and a laptop cloned from the sync VM of kith up"
        return
    fi
    for _ in $(seq 1 60); do
        "$kith" --store "$laptop" get /contacts/ada/default/grace.vcf >"$work/up-got.vcf" 2>/dev/null &&
            cmp -s "$work/up-grace.vcf" "$work/up-got.vcf" && found=yes && break
        sleep 1
        "$kith" --store "$laptop" sync >/dev/null 2>&1
    done
    if [ -n "$found" ]; then
        pass "$arch a vCard PUT to the contacts VM reaches a laptop through the sync VM, byte for byte ($((($(date +%s%N) - started) / 1000000)) ms after the PUT, with the clone)"
    else
        fail "$arch the contacts VM's card on the laptop: $(tail -5 "$store/local/unikernel/contacts.console")"
    fi
    card=$'BEGIN:VCARD\r\nVERSION:3.0\r\nUID:up-katherine\r\nFN:Katherine Johnson\r\nTEL;TYPE=cell:+1 555 0100\r\nEND:VCARD\r\n'
    printf '%s' "$card" >"$work/up-katherine.vcf"
    found=''
    if "$kith" --store "$laptop" put /contacts/ada/default/katherine.vcf "$work/up-katherine.vcf" >/dev/null &&
        "$kith" --store "$laptop" sync >/dev/null; then
        started=$(date +%s%N)
        for _ in $(seq 1 60); do
            up_dav GET contacts/ada/default/katherine.vcf | head -c -4 >"$work/up-got.vcf"
            cmp -s "$work/up-katherine.vcf" "$work/up-got.vcf" && found=yes && break
            sleep 1
        done
    fi
    if [ -n "$found" ]; then
        pass "$arch a card the laptop syncs is served by the contacts VM, byte for byte ($((($(date +%s%N) - started) / 1000000)) ms after the sync)"
    else
        fail "$arch the laptop's card on the contacts VM: $(cat "$work/up-got.vcf") $(tail -5 "$store/local/unikernel/contacts.console")"
    fi
    # A record the laptop adds to the zone is published by the DNS VM.
    found=''
    if printf 'phone.up.home.arpa. 300 IN A 192.0.2.44\n' |
        "$kith" --store "$laptop" put /identity/zone/phone >/dev/null &&
        "$kith" --store "$laptop" sync >/dev/null; then
        started=$(date +%s%N)
        for _ in $(seq 1 60); do
            [ "$(kdig @127.0.0.1 -p "$(endpoint dns)" +short +timeout=2 A phone.up.home.arpa)" = 192.0.2.44 ] &&
                found=yes && break
            sleep 1
        done
    fi
    if [ -n "$found" ]; then
        pass "$arch a record the laptop syncs is published by the DNS VM ($((($(date +%s%N) - started) / 1000000)) ms after the sync)"
    else
        fail "$arch the laptop's record on the DNS VM: $(tail -5 "$store/local/unikernel/dns.console")"
    fi
    # The laptop moves its own address with an update signed by its TSIG key: the DNS
    # VM answers with it at once, and the laptop's replica gets the commit by sync.
    local key
    key=$(python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["tsig"]; print("hmac-sha256:" + t["name"] + ":" + t["secret"])' "$work/up-laptop-$arch.json")
    found=''
    if printf 'server 127.0.0.1 %s\nzone up.home.arpa.\nupdate add laptop.up.home.arpa. 300 A 192.0.2.55\nsend\n' \
        "$(endpoint dns)" | knsupdate -y "$key" -t 10 -r 2 &&
        [ "$(kdig @127.0.0.1 -p "$(endpoint dns)" +short +timeout=2 A laptop.up.home.arpa)" = 192.0.2.55 ]; then
        for _ in $(seq 1 60); do
            "$kith" --store "$laptop" sync >/dev/null 2>&1
            "$kith" --store "$laptop" get /identity/zone/laptop 2>/dev/null | grep -q "192.0.2.55" && found=yes && break
            sleep 1
        done
    fi
    if [ -n "$found" ]; then
        pass "$arch the DNS VM takes the laptop's signed update, and the laptop's replica gets it by sync"
    else
        fail "$arch the laptop's signed update to the DNS VM: $(tail -5 "$store/local/unikernel/dns.console")"
    fi
}

# The https example on a tap device in a network namespace made for the test (as a
# bridged VM on a home board or a cloud host is): curl from the namespace reaches
# it over IPv6 and over IPv4 at the addresses the kernel command line gives.
check_tap() {
    local arch=$1 image=$2 answer4='' answer6='' pid
    tap_ns="kith-tap-$$"
    local ns="ip netns exec $tap_ns"
    if ! { ip netns add "$tap_ns" && $ns ip link set lo up &&
        $ns ip tuntap add dev tap0 mode tap && $ns ip link set tap0 up &&
        $ns ip addr add 192.168.77.1/24 dev tap0 &&
        $ns ip -6 addr add fd00:77::1/64 dev tap0 nodad; }; then
        fail "$arch a network namespace with a tap device (needs root and ip)"
        return
    fi
    $ns timeout 120 "$kith" run "$image" --memory 128 --tap tap0 \
        --kernel-options "ip=192.168.77.15/24 gw=192.168.77.1 ip6=fd00:77::15/64 gw6=fd00:77::1" \
        -- 443 >"$work/console" 2>&1 &
    pid=$!
    for _ in $(seq 1 3000); do
        grep -q "https: listening on port 443" "$work/console" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    answer6=$($ns curl -sk --max-time 10 --retry 5 --retry-all-errors "https://[fd00:77::15]:443/v6")
    answer4=$($ns curl -sk --max-time 10 --retry 5 --retry-all-errors "https://192.168.77.15:443/v4")
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    ip netns del "$tap_ns"
    tap_ns=
    if [ "$answer6" = "hello from kith-unikernel over https: /v6" ]; then
        pass "$arch https on a tap device answers curl over IPv6"
    else
        fail "$arch https on a tap device over IPv6 (got '$answer6'): $(cat "$work/console")"
    fi
    if [ "$answer4" = "hello from kith-unikernel over https: /v4" ]; then
        pass "$arch https on a tap device answers curl over IPv4"
    else
        fail "$arch https on a tap device over IPv4 (got '$answer4')"
    fi
}

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(hello https tap disk echo connect dns contacts replica calendar sync mail up)
# Run on aarch64 only when named (see the top).
aarch64_only_when_named=" https tap disk echo connect replica sync mail up "
for arch in ${KITH_ARCHS:-x86_64 aarch64}; do
    for check in "${checks[@]}"; do
        if [ "$arch" = aarch64 ] && [ $# -eq 0 ] && [[ $aarch64_only_when_named == *" $check "* ]]; then
            echo "time: aarch64 $check skipped (tests/run.sh $check runs it)"
            continue
        fi
        started=$SECONDS
        if image=$(build "$check" "$arch"); then
            built=$SECONDS
            "check_$check" "$arch" "$image"
            echo "time: $arch $check: build $((built - started)) s, check $((SECONDS - built)) s"
        else
            fail "kith build $check --arch $arch"
        fi
    done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
