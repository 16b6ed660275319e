#!/usr/bin/env bash
# Boots the example images under QEMU and checks what they do: the hello image
# (console, heap, threads, clock, exit status) and the HTTPS server (curl on
# 127.0.0.1 through QEMU's hostfwd). KVM when it is usable, else TCG.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-toolchain.sh" || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
work=$(mktemp -d)
qemu_pid=
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

pass() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAILED: $1"; failed=$((failed + 1)); }

# qemu SECONDS IMAGE [EXTRA...]: becomes (exec) QEMU booting IMAGE under
# $accel for at most SECONDS, the console going to $work/console. Call it in
# a subshell, `(qemu ...)`, or in the background, where $! is then QEMU's
# (timeout's) PID.
qemu() {
    local seconds=$1 image=$2
    shift 2
    exec timeout "$seconds" qemu-system-x86_64 -M microvm -accel "$accel" -cpu "$cpu" -m 128M \
        -nodefaults -no-user-config -nographic -serial stdio \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel "$image" "$@" \
        >"$work/console" 2>&1
}

# boot SECONDS IMAGE [EXTRA...]: runs QEMU to its end; its status goes to
# $work/status.
boot() {
    (qemu "$@")
    echo $? >"$work/status"
}

# isa-debug-exit makes QEMU exit with status*2+1.
guest_status() { echo $((($(cat "$work/status") - 1) / 2)); }

# build NAME: builds an image quietly (its log is shown only on failure).
build() {
    "$here/scripts/build-image.sh" "$1" 2>"$work/build-$1.log" || { cat "$work/build-$1.log" >&2; return 1; }
}

hello=$(build hello) || { fail "build hello"; hello=; }

# KVM is used only if the hello image really runs under it: some hosts (nested
# shadow-paging hypervisors) expose /dev/kvm but cannot run this guest.
accel=tcg
cpu=max
if [ -n "$hello" ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    accel=kvm
    cpu=host,-arch-capabilities
    boot 5 "$hello" -append "-- probe"
    if ! grep -q "hello from kith-unikernel" "$work/console" || [ "$(guest_status)" != 7 ]; then
        accel=tcg
        cpu=max
    fi
fi
echo "accelerator: $accel"

if [ -n "$hello" ]; then
    started=$(date +%s%N)
    boot 60 "$hello" -append "-- one two"
    elapsed=$((($(date +%s%N) - started) / 1000000))
    console=$(cat "$work/console")
    for line in "hello from kith-unikernel" "heap ok: 1000 entries, sum 332833500" \
        "thread ok: worker done, counter 200" 'args: ["kith", "one", "two"]' \
        "resolve ok: [127.0.0.1:80]"; do
        if grep -qF "$line" <<<"$console"; then pass "hello prints '$line'"; else fail "hello prints '$line'"; fi
    done
    if grep -qE "clock ok: slept (2[0-9]|[3-9][0-9]) ms, unix time [0-9]{10} s" <<<"$console"; then
        pass "hello reads the clocks"
    else
        fail "hello reads the clocks"
    fi
    if [ "$(guest_status)" = 7 ]; then pass "hello exits with status 7 (${elapsed} ms)"; else fail "hello exit status: $(cat "$work/status")"; fi
    [ "$failed" -eq 0 ] || cat "$work/console"
fi

https=$(build https) || { fail "build https"; https=; }
if [ -n "$https" ]; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    started=$(date +%s%N)
    qemu 300 "$https" -append "-- 443" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:443" -device virtio-net-device,netdev=n0 &
    qemu_pid=$!
    answer=
    # Short tries: QEMU's user network accepts on the host at once and only
    # retransmits its SYN to the guest seconds later if the guest was not
    # listening yet.
    for try in $(seq 1 240); do
        limit=0.5
        [ "$try" -le 20 ] || limit=2
        answer=$(curl -sk --max-time "$limit" "https://127.0.0.1:$port/kith") && break
        answer=
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.05
    done
    elapsed=$((($(date +%s%N) - started) / 1000000))
    if [ "$answer" = "hello from kith-unikernel over https: /kith" ]; then
        pass "https answers curl (${elapsed} ms from QEMU start)"
    else
        fail "https answers curl (got '$answer')"
    fi
    second=$(curl -sk --max-time 10 "https://127.0.0.1:$port/again")
    if [ "$second" = "hello from kith-unikernel over https: /again" ]; then
        pass "https answers a second connection"
    else
        fail "https answers a second connection (got '$second')"
    fi
    # A burst of connections queues in the backlog instead of being reset.
    pids=()
    for i in $(seq 1 20); do
        curl -sk --max-time 30 "https://127.0.0.1:$port/burst$i" -o "$work/burst$i" &
        pids+=($!)
    done
    wait "${pids[@]}"
    answered=$(cat "$work"/burst* 2>/dev/null | grep -c "over https: /burst")
    if [ "$answered" = 20 ]; then
        pass "https answers 20 parallel connections"
    else
        fail "https answers 20 parallel connections (only $answered did)"
    fi
    kill "$qemu_pid" 2>/dev/null
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=
    grep -q "https: listening on port 443" "$work/console" || cat "$work/console"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
