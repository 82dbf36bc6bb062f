#!/usr/bin/env python3
#
# Copyright (c) 2026 The mailproxyd authors
#
# Permission to use, copy, modify, and distribute this software for any
# purpose with or without fee is hereby granted, provided that the above
# copyright notice and this permission notice appear in all copies.
#
# THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
# WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
# MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
# ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
# WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
# ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
# OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
#
"""End-to-end test of the failure lines an nginx operator's filters read:
failed logins on IMAP, POP3 and SMTP through the daemon, each from a
loopback address of its own, then Debian's fail2ban-regex with the
filter shipped in contrib/fail2ban over the daemon's real error_log.
Run as root.  Usage: test_fail2ban.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpd import (TOP, AuthServer, Daemon, free_port,  # noqa
                 run_suite)

BINARY = None
TESTS = []
D = None
AS = None
PORT = {}
FILTER = os.path.join(TOP, "contrib", "fail2ban", "filter.d",
                      "mailproxyd.conf")
JAIL = os.path.join(TOP, "contrib", "fail2ban", "jail.d", "mailproxyd.conf")
# nginx's line, which fail2ban filters written for nginx match.
NGINX_LINE = re.compile(
    r'\*\d+ client login failed: "[^"]*" while in http auth state, '
    r'client: (\S+), server: 127\.0\.0\.1:(\d+), login: "([^"]*)"$')


def test(fn):
    TESTS.append(fn)
    return fn


def conn(port, src):
    """A client socket from loopback address src; the greeting read."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.recv(4096)
    return s


def reply(s, data, want):
    s.sendall(data)
    got = b""
    while not got.endswith(b"\r\n"):
        chunk = s.recv(4096)
        assert chunk, "closed after %r" % got
        got += chunk
    assert got.startswith(want), (data, got)
    return got


def fail_imap(src, user):
    with conn(PORT["imap"], src) as s:
        reply(s, b"a LOGIN %s wrong\r\n" % user, b"a NO ")


def fail_pop3(src, user):
    with conn(PORT["pop3"], src) as s:
        reply(s, b"USER %s\r\n" % user, b"+OK")
        reply(s, b"PASS wrong\r\n", b"-ERR ")


def fail_smtp(src, user):
    import base64
    with conn(PORT["smtp"], src) as s:
        s.sendall(b"EHLO client.test\r\n")
        got = b""
        while b"\r\n250 " not in got:
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
        reply(s, b"AUTH PLAIN " + base64.b64encode(b"\0" + user +
                                                   b"\0wrong") + b"\r\n",
              b"535 ")


def f2b_ips(log):
    """fail2ban-regex with the shipped filter: the client address of each
    line it matched."""
    r = subprocess.run(["fail2ban-regex", "--out", "ip", log, FILTER],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return [x.strip() for x in r.stdout.splitlines() if x.strip()]


@test
def failure_lines_have_nginx_suffix():
    """The failed-login line ends as nginx's does: while in http auth
    state, client: ADDR, server: ADDR:PORT, login: "USER"."""
    fail_imap("127.0.0.2", b"mallory")
    D.wait_log('login: "mallory"')
    lines = [ln for ln in D.logtext().splitlines()
             if "client login failed" in ln and "mallory" in ln]
    assert len(lines) == 1, lines
    m = NGINX_LINE.search(lines[0])
    assert m, lines[0]
    assert m.group(1) == "127.0.0.2", lines[0]
    assert int(m.group(2)) == PORT["imap"], lines[0]


@test
def fail2ban_filter_matches_every_protocol():
    """fail2ban-regex finds each failed login, on IMAP, POP3 and SMTP,
    with its client's address, and nothing else."""
    before = D.logtext().count("client login failed")
    fail_imap("127.0.0.3", b"eve")
    fail_pop3("127.0.0.4", b"eve")
    fail_smtp("127.0.0.5", b"eve")
    deadline = time.monotonic() + 10
    while D.logtext().count("client login failed") < before + 3:
        assert time.monotonic() < deadline, D.logtext()[-2000:]
        time.sleep(0.05)
    log = os.path.join(D.dir, "f2b.log")
    with open(log, "w") as f:
        f.write("".join(ln + "\n" for ln in D.logtext().splitlines()
                        if "eve" in ln or "connected to" in ln or
                        "session done" in ln))
    ips = f2b_ips(log)
    assert sorted(ips) == ["127.0.0.3", "127.0.0.4", "127.0.0.5"], ips


@test
def fail2ban_ignores_successful_and_other_lines():
    """The whole log, start-up and session lines included, yields only
    the failed logins."""
    n = D.logtext().count("client login failed")
    ips = f2b_ips(D.log)
    assert len(ips) == n, (ips, n)


@test
def fail2ban_jail_example_is_valid():
    """The jail example names the shipped filter and parses as fail2ban
    reads it (fail2ban-client -d with both files in a private config
    directory)."""
    cdir = os.path.join(D.dir, "f2b-conf")
    shutil.copytree("/etc/fail2ban", cdir)
    shutil.copy(FILTER, os.path.join(cdir, "filter.d"))
    shutil.copy(JAIL, os.path.join(cdir, "jail.d"))
    with open(os.path.join(cdir, "jail.d", "mailproxyd.conf")) as f:
        text = f.read()
    with open(os.path.join(cdir, "jail.d", "mailproxyd.conf"), "w") as f:
        f.write(text.replace("/var/log/mailproxyd/mailproxyd.log", D.log))
    r = subprocess.run(["fail2ban-client", "-c", cdir, "-d"],
                       capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "'mailproxyd'" in out and "client login failed" in out, out


def setup():
    global D, AS
    if shutil.which("fail2ban-regex") is None:
        raise AssertionError("fail2ban-regex not found: "
                             "contrib/install-deps.sh installs fail2ban")
    AS = AuthServer("alice pw imap=127.0.0.1:9 pop3=127.0.0.1:9 "
                    "smtp=127.0.0.1:9\n", name="f2b")
    body = ""
    for proto in ("imap", "pop3", "smtp"):
        PORT[proto] = free_port()
        body += ("    server {\n        listen 127.0.0.1:%d;\n"
                 "        protocol %s;\n"
                 "        auth_http 127.0.0.1:%d/auth;\n%s    }\n"
                 % (PORT[proto], proto, AS.port,
                    "        smtp_auth plain;\n" if proto == "smtp" else ""))
    D = Daemon(BINARY, body, workers=1, name="f2b")
    D.start()


def teardown(keep=True):
    if D is not None:
        D.stop()
    if AS is not None:
        AS.stop()
    if not keep:
        for x in (D, AS):
            if x is not None:
                shutil.rmtree(x.dir, ignore_errors=True)


def ensure_daemon():
    if D.pid is None or not os.path.exists("/proc/%d" % D.pid):
        D.start()


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    return run_suite(TESTS, setup, teardown, "mailproxyd and fail2ban",
                     ensure_daemon, lambda: D)


if __name__ == "__main__":
    sys.exit(main())
