#!/usr/bin/env python3
"""Drives real mail clients through every login scenario of the e2e bed.

`driver.py prepare --dir WORK --home-owner USER` writes Dovecot's passwd-file (the invented test
accounts below, plaintext so that APOP and CRAM-MD5 work) and one Maildir per account.

`driver.py run --dir WORK --out ROWS ...` runs inside the client namespace: every scenario makes
one TCP connection and one login attempt, with Python's poplib/imaplib/smtplib, curl, fetchmail
or a small raw-socket IMAP client (for literals, LITERAL+ and ID) or ManageSieve client (Python
has none), and writes one JSON row per
attempt in the format of the corpus's truth.jsonl (see fixtures/e2e/README.md). `server_log` is
left empty here: crosscheck.py fills it from the servers' logs, and also fills the client port of
fetchmail's connections, which fetchmail does not report.
"""
import argparse
import base64
import dataclasses
import grp
import hashlib
import hmac
import imaplib
import itertools
import json
import os
import poplib
import pwd
import smtplib
import socket
import ssl
import subprocess
import sys
import time

TIMEOUT = 20
# Every connection the driver makes is pinned to a client port of its own, counting up from here,
# so that each row names its connection exactly: the kernel hands an ephemeral port out again once
# the connection that had it is closed, and two rows then named one connection (seen: poplib got
# port 57000 in two scenarios of one run). run.sh moves the client namespace's ephemeral range,
# which only fetchmail still uses, above these ports.
FIRST_CLIENT_PORT = 40000
_client_ports = itertools.count(FIRST_CLIENT_PORT)
_create_connection = socket.create_connection


def next_client_port():
    return next(_client_ports)


def pinned_create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None,
                             **kwargs):
    """socket.create_connection from the next client port (poplib, imaplib and smtplib call it)."""
    if source_address is None:
        source_address = ("", next_client_port())
    return _create_connection(address, timeout, source_address, **kwargs)


socket.create_connection = pinned_create_connection
MAIL_FROM = "sender@e2e.test"
MAIL_TO = "rcpt@example.test"
MESSAGE = (
    "From: sender@e2e.test\r\nTo: rcpt@example.test\r\nSubject: e2e bed\r\n\r\n"
    "A message sent by the credwatch e2e bed.\r\n"
)


@dataclasses.dataclass(frozen=True)
class Account:
    """A test account; names and passwords exercise quoting, escaping and UTF-8."""

    name: str
    password: str


NADIA = Account("nadia", "Quiet-River-77")
OLEK = Account("olek@example.test", 'say "cheese" \\ and {smile}')
PAT = Account("pat \"the cat\" o'neil", "trick{7}")
ZOE = Account("zoë.ångström@example.test", "Grüße aus Köln ✓ 9")
RAFA = Account("rafa", "back\\slash\\\\double-Q9")
VERA = Account("CORP\\vera", "V3ra%20per{cent}(x)")
OYSTEIN = Account("øystein", "Fjord-Blå-42 [x]")
QUINN = Account("quinn", "fetch {all} the mail")
ACCOUNTS = [NADIA, OLEK, PAT, ZOE, RAFA, VERA, OYSTEIN, QUINN]
INTRUDER = Account("intruder", "let-me-in-2026")
WRONG_PASSWORD = "Not-The-Password-9"


def wrong(account):
    """The same account with a wrong password."""
    return Account(account.name, WRONG_PASSWORD)


class BedError(Exception):
    """The bed itself misbehaved (a client did not do what the scenario says)."""


def unverified_tls():
    """TLS context for the bed's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def imap_quote(text):
    """IMAP quoted string, escaped like imaplib quotes passwords."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imap_astring(text):
    """The name as an atom when it can be one, else quoted (imaplib does not quote user names)."""
    atom_specials = set('(){ %*"\\]')
    if text and all(33 <= ord(c) < 127 and c not in atom_specials for c in text):
        return text
    return imap_quote(text)


def plain_blob(account):
    """SASL PLAIN message with an empty authorisation identity, as most clients send it."""
    return f"\0{account.name}\0{account.password}".encode()


class ScramSha256:
    """A SCRAM-SHA-256 client (RFC 5802, RFC 7677) as an imaplib authentication object: imaplib
    has none. Called with each server challenge, decoded; returns the response to encode."""

    def __init__(self, account):
        self.password = account.password.encode()
        name = account.name.replace("=", "=3D").replace(",", "=2C")
        self.client_first_bare = f"n={name},r={base64.b64encode(os.urandom(18)).decode()}"
        self.sent_first = False

    def __call__(self, challenge):
        if not self.sent_first:
            self.sent_first = True
            return f"n,,{self.client_first_bare}".encode()
        if challenge.startswith((b"v=", b"e=")):
            return b""
        server_first = challenge.decode()
        attributes = dict(item.split("=", 1) for item in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attributes["s"]),
                                     int(attributes["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attributes['r']}"
        auth_message = f"{self.client_first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytes(key ^ sig for key, sig in zip(client_key, signature))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


@dataclasses.dataclass
class Endpoint:
    """Server and client address of one IP family."""

    family: int
    server_ip: str
    client_ip: str

    def url_host(self):
        return f"[{self.server_ip}]" if self.family == 6 else self.server_ip


class Driver:
    """Runs scenarios and collects one row per login attempt."""

    def __init__(self, args):
        self.work = args.dir
        self.v4 = Endpoint(4, args.server_v4, args.client_v4)
        self.v6 = Endpoint(6, args.server_v6, args.client_v6)
        self.rows = []
        self.fetchmail_runs = 0
        self.file = ""
        self.scenario = ""

    # -- rows ---------------------------------------------------------------------------------

    def record(self, ep, port, *, protocol, mechanism, account, client, client_port, outcome,
               tls=False, starttls=False, sasl_ir=False, imap_literal="", note=""):
        in_clear = not tls and mechanism not in ("APOP", "SASL-CRAM-MD5", "SASL-SCRAM-SHA-256")
        self.rows.append({
            "file": self.file,
            "protocol": protocol,
            "server_ip": ep.server_ip,
            "server_port": port,
            "client_ip": ep.client_ip,
            "client_port": client_port,
            "mechanism": mechanism,
            "username": account.name,
            "password_in_clear": in_clear,
            "starttls_before_auth": starttls,
            "tls": tls,
            "outcome": outcome,
            "expect_alert": in_clear,
            "password": account.password,
            "sasl_ir": sasl_ir,
            "imap_literal": imap_literal,
            "client": client,
            "scenario": self.scenario,
            "note": note,
            "server_log": "",
        })
        print(f"  {self.scenario}: {client} {protocol} {mechanism} port {port} "
              f"client port {client_port}: {outcome}", flush=True)

    def group(self, file, scenario):
        self.file, self.scenario = file, scenario

    # -- POP3 ---------------------------------------------------------------------------------

    def poplib(self, ep, port, account, mode="user", expect="success"):
        """mode: user (USER/PASS), apop, stls (STLS then USER/PASS), ssl (POP3_SSL)."""
        if mode == "ssl":
            client = poplib.POP3_SSL(ep.server_ip, port, timeout=TIMEOUT, context=unverified_tls())
        else:
            client = poplib.POP3(ep.server_ip, port, timeout=TIMEOUT)
        client_port = client.sock.getsockname()[1]
        if mode == "stls":
            client.stls(context=unverified_tls())
        try:
            if mode == "apop":
                client.apop(account.name, account.password)
            else:
                client.user(account.name)
                client.pass_(account.password)
            client.stat()
            client.uidl()
            outcome = "success"
        except poplib.error_proto:
            outcome = "failure"
        client.quit()
        check_outcome(outcome, expect)
        tls = mode in ("stls", "ssl")
        self.record(ep, port, protocol="pop3", mechanism="APOP" if mode == "apop" else "USER/PASS",
                    account=account, client="python3-poplib", client_port=client_port,
                    outcome=outcome, tls=tls, starttls=mode == "stls")

    # -- IMAP ---------------------------------------------------------------------------------

    def imaplib(self, ep, port, account, mode="login", expect="success", starttls=False,
                implicit_tls=False):
        """mode: login, plain (AUTHENTICATE PLAIN), login-sasl (AUTHENTICATE LOGIN), cram-md5,
        scram-sha-256."""
        if implicit_tls:
            client = imaplib.IMAP4_SSL(ep.server_ip, port, ssl_context=unverified_tls(),
                                       timeout=TIMEOUT)
        else:
            client = imaplib.IMAP4(ep.server_ip, port, timeout=TIMEOUT)
        client_port = client.sock.getsockname()[1]
        if starttls:
            client.starttls(ssl_context=unverified_tls())
        mechanism = {"login": "IMAP-LOGIN", "plain": "SASL-PLAIN", "login-sasl": "SASL-LOGIN",
                     "cram-md5": "SASL-CRAM-MD5", "scram-sha-256": "SASL-SCRAM-SHA-256"}[mode]
        try:
            if mode == "login":
                client.login(imap_astring(account.name), account.password)
            elif mode == "plain":
                client.authenticate("PLAIN", lambda _challenge: plain_blob(account))
            elif mode == "login-sasl":
                client.authenticate(
                    "LOGIN",
                    lambda challenge: account.name if b"user" in challenge.lower()
                    else account.password)
            elif mode == "scram-sha-256":
                client.authenticate("SCRAM-SHA-256", ScramSha256(account))
            else:
                client.login_cram_md5(account.name, account.password)
            client.select("INBOX", readonly=True)
            outcome = "success"
        except imaplib.IMAP4.error:
            outcome = "failure"
        client.logout()
        check_outcome(outcome, expect)
        tls = starttls or implicit_tls
        self.record(ep, port, protocol="imap", mechanism=mechanism, account=account,
                    client="python3-imaplib", client_port=client_port, outcome=outcome, tls=tls,
                    starttls=starttls)

    def imap_raw_literal(self, ep, port, account, literal, send_id=False, expect="success"):
        """IMAP LOGIN with literals, which imaplib cannot send.

        literal "password": user quoted, password as a synchronising literal {n};
        literal "user-sync,password-nonsync": user as {n}, password as a LITERAL+ {n+}.
        """
        with socket.create_connection((ep.server_ip, port), timeout=TIMEOUT) as sock:
            client_port = sock.getsockname()[1]
            reader = sock.makefile("rb")
            greeting = reader.readline()
            if not greeting.startswith(b"* OK"):
                raise BedError("IMAP greeting missing")
            if send_id:
                sock.sendall(b'a0 ID ("name" "credwatch-e2e" "version" "1.0")\r\n')
                read_tagged(reader, b"a0")
            user, password = account.name.encode(), account.password.encode()
            if literal == "password":
                sock.sendall(b"a1 LOGIN " + imap_quote(account.name).encode()
                             + b" {%d}\r\n" % len(password))
                expect_continuation(reader)
                sock.sendall(password + b"\r\n")
            elif literal == "user-sync,password-nonsync":
                sock.sendall(b"a1 LOGIN {%d}\r\n" % len(user))
                expect_continuation(reader)
                sock.sendall(user + b" {%d+}\r\n" % len(password) + password + b"\r\n")
            else:
                raise BedError(f"unknown literal form {literal}")
            status = read_tagged(reader, b"a1")
            outcome = "success" if status.startswith(b"a1 OK") else "failure"
            sock.sendall(b"a2 LOGOUT\r\n")
            read_tagged(reader, b"a2")
        check_outcome(outcome, expect)
        self.record(ep, port, protocol="imap", mechanism="IMAP-LOGIN", account=account,
                    client="python3-socket", client_port=client_port, outcome=outcome,
                    imap_literal=literal, note="ID command before LOGIN" if send_id else "")

    # -- ManageSieve --------------------------------------------------------------------------

    def managesieve_raw(self, ep, port, account, mechanism="PLAIN", form="quoted", starttls=False,
                        expect="success"):
        """A ManageSieve (RFC 5804) login over a raw socket: Python has no client for it.

        form "quoted": PLAIN's initial response as a quoted string; "literal": as a
        non-synchronising literal {n+}; "steps": no initial response, each SASL step answered on a
        line of its own (LOGIN: user name, then password, as quoted strings).
        """
        with socket.create_connection((ep.server_ip, port), timeout=TIMEOUT) as raw:
            client_port = raw.getsockname()[1]
            sock, reader = raw, raw.makefile("rb")
            read_sieve_response(reader)
            if starttls:
                sock.sendall(b"STARTTLS\r\n")
                if not read_sieve_response(reader).startswith(b"OK"):
                    raise BedError("ManageSieve STARTTLS refused")
                sock = unverified_tls().wrap_socket(raw)
                reader = sock.makefile("rb")
                read_sieve_response(reader)
            if mechanism == "PLAIN" and form in ("quoted", "literal"):
                blob = base64.b64encode(plain_blob(account))
                if form == "quoted":
                    sock.sendall(b'AUTHENTICATE "PLAIN" "' + blob + b'"\r\n')
                else:
                    sock.sendall(b'AUTHENTICATE "PLAIN" {%d+}\r\n' % len(blob) + blob + b"\r\n")
                status = read_sieve_response(reader)
            elif mechanism == "PLAIN" and form == "steps":
                sock.sendall(b'AUTHENTICATE "PLAIN"\r\n')
                status = read_sieve_response(reader, sock, lambda _challenge: plain_blob(account))
            elif mechanism == "LOGIN":
                sock.sendall(b'AUTHENTICATE "LOGIN"\r\n')
                answers = {b"username:": account.name.encode(), b"password:": account.password.encode()}
                status = read_sieve_response(reader, sock, lambda challenge: answers[challenge.lower()])
            else:
                raise BedError(f"unknown ManageSieve login {mechanism} {form}")
            outcome = "success" if status.startswith(b"OK") else "failure"
            sock.sendall(b"LOGOUT\r\n")
            read_sieve_response(reader)
        check_outcome(outcome, expect)
        self.record(ep, port, protocol="managesieve", mechanism="SASL-" + mechanism, account=account,
                    client="python3-socket", client_port=client_port, outcome=outcome,
                    tls=starttls, starttls=starttls, sasl_ir=mechanism == "PLAIN" and form != "steps",
                    note=f"initial response as a {form} string" if mechanism == "PLAIN" else "")

    # -- SMTP ---------------------------------------------------------------------------------

    def smtplib(self, ep, port, account, mechanism, initial_response, expect="success",
                starttls=False, implicit_tls=False, send=False):
        if implicit_tls:
            client = smtplib.SMTP_SSL(ep.server_ip, port, local_hostname="client.e2e.test",
                                      timeout=TIMEOUT, context=unverified_tls())
        else:
            client = smtplib.SMTP(ep.server_ip, port, local_hostname="client.e2e.test",
                                  timeout=TIMEOUT)
        client_port = client.sock.getsockname()[1]
        client.ehlo()
        if starttls:
            client.starttls(context=unverified_tls())
            client.ehlo()
        client.user, client.password = account.name, account.password
        auth_object = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login,
                       "CRAM-MD5": client.auth_cram_md5}[mechanism]
        try:
            client.auth(mechanism, auth_object, initial_response_ok=initial_response)
            outcome = "success"
        except smtplib.SMTPAuthenticationError:
            outcome = "failure"
        if send and outcome == "success":
            client.sendmail(MAIL_FROM, [MAIL_TO], MESSAGE)
        client.quit()
        check_outcome(outcome, expect)
        # CRAM-MD5 has no initial response: smtplib sends the bare AUTH line whatever it is told.
        sends_ir = initial_response and mechanism != "CRAM-MD5"
        self.record(ep, port, protocol="smtp", mechanism="SASL-" + mechanism, account=account,
                    client="python3-smtplib", client_port=client_port, outcome=outcome,
                    tls=starttls or implicit_tls, starttls=starttls, sasl_ir=sends_ir,
                    note="message sent" if send else "")

    # -- curl ---------------------------------------------------------------------------------

    def curl(self, ep, scheme, port, account, auth, expect="success", sasl_ir=False,
             ssl_reqd=False):
        """One curl login; auth is curl's AUTH= login option (+APOP, PLAIN, LOGIN, CRAM-MD5).

        The client port is pinned with --local-port, like every connection of the driver's own.
        """
        protocol = scheme.rstrip("s")
        implicit_tls = scheme.endswith("s")
        client_port = next_client_port()
        command = ["curl", "-sS", "-k", "--max-time", str(TIMEOUT), "--local-port",
                   str(client_port), "--user", f"{account.name}:{account.password}",
                   "--login-options", f"AUTH={auth}", "-o", os.devnull]
        if sasl_ir:
            command.append("--sasl-ir")
        if ssl_reqd:
            command.append("--ssl-reqd")
        url = f"{scheme}://{ep.url_host()}:{port}/"
        if protocol == "smtp":
            message = os.path.join(self.work, "client", "message.eml")
            command += ["--mail-from", MAIL_FROM, "--mail-rcpt", MAIL_TO, "--upload-file", message]
        elif protocol == "imap":
            url += "INBOX"
        command.append(url)
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT + 10)
        if result.returncode == 0:
            outcome = "success"
        elif result.returncode == 67:  # CURLE_LOGIN_DENIED
            outcome = "failure"
        else:
            raise BedError(f"curl exit {result.returncode}: {result.stderr.strip()}")
        check_outcome(outcome, expect)
        mechanism = "APOP" if auth == "+APOP" else "SASL-" + auth
        # curl sends a SASL initial response to IMAP servers advertising SASL-IR (Dovecot does),
        # and to POP3/SMTP servers only when told so; CRAM-MD5 starts with a server challenge.
        sends_ir = (mechanism.startswith("SASL-") and auth != "CRAM-MD5"
                    and (protocol == "imap" or sasl_ir))
        self.record(ep, port, protocol=protocol, mechanism=mechanism, account=account,
                    client="curl", client_port=client_port, outcome=outcome,
                    tls=implicit_tls or ssl_reqd, starttls=ssl_reqd, sasl_ir=sends_ir,
                    note="message sent" if protocol == "smtp" and outcome == "success" else "")

    # -- fetchmail ----------------------------------------------------------------------------

    def fetchmail(self, ep, protocol, port, account, polls, tls=False):
        """fetchmail polling `polls` times, 1 s apart, in keep mode.

        Without TLS, `sslproto ''` stops fetchmail's opportunistic STLS/STARTTLS; with it,
        fetchmail upgrades by itself because the server offers it. fetchmail does not tell its
        client port: crosscheck.py takes it from the server log.
        """
        if any(c in account.name + account.password for c in '"\\'):
            raise BedError("fetchmailrc strings here are written without escapes")
        self.fetchmail_runs += 1
        home = os.path.join(self.work, "client", f"fetchmail{self.fetchmail_runs}")
        os.makedirs(home, exist_ok=True)
        rc_file = os.path.join(home, "fetchmailrc")
        tls_options = "no sslcertck" if tls else "sslproto ''"
        with open(rc_file, "w", encoding="utf-8") as rc:
            rc.write(
                f"poll {ep.server_ip} with proto {protocol.upper()} port {port} auth password\n"
                f"  user \"{account.name}\" there with password \"{account.password}\"\n"
                f"  is root here\n"
                f"  keep fetchall {tls_options} mda \"/bin/cat >/dev/null\"\n")
        os.chmod(rc_file, 0o600)
        # As root, fetchmail's lock file is system-wide (/var/run): a bed of its own keeps
        # concurrent runs (two checkouts testing at once) from refusing each other.
        env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
        pidfile = os.path.join(home, "fetchmail.pid")
        for poll in range(1, polls + 1):
            result = subprocess.run(["fetchmail", "-f", rc_file, "--nosyslog", "--pidfile", pidfile], env=env,
                                    capture_output=True, text=True, timeout=TIMEOUT + 10)
            if result.returncode not in (0, 1):  # 0: mail fetched, 1: no mail
                raise BedError(f"fetchmail exit {result.returncode}: {result.stderr.strip()}")
            self.record(ep, port, protocol=protocol,
                        mechanism="USER/PASS" if protocol == "pop3" else "IMAP-LOGIN",
                        account=account, client="fetchmail", client_port=None,
                        outcome="success", tls=tls, starttls=tls,
                        note=f"poll {poll}/{polls}" if polls > 1 else "")
            if poll < polls:
                time.sleep(1)

    # -- the scenario list --------------------------------------------------------------------

    def run_all(self):
        v4, v6 = self.v4, self.v6

        self.group("pop3-user-pass.pcap", "pop3-user-pass")
        for account in (NADIA, OLEK, PAT, ZOE, VERA):
            self.poplib(v4, 110, account)

        self.group("pop3-apop.pcap", "pop3-apop")
        self.poplib(v4, 110, RAFA, "apop")
        self.poplib(v4, 110, wrong(NADIA), "apop", expect="failure")
        self.curl(v4, "pop3", 110, OLEK, "+APOP")

        self.group("pop3-auth.pcap", "pop3-auth")
        self.curl(v4, "pop3", 110, NADIA, "PLAIN")
        self.curl(v4, "pop3", 110, OLEK, "PLAIN", sasl_ir=True)
        self.curl(v4, "pop3", 110, RAFA, "LOGIN")
        self.curl(v4, "pop3", 110, ZOE, "LOGIN", sasl_ir=True)
        self.curl(v4, "pop3", 110, PAT, "CRAM-MD5")

        self.group("pop3-tls.pcap", "pop3-tls")
        self.poplib(v4, 110, NADIA, "stls")
        self.poplib(v4, 995, OLEK, "ssl")
        self.curl(v4, "pop3", 110, RAFA, "PLAIN", ssl_reqd=True)
        self.curl(v4, "pop3s", 995, ZOE, "LOGIN")
        self.fetchmail(v4, "pop3", 110, QUINN, polls=1, tls=True)

        self.group("pop3-failures.pcap", "pop3-failures")
        self.poplib(v4, 110, wrong(OLEK), expect="failure")
        self.poplib(v4, 110, INTRUDER, expect="failure")
        self.curl(v4, "pop3", 110, wrong(NADIA), "PLAIN", expect="failure")

        self.group("pop3-polling.pcap", "pop3-polling")
        self.fetchmail(v4, "pop3", 110, QUINN, polls=3)

        self.group("imap-login.pcap", "imap-login")
        for account in (NADIA, OLEK, PAT, VERA):
            self.imaplib(v4, 143, account)
        self.imaplib(v4, 143, RAFA)
        self.fetchmail(v4, "imap", 143, QUINN, polls=1)

        self.group("imap-literal.pcap", "imap-literal")
        self.imap_raw_literal(v4, 143, NADIA, "password")
        self.imap_raw_literal(v4, 143, ZOE, "user-sync,password-nonsync")
        self.imap_raw_literal(v4, 143, PAT, "password", send_id=True)
        self.imap_raw_literal(v4, 143, OYSTEIN, "user-sync,password-nonsync")

        self.group("imap-authenticate.pcap", "imap-authenticate")
        self.imaplib(v4, 143, OLEK, "plain")
        self.imaplib(v4, 143, ZOE, "plain")
        self.imaplib(v4, 143, RAFA, "login-sasl")
        self.curl(v4, "imap", 143, NADIA, "PLAIN")
        self.curl(v4, "imap", 143, VERA, "LOGIN")

        self.group("imap-cram-md5.pcap", "imap-cram-md5")
        self.imaplib(v4, 143, NADIA, "cram-md5")
        self.curl(v4, "imap", 143, OLEK, "CRAM-MD5")
        self.imaplib(v4, 143, wrong(RAFA), "cram-md5", expect="failure")

        self.group("imap-scram.pcap", "imap-scram")
        self.imaplib(v4, 143, NADIA, "scram-sha-256")
        self.imaplib(v6, 143, wrong(OLEK), "scram-sha-256", expect="failure")

        self.group("imap-tls.pcap", "imap-tls")
        self.imaplib(v4, 143, NADIA, starttls=True)
        self.imaplib(v4, 993, OLEK, "plain", implicit_tls=True)
        self.curl(v4, "imap", 143, RAFA, "PLAIN", ssl_reqd=True)
        self.curl(v4, "imaps", 993, NADIA, "LOGIN")

        self.group("imap-failures.pcap", "imap-failures")
        self.imaplib(v4, 143, wrong(NADIA), expect="failure")
        self.imaplib(v4, 143, INTRUDER, expect="failure")
        self.curl(v4, "imap", 143, wrong(OLEK), "PLAIN", expect="failure")
        self.imap_raw_literal(v4, 143, wrong(PAT), "password", expect="failure")

        self.group("smtp-auth.pcap", "smtp-auth")
        self.smtplib(v4, 25, NADIA, "PLAIN", initial_response=True)
        self.smtplib(v4, 587, OLEK, "PLAIN", initial_response=False, send=True)
        self.smtplib(v4, 587, RAFA, "LOGIN", initial_response=True)
        self.smtplib(v4, 587, PAT, "LOGIN", initial_response=False)
        self.smtplib(v4, 587, VERA, "CRAM-MD5", initial_response=False)
        self.curl(v4, "smtp", 587, NADIA, "PLAIN")
        self.curl(v4, "smtp", 25, ZOE, "LOGIN", sasl_ir=True)
        self.curl(v4, "smtp", 587, OYSTEIN, "PLAIN", sasl_ir=True)

        self.group("smtp-tls.pcap", "smtp-tls")
        self.smtplib(v4, 587, NADIA, "PLAIN", initial_response=True, starttls=True, send=True)
        self.smtplib(v4, 465, OLEK, "LOGIN", initial_response=True, implicit_tls=True)
        self.curl(v4, "smtp", 587, RAFA, "PLAIN", ssl_reqd=True)
        self.curl(v4, "smtps", 465, PAT, "LOGIN")

        self.group("smtp-failures.pcap", "smtp-failures")
        self.smtplib(v4, 587, wrong(NADIA), "PLAIN", initial_response=True, expect="failure")
        self.smtplib(v4, 25, INTRUDER, "LOGIN", initial_response=False, expect="failure")
        self.curl(v4, "smtp", 587, wrong(RAFA), "LOGIN", expect="failure")

        self.group("managesieve.pcap", "managesieve")
        self.managesieve_raw(v4, 4190, NADIA, "PLAIN", "quoted")
        self.managesieve_raw(v4, 4190, OLEK, "PLAIN", "literal")
        self.managesieve_raw(v4, 4190, ZOE, "PLAIN", "steps")
        self.managesieve_raw(v4, 4190, RAFA, "LOGIN")
        self.managesieve_raw(v4, 4190, wrong(PAT), "PLAIN", "quoted", expect="failure")
        self.managesieve_raw(v4, 4190, VERA, "PLAIN", "literal", starttls=True)
        self.managesieve_raw(v4, 14190, OYSTEIN, "PLAIN", "literal")
        self.managesieve_raw(v6, 4190, NADIA, "LOGIN")

        self.group("nonstandard-ports.pcap", "nonstandard-ports")
        self.poplib(v4, 1110, NADIA)
        self.curl(v4, "pop3", 1110, OLEK, "PLAIN")
        self.poplib(v4, 1110, RAFA, "apop")
        self.imaplib(v4, 10143, OLEK)
        self.curl(v4, "imap", 10143, ZOE, "PLAIN")
        self.imaplib(v4, 10143, PAT, starttls=True)
        self.smtplib(v4, 2525, NADIA, "LOGIN", initial_response=True)
        self.curl(v4, "smtp", 2525, RAFA, "PLAIN")

        self.group("ipv6.pcap", "ipv6")
        self.poplib(v6, 110, OLEK)
        self.poplib(v6, 110, NADIA, "apop")
        self.imaplib(v6, 143, PAT)
        self.curl(v6, "imap", 143, RAFA, "PLAIN")
        self.smtplib(v6, 587, VERA, "PLAIN", initial_response=True)
        self.curl(v6, "smtp", 587, NADIA, "LOGIN")
        self.imaplib(v6, 143, OLEK, starttls=True)
        self.poplib(v6, 1110, NADIA)
        self.smtplib(v6, 2525, wrong(OLEK), "PLAIN", initial_response=False, expect="failure")


def check_outcome(outcome, expected):
    if outcome != expected:
        raise BedError(f"login {outcome}, the scenario expects {expected}")


def expect_continuation(reader):
    line = reader.readline()
    if not line.startswith(b"+"):
        raise BedError("IMAP server did not send a continuation for the literal")


def read_tagged(reader, tag):
    """Reads untagged lines up to the tagged status line, which is returned."""
    while True:
        line = reader.readline()
        if not line:
            raise BedError("IMAP server closed the connection")
        if line.startswith(tag + b" "):
            return line


def is_sieve_status(line):
    return line.split(b" ", 1)[0].rstrip(b"\r\n").upper() in (b"OK", b"NO", b"BYE")


def read_sieve_response(reader, sock=None, answer=None):
    """Reads a ManageSieve response up to its OK/NO/BYE line, which is returned. Lines before it
    are capability lines, or, with `answer`, SASL challenges (quoted strings or {n} literals of
    base64), each answered with `answer(decoded challenge)`, base64-encoded and quoted."""
    while True:
        line = reader.readline()
        if not line:
            raise BedError("ManageSieve server closed the connection")
        if is_sieve_status(line):
            return line
        if answer is None:
            continue
        text = line.rstrip(b"\r\n")
        if text.startswith(b"{"):
            text = reader.read(int(text.strip(b"{}+")))
            reader.readline()
        elif text.startswith(b'"') and text.endswith(b'"'):
            text = text[1:-1]
        else:
            raise BedError(f"unexpected ManageSieve line during SASL: {line!r}")
        response = base64.b64encode(answer(base64.b64decode(text)))
        sock.sendall(b'"' + response + b'"\r\n')


def dovecot_escape(name):
    """The passwd-file key for a user name: Dovecot escapes the looked-up name (str_escape)."""
    return "".join("\\" + c if c in "\\\"'" else c for c in name)


def prepare(args):
    """Writes the passwd-file and one Maildir per account (the userdb's home directories)."""
    owner = pwd.getpwnam(args.home_owner)
    dovecot_dir = os.path.join(args.dir, "dovecot")
    os.makedirs(dovecot_dir, exist_ok=True)
    lines = []
    for index, account in enumerate(ACCOUNTS, 1):
        if ":" in account.name + account.password or "\n" in account.name + account.password:
            raise BedError("passwd-file fields cannot hold ':' or newlines")
        home = os.path.join(args.dir, "home", f"u{index}")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(home, "Maildir", sub), exist_ok=True)
        with open(os.path.join(home, "Maildir", "new", f"1700000000.e2e{index}.bed"), "w",
                  encoding="utf-8") as mail:
            mail.write(MESSAGE.replace("\r\n", "\n"))
        for root, dirs, files in os.walk(home):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, owner.pw_uid, owner.pw_gid)
        lines.append(f"{dovecot_escape(account.name)}:{{PLAIN}}{account.password}:"
                     f"{owner.pw_uid}:{owner.pw_gid}::{home}::\n")
    with open(os.path.join(dovecot_dir, "users"), "w", encoding="utf-8") as users:
        users.writelines(lines)
    # Dovecot's auth process runs as the dovecot user; the file stays unreadable to others.
    os.chown(os.path.join(dovecot_dir, "users"), 0, grp.getgrnam(args.passwd_group).gr_gid)
    os.chmod(os.path.join(dovecot_dir, "users"), 0o640)
    client_dir = os.path.join(args.dir, "client")
    os.makedirs(client_dir, exist_ok=True)
    with open(os.path.join(client_dir, "message.eml"), "w", encoding="utf-8") as message:
        message.write(MESSAGE)


def run(args):
    driver = Driver(args)
    try:
        driver.run_all()
    except (BedError, OSError, subprocess.TimeoutExpired, poplib.error_proto, imaplib.IMAP4.error,
            smtplib.SMTPException) as error:
        print(f"driver: scenario {driver.scenario} failed: {error!r}", file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8") as out:
        for row in driver.rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"driver: {len(driver.rows)} login attempts")
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare")
    prep.add_argument("--dir", required=True)
    prep.add_argument("--home-owner", required=True)
    prep.add_argument("--passwd-group", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--dir", required=True)
    runner.add_argument("--out", required=True)
    for name in ("server-v4", "client-v4", "server-v6", "client-v6"):
        runner.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
