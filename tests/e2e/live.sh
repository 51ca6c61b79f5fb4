#!/usr/bin/env bash
# Live-capture bed: a real Dovecot (POP3 + IMAP, STARTTLS with a throw-away self-signed
# certificate) in one network namespace, real clients (Python's poplib/imaplib, curl) in another,
# a veth pair between them, and two `credwatch live` capturing on the server's end of the veth:
# one started as root that drops to nobody (--user), one started as nobody with only
# CAP_NET_RAW and CAP_NET_ADMIN, as the systemd unit runs it ("caps"). Between the clients' rounds
# the veth goes down and up, then is deleted and created anew. Once the clients are done, both get
# SIGTERM; their stdout, stderr and exit status are left in OUT_DIR (the caps instance's with a
# `caps-` prefix) for tests/live_e2e.rs to check.
#
# Usage: live.sh --bin PATH --out OUT_DIR [--preflight]
# Exit status: 0 the bed ran (whatever credwatch did: see OUT_DIR); 77 prerequisites missing
# (not root, packages missing); other: the bed itself failed.
#
# Nothing leaves the two namespaces: the addresses below exist only inside them and no route
# leads anywhere else. Everything started here is stopped, and the namespaces deleted, on exit,
# failure or interruption.
set -euo pipefail

readonly PREREQUISITES_MISSING=77
readonly SERVER_V4=10.78.4.1 CLIENT_V4=10.78.4.2 PREFIX_V4=24
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE

binary=
out_dir=
preflight_only=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --bin) binary=$2; shift 2 ;;
        --out) out_dir=$2; shift 2 ;;
        --preflight) preflight_only=1; shift ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "live.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

log() { printf '[live-e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

preflight() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "not root: the bed creates network namespaces and runs Dovecot"
        return 1
    fi
    local missing=() cmd
    for cmd in ip dovecot curl python3 openssl ss setpriv; do
        PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    if [[ ! -e /usr/lib/dovecot/imap-login || ! -e /usr/lib/dovecot/pop3-login ]]; then
        missing+=("dovecot-imapd/dovecot-pop3d")
    fi
    # Read whole before searching: `grep -q` stops at the first match, and under pipefail the
    # SIGPIPE that ldconfig may then get while still writing made libpcap look missing.
    local libraries
    libraries=$(ldconfig -p 2>/dev/null || true)
    if [[ $libraries != *libpcap.so* ]]; then
        missing+=("libpcap")
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "missing: ${missing[*]} (apt-get install iproute2 dovecot-imapd dovecot-pop3d curl python3 openssl libpcap-dev util-linux)"
        return 1
    fi
    local user
    for user in dovecot dovenull nobody; do
        getent passwd "$user" >/dev/null || { echo "missing system user $user"; return 1; }
    done
}

if ! reason=$(preflight); then
    echo "live e2e prerequisites missing: $reason" >&2
    exit $PREREQUISITES_MISSING
fi
if [[ $preflight_only -eq 1 ]]; then
    echo "live e2e prerequisites present"
    exit 0
fi
[[ -x $binary ]] || die "no executable credwatch at '$binary' (pass --bin)"
[[ -n $out_dir ]] || die "pass --out DIR"
mkdir -p "$out_dir"
export PATH=$PATH:/usr/sbin:/sbin

readonly RUN_ID=$$
readonly NS_SERVER=cwlive-srv-$RUN_ID NS_CLIENT=cwlive-cli-$RUN_ID
readonly VETH_SERVER=vls$RUN_ID VETH_CLIENT=vlc$RUN_ID
WORK=$(mktemp -d /tmp/credwatch-live-e2e.XXXXXX)
readonly WORK
chmod 755 "$WORK"
created_namespaces=()
credwatch_pid=
caps_pid=
dovecot_pid_file=$WORK/dovecot/run/master.pid

# shellcheck source=tests/e2e/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/netns.sh"

# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    stop_pids "$credwatch_pid" "$caps_pid" "$(pid_from_file "$dovecot_pid_file")"
    remove_namespaces
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

setup_network() {
    add_namespace_pair
}

setup_dovecot() {
    local d=$WORK/dovecot dh="" nobody_uid nobody_gid
    mkdir -p "$d/run" "$d/state" "$WORK/tls" "$WORK/home/alice/Maildir"/{cur,new,tmp} "$WORK/home/bob/Maildir"/{cur,new,tmp} \
        "$WORK/home/carol/Maildir"/{cur,new,tmp}
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=mail.live-e2e.test -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
    chmod 644 "$WORK/tls/cert.pem"
    chmod 600 "$WORK/tls/key.pem"
    nobody_uid=$(id -u nobody)
    nobody_gid=$(id -g nobody)
    chown -R nobody: "$WORK/home"
    # Invented accounts, plaintext so that the file stays readable in a test.
    cat >"$d/users" <<EOF
alice:{PLAIN}Alice-Live-Pw-1:$nobody_uid:$nobody_gid::$WORK/home/alice::
bob:{PLAIN}Bob-Live-Pw-2:$nobody_uid:$nobody_gid::$WORK/home/bob::
carol:{PLAIN}Carol-Live-Pw-3:$nobody_uid:$nobody_gid::$WORK/home/carol::
EOF
    chown root:dovecot "$d/users"
    chmod 640 "$d/users"
    [[ -r /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    cat >"$d/dovecot.conf" <<EOF
# Generated by tests/e2e/live.sh for one run; plaintext logins allowed on purpose.
base_dir = $d/run
state_dir = $d/state
log_path = $WORK/dovecot.log
protocols = imap pop3
listen = $SERVER_V4
login_greeting = Dovecot live-e2e ready.
ssl = yes
ssl_cert = <$WORK/tls/cert.pem
ssl_key = <$WORK/tls/key.pem
$dh
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/users
}
userdb {
  driver = passwd-file
  args = $d/users
}
EOF
    in_server dovecot -c "$d/dovecot.conf"
    for _ in $(seq 100); do
        if in_server ss -Hltn | awk '{print $4}' | grep -q ':110$' && in_server ss -Hltn | awk '{print $4}' | grep -q ':143$'; then
            return 0
        fi
        sleep 0.1
    done
    die "Dovecot did not listen on 110 and 143: $(cat "$WORK/dovecot.log" 2>/dev/null)"
}

readonly CREDWATCH_ARGS=(live -i "$VETH_SERVER" -f json --show-usernames --threads 2 --stats-interval 1)

# Waits until the log FILE says TEXT, while process PID runs.
wait_for_log() {
    local file=$1 text=$2 pid=$3
    for _ in $(seq 100); do
        grep -qs "$text" "$file" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    die "credwatch did not start: $(cat "$file")"
}

start_credwatch() {
    local nobody_uid nobody_gid caps=net_raw,+net_admin
    nobody_uid=$(id -u nobody)
    nobody_gid=$(id -g nobody)
    log "starting credwatch live on $VETH_SERVER, as root dropping to nobody and as nobody with capabilities"
    # Started directly (not through in_server) so that $! is credwatch's own pid (ip netns exec and
    # setpriv exec it). The output files are opened here, as root, before credwatch drops to nobody.
    ip netns exec "$NS_SERVER" "$binary" "${CREDWATCH_ARGS[@]}" --user nobody \
        >"$out_dir/stdout.jsonl" 2>"$out_dir/stderr.log" &
    credwatch_pid=$!
    ip netns exec "$NS_SERVER" setpriv --reuid="$nobody_uid" --regid="$nobody_gid" --clear-groups \
        --inh-caps=-all,+$caps --ambient-caps=-all,+$caps --bounding-set=-all,+$caps \
        "$binary" "${CREDWATCH_ARGS[@]}" >"$out_dir/caps-stdout.jsonl" 2>"$out_dir/caps-stderr.log" &
    caps_pid=$!
    wait_for_log "$out_dir/stderr.log" "dropped root" "$credwatch_pid"
    wait_for_log "$out_dir/caps-stderr.log" "capture opened" "$caps_pid"
}

# SIGTERM to credwatch PID; its exit status goes to OUT_DIR/FILE.
stop_one() {
    local pid=$1 file=$2 status=0
    log "SIGTERM to credwatch ($pid)"
    kill -TERM "$pid"
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "credwatch did not stop within 30 s of SIGTERM"
        kill -KILL "$pid"
    fi
    wait "$pid" || status=$?
    echo "$status" >"$out_dir/$file"
    log "credwatch ($pid) exited with $status"
}

stop_credwatch() {
    # Let the last segments through the capture's read timeout before stopping.
    sleep 1.5
    stop_one "$credwatch_pid" exit_status
    credwatch_pid=
    stop_one "$caps_pid" caps-exit_status
    caps_pid=
}

setup_network
setup_dovecot
start_credwatch
log "running the clients"
in_client python3 -B "$HERE/live_clients.py" --server "$SERVER_V4" >"$out_dir/clients.log" 2>&1 ||
    die "the clients failed: $(cat "$out_dir/clients.log")"
# The captured interface goes down and comes back: credwatch must log it, retry and go on.
log "taking $VETH_SERVER down for 3 s"
in_server ip link set "$VETH_SERVER" down
sleep 3
in_server ip link set "$VETH_SERVER" up
for _ in $(seq 50); do
    in_server ip -br link show "$VETH_SERVER" | grep -q ' UP ' && break
    sleep 0.1
done
in_client python3 -B "$HERE/live_clients.py" --server "$SERVER_V4" --after-link-flap >>"$out_dir/clients.log" 2>&1 ||
    die "the client after the link flap failed: $(cat "$out_dir/clients.log")"
# The captured interface is deleted, and created anew under its name a few seconds later: the old
# handles get nothing more. The caps instance must reopen it; the --user one cannot (reopening
# needs the capabilities it gave up) and must say why.
reopened=$(grep -c "capture reopened" "$out_dir/caps-stderr.log" || true)
log "deleting $VETH_SERVER, creating it anew 3 s later"
in_server ip link del "$VETH_SERVER"
sleep 3
add_veth_pair
for _ in $(seq 450); do
    [[ $(grep -c "capture reopened" "$out_dir/caps-stderr.log" || true) -gt $reopened ]] && break
    sleep 0.1
done
[[ $(grep -c "capture reopened" "$out_dir/caps-stderr.log" || true) -gt $reopened ]] ||
    die "credwatch (caps) did not reopen the re-created $VETH_SERVER within 45 s: $(cat "$out_dir/caps-stderr.log")"
in_client python3 -B "$HERE/live_clients.py" --server "$SERVER_V4" --after-recreation >>"$out_dir/clients.log" 2>&1 ||
    die "the client after the re-creation failed: $(cat "$out_dir/clients.log")"
stop_credwatch
