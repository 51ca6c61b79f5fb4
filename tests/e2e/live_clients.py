#!/usr/bin/env python3
"""The clients of tests/e2e/live.sh: one connection and one login attempt per scenario, with
Python's poplib/imaplib and curl, in clear, after STARTTLS/STLS, and with a wrong password.

tests/live_e2e.rs expects exactly one alert per cleartext scenario below, none for the TLS ones;
(protocol, user, outcome) is unique per scenario so that alerts can be matched to them.
"""
import argparse
import imaplib
import poplib
import ssl
import subprocess
import sys

TIMEOUT = 20
ALICE = ("alice", "Alice-Live-Pw-1")
BOB = ("bob", "Bob-Live-Pw-2")
CAROL = ("carol", "Carol-Live-Pw-3")
WRONG = "Not-The-Password-9"


def tls_context():
    """The bed's certificate is self-signed: encryption, not identity, matters here."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def pop3(server, user, password, starttls=False, expect_ok=True):
    client = poplib.POP3(server, 110, timeout=TIMEOUT)
    try:
        if starttls:
            client.stls(context=tls_context())
        client.user(user)
        try:
            client.pass_(password)
            ok = True
        except poplib.error_proto:
            ok = False
        if ok != expect_ok:
            raise RuntimeError(f"POP3 login of {user}: expected {'success' if expect_ok else 'failure'}")
    finally:
        client.quit()


def imap(server, user, password, starttls=False, expect_ok=True):
    client = imaplib.IMAP4(server, 143, timeout=TIMEOUT)
    if starttls:
        client.starttls(ssl_context=tls_context())
    try:
        client.login(user, password)
        ok = True
    except imaplib.IMAP4.error:
        ok = False
    if ok != expect_ok:
        raise RuntimeError(f"IMAP login of {user}: expected {'success' if expect_ok else 'failure'}")
    client.logout()


def curl(url, account, starttls=False):
    command = ["curl", "--silent", "--show-error", "--max-time", str(TIMEOUT), "--user", ":".join(account)]
    if starttls:
        command += ["--ssl-reqd", "--insecure"]
    subprocess.run(command + [url], check=True, stdout=subprocess.DEVNULL, timeout=TIMEOUT + 5)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--after-link-flap", action="store_true",
                        help="only the login made after the capture interface went down and up")
    parser.add_argument("--after-recreation", action="store_true",
                        help="only the login made after the capture interface was deleted and created anew")
    args = parser.parse_args()
    server = args.server
    if args.after_link_flap:
        scenarios = [("imaplib LOGIN, carol, accepted, after the link flap", lambda: imap(server, *CAROL))]
        return run(scenarios)
    if args.after_recreation:
        scenarios = [("poplib USER/PASS, carol, accepted, after the re-creation", lambda: pop3(server, *CAROL))]
        return run(scenarios)
    scenarios = [
        ("poplib USER/PASS, alice, accepted", lambda: pop3(server, *ALICE)),
        ("poplib USER/PASS, bob, refused", lambda: pop3(server, BOB[0], WRONG, expect_ok=False)),
        ("imaplib LOGIN, alice, accepted", lambda: imap(server, *ALICE)),
        ("imaplib LOGIN, bob, refused", lambda: imap(server, BOB[0], WRONG, expect_ok=False)),
        ("curl IMAP, bob, accepted", lambda: curl(f"imap://{server}/", BOB)),
        ("curl POP3, bob, accepted", lambda: curl(f"pop3://{server}/", BOB)),
        ("poplib STLS, alice", lambda: pop3(server, *ALICE, starttls=True)),
        ("imaplib STARTTLS, bob", lambda: imap(server, *BOB, starttls=True)),
        ("curl IMAP STARTTLS, alice", lambda: curl(f"imap://{server}/", ALICE, starttls=True)),
        ("curl POP3 STLS, alice", lambda: curl(f"pop3://{server}/", ALICE, starttls=True)),
    ]
    return run(scenarios)


def run(scenarios):
    for name, scenario in scenarios:
        try:
            scenario()
        except (OSError, RuntimeError, subprocess.SubprocessError, poplib.error_proto, imaplib.IMAP4.error) as error:
            print(f"scenario '{name}' failed: {error!r}", file=sys.stderr)
            return 1
        print(f"ok: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
