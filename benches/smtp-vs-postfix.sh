#!/usr/bin/env bash
# Inbound SMTP throughput: Postfix's own load generator, smtp-source, sends the same
# messages to `kith serve mail` and to a Postfix instance (a throwaway configuration in a
# temporary folder, delivering to a Maildir through virtual(8)), both on 127.0.0.1, in one
# run. Prints messages per second for each (Kith: until the last 250, when every message
# is committed to the store; Postfix: until the last 250, when it is in the queue, and
# until the last one is in the Maildir) and the ratio kith/postfix (above 1: Kith is
# faster), one row per number of parallel sessions, then the idle resident memory of
# the mail service. SESSIONS is one number or a comma-separated list; the default covers
# a home server's usual load (one or two senders at a time) up to a busy burst. Each row
# is the median of ROUNDS rounds that alternate which server goes first, so a moment of
# disturbance (a build's writeback, another process) does not decide a row alone; the
# ratio of every round is printed too.
#
#   benches/smtp-vs-postfix.sh [MESSAGES] [SESSIONS] [SIZE] [ROUNDS]
#                                         (default 2000, 1,2,4,8,16, 4096, 3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../scripts/env.sh"
cd "$KITH_ROOT"
TARGET="${CARGO_TARGET_DIR:-$KITH_ROOT/target}"
N="${1:-2000}"
SESSIONS="${2:-1,2,4,8,16}"
SIZE="${3:-4096}"
ROUNDS="${4:-3}"
PY=/usr/bin/python3

if ! command -v smtp-source >/dev/null || ! command -v postfix >/dev/null; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postfix >/dev/null
fi
PATH="$PATH:/usr/sbin"

cargo build --release -q -p kith
KITH="$TARGET/release/kith"
W=$(mktemp -d /tmp/kith-smtp-bench.XXXXXX)
chmod 755 "$W"
pids=()
cleanup() {
  postfix -c "$W/postfix/etc" stop >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Kith: the zone, a mailbox for `me`, its DNS server (for the sender checks: it refuses
# names outside the zone, so nothing leaves 127.0.0.1) and the mail service.
export KITH_STORE="$W/store"
"$KITH" init --zone bench.home.arpa --device board >/dev/null
: >"$W/empty.mbox"
"$KITH" import "$W/empty.mbox" /mail/me/INBOX >/dev/null
"$KITH" serve dns --listen 127.0.0.1:0 >"$W/dns.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [[ -s "$W/dns.out" ]] && break; sleep 0.1; done
DNS=$(head -1 "$W/dns.out"); DNS=${DNS#dns://}
any=127.0.0.1:0
"$KITH" serve mail --smtp $any --submission $any --submissions $any --resolver "$DNS" >"$W/mail.out" 2>/dev/null &
pids+=($!); KITH_PID=$!
for _ in $(seq 100); do [[ -s "$W/mail.out" ]] && break; sleep 0.1; done
KITH_SMTP=$(head -1 "$W/mail.out"); KITH_SMTP=${KITH_SMTP#smtp://}

# Postfix: its own config, queue and Maildir under $W.
PPORT=$(free_port)
mkdir -p "$W/postfix/etc" "$W/postfix/spool" "$W/postfix/data" "$W/postfix/mail/me"
chown -R postfix "$W/postfix/data"
chown -R nobody:nogroup "$W/postfix/mail"
cat >"$W/postfix/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $W/postfix/spool
data_directory = $W/postfix/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.bench.home.arpa
mydomain = bench.home.arpa
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
virtual_mailbox_domains = bench.home.arpa
virtual_mailbox_base = $W/postfix/mail
virtual_mailbox_maps = texthash:$W/postfix/etc/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = $W/postfix/maillog
maillog_file_prefixes = $W
smtpd_client_connection_count_limit = 0
CF
echo "me@bench.home.arpa me/Maildir/" >"$W/postfix/etc/vmailbox"
cat >"$W/postfix/etc/master.cf" <<CF
127.0.0.1:$PPORT inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
local     unix - n n - - local
virtual   unix - n n - - virtual
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
showq     unix n - n - - showq
CF
postfix -c "$W/postfix/etc" check || { echo "postfix check failed:" >&2; tail -20 "$W/postfix/maillog" >&2 2>/dev/null; exit 1; }
postfix -c "$W/postfix/etc" start >/dev/null 2>&1
for _ in $(seq 100); do $PY -c "import socket; socket.create_connection(('127.0.0.1',$PPORT))" 2>/dev/null && break; sleep 0.1; done

send() { # ADDR SESSIONS -> seconds smtp-source took
  local start end
  start=$(date +%s.%N)
  smtp-source -s "$2" -m "$N" -l "$SIZE" -f sender@example.org -t me@bench.home.arpa \
    -M bench.example.org "$1"
  end=$(date +%s.%N)
  $PY -c "print($end - $start)"
}
maildir_count() { find "$W/postfix/mail/me/Maildir/new" -type f 2>/dev/null | wc -l || true; }
kith_count() { "$KITH" ls /mail/me/INBOX/.cur | grep -c '\.eml$' || true; }

# kith_round SESSIONS / postfix_round SESSIONS: one timed run, "seconds added" (Postfix:
# "seconds-to-queued seconds-to-delivered added").
kith_round() {
  local before seconds
  before=$(kith_count)
  seconds=$(send "$KITH_SMTP" "$1")
  echo "$seconds $(( $(kith_count) - before ))"
}
postfix_round() {
  local before queued start end
  before=$(maildir_count)
  queued=$(send "127.0.0.1:$PPORT" "$1")
  start=$(date +%s.%N)
  for _ in $(seq 6000); do [[ $(( $(maildir_count) - before )) -ge $N ]] && break; sleep 0.05; done
  end=$(date +%s.%N)
  echo "$queued $($PY -c "print($queued + $end - $start)") $(( $(maildir_count) - before ))"
}

echo "$N messages of $SIZE bytes a run, smtp-source on 127.0.0.1; msg/s until the last 250"
echo "(kith: 250 = committed to the store, with SPF/DKIM/DMARC; postfix: 250 = queued),"
echo "postfix also until all are in the Maildir; stored: messages the rounds added;"
echo "each row the median of $ROUNDS rounds alternating which server goes first"
printf '%8s %10s %8s %12s %14s %8s %10s   %s\n' sessions kith/s stored postfix/s delivered/s stored ratio rounds
for s in ${SESSIONS//,/ }; do
  kith=() postfix=()
  for r in $(seq "$ROUNDS"); do
    if (( r % 2 )); then
      kith+=("$(kith_round "$s")"); postfix+=("$(postfix_round "$s")")
    else
      postfix+=("$(postfix_round "$s")"); kith+=("$(kith_round "$s")")
    fi
  done
  $PY - "$N" "$s" "${#kith[@]}" "${kith[@]}" "${postfix[@]}" <<'PY'
import statistics, sys
n, s, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
kith = [l.split() for l in sys.argv[4:4 + rounds]]
postfix = [l.split() for l in sys.argv[4 + rounds:]]
k_rate = [n / float(k[0]) for k in kith]
q_rate = [n / float(p[0]) for p in postfix]
d_rate = [n / float(p[1]) for p in postfix]
ratios = [k / q for k, q in zip(k_rate, q_rate)]
med = statistics.median
print(f"{s:8} {med(k_rate):10.0f} {sum(int(k[1]) for k in kith):8} {med(q_rate):12.0f}"
      f" {med(d_rate):14.0f} {sum(int(p[2]) for p in postfix):8} {med(ratios):9.2f}x"
      f"   {' '.join(f'{r:.2f}' for r in ratios)}")
PY
done
sleep 2
rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$1/status"; }
echo "idle RSS of kith serve mail after the runs: $(rss "$KITH_PID")"
