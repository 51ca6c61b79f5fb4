#!/usr/bin/env python3
"""Checks credwatch's alerts on the bed's captures against the ground truth rows.

Usage: check.py [--bin PATH] [--whole CAPTURE] DIR

DIR holds truth.jsonl (rows as written by crosscheck.py) and the capture files its rows name;
--whole adds one capture holding every row's connection. The binary (--bin, else $CREDWATCH_BIN,
else target/debug/credwatch) runs as `RUST_LOG=trace credwatch read --format json FILE` on each.

Per row, on its exact connection (src = client, dest = server):
* password in clear: exactly one `cleartext_credential` alert, and no other alert;
* APOP / CRAM-MD5 / SCRAM in clear: exactly one `weak_credential` alert (secret "challenge_response");
* TLS, implicit or after STARTTLS/STLS: no alert at all;
and the alert's app_proto, mechanism, outcome, masked user name, server ip/port/greeting,
starttls_offered (what the server advertised in clear), timestamp (within the connection) agree.
No alert may name a connection without a row. Neither stdout nor stderr may hold a password in
any form it travels in (plain, quoted, base64, base64 PLAIN message) or is printed in (JSON or
Debug escapes). When `read --help` lists --show-usernames, the whole capture is read again with
it and the user names must come out in full.

Prints one line per problem, then `N passed, M failed`; exits 1 when anything failed.
"""
import argparse
import base64
import datetime
import ipaddress
import json
import os
import re
import subprocess
import sys

import pcapfile

WEAK_MECHANISMS = {"APOP", "SASL-CRAM-MD5", "SASL-SCRAM-SHA-256"}
# What the bed configures the servers to say in their greetings (run.sh).
# ManageSieve has no greeting line: credwatch reports its IMPLEMENTATION capability instead.
GREETING_TEXT = {"pop3": "Dovecot e2e ready.", "imap": "Dovecot e2e ready.", "smtp": "ESMTP e2e",
                 "managesieve": "Dovecot e2e Pigeonhole"}
# How each server advertises STARTTLS in clear: CAPA reply, CAPABILITY list, EHLO reply.
STARTTLS_ADVERTISED = {"pop3": (b"\r\nSTLS\r\n",), "imap": (b" STARTTLS",),
                       "smtp": (b"250-STARTTLS\r\n", b"250 STARTTLS\r\n"),
                       "managesieve": (b'\r\n"STARTTLS"\r\n',)}
# Whether a capability list crossed in clear at all: without one, starttls_offered is null.
CAPABILITIES_SEEN = {"pop3": lambda client, server: b"CAPA\r\n" in client.upper(),
                     "imap": lambda client, server: b"CAPABILITY" in server.upper(),
                     "smtp": lambda client, server: b"EHLO" in client.upper(),
                     "managesieve": lambda client, server: b'"IMPLEMENTATION"' in server.upper()}
CREDENTIAL_EVENTS = ("cleartext_credential", "weak_credential")
TIMESTAMP_SLACK = 1.0


def expected_mechanism(row):
    """The contract's mechanism name for a truth row (same mapping as shared score-corpus)."""
    protocol, mechanism = row["protocol"], row["mechanism"]
    if mechanism == "IMAP-LOGIN":
        return "LOGIN"
    if mechanism.startswith("SASL-"):
        verb = "AUTHENTICATE" if protocol in ("imap", "managesieve") else "AUTH"
        return f"{verb} {mechanism.removeprefix('SASL-')}"
    return mechanism


def expected_event(row):
    if row["tls"]:
        return None
    if row["mechanism"] in WEAK_MECHANISMS:
        return "weak_credential"
    return "cleartext_credential" if row["password_in_clear"] else None


def logon_domain(prefix):
    """A Windows logon name's domain as credwatch keeps it: upper case, a NetBIOS name or a
    DNS name ending in letters."""
    if not prefix or any(c.islower() for c in prefix) or not any(c.isupper() for c in prefix):
        return False
    if len(prefix) <= 15 and re.fullmatch(r"[A-Z0-9-]+", prefix):
        return True
    labels = prefix.rstrip(".").split(".")
    return (len(labels) >= 2 and all(re.fullmatch(r"[A-Za-z0-9-]+", label) for label in labels)
            and labels[-1].isalpha())


def masked(username):
    """A logon name's domain (`CORP\\`), its first character, `***`, then the @domain if there
    is one."""
    kept = ""
    prefix, backslash, rest = username.partition("\\")
    if backslash and logon_domain(prefix):
        kept, username = prefix + backslash, rest
    local, at, domain = username.partition("@")
    return kept + (local[:1] if local else "") + "***" + (at + domain)


def leak_forms(row):
    """(kind, bytes) for each way a password may travel or be printed: plain, JSON- or
    Debug-escaped, IMAP-quoted, base64, and base64 PLAIN messages."""
    user, password = row["username"], row["password"]
    forms = {
        ("plain", password),
        ("escaped", json.dumps(password)[1:-1]),
        ("escaped", json.dumps(password, ensure_ascii=False)[1:-1]),
        ("quoted", '"' + password.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    }
    forms = {(kind, text.encode()) for kind, text in forms}
    for kind, secret in (("base64", password), ("base64 PLAIN", f"\0{user}\0{password}"),
                         ("base64 PLAIN", f"{user}\0{user}\0{password}")):
        forms.add((kind, base64.b64encode(secret.encode())))
    return [(kind, form) for kind, form in forms if len(form) >= 4]


def parse_timestamp(text):
    if not isinstance(text, str) or not text.endswith("Z"):
        return None
    try:
        return datetime.datetime.fromisoformat(text[:-1] + "+00:00").timestamp()
    except ValueError:
        return None


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, label, problems):
        """One check: passes when `problems` is empty, else prints each."""
        if problems:
            self.failed += 1
            for problem in problems:
                print(f"FAIL {label}: {problem}")
        else:
            self.passed += 1


def run_credwatch(binary, capture, extra_args=()):
    env = dict(os.environ, RUST_LOG="trace")
    try:
        done = subprocess.run([binary, "read", "--format", "json", *extra_args, capture],
                              env=env, capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, b"", b"timeout after 300 s"
    return done.returncode, done.stdout, done.stderr


def normal_ip(text):
    """An address in canonical form (IPv6 compressed); anything else as it came."""
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text


def alert_key(alert):
    try:
        return pcapfile.connection_key(alert["src_ip"], alert["src_port"], alert["dest_ip"],
                                       alert["dest_port"])
    except (KeyError, TypeError, ValueError):
        return None


def schema_problems(alert):
    problems = []
    credential, server = alert.get("credential"), alert.get("server")
    if not isinstance(credential, dict) or not isinstance(server, dict):
        return ["alert without credential / server objects"]
    if alert.get("event_type") not in ("cleartext_credential", "weak_credential"):
        problems.append(f"event_type {alert.get('event_type')!r}")
    if not isinstance(alert.get("flow_id"), int):
        problems.append("flow_id is not an integer")
    if alert.get("proto") != "TCP":
        problems.append(f"proto {alert.get('proto')!r}")
    if not isinstance(alert.get("severity"), str) or not alert.get("severity"):
        problems.append("severity missing")
    if parse_timestamp(alert.get("timestamp")) is None:
        problems.append(f"timestamp {alert.get('timestamp')!r} is not RFC 3339 UTC")
    if server.get("starttls_offered") not in (True, False, None):
        problems.append("server.starttls_offered is not a boolean or null")
    for field in ("mechanism", "secret", "username", "outcome"):
        if not isinstance(credential.get(field), str):
            problems.append(f"credential.{field} missing")
    return problems


def row_problems(row, alert, conn, show_usernames):
    credential, server = alert["credential"], alert["server"]
    want_user = row["username"] if show_usernames else masked(row["username"])
    want_secret = "challenge_response" if row["mechanism"] in WEAK_MECHANISMS else "password"
    server_stream = conn.server_stream()
    advertised = any(form in server_stream for form in STARTTLS_ADVERTISED[row["protocol"]])
    listed = CAPABILITIES_SEEN[row["protocol"]](conn.client_stream(), server_stream)
    checks = [
        ("app_proto", alert.get("app_proto"), row["protocol"]),
        ("credential.mechanism", credential.get("mechanism"), expected_mechanism(row)),
        ("credential.outcome", credential.get("outcome"), row["outcome"]),
        ("credential.username", credential.get("username"), want_user),
        ("credential.secret", credential.get("secret"), want_secret),
        ("server.ip", normal_ip(server.get("ip")), normal_ip(row["server_ip"])),
        ("server.port", server.get("port"), row["server_port"]),
        ("server.starttls_offered", server.get("starttls_offered"),
         advertised if listed or advertised else None),
    ]
    problems = [f"{name} is {got!r}, expected {want!r}" for name, got, want in checks
                if got != want]
    if GREETING_TEXT[row["protocol"]] not in str(server.get("greeting", "")):
        problems.append(f"server.greeting {server.get('greeting')!r} lacks the server's greeting")
    when = parse_timestamp(alert.get("timestamp"))
    if when is not None and not (conn.first_seen - TIMESTAMP_SLACK <= when
                                 <= conn.last_seen + TIMESTAMP_SLACK):
        problems.append(f"timestamp {alert['timestamp']} outside the connection's packets")
    return problems


def check_capture(report, binary, capture_path, rows, show_usernames=False):
    name = os.path.basename(capture_path) + (" --show-usernames" if show_usernames else "")
    status, stdout, stderr = run_credwatch(
        binary, capture_path, ["--show-usernames"] if show_usernames else [])
    report.check(f"{name}: run", [] if status == 0 else
                 [f"exit status {status}: {stderr.decode(errors='replace').strip()[-300:]}"])

    alerts, schema = [], []
    for line in stdout.decode(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            alert = json.loads(line)
        except json.JSONDecodeError:
            schema.append(f"stdout line is not JSON: {line[:100]!r}")
            continue
        if not isinstance(alert, dict):
            schema.append(f"stdout line is not a JSON object: {line[:100]!r}")
            continue
        if alert.get("event_type") == "anomaly":
            schema.append(f"anomaly on clean traffic: {alert.get('anomaly')}")
        if alert.get("event_type") not in CREDENTIAL_EVENTS:
            continue  # server reports and postures are not about one login
        schema += schema_problems(alert)
        alerts.append(alert)
    report.check(f"{name}: alert schema", schema)

    by_connection = {}
    for alert in alerts:
        by_connection.setdefault(alert_key(alert), []).append(alert)
    rows_by_key = {pcapfile.connection_key(r["client_ip"], r["client_port"], r["server_ip"],
                                           r["server_port"]): r for r in rows}
    conns = pcapfile.connections(pcapfile.read(capture_path), rows_by_key)
    flow_ids = {}
    for key, row in rows_by_key.items():
        label = (f"{name}: {row['scenario']} {row['client']} {row['protocol']} "
                 f"{row['mechanism']} client port {row['client_port']}")
        got = by_connection.get(key, [])
        want = expected_event(row)
        if want is None:
            reason = "TLS" if row["tls"] else "no secret in clear"
            report.check(label, [f"{len(got)} alerts, expected none ({reason})"] if got else [])
            continue
        if len(got) != 1 or got[0].get("event_type") != want:
            kinds = [a.get("event_type") for a in got]
            report.check(label, [f"alerts {kinds}, expected exactly one {want}"])
            continue
        if isinstance(got[0].get("flow_id"), int):
            flow_ids.setdefault(got[0]["flow_id"], set()).add(key)
        problems = schema_problems(got[0]) or row_problems(row, got[0], conns[key], show_usernames)
        report.check(label, problems)

    unexpected = [f"alert on a connection without a row: {json.dumps(alerts[0])[:200]}"
                  for key, alerts in by_connection.items() if key not in rows_by_key]
    unexpected += [f"flow_id {flow_id} names {len(keys)} connections"
                   for flow_id, keys in flow_ids.items() if len(keys) > 1]
    report.check(f"{name}: no unexpected alerts", unexpected)

    output = stdout + stderr
    leaks = sorted({f"a password of {r['username']!r} appears in the output ({kind})"
                    for r in rows for kind, form in leak_forms(r) if form in output})
    report.check(f"{name}: no secret in stdout/stderr", leaks)


def supports_show_usernames(binary):
    try:
        done = subprocess.run([binary, "read", "--help"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"--show-usernames" in done.stdout


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=os.environ.get("CREDWATCH_BIN", "target/debug/credwatch"))
    parser.add_argument("--whole", help="capture holding every row's connection")
    parser.add_argument("dir")
    args = parser.parse_args(argv)
    if not os.access(args.bin, os.X_OK):
        print(f"no executable credwatch at {args.bin}")
        print("0 passed, 1 failed")
        return 1

    with open(os.path.join(args.dir, "truth.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    report = Report()
    files = {}
    for row in rows:
        files.setdefault(row["file"], []).append(row)
    for file_name, file_rows in sorted(files.items()):
        check_capture(report, args.bin, os.path.join(args.dir, file_name), file_rows)
    if args.whole:
        check_capture(report, args.bin, args.whole, rows)
        if supports_show_usernames(args.bin):
            check_capture(report, args.bin, args.whole, rows, show_usernames=True)
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
