#!/usr/bin/env bash
# Boots the example images under QEMU and checks what they do: the hello image
# (console, heap, threads, clock, exit status) and the HTTPS server (curl on
# 127.0.0.1 through QEMU's hostfwd). KVM when it is usable, else TCG.
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
"$here/scripts/install-toolchain.sh" x86_64 || { echo "0 passed, 1 failed"; exit 1; }

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

# build NAME: builds an image with `kith build` quietly (its log is shown only
# on failure) and checks that it reports the image and its size.
build() {
    local image="$work/$1.img"
    "$kith" build --example "$1" -o "$image" >"$work/build-$1.out" 2>"$work/build-$1.log" ||
        { cat "$work/build-$1.log" >&2; return 1; }
    grep -qE "^$image \([0-9]+ KB\)$" "$work/build-$1.out" || { cat "$work/build-$1.out" >&2; return 1; }
    echo "$image"
}

hello=$(build hello) || { fail "build hello"; hello=; }

if [ -n "$hello" ]; then
    started=$(date +%s%N)
    boot 60 "$hello" -- one two
    elapsed=$((($(date +%s%N) - started) / 1000000))
    console=$(cat "$work/console")
    # `kith run` takes KVM only where it can run these guests, and says so otherwise.
    echo "accelerator: $(grep -q "running under TCG" <<<"$console" && echo tcg || echo kvm)"
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
    kith_run 300 "$https" --forward "$port:443" -- 443 &
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
    if pgrep -f "$https" >/dev/null; then fail "stopping kith run stops QEMU"; else pass "stopping kith run stops QEMU"; fi
    grep -q "https: listening on port 443" "$work/console" || cat "$work/console"
fi

"$kith" build dns >"$work/dns.out" 2>&1
dns_status=$?
if [ "$dns_status" = 2 ] && grep -q "the dns service cannot be built as an image yet" "$work/dns.out"; then
    pass "kith build dns says why it cannot be built yet"
else
    fail "kith build dns (status $dns_status): $(cat "$work/dns.out")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
