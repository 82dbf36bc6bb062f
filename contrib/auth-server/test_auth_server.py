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
#
# Self-test for mailproxyd-auth-server: starts the server on free loopback
# ports with a temporary users file and talks raw HTTP to it, the way the
# proxy does.  Standard library only.
#
#   python3 contrib/auth-server/test_auth_server.py [-v]
#
# The last line of output is "N passed, M failed".
#

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "mailproxyd-auth-server")

USERS = r"""
# Users for the self-test.
alice   s3cret       imap=127.0.0.1:1143 pop3=127.0.0.1:1110 smtp=127.0.0.1:1025
"john doe+x"  'p%ss+w rd'  imap=[::1]:1143   # blanks, % and + on purpose
carol   c-secret     imap=127.0.0.1:143 pop3=127.0.0.1:110 backend_user=carol@example.org backend_pass=backend-pw
dave    d-pass       smtp=127.0.0.1:25 error_code="535 5.7.8"
erin    ""           imap=127.0.0.1:143
frank   ya29.token   imap=127.0.0.1:143 smtp=127.0.0.1:25
rcpt    bob@example.org      127.0.0.1:2525
rcpt    @lists.example.org   127.0.0.1:2526
"""


def escape(value):
    """Escape Auth-User/Auth-Pass exactly as the proxy does."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    out = bytearray()
    for b in value:
        if b < 0x20 or b in (0x20, 0x25):
            out += b"%%%02X" % b
        else:
            out.append(b)
    return bytes(out)


def auth_request(method="plain", user="alice", password="s3cret",
                 protocol="imap", attempt=1, extra=(), version="HTTP/1.0",
                 connection=None):
    """Build an auth_http request in nginx's header order."""
    lines = [b"GET /auth " + version.encode(),
             b"Host: 127.0.0.1",
             b"Auth-Method: " + method.encode(),
             b"Auth-User: " + escape(user),
             b"Auth-Pass: " + escape(password)]
    for name, value in extra:
        lines.append(name.encode() + b": " + value.encode())
    lines += [b"Auth-Protocol: " + protocol.encode(),
              b"Auth-Login-Attempt: %d" % attempt,
              b"Client-IP: 192.0.2.7"]
    if connection:
        lines.append(b"Connection: " + connection.encode())
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def parse_response(raw):
    """Split a response into (status line or None, {lower name: value})."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    status = None
    if lines and lines[0].startswith(b"HTTP/"):
        status = lines.pop(0)
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").lower()] = \
            value.strip().decode("latin-1")
    return status, headers


def read_response(sock):
    """Read one response on a keep-alive connection (Content-Length: 0)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed mid-response: %r" % buf)
        buf += chunk
    return buf


def read_all(sock):
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk


class Server:
    """A mailproxyd-auth-server process on a free loopback port."""

    count = 0

    def __init__(self, tmp, *flags):
        Server.count += 1
        n = Server.count
        self.tmp = tmp
        self.users = os.path.join(tmp, "users")
        if not os.path.exists(self.users):
            with open(self.users, "w") as f:
                f.write(USERS)
        self.port_file = os.path.join(tmp, "port.%d" % n)
        self.record = os.path.join(tmp, "record.%d" % n)
        self.stderr_path = os.path.join(tmp, "stderr.%d" % n)
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "-u", self.users,
             "--listen", "127.0.0.1:0", "--port-file", self.port_file,
             "--record", self.record] + list(flags),
            stderr=self.stderr)
        deadline = time.time() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("server did not start: " + self.log())
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())

    def connect(self, timeout=5):
        return socket.create_connection(("127.0.0.1", self.port),
                                        timeout=timeout)

    def ask(self, request, timeout=5):
        """One request on a fresh connection, read until the server closes."""
        with self.connect(timeout) as s:
            s.sendall(request)
            return read_all(s)

    def records(self):
        with open(self.record) as f:
            return [json.loads(line) for line in f]

    def log(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


class ServerTestCase(unittest.TestCase):
    flags = ()

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="auth-server-test.")
        cls.server = Server(cls.tmp, *cls.flags)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def auth(self, **kw):
        return parse_response(self.server.ask(auth_request(**kw)))[1]


class TestAuthentication(ServerTestCase):

    def test_plain_ok(self):
        h = self.auth()
        self.assertEqual(h["auth-status"], "OK")
        self.assertEqual(h["auth-server"], "127.0.0.1")
        self.assertEqual(h["auth-port"], "1143")
        self.assertEqual(h["auth-pass"], "s3cret")
        self.assertNotIn("auth-user", h)
        self.assertNotIn("auth-wait", h)

    def test_backend_per_protocol(self):
        self.assertEqual(self.auth(protocol="pop3")["auth-port"], "1110")
        self.assertEqual(self.auth(protocol="smtp")["auth-port"], "1025")

    def test_plain_fail(self):
        h = self.auth(password="wrong")
        self.assertEqual(h["auth-status"], "Invalid login or password")
        self.assertNotIn("auth-server", h)
        self.assertNotIn("auth-wait", h)
        h = self.auth(user="nobody")
        self.assertEqual(h["auth-status"], "Invalid login or password")

    def test_no_backend_for_protocol(self):
        h = self.auth(user="dave", password="d-pass", protocol="imap")
        self.assertEqual(h["auth-status"], "Invalid login or password")

    def test_escaped_user_with_space_and_plus(self):
        h = self.auth(user="john doe+x", password="p%ss+w rd")
        self.assertEqual(h["auth-status"], "OK")
        self.assertEqual(h["auth-server"], "::1")
        self.assertEqual(h["auth-pass"], "p%ss+w rd")
        # '+' is not a space: "john doe x" is somebody else.
        h = self.auth(user="john doe x", password="p%ss+w rd")
        self.assertEqual(h["auth-status"], "Invalid login or password")
        # A raw request with %2B must also decode to '+'.
        raw = auth_request(user="x", password="x").replace(
            b"Auth-User: x", b"Auth-User: john%20doe%2Bx").replace(
            b"Auth-Pass: x", b"Auth-Pass: p%25ss%2Bw%20rd")
        self.assertEqual(parse_response(self.server.ask(raw))[1]
                         ["auth-status"], "OK")

    def test_apop(self):
        salt = "<1896.697170952@mail.example.org>"
        digest = hashlib.md5((salt + "s3cret").encode()).hexdigest()
        h = self.auth(method="apop", password=digest, protocol="pop3",
                      extra=[("Auth-Salt", salt)])
        self.assertEqual(h["auth-status"], "OK")
        self.assertEqual(h["auth-pass"], "s3cret")
        bad = hashlib.md5((salt + "wrong").encode()).hexdigest()
        h = self.auth(method="apop", password=bad, protocol="pop3",
                      extra=[("Auth-Salt", salt)])
        self.assertEqual(h["auth-status"], "Invalid login or password")

    def test_cram_md5_with_backend_user(self):
        salt = "<4242.1700000000@mail.example.org>"
        digest = hmac.new(b"c-secret", salt.encode(), hashlib.md5).hexdigest()
        h = self.auth(method="cram-md5", user="carol", password=digest,
                      extra=[("Auth-Salt", salt)])
        self.assertEqual(h["auth-status"], "OK")
        self.assertEqual(h["auth-user"], "carol@example.org")
        self.assertEqual(h["auth-pass"], "backend-pw")
        h = self.auth(method="cram-md5", user="carol", password="0" * 32,
                      extra=[("Auth-Salt", salt)])
        self.assertEqual(h["auth-status"], "Invalid login or password")

    def test_external(self):
        h = self.auth(method="external", user="erin", password="")
        self.assertEqual(h["auth-status"], "OK")
        self.assertEqual(h["auth-pass"], "")
        h = self.auth(method="external", user="nobody", password="")
        self.assertEqual(h["auth-status"], "Invalid login or password")
        # A user without password can never log in with a password.
        h = self.auth(method="plain", user="erin", password="")
        self.assertEqual(h["auth-status"], "Invalid login or password")

    def test_oauth_tokens(self):
        for method in ("xoauth2", "oauthbearer"):
            h = self.auth(method=method, user="frank", password="ya29.token")
            self.assertEqual(h["auth-status"], "OK")
            self.assertEqual(h["auth-pass"], "ya29.token")
            h = self.auth(method=method, user="frank", password="expired")
            self.assertEqual(h["auth-status"], "Invalid login or password")
            self.assertNotIn("auth-error-sasl", h)

    def test_smtp_error_code(self):
        h = self.auth(user="dave", password="bad", protocol="smtp")
        self.assertEqual(h["auth-error-code"], "535 5.7.8")
        h = self.auth(user="dave", password="bad", protocol="imap")
        self.assertNotIn("auth-error-code", h)

    def none_request(self, rcpt):
        return self.auth(method="none", user="", password="", protocol="smtp",
                         extra=[("Auth-SMTP-Helo", "client.example"),
                                ("Auth-SMTP-From", "MAIL FROM:<a@b.example>"),
                                ("Auth-SMTP-To", rcpt)])

    def test_none_rcpt_accepted(self):
        h = self.none_request("RCPT TO:<Bob@Example.ORG> NOTIFY=NEVER")
        self.assertEqual(h["auth-status"], "OK")
        self.assertEqual(h["auth-server"], "127.0.0.1")
        self.assertEqual(h["auth-port"], "2525")
        self.assertNotIn("auth-pass", h)
        h = self.none_request("RCPT TO:<anyone@lists.example.org>")
        self.assertEqual(h["auth-port"], "2526")

    def test_none_rcpt_rejected(self):
        h = self.none_request("RCPT TO:<eve@example.org>")
        self.assertEqual(h["auth-status"], "User unknown")
        self.assertEqual(h["auth-error-code"], "550 5.1.1")
        self.assertNotIn("auth-server", h)

    def test_record_and_log(self):
        self.server.ask(auth_request(user="alice", password="Log-Me-Not",
                                     attempt=3))
        rec = self.server.records()[-1]
        self.assertEqual(rec["method"], "plain")
        self.assertEqual(rec["user"], "alice")
        self.assertEqual(rec["protocol"], "imap")
        self.assertEqual(rec["attempt"], 3)
        self.assertEqual(rec["status"], "Invalid login or password")
        self.assertEqual(list(rec["headers"])[:5],
                         ["Host", "Auth-Method", "Auth-User", "Auth-Pass",
                          "Auth-Protocol"])
        self.assertEqual(rec["headers"]["Client-IP"], "192.0.2.7")
        self.assertIsInstance(rec["conn"], int)
        time.sleep(0.1)
        log = self.server.log()
        self.assertIn('user="alice"', log)
        self.assertNotIn("Log-Me-Not", log)

    def test_bad_request(self):
        raw = self.server.ask(b"this is not http\r\n\r\n")
        self.assertTrue(raw.startswith(b"HTTP/1.0 400 "))


class TestConnections(ServerTestCase):

    def test_keepalive_http11(self):
        with self.server.connect() as s:
            for i in range(3):
                s.sendall(auth_request(version="HTTP/1.1", attempt=i + 1))
                status, h = parse_response(read_response(s))
                self.assertEqual(status, b"HTTP/1.1 200 OK")
                self.assertEqual(h["auth-status"], "OK")
                self.assertEqual(h["content-length"], "0")
                self.assertEqual(h["connection"], "keep-alive")
        recs = self.server.records()[-3:]
        self.assertEqual(len({r["conn"] for r in recs}), 1)
        self.assertEqual([r["seq"] for r in recs], [1, 2, 3])

    def test_keepalive_pipelined(self):
        with self.server.connect() as s:
            s.sendall(auth_request(version="HTTP/1.1") * 2 +
                      auth_request(version="HTTP/1.1", connection="close"))
            raw = read_all(s)
        self.assertEqual(raw.count(b"Auth-Status: OK"), 3)
        self.assertTrue(raw.endswith(b"Connection: close\r\n\r\n"))

    def test_keepalive_http10_requested(self):
        with self.server.connect() as s:
            for _ in range(2):
                s.sendall(auth_request(connection="keep-alive"))
                status, h = parse_response(read_response(s))
                self.assertEqual(status, b"HTTP/1.0 200 OK")
                self.assertEqual(h["connection"], "keep-alive")

    def test_http10_closes(self):
        with self.server.connect() as s:
            s.sendall(auth_request())
            raw = read_all(s)           # returns only once the server closed
        status, h = parse_response(raw)
        self.assertEqual(status, b"HTTP/1.0 200 OK")
        self.assertEqual(h["connection"], "close")

    def test_concurrent_connections(self):
        socks = [self.server.connect() for _ in range(20)]
        for s in socks:
            s.sendall(auth_request())
        for s in socks:
            self.assertIn(b"Auth-Status: OK", read_all(s))
            s.close()

    def test_users_file_reload(self):
        with open(self.server.users, "a") as f:
            f.write("zed zed-pw imap=127.0.0.2:143\n")
        h = self.auth(user="zed", password="zed-pw")
        self.assertEqual(h["auth-server"], "127.0.0.2")


class OwnServerTestCase(unittest.TestCase):
    """Each test starts the servers it needs."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="auth-server-test.")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, *flags):
        s = Server(self.tmp, *flags)
        self.servers.append(s)
        return s


class TestOptions(OwnServerTestCase):
    """Options that need a server of their own."""

    def test_no_keepalive(self):
        s = self.start("--no-keepalive")
        with s.connect() as c:
            c.sendall(auth_request(version="HTTP/1.1"))
            status, h = parse_response(read_all(c))
        self.assertEqual(h["connection"], "close")
        self.assertEqual(h["auth-status"], "OK")

    def test_wait(self):
        s = self.start("--wait", "3", "--wait-attempts", "5")
        h = parse_response(s.ask(auth_request(password="bad", attempt=4)))[1]
        self.assertEqual(h["auth-wait"], "3")
        h = parse_response(s.ask(auth_request(password="bad", attempt=5)))[1]
        self.assertNotIn("auth-wait", h)
        h = parse_response(s.ask(auth_request()))[1]
        self.assertNotIn("auth-wait", h)

    def test_sasl_error(self):
        s = self.start("--sasl-error")
        h = parse_response(s.ask(auth_request(method="xoauth2", user="frank",
                                              password="bad")))[1]
        self.assertIn("invalid_token",
                      __import__("base64").b64decode(h["auth-error-sasl"])
                      .decode())

    def test_external_require_verify(self):
        s = self.start("--external-require-verify")
        req = auth_request(method="external", user="erin", password="",
                           extra=[("Auth-SSL-Verify", "NONE")])
        self.assertIn(b"Invalid login", s.ask(req))
        req = auth_request(method="external", user="erin", password="",
                           extra=[("Auth-SSL-Verify", "SUCCESS")])
        self.assertIn(b"Auth-Status: OK", s.ask(req))

    def test_require_header(self):
        s = self.start("--require-header", "X-Auth-Key: change-me")
        self.assertIn(b"Invalid login", s.ask(auth_request()))
        req = auth_request(extra=[("X-Auth-Key", "change-me")])
        self.assertIn(b"Auth-Status: OK", s.ask(req))

    def test_unix_socket(self):
        path = os.path.join(self.tmp, "auth.sock")
        proc = subprocess.Popen([sys.executable, SERVER, "-q", "-u",
                                 os.path.join(HERE, "users.example"),
                                 "--unix", path])
        try:
            deadline = time.time() + 10
            while not os.path.exists(path) and time.time() < deadline:
                time.sleep(0.02)
            with socket.socket(socket.AF_UNIX) as c:
                c.settimeout(5)
                c.connect(path)
                c.sendall(auth_request(password="s3cret"))
                self.assertIn(b"Auth-Status: OK", read_all(c))
        finally:
            proc.terminate()
            proc.wait(5)
        self.assertFalse(os.path.exists(path))

    def test_bad_users_file(self):
        bad = os.path.join(self.tmp, "bad")
        with open(bad, "w") as f:
            f.write("ok pw imap=127.0.0.1:143\n"
                    "broken pw imap=mail.example:143\n")
        r = subprocess.run([sys.executable, SERVER, "-u", bad, "--check"],
                           stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(":2: bad backend address", r.stderr)


class TestFaults(OwnServerTestCase):
    """Each fault flag's observable effect."""

    def test_delay(self):
        s = self.start("--delay", "0.5")
        t = time.monotonic()
        h = parse_response(s.ask(auth_request()))[1]
        self.assertGreaterEqual(time.monotonic() - t, 0.5)
        self.assertEqual(h["auth-status"], "OK")

    def test_delay_concurrent(self):
        s = self.start("--delay", "0.5")
        t = time.monotonic()
        socks = [s.connect() for _ in range(10)]
        for c in socks:
            c.sendall(auth_request())
        for c in socks:
            self.assertIn(b"Auth-Status: OK", read_all(c))
            c.close()
        self.assertLess(time.monotonic() - t, 2.0)     # not 10 x 0.5 s

    def test_drip(self):
        s = self.start("--drip", "--drip-interval", "0.2")
        with s.connect() as c:
            c.sendall(auth_request())
            t = time.monotonic()
            got = b""
            while len(got) < 4:
                chunk = c.recv(100)
                self.assertEqual(len(chunk), 1)
                got += chunk
            self.assertGreaterEqual(time.monotonic() - t, 0.5)
        self.assertEqual(got, b"HTTP")

    def test_silent(self):
        s = self.start("--silent")
        with s.connect(timeout=1) as c:
            c.sendall(auth_request())
            with self.assertRaises(socket.timeout):
                c.recv(100)
        time.sleep(0.1)
        self.assertEqual(s.records()[-1]["status"], None)

    def test_close_mid_header(self):
        s = self.start("--close-mid-header")
        raw = s.ask(auth_request())
        self.assertTrue(raw.startswith(b"HTTP/1.0 200 OK\r\n"))
        self.assertTrue(raw.endswith(b"\r\n"))
        self.assertNotIn(b"\r\n\r\n", raw)
        self.assertNotIn(b"Auth-Pass", raw)

    def test_bad_header(self):
        s = self.start("--bad-header")
        status, h = parse_response(s.ask(auth_request()))
        self.assertTrue(any("_" in name for name in h))
        self.assertEqual(h["auth-status"], "OK")

    def test_hostname_server(self):
        s = self.start("--hostname-server")
        h = parse_response(s.ask(auth_request()))[1]
        self.assertEqual(h["auth-server"], "localhost")

    def test_huge(self):
        s = self.start("--huge", "1048576")
        raw = s.ask(auth_request())
        head = raw.split(b"\r\n\r\n")[0] + b"\r\n"
        pad = sum(len(line) + 2 for line in head.split(b"\r\n")
                  if line.startswith(b"X-Pad-"))
        self.assertEqual(pad, 1048576)
        self.assertGreater(len(raw), 1048576)
        self.assertEqual(parse_response(raw)[1]["auth-status"], "OK")

    def test_wait_status(self):
        s = self.start("--wait-status", "2")
        for _ in range(2):
            h = parse_response(s.ask(auth_request()))[1]
            self.assertEqual(h["auth-status"], "WAIT")
            self.assertEqual(h["auth-wait"], "1")
        h = parse_response(s.ask(auth_request()))[1]
        self.assertEqual(h["auth-status"], "OK")

    def test_status_lines(self):
        expect = {"none": b"Auth-Status: OK\r\n",
                  "http10": b"HTTP/1.0 200 OK\r\n",
                  "http11": b"HTTP/1.1 200 OK\r\n",
                  "garbage": b"GARBAGE \x01\x7f\xfe"}
        for mode, start in expect.items():
            s = self.start("--status-line", mode)
            self.assertTrue(s.ask(auth_request()).startswith(start), mode)


class CountingResult(unittest.TextTestResult):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main():
    verbosity = 2 if "-v" in sys.argv[1:] else 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    runner = unittest.TextTestRunner(verbosity=verbosity,
                                     resultclass=CountingResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + \
        len(result.unexpectedSuccesses)
    print("%d passed, %d failed" % (result.passed, failed))
    return 0 if failed == 0 and result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
