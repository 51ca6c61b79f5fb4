#!/usr/bin/env bash
# The real-server test bed: real Dovecot (POP3/IMAP/ManageSieve) and Postfix (SMTP AUTH through
# Dovecot SASL) in one network namespace, real clients (poplib, imaplib, smtplib, curl, fetchmail,
# small raw IMAP and ManageSieve clients) in another, tcpdump on the client side of the veth pair
# that joins them. The scenario rows the driver writes are cross-checked against the servers' own
# logs and against the capture, then credwatch is run on the capture and every alert is checked
# against the rows.
#
# Usage: run.sh [--bin PATH] [--keep DIR] [--no-check] [--preflight]
#   --bin PATH    credwatch binary (default: $CREDWATCH_BIN, else target/debug/credwatch)
#   --keep DIR    copy the captures, truth.jsonl and server logs to DIR (also: $CREDWATCH_E2E_KEEP)
#   --no-check    stop after capture and ground truth; do not run credwatch
#   --preflight   only check the prerequisites (root, packages) and exit
# Exit status: 0 all good; 77 prerequisites missing (not root, packages missing); other: failure.
#
# Nothing leaves the two namespaces: the addresses below are only configured inside them and no
# route leads anywhere else; Postfix delivers every message to its discard transport.
set -euo pipefail

readonly PREREQUISITES_MISSING=77
readonly SERVER_V4=10.77.9.1 CLIENT_V4=10.77.9.2 PREFIX_V4=24
readonly SERVER_V6=fd77:9::1 CLIENT_V6=fd77:9::2 PREFIX_V6=64
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
readonly HERE REPO

binary=${CREDWATCH_BIN:-$REPO/target/debug/credwatch}
keep_dir=${CREDWATCH_E2E_KEEP:-}
run_check=1
preflight_only=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --bin) binary=$2; shift 2 ;;
        --keep) keep_dir=$2; shift 2 ;;
        --no-check) run_check=0; shift ;;
        --preflight) preflight_only=1; shift ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

preflight() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "not root: the bed creates network namespaces and runs Dovecot, Postfix and tcpdump"
        return 1
    fi
    local missing=() cmd
    for cmd in ip dovecot postfix postconf tcpdump curl fetchmail python3 openssl; do
        PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    if [[ ! -e /usr/lib/dovecot/imap-login || ! -e /usr/lib/dovecot/pop3-login ]]; then
        missing+=("dovecot-imapd/dovecot-pop3d")
    fi
    if [[ ! -e /usr/lib/dovecot/managesieve-login ]]; then
        missing+=("dovecot-managesieved")
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "missing: ${missing[*]} (install them with tests/e2e/install-deps.sh)"
        return 1
    fi
    local user
    for user in dovecot dovenull postfix nobody; do
        getent passwd "$user" >/dev/null || { echo "missing system user $user"; return 1; }
    done
}

if ! reason=$(preflight); then
    echo "e2e prerequisites missing: $reason" >&2
    exit $PREREQUISITES_MISSING
fi
if [[ $preflight_only -eq 1 ]]; then
    echo "e2e prerequisites present"
    exit 0
fi
export PATH=$PATH:/usr/sbin:/sbin
if [[ $run_check -eq 1 && ! -x $binary ]]; then
    die "no executable credwatch at $binary (build it, pass --bin, or use --no-check)"
fi

readonly RUN_ID=$$
readonly NS_SERVER=cwe2e-srv-$RUN_ID NS_CLIENT=cwe2e-cli-$RUN_ID
readonly VETH_SERVER=ve2s$RUN_ID VETH_CLIENT=ve2c$RUN_ID
WORK=$(mktemp -d /tmp/credwatch-e2e.XXXXXX)
readonly WORK
chmod 755 "$WORK"
created_namespaces=()
tcpdump_pid=
background_pid=
dovecot_pid_file=$WORK/dovecot/run/master.pid
postfix_pid_file=$WORK/postfix/spool/pid/master.pid

# Runs a long step in the background and waits for it, so that a signal is handled at once
# (bash defers traps while a foreground command runs) and cleanup ends the step by its pid.
# The step must be a program, not a shell function, for $! to be the program's pid.
interruptible() {
    local status=0
    "$@" &
    background_pid=$!
    wait "$background_pid" || status=$?
    background_pid=
    return "$status"
}

# shellcheck source=tests/e2e/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/netns.sh"

# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    stop_pids "$background_pid" "$tcpdump_pid" "$(pid_from_file "$dovecot_pid_file")" \
        "$(pid_from_file "$postfix_pid_file")"
    remove_namespaces
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

setup_network() {
    add_namespace_pair
    in_server ip -6 addr add "$SERVER_V6/$PREFIX_V6" dev "$VETH_SERVER" nodad
    in_client ip -6 addr add "$CLIENT_V6/$PREFIX_V6" dev "$VETH_CLIENT" nodad
    # The driver's pinned client ports sit below this ephemeral range (fetchmail's), so they never
    # collide.
    in_client sh -c 'echo "50000 59999" >/proc/sys/net/ipv4/ip_local_port_range'
}

make_certificate() {
    mkdir -p "$WORK/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=mail.e2e.test -keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
    chmod 644 "$WORK/tls/cert.pem"
    chmod 600 "$WORK/tls/key.pem"
}

write_dovecot_config() {
    local d=$WORK/dovecot dh=""
    mkdir -p "$d/run" "$d/state" "$WORK/logs"
    [[ -r /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    cat >"$d/dovecot.conf" <<EOF
# Generated by tests/e2e/run.sh for one run; plaintext logins allowed on purpose.
base_dir = $d/run
state_dir = $d/state
log_path = $WORK/logs/dovecot.log
info_log_path = $WORK/logs/dovecot.log
log_timestamp = "%Y-%m-%d %H:%M:%S "
protocols = imap pop3 sieve
listen = $SERVER_V4, $SERVER_V6
login_greeting = Dovecot e2e ready.
managesieve_implementation_string = Dovecot e2e Pigeonhole
login_log_format_elements = user=<%u> method=%m rip=%r rport=%{rport} lip=%l lport=%{lport} mpid=%e %c session=<%{session}>
ssl = yes
ssl_cert = <$WORK/tls/cert.pem
ssl_key = <$WORK/tls/key.pem
$dh
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-256 apop
auth_username_chars =
auth_username_format = %u
auth_failure_delay = 0
auth_verbose = yes
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
service imap-login {
  inet_listener imap {
    port = 143
  }
  inet_listener imaps {
    port = 993
    ssl = yes
  }
  inet_listener imap_nonstandard {
    port = 10143
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3s {
    port = 995
    ssl = yes
  }
  inet_listener pop3_nonstandard {
    port = 1110
  }
}
service managesieve-login {
  inet_listener sieve {
    port = 4190
  }
  inet_listener sieve_nonstandard {
    port = 14190
  }
}
service auth {
  unix_listener $WORK/postfix/spool/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
}

write_postfix_config() {
    local p=$WORK/postfix
    mkdir -p "$p/conf" "$p/spool/private" "$p/data"
    chown postfix "$p/data" "$p/spool/private"
    cat >"$p/conf/main.cf" <<EOF
# Generated by tests/e2e/run.sh for one run: SMTP AUTH through Dovecot, plaintext AUTH allowed,
# every message discarded.
compatibility_level = 3.6
queue_directory = $p/spool
data_directory = $p/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.e2e.test
mydomain = e2e.test
myorigin = \$myhostname
mydestination =
mynetworks = 127.0.0.0/8
inet_interfaces = $SERVER_V4, [$SERVER_V6]
inet_protocols = all
smtpd_banner = \$myhostname ESMTP e2e
smtpd_peername_lookup = no
smtpd_client_port_logging = yes
maillog_file = $WORK/logs/postfix.log
maillog_file_prefixes = $WORK/logs
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_security_options = noanonymous
smtpd_tls_security_level = may
smtpd_tls_auth_only = no
smtpd_tls_loglevel = 1
smtpd_tls_cert_file = $WORK/tls/cert.pem
smtpd_tls_key_file = $WORK/tls/key.pem
smtpd_relay_restrictions = permit_sasl_authenticated, reject
default_transport = discard:e2e bed
relay_transport = discard:e2e bed
local_transport = discard:e2e bed
virtual_transport = discard:e2e bed
local_recipient_maps =
alias_maps =
alias_database =
biff = no
EOF
    cat >"$p/conf/master.cf" <<'EOF'
# service type  private unpriv  chroot  wakeup  maxproc command
25        inet  n       -       n       -       -       smtpd
587       inet  n       -       n       -       -       smtpd
2525      inet  n       -       n       -       -       smtpd
465       inet  n       -       n       -       -       smtpd -o smtpd_tls_wrappermode=yes
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
discard   unix  -       -       n       -       -       discard
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# Waits until every given TCP port listens in the server namespace.
wait_for_ports() {
    local port listening
    for _ in $(seq 100); do
        listening=$(in_server ss -Hltn | awk '{print $4}')
        for port in "$@"; do
            grep -q "[:.]$port\$" <<<"$listening" || { sleep 0.1; continue 2; }
        done
        return 0
    done
    die "servers did not listen on all of: $*"
}

start_servers() {
    log "starting Postfix ($(postconf -c "$WORK/postfix/conf" -h mail_version)) and Dovecot ($(dovecot --version | cut -d' ' -f1))"
    in_server postfix -c "$WORK/postfix/conf" check || die "postfix check failed"
    in_server postfix -c "$WORK/postfix/conf" start
    in_server dovecot -c "$WORK/dovecot/dovecot.conf"
    wait_for_ports 25 587 2525 465 110 995 1110 143 993 10143 4190 14190
}

start_tcpdump() {
    # Called directly, not through in_client, so that $! is tcpdump's own pid.
    ip netns exec "$NS_CLIENT" tcpdump -i "$VETH_CLIENT" -s 0 -U -Z root -w "$WORK/all.pcap" \
        2>"$WORK/logs/tcpdump.log" &
    tcpdump_pid=$!
    for _ in $(seq 100); do
        grep -qs "listening on" "$WORK/logs/tcpdump.log" && return 0
        kill -0 "$tcpdump_pid" 2>/dev/null || break
        sleep 0.1
    done
    die "tcpdump did not start: $(cat "$WORK/logs/tcpdump.log")"
}

stop_capture_and_servers() {
    sleep 1
    stop_pids "$tcpdump_pid"
    wait "$tcpdump_pid" 2>/dev/null || true
    tcpdump_pid=
    # Stopping the servers flushes their last log lines (disconnects) before the cross-check.
    stop_pids "$(pid_from_file "$dovecot_pid_file")" "$(pid_from_file "$postfix_pid_file")"
    sleep 0.5
}

setup_network
make_certificate
write_dovecot_config
write_postfix_config
python3 -B "$HERE/driver.py" prepare --dir "$WORK" --home-owner nobody --passwd-group dovecot
start_servers
start_tcpdump

log "running the scenarios"
interruptible ip netns exec "$NS_CLIENT" python3 -B "$HERE/driver.py" run --dir "$WORK" --out "$WORK/scenarios.jsonl" \
    --server-v4 "$SERVER_V4" --client-v4 "$CLIENT_V4" --server-v6 "$SERVER_V6" --client-v6 "$CLIENT_V6"
stop_capture_and_servers

log "cross-checking the scenario rows against the server logs and the capture"
python3 -B "$HERE/crosscheck.py" --rows "$WORK/scenarios.jsonl" --capture "$WORK/all.pcap" \
    --dovecot-log "$WORK/logs/dovecot.log" --postfix-log "$WORK/logs/postfix.log" --out "$WORK/out"

status=0
if [[ $run_check -eq 1 ]]; then
    log "checking credwatch's alerts ($binary)"
    interruptible python3 -B "$HERE/check.py" --bin "$binary" --whole "$WORK/all.pcap" "$WORK/out" || status=$?
fi

if [[ -n $keep_dir ]]; then
    mkdir -p "$keep_dir"
    cp "$WORK"/out/* "$WORK/all.pcap" "$WORK/logs/dovecot.log" "$WORK/logs/postfix.log" "$keep_dir"/
    log "kept captures, truth.jsonl and server logs in $keep_dir"
fi
exit "$status"
