#!/usr/bin/env python3
"""Turns the driver's scenario rows into checked ground truth.

Every row must be confirmed by the server that handled it and by the capture; a row that is not
is an error of the bed, never of credwatch, and stops the run:

* server log: Dovecot's `Login:` / `auth failed` line with the row's client port (`rport=`),
  or Postfix's `disconnect from ...` line, must exist, agree on the outcome, the user name, the
  method and TLS; it is stored in the row's `server_log`. fetchmail does not report its client
  port: its rows take the next unclaimed Dovecot line of the same user and server port.
* capture: the connection is there from its SYN, and the password can be read from the client's
  byte stream (as is, IMAP-quoted, base64, or inside a base64 PLAIN message) exactly when the row
  says `password_in_clear`; where the stream is clear, `sasl_ir` and `imap_literal` match it.

Writes OUT/truth.jsonl and one capture per `file` named in the rows, holding only the packets
of that file's connections.
"""
import argparse
import base64
import json
import os
import re
import sys

import pcapfile

DOVECOT_METHOD = {"USER/PASS": "PLAIN", "IMAP-LOGIN": "PLAIN", "APOP": "APOP"}
DOVECOT_LINE = re.compile(
    r"^\S+ \S+ (?P<service>[\w-]+): (?P<message>.*user=<(?P<user>.*)>, method=(?P<method>\S+), "
    r"rip=(?P<rip>[0-9a-f.:]+), rport=(?P<rport>\d+), lip=\S+, lport=(?P<lport>\d+).*)$")
POSTFIX_PREFIX = re.compile(r"^\w{3} +\d+ [\d:]+ \S+ postfix/(?P<daemon>[\w/-]+)\[\d+\]: ")
POSTFIX_PEER = r"unknown\[(?P<ip>[0-9a-f.:]+)\]:(?P<port>\d+)"


class Problems:
    def __init__(self):
        self.lines = []

    def add(self, row, text):
        where = (f"{row['scenario']} {row['client']} {row['protocol']} {row['mechanism']} "
                 f"{row['client_ip']}:{row['client_port']} -> "
                 f"{row['server_ip']}:{row['server_port']}")
        self.lines.append(f"{where}: {text}")


def read_dovecot_log(path):
    """Login and auth-failure lines, in log order, as dicts with the parsed fields."""
    entries = []
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            match = DOVECOT_LINE.match(line.rstrip("\n"))
            if match is None or ("Login:" not in line and "auth failed" not in line):
                continue
            entry = match.groupdict()
            entry["rport"], entry["lport"] = int(entry["rport"]), int(entry["lport"])
            entry["outcome"] = "success" if "Login:" in line else "failure"
            entry["tls"] = re.search(r", TLS(,| handshaking)", line) is not None
            entry["server_log"] = "dovecot: " + entry["message"]
            entries.append(entry)
    return entries


def read_postfix_log(path):
    """Per client endpoint: the disconnect line and what other smtpd lines say about it."""
    sessions = {}
    if not os.path.exists(path):
        return sessions
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            prefix = POSTFIX_PREFIX.match(line)
            if prefix is None or prefix["daemon"] != "smtpd":
                continue
            message = line[prefix.end():].rstrip("\n")
            peer = re.search(POSTFIX_PEER, message)
            if peer is None:
                continue
            key = (pcapfile.connection_key(peer["ip"], peer["port"], peer["ip"], 0)[:2])
            session = sessions.setdefault(key, {"tls": False, "usernames": []})
            if message.startswith("disconnect from"):
                session["server_log"] = "postfix: " + message
                auth = re.search(r" auth=(\d+)(/\d+)?", message)
                session["outcome"] = ("success" if auth and auth[1] != "0" and not auth[2]
                                      else "failure" if auth else None)
                session["starttls"] = " starttls=1" in message
            elif "TLS connection established from" in message:
                session["tls"] = True
            user = re.search(r"sasl_username=(.*)$", message)
            if user:
                session["usernames"].append(user[1])
    return sessions


def assign_fetchmail_ports(rows, dovecot, problems):
    """fetchmail rows get the client port of the next unclaimed Dovecot line of their user.

    A line is claimed by its whole connection (both addresses and ports): the kernel reuses
    ephemeral client ports, so a fetchmail connection may share its client port with an earlier
    connection of another row to another server port.
    """
    claimed = {row_key(r) for r in rows if r["client_port"] is not None}
    for row in rows:
        if row["client_port"] is not None:
            continue
        for entry in dovecot:
            key = pcapfile.connection_key(entry["rip"], entry["rport"], row["server_ip"], entry["lport"])
            if (key not in claimed and entry["user"] == row["username"]
                    and entry["lport"] == row["server_port"]
                    and key[0] == pcapfile.connection_key(row["client_ip"], 0, row["server_ip"], 0)[0]):
                row["client_port"] = entry["rport"]
                claimed.add(key)
                break
        else:
            problems.add(row, "no Dovecot log line left for this fetchmail login")


def check_dovecot(row, dovecot, problems):
    key = row_key(row)
    matches = [e for e in dovecot if key == pcapfile.connection_key(
        e["rip"], e["rport"], row["server_ip"], e["lport"])]
    if len(matches) != 1:
        problems.add(row, f"{len(matches)} Dovecot log lines for this connection, expected 1")
        return
    entry = matches[0]
    row["server_log"] = entry["server_log"]
    method = DOVECOT_METHOD.get(row["mechanism"], row["mechanism"].removeprefix("SASL-"))
    for name, logged, expected in (("outcome", entry["outcome"], row["outcome"]),
                                   ("user", entry["user"], row["username"]),
                                   ("method", entry["method"], method),
                                   ("TLS", entry["tls"], row["tls"])):
        if logged != expected:
            problems.add(row, f"Dovecot logged {name} {logged!r}, the row says {expected!r}")


def check_postfix(row, postfix, problems):
    session = postfix.get(row_key(row)[:2])
    if session is None or "server_log" not in session:
        problems.add(row, "no Postfix disconnect line for this connection")
        return
    row["server_log"] = session["server_log"]
    if session["outcome"] != row["outcome"]:
        problems.add(row, f"Postfix logged outcome {session['outcome']}, row says {row['outcome']}")
    if session["tls"] != row["tls"] or session["starttls"] != row["starttls_before_auth"]:
        problems.add(row, "Postfix's TLS / STARTTLS lines disagree with the row")
    if any(user != row["username"] for user in session["usernames"]):
        problems.add(row, f"Postfix logged sasl_username {session['usernames']}")


def password_forms(row):
    """Every way the row's password can travel in clear in these protocols."""
    user, password = row["username"].encode(), row["password"].encode()
    quoted = b'"' + password.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    plain_messages = (b"\0" + user + b"\0" + password, user + b"\0" + user + b"\0" + password)
    return [password, quoted, base64.b64encode(password)] + [
        base64.b64encode(m) for m in plain_messages]


AUTH_LINE = re.compile(rb"^(?:\S+ )?(?:AUTH|AUTHENTICATE) (\S+)( \S+)?\r$", re.I | re.M)
LOGIN_LITERAL = re.compile(rb"^\S+ LOGIN [^\r\n]*\{\d+\+?\}\r$", re.I | re.M)


def check_capture(row, conn, problems):
    if not conn.client_syn:
        problems.add(row, "connection not in the capture (no SYN from the client)")
        return
    stream = conn.client_stream()
    readable = any(form in stream for form in password_forms(row))
    if readable != row["password_in_clear"]:
        problems.add(row, f"password readable in the capture: {readable}, row says "
                          f"password_in_clear {row['password_in_clear']}")
    if row["tls"]:
        return
    if row["mechanism"].startswith("SASL-"):
        auth = AUTH_LINE.search(stream)
        if auth is None:
            problems.add(row, "no AUTH / AUTHENTICATE line in the client stream")
        elif bool(auth[2]) != row["sasl_ir"]:
            problems.add(row, f"initial response sent: {bool(auth[2])}, row says {row['sasl_ir']}")
    if row["mechanism"] == "IMAP-LOGIN":
        user, password = row["username"].encode(), row["password"].encode()
        literal = row["imap_literal"]
        if literal == "password":
            seen = b" {%d}\r\n%s\r\n" % (len(password), password) in stream
        elif literal == "user-sync,password-nonsync":
            seen = (b" LOGIN {%d}\r\n%s {%d+}\r\n%s\r\n"
                    % (len(user), user, len(password), password)) in stream
        else:
            seen = LOGIN_LITERAL.search(stream) is None
        if not seen:
            problems.add(row, f"the LOGIN command does not have the literal form {literal!r}")


def row_key(row):
    return pcapfile.connection_key(row["client_ip"], row["client_port"], row["server_ip"],
                                   row["server_port"])


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", required=True)
    parser.add_argument("--capture", required=True)
    parser.add_argument("--dovecot-log", required=True)
    parser.add_argument("--postfix-log", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    with open(args.rows, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    problems = Problems()
    dovecot = read_dovecot_log(args.dovecot_log)
    postfix = read_postfix_log(args.postfix_log)
    assign_fetchmail_ports(rows, dovecot, problems)
    rows = [r for r in rows if r["client_port"] is not None]

    capture = pcapfile.read(args.capture)
    conns = pcapfile.connections(capture, {row_key(r) for r in rows})
    if len(conns) != len(rows):
        problems.lines.append("two rows name the same connection")
    for row in rows:
        if row["protocol"] == "smtp":
            check_postfix(row, postfix, problems)
        else:
            check_dovecot(row, dovecot, problems)
        check_capture(row, conns[row_key(row)], problems)

    for line in problems.lines:
        print(f"crosscheck: BED ERROR: {line}")
    if problems.lines:
        print(f"crosscheck: {len(problems.lines)} problems in {len(rows)} rows")
        return 1

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "truth.jsonl"), "w", encoding="utf-8") as truth:
        for row in rows:
            truth.write(json.dumps(row, ensure_ascii=False) + "\n")
    files = {}
    for row in rows:
        files.setdefault(row["file"], []).extend(conns[row_key(row)].records)
    for name, records in files.items():
        capture.write(os.path.join(args.out, name), records)
    print(f"crosscheck: {len(rows)} rows confirmed by the server logs and the capture; "
          f"{len(files)} capture files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
