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
"""End-to-end tests of the auth process: one real auth process, started
from the daemon binary by tests/authdrive (which plays parent and
worker), confined (user nobody, chroot) as in production, asked by the
harness's request commands, and answered by the reference auth_http
server (contrib/auth-server), by hostile servers made from it with its
fault flags, by an auth_cdb table made with mailproxyctl, and, for
resolve requests, by the fake DNS server of fakedns.py.  The auth_cdb
start-up and reload checks run the real daemon through mpd.Daemon.

Run as root.  Python 3 standard library only.
Usage: test_auth.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import hashlib
import hmac
import json
import os
import queue
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mpd  # noqa: E402
from mpd import (alive, children, Daemon, free_port, kill_pid,  # noqa: E402
                 proc_status, subenv, TOP, wait_for)
import fakedns  # noqa: E402

AUTHDRIVE = os.path.join(TOP, "tests", "authdrive")
CTL = os.path.join(TOP, "bin", "mailproxyctl", "mailproxyctl")
AUTHSERVER = os.path.join(TOP, "contrib", "auth-server",
                          "mailproxyd-auth-server")
TMP = os.path.join(TOP, "tests", "tmp")

BINARY = None
TESTS = []

# IMSG_AUTH_REQUEST's wire form (bin/mailproxyd/auth_http.h, struct
# auth_request_msg; bin/mailproxyd/auth_msg.c): the numbers, then one
# uint16_t length per string in this order, then the strings back to back.
AUTH_REQUEST_SIZE = 88      # the header alone: every string empty
AUTH_REQUEST_FIELDS = [
    "user", "pass", "salt", "client", "local", "host", "pp", "pp_server",
    "helo", "from", "to", "ssl_protocol", "ssl_cipher", "ssl_verify",
    "ssl_subject", "ssl_issuer", "ssl_serial", "ssl_fingerprint",
    "ssl_servername", "ssl_cert"]
PROTO_IMAP = 1
METHOD_PLAIN = 0


def request_msg(rid, proto=PROTO_IMAP, method=METHOD_PLAIN, lens=None,
                **fields):
    """An IMSG_AUTH_REQUEST payload built by hand; lens overrides the
    lengths the header claims ({field: n})."""
    body, claimed = b"", []
    for name in AUTH_REQUEST_FIELDS:
        v = fields.get(name, b"")
        body += v
        claimed.append((lens or {}).get(name, len(v)))
    hdr = struct.pack("=QIiiiiiiiHHHH", rid, 1, 0, proto, method, 0, 0,
                      0, 0, 50000, 0, 0, 0)
    hdr += struct.pack("=%dH" % len(claimed), *claimed)
    assert len(hdr) == AUTH_REQUEST_SIZE
    return hdr + body



def imsg_types():
    """The values of enum imsg_type in bin/mailproxyd/mailproxyd.h, read
    from the header so that new types do not shift the tests' numbers."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "..", "bin", "mailproxyd", "mailproxyd.h")
    with open(path) as f:
        text = f.read()
    body = text[text.index("enum imsg_type {"):]
    body = body[:body.index("};")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = re.findall(r"\b(IMSG_[A-Z0-9_]+)\b\s*,?", body)
    return {n: i for i, n in enumerate(names)}


_T = imsg_types()
IMSG_AUTH_REQUEST = _T["IMSG_AUTH_REQUEST"]
IMSG_AUTH_RESULT = _T["IMSG_AUTH_RESULT"]
IMSG_AUTH_CANCEL = _T["IMSG_AUTH_CANCEL"]
IMSG_AUTH_RESOLVE = _T["IMSG_AUTH_RESOLVE"]

SALT = "<1896.697170952@mx.test>"

# The reference server's users.  bob's overrides look %-escaped on
# purpose: the proxy must use them raw.
USERS = """\
alice s3cret imap=127.0.0.1:143 pop3=127.0.0.1:110 smtp=127.0.0.1:25
bob bobpw imap=[::1]:993 backend_user="x%41y" backend_pass="q%20r"
carol carolpw smtp=127.0.0.1:25 error_code="535 5.7.8"
"j d%+\u00e9" "p w%41+\u00fc" imap=127.0.0.1:143
rcpt @example.org 127.0.0.1:2525
"""


def test(fn):
    TESTS.append(fn)
    return fn




def stop_proc(p, sig=signal.SIGTERM, timeout=5):
    """Stop a subprocess by its PID, whatever state it is in."""
    if p is None:
        return
    if p.poll() is None:
        kill_pid(p.pid, sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_pid(p.pid)
            p.wait(timeout=timeout)


class Workdir:
    """A directory for one test, with a root-owned 0755 chroot in it."""

    def __init__(self, name):
        os.makedirs(TMP, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix="auth-" + name + "-", dir=TMP)
        os.chmod(self.path, 0o755)
        self.chroot = os.path.join(self.path, "empty")
        os.mkdir(self.chroot, 0o755)
        os.chown(self.chroot, 0, 0)
        self.cleanup = []       # callables, run in reverse order

    def file(self, name, data, mode=0o644):
        p = os.path.join(self.path, name)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Stop what the test started; keep the files of a failure."""
        for fn in reversed(self.cleanup):
            try:
                fn()
            except Exception:  # noqa
                traceback.print_exc(file=sys.stdout)
        if exc_type is None:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            print("  (files kept in %s)" % self.path)
        return False


#
# Escaping as the harness reads and prints it.
#

SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 b"0123456789._@:<>/+!*,()[]")


def esc(v):
    """A value for an authdrive command: %XX for everything unusual."""
    if isinstance(v, str):
        v = v.encode("utf-8")
    if v == b"":
        return "-"
    return "".join(chr(c) if c in SAFE else "%%%02X" % c for c in v)


def unesc(s):
    return re.sub(rb"%([0-9A-Fa-f]{2})",
                  lambda m: bytes([int(m.group(1), 16)]), s.encode("latin-1"))


def parse_result(line):
    """'result ID STATUS k=v ...' -> dict; values are bytes."""
    parts = line.split(" ")
    r = {"id": int(parts[1]), "status": parts[2]}
    for kv in parts[3:]:
        k, _, v = kv.partition("=")
        r[k] = unesc(v)
    r["wait"] = int(r["wait"])
    return r


#
# The reference auth server, normal or hostile.
#

def AuthServer(wd, *flags, users=USERS, name="as"):
    """mpd.AuthServer with USERS, its files under wd, stopped with it."""
    srv = mpd.AuthServer(users, *flags, name=name, directory=wd.path)
    wd.cleanup.append(srv.stop)
    return srv


#
# The harness.
#

def server_block(auth, extra="", proto="imap"):
    return ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol %s;\n        %s\n%s    }\n"
            % (free_port(), proto, auth, extra))


def http_block(srv, extra="", proto="imap"):
    return server_block("auth_http %s;" % srv.url(), extra, proto)


class AuthDrive:
    """tests/authdrive with one auth process, fed and read line by line."""

    def __init__(self, wd, servers, mail_extra="", name="ad"):
        self.wd = wd
        self.conf = wd.file(name + ".conf",
                            "user nobody nogroup;\nchroot %s;\n"
                            "error_log stderr info;\n"
                            "mail {\n    server_name mx.test;\n%s%s}\n"
                            % (wd.chroot, mail_extra, "".join(servers)))
        self.errlog = os.path.join(wd.path, name + ".err")
        self.lines = queue.Queue()
        self.all = []               # every line printed, in order
        self.results = {}           # id -> parsed result
        self.when = {}              # id -> time.monotonic() it came
        self.resolved = {}          # id -> host
        self.closed = False
        self.exited = False
        self.auth_pid = None
        self.proc = None
        self.reader = None
        wd.cleanup.append(self.stop)
        with open(self.errlog, "wb") as err:
            self.proc = subprocess.Popen(
                [AUTHDRIVE, BINARY, self.conf], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, env=subenv())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        line = self.next_line(15)
        assert line == "ready", (line, self.log())
        self.auth_pid = wait_for(self._find_auth, timeout=10,
                                 what="auth process")

    def _find_auth(self):
        for pid, cmd in children(self.proc.pid).items():
            if "auth process" in cmd:
                return pid
        return None

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put((time.monotonic(),
                            raw.decode("latin-1").rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def next_line(self, timeout):
        try:
            t, line = self.lines.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None
        if line is None:
            self.exited = True
            self.lines.put((t, None))   # stays at EOF
            return None
        self.all.append(line)
        if line.startswith("result "):
            r = parse_result(line)
            self.results[r["id"]] = r
            self.when[r["id"]] = t
        elif line.startswith("resolved "):
            parts = line.split(" ")
            self.resolved[int(parts[1])] = \
                unesc(parts[2].partition("=")[2]).decode("latin-1")
            self.when[int(parts[1])] = t
        elif line == "closed":
            self.closed = True
        return line

    def pump(self, until, timeout, what):
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0 or self.exited:
                raise AssertionError("timed out waiting for %s; output %r; "
                                     "log:\n%s" % (what, self.all[-10:],
                                                   self.log()[-3000:]))
            self.next_line(min(left, 0.5))

    def send(self, *lines):
        self.proc.stdin.write("".join(l + "\n" for l in lines).encode())
        self.proc.stdin.flush()

    def req(self, rid, proto, method, user="", password="", **kw):
        fields = ["req", str(rid), proto, method, esc(user), esc(password)]
        for k, v in kw.items():
            fields.append("%s=%s" % (k, esc(str(v)) if k in
                                     ("server", "attempt") else esc(v)))
        self.send(" ".join(fields))

    def result(self, rid, timeout=10):
        self.pump(lambda: rid in self.results, timeout, "result %d" % rid)
        return self.results[rid]

    def ask(self, rid, *args, timeout=10, **kw):
        self.req(rid, *args, **kw)
        return self.result(rid, timeout)

    def resolve(self, rid, addr, server=0, timeout=10):
        self.send("resolve %d %s server=%d" % (rid, addr, server))
        self.pump(lambda: rid in self.resolved, timeout, "resolved %d" % rid)
        return self.resolved[rid]

    def log(self):
        try:
            with open(self.errlog, encoding="utf-8",
                      errors="surrogateescape") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self, needle):
        return [l for l in self.log().splitlines() if needle in l]

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.auth_pid))

    def rss_kb(self):
        return int(proc_status(self.auth_pid)["VmRSS"].split()[0])

    def finish(self, timeout=10):
        """End the input; read everything the harness still prints."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.pump(lambda: self.exited, timeout, "authdrive to exit")
        self.proc.wait(timeout=timeout)

    def stop(self):
        if getattr(self, "proc", None) is None:
            return                  # it did not even start
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except OSError:
            pass
        stop_proc(self.proc, timeout=5)
        if self.auth_pid:
            try:
                wait_for(lambda: not alive(self.auth_pid), timeout=5,
                         what="auth process to exit")
            except AssertionError:
                kill_pid(self.auth_pid)
        if self.reader is not None:
            self.reader.join(timeout=5)
        self.proc.stdout.close()


def tcp_states(port):
    """TCP states (hex strings) of the sockets of port, listeners aside."""
    out = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                p = line.split()
                lport = int(p[1].rsplit(":", 1)[1], 16)
                rport = int(p[2].rsplit(":", 1)[1], 16)
                if port in (lport, rport) and p[3] != "0A":
                    out.append(p[3])
    return out


def apop(salt, secret):
    return hashlib.md5((salt + secret).encode()).hexdigest()


def cram(salt, secret):
    return hmac.new(secret.encode(), salt.encode(), hashlib.md5).hexdigest()


def ok(r, backend):
    assert r["status"] == "ok", r
    assert r["backend"] == backend.encode(), r


def fail(r, error=b"Invalid login or password", wait=-1):
    assert r["status"] == "fail", r
    assert r["error"] == error and r["wait"] == wait, r


def tempfail(r):
    assert r["status"] == "tempfail", r
    assert r["backend"] == b"" and "user" not in r and "pass" not in r, r
    assert r["error"] == b"", r


#
# auth_http against the reference server.
#

@test
def reference_server_answers():
    """Right and wrong logins through the reference server; the auth
    process runs as nobody inside the chroot."""
    with Workdir("ref") as wd:
        srv = AuthServer(wd)
        ad = AuthDrive(wd, [http_block(srv)])
        st = proc_status(ad.auth_pid)
        nobody = int(subprocess.check_output(["id", "-u", "nobody"]))
        assert [int(x) for x in st["Uid"].split()] == [nobody] * 4, st["Uid"]
        assert os.readlink("/proc/%d/root" % ad.auth_pid) == wd.chroot
        assert st["NoNewPrivs"] == "1"

        r = ad.ask(1, "imap", "plain", "alice", "s3cret")
        ok(r, "127.0.0.1:143")
        assert r["pass"] == b"s3cret" and "user" not in r, r
        ok(ad.ask(2, "pop3", "plain", "alice", "s3cret"), "127.0.0.1:110")
        fail(ad.ask(3, "imap", "plain", "alice", "wrong"))
        fail(ad.ask(4, "imap", "plain", "mallory", "s3cret"))
        # A user without a backend for the protocol.
        fail(ad.ask(5, "pop3", "plain", "bob", "bobpw"))
        # SMTP: Auth-Error-Code passes through.
        r = ad.ask(6, "smtp", "plain", "carol", "bad")
        fail(r)
        assert r["code"] == b"535 5.7.8", r
        # smtp_auth none: the recipient decides.
        r = ad.ask(7, "smtp", "none", helo="c.example",
                   **{"from": "MAIL FROM:<a@b.example>",
                      "to": "RCPT TO:<x@example.org>"})
        ok(r, "127.0.0.1:2525")
        r = ad.ask(8, "smtp", "none", helo="c.example",
                   **{"from": "MAIL FROM:<a@b.example>",
                      "to": "RCPT TO:<x@elsewhere.example>"})
        fail(r, b"User unknown")
        assert r["code"] == b"550 5.1.1", r
        assert len(srv.records()) == 8
        # The auth process leaves with its parent.
        ad.finish()
        wait_for(lambda: not alive(ad.auth_pid), timeout=5,
                 what="auth process to exit")


def fidelity_cases():
    """(request arguments, keywords, the header list expected before
    the configured auth_http_header lines); the reference server says
    OK to each."""
    c = []

    def add(args, kw, headers):
        c.append((args, kw, headers))

    base = lambda m, u, p, proto, att="1", ip="127.0.0.1": [  # noqa: E731
        ("Host", "127.0.0.1"), ("Auth-Method", m), ("Auth-User", u),
        ("Auth-Pass", p)] + ([("Auth-Salt", SALT)]
                             if m in ("apop", "cram-md5") else []) + [
        ("Auth-Protocol", proto), ("Auth-Login-Attempt", att),
        ("Client-IP", ip)]
    add(("imap", "plain", "alice", "s3cret"), {},
        base("plain", "alice", "s3cret", "imap"))
    # Client-Host is for SMTP only, never for IMAP or POP3.
    add(("imap", "plain", "alice", "s3cret"),
        {"attempt": 3, "client": "192.0.2.7", "host": "c.example"},
        base("plain", "alice", "s3cret", "imap", "3", "192.0.2.7"))
    d = apop(SALT, "s3cret")
    add(("pop3", "apop", "alice", d), {"salt": SALT},
        base("apop", "alice", d, "pop3"))
    d = cram(SALT, "s3cret")
    add(("imap", "cram-md5", "alice", d), {"salt": SALT},
        base("cram-md5", "alice", d, "imap"))
    add(("imap", "external", "alice", ""), {"client": "2001:db8::7"},
        base("external", "alice", "", "imap", "1", "2001:db8::7"))
    add(("imap", "xoauth2", "alice", "s3cret"), {},
        base("xoauth2", "alice", "s3cret", "imap"))
    add(("imap", "oauthbearer", "alice", "s3cret"), {},
        base("oauthbearer", "alice", "s3cret", "imap"))
    add(("smtp", "plain", "alice", "s3cret"), {"host": "c.example"},
        base("plain", "alice", "s3cret", "smtp") +
        [("Client-Host", "c.example")])
    add(("smtp", "none", "", ""),
        {"helo": "c.example", "host": "[UNAVAILABLE]",
         "from": "MAIL FROM:<a@b.example> SIZE=100",
         "to": "RCPT TO:<x@example.org> NOTIFY=NEVER"},
        base("none", "", "", "smtp") +
        [("Client-Host", "[UNAVAILABLE]"),
         ("Auth-SMTP-Helo", "c.example"),
         ("Auth-SMTP-From", "MAIL FROM:<a@b.example> SIZE=100"),
         ("Auth-SMTP-To", "RCPT TO:<x@example.org> NOTIFY=NEVER")])
    return c


CONF_HEADERS = [("X-Auth-Key", "change-me"), ("X-Second", "two  words $x")]
CONF_HEADER_LINES = ('        auth_http_header X-Auth-Key "change-me";\n'
                     '        auth_http_header X-Second "two  words $x";\n')


@test
def request_headers_per_method():
    """The exact ordered header list nginx sends (reference 2.2), per
    method, then the auth_http_header lines in configuration order."""
    with Workdir("fidelity") as wd:
        srv = AuthServer(wd, "--require-header", "X-Auth-Key: change-me")
        ad = AuthDrive(wd, [http_block(srv, CONF_HEADER_LINES)])
        cases = fidelity_cases()
        for i, (args, kw, headers) in enumerate(cases, 1):
            r = ad.ask(i, *args, **kw)
            assert r["status"] == "ok", (args, r)
        recs = srv.records()
        assert len(recs) == len(cases), len(recs)
        for rec, (args, kw, headers) in zip(recs, cases):
            assert rec["request"] == "GET /auth HTTP/1.0", rec["request"]
            got = list(rec["headers"].items())
            assert got == headers + CONF_HEADERS, (args, got)
            assert rec["status"] == "OK", rec


class RawServer:
    """Accepts connections, keeps each request's bytes, answers OK."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                c.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    b = c.recv(65536)
                    if not b:
                        break
                    data += b
                self.requests.append(data)
                c.sendall(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n"
                          b"Auth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n"
                          b"Auth-Pass: x\r\n\r\n")

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


@test
def request_bytes_exact():
    """Byte for byte, CRLFs included, as a raw socket receives them."""
    with Workdir("raw") as wd:
        raw = RawServer()
        wd.cleanup.append(raw.stop)
        ad = AuthDrive(wd, [server_block(
            "auth_http 127.0.0.1:%d/a/b?c=d;" % raw.port,
            CONF_HEADER_LINES)])
        d = apop(SALT, "s3cret")
        ok(ad.ask(1, "pop3", "apop", "al ice", d, salt=SALT),
           "127.0.0.1:143")
        ok(ad.ask(2, "smtp", "none", helo="h", host="c.example",
                  **{"from": "MAIL FROM:<>", "to": "RCPT TO:<a@b>"}),
           "127.0.0.1:143")
        tail = b"X-Auth-Key: change-me\r\nX-Second: two  words $x\r\n\r\n"
        assert raw.requests[0] == (
            b"GET /a/b?c=d HTTP/1.0\r\nHost: 127.0.0.1\r\n"
            b"Auth-Method: apop\r\nAuth-User: al%20ice\r\n"
            b"Auth-Pass: " + d.encode() + b"\r\n"
            b"Auth-Salt: " + SALT.encode() + b"\r\n"
            b"Auth-Protocol: pop3\r\nAuth-Login-Attempt: 1\r\n"
            b"Client-IP: 127.0.0.1\r\n" + tail), raw.requests[0]
        assert raw.requests[1] == (
            b"GET /a/b?c=d HTTP/1.0\r\nHost: 127.0.0.1\r\n"
            b"Auth-Method: none\r\nAuth-User: \r\nAuth-Pass: \r\n"
            b"Auth-Protocol: smtp\r\nAuth-Login-Attempt: 1\r\n"
            b"Client-IP: 127.0.0.1\r\nClient-Host: c.example\r\n"
            b"Auth-SMTP-Helo: h\r\nAuth-SMTP-From: MAIL FROM:<>\r\n"
            b"Auth-SMTP-To: RCPT TO:<a@b>\r\n" + tail), raw.requests[1]


@test
def escaping_of_user_and_password():
    """Auth-User and Auth-Pass: %XX (uppercase) for 0x00-0x20 and '%'
    only; '+', DEL and UTF-8 raw (reference 2.4); the server decodes."""
    with Workdir("escape") as wd:
        srv = AuthServer(wd)
        ad = AuthDrive(wd, [http_block(srv)])
        user = b"a b%c+d\r\ne\tf\x7fg\xc3\xa9\x00h\x1f%41"
        pw = b"P w%2+\n\r\x7f\xff\xc3\xbc\t:x%"
        fail(ad.ask(1, "imap", "plain", user, pw))
        rec = srv.records()[0]
        h = {k: v.encode("utf-8", "surrogateescape")
             for k, v in rec["headers"].items()}
        assert h["Auth-User"] == \
            b"a%20b%25c+d%0D%0Ae%09f\x7fg\xc3\xa9%00h%1F%2541", h
        assert h["Auth-Pass"] == b"P%20w%252+%0A%0D\x7f\xff\xc3\xbc%09:x%25", h
        assert rec["user"].encode("utf-8", "surrogateescape") == user, rec
        assert list(rec["headers"]) == [
            "Host", "Auth-Method", "Auth-User", "Auth-Pass", "Auth-Protocol",
            "Auth-Login-Attempt", "Client-IP"], rec["headers"]
        # The server decodes both right: this login succeeds, and the
        # password it returns is used as sent.
        r = ad.ask(2, "imap", "plain", "j d%+\u00e9", "p w%41+\u00fc")
        ok(r, "127.0.0.1:143")
        assert r["pass"] == "p w%41+\u00fc".encode(), r
        rec = srv.records()[1]
        assert rec["headers"]["Auth-User"] == "j%20d%25+\u00e9", rec
        assert rec["headers"]["Auth-Pass"] == "p%20w%2541+\u00fc", rec
        assert rec["status"] == "OK"


@test
def response_ok_overrides_raw():
    """OK: the backend, and Auth-User/Auth-Pass used byte for byte."""
    with Workdir("override") as wd:
        srv = AuthServer(wd)
        ad = AuthDrive(wd, [http_block(srv)])
        r = ad.ask(1, "imap", "plain", "bob", "bobpw")
        ok(r, "[::1]:993")
        assert r["user"] == b"x%41y" and r["pass"] == b"q%20r", r
        assert r["wait"] == -1 and r["error"] == b"", r
        # cram-md5: the server must return the password; it does.
        r = ad.ask(2, "imap", "cram-md5", "bob", cram(SALT, "bobpw"),
                   salt=SALT)
        ok(r, "[::1]:993")
        assert r["pass"] == b"q%20r", r


@test
def response_failure_with_and_without_wait():
    """A failure text is the error; Auth-Wait gives wait=N, none -1."""
    with Workdir("wait") as wd:
        s1 = AuthServer(wd, name="nowait")
        s2 = AuthServer(wd, "--wait", "3", name="wait3")
        ad = AuthDrive(wd, [http_block(s1), http_block(s2)])
        fail(ad.ask(1, "imap", "plain", "alice", "x"))
        fail(ad.ask(2, "imap", "plain", "alice", "x", server=1), wait=3)
        r = ad.ask(3, "smtp", "plain", "carol", "x", server=1)
        fail(r, wait=3)
        assert r["code"] == b"535 5.7.8", r
        # An error code is SMTP's only.
        r = ad.ask(4, "imap", "plain", "carol", "x", server=1)
        fail(r, wait=3)
        assert r["code"] == b"", r


@test
def wait_requery_keeps_attempt():
    """Auth-Status: WAIT: the same request again after Auth-Wait, with
    the same Auth-Login-Attempt, until an answer."""
    with Workdir("waitstatus") as wd:
        srv = AuthServer(wd, "--wait-status", "2")
        ad = AuthDrive(wd, [http_block(srv)])
        t0 = time.monotonic()
        r = ad.ask(1, "imap", "plain", "alice", "s3cret", attempt=4,
                   timeout=15)
        took = time.monotonic() - t0
        ok(r, "127.0.0.1:143")
        assert 1.8 <= took < 8, took
        recs = srv.records()
        assert len(recs) == 3, recs
        assert [x["status"] for x in recs] == ["WAIT", "WAIT", "OK"], recs
        assert all(x["headers"] == recs[0]["headers"] for x in recs), recs
        assert recs[0]["headers"]["Auth-Login-Attempt"] == "4"


@test
def status_line_variants():
    """The status line is skipped when it starts with HTTP/, absent is
    fine; anything else is read as a header line, and garbage there is
    an invalid header: tempfail, as nginx."""
    with Workdir("status") as wd:
        modes = ["none", "http10", "http11", "garbage"]
        srvs = [AuthServer(wd, "--status-line", m, name=m) for m in modes]
        ad = AuthDrive(wd, [http_block(s) for s in srvs])
        for i, m in enumerate(modes):
            r = ad.ask(i + 1, "imap", "plain", "alice", "s3cret", server=i)
            if m == "garbage":
                tempfail(r)
            else:
                ok(r, "127.0.0.1:143")
        lines = ad.log_lines("127.0.0.1:%d" % srvs[3].port)
        assert len(lines) == 1, lines
        assert ("auth http server 127.0.0.1:%d sent invalid header in "
                "response" % srvs[3].port) in lines[0], lines


@test
def hostile_servers_tempfail():
    """Refused, unreachable, silent, dripping, malformed, host name,
    1 MiB, closed mid-header: tempfail every time, one log line each
    naming the server and the fault (and the client); slow ones do not
    delay the others."""
    with Workdir("hostile") as wd:
        # (name, fault flags or an address nobody serves, log text
        # after "[error] ", with %s for the server's address)
        cases = [
            ("refused", "127.0.0.1:%d" % free_port(),
             "connect() to auth http server %s failed (111: Connection "
             "refused)"),
            # TCP to a multicast address fails inside connect() itself,
            # as a refused loopback connection does on the BSDs.
            ("unreachable", "224.0.0.1:80",
             "connect() to auth http server %s failed (101: Network is "
             "unreachable)"),
            ("silent", ["--silent"], "auth http server %s timed out"),
            ("drip", ["--drip"], "auth http server %s timed out"),
            ("badheader", ["--bad-header"], "auth http server %s sent "
             "invalid header in response"),
            ("hostname", ["--hostname-server"], "auth http server %s sent "
             "invalid server address:\"localhost\""),
            ("huge", ["--huge", "1048576"], "auth http server %s sent too "
             "large response"),
            ("midheader", ["--close-mid-header"], "auth http server %s "
             "closed the connection prematurely"),
        ]
        addrs = []
        for name, flags, _ in cases:
            if isinstance(flags, str):
                addrs.append(flags)
            else:
                addrs.append("127.0.0.1:%d" %
                             AuthServer(wd, *flags, name=name).port)
        blocks = [server_block("auth_http %s/auth;" % a) for a in addrs]
        ad = AuthDrive(wd, blocks,
                       mail_extra="    auth_http_timeout 1500ms;\n")
        t0 = time.monotonic()
        for i in range(len(cases)):
            for k in range(2):
                ad.req(10 * i + k, "imap", "plain", "alice", "s3cret",
                       server=i)
        when = {}
        for i, (name, _, _) in enumerate(cases):
            for k in range(2):
                r = ad.result(10 * i + k, timeout=10)
                tempfail(r)
                when[name] = max(when.get(name, 0),
                                 ad.when[10 * i + k] - t0)
        for name in ("silent", "drip"):
            assert 1.3 <= when[name] < 5, when
        # The others come in before the timeout of the slow ones.
        for name in ("refused", "unreachable", "badheader", "hostname",
                     "huge", "midheader"):
            assert when[name] < 1.3, when
        for i, (name, _, text) in enumerate(cases):
            lines = ad.log_lines(addrs[i])
            assert len(lines) == 2, (name, lines)
            # Each with its request's id, as the parent writes it.
            ids = sorted(int(re.match(r"auth: \[error\] \*(\d+) ", l).group(1))
                         for l in lines)
            assert ids == [10 * i, 10 * i + 1], (name, lines)
            for l in lines:
                assert re.sub(r"\*\d+ ", "", l, count=1) == \
                    "auth: [error] " + text % addrs[i] + \
                    ", client: 127.0.0.1", (name, l)
        # Nothing else: one line per failed request.
        assert len(ad.log().splitlines()) == 2 * len(cases), ad.log()


@test
def requests_are_independent():
    """A slow auth server delays nobody else."""
    with Workdir("indep") as wd:
        slow = AuthServer(wd, "--delay", "2", name="slow")
        fast = AuthServer(wd, name="fast")
        ad = AuthDrive(wd, [http_block(slow), http_block(fast)])
        t0 = time.monotonic()
        ad.req(1, "imap", "plain", "alice", "s3cret")
        time.sleep(0.2)
        for i in range(2, 7):
            ad.req(i, "imap", "plain", "alice", "s3cret", server=1)
        for i in range(2, 7):
            ok(ad.result(i), "127.0.0.1:143")
        assert time.monotonic() - t0 < 1.5, time.monotonic() - t0
        assert 1 not in ad.results
        ok(ad.result(1), "127.0.0.1:143")
        assert time.monotonic() - t0 >= 1.9
        order = [int(l.split()[1]) for l in ad.all if l.startswith("result")]
        assert order[-1] == 1 and sorted(order[:-1]) == [2, 3, 4, 5, 6], order


@test
def cancel_closes_the_connection():
    """cancel: no result ever, and the auth server's connection goes;
    a request cancelled while it waits out an Auth-Wait is not asked
    again."""
    with Workdir("cancel") as wd:
        silent = AuthServer(wd, "--silent", name="silent")
        fast = AuthServer(wd, name="fast")
        # A long Auth-Wait, so that a loaded machine cannot re-query
        # before the cancel arrives.
        waits = AuthServer(wd, "--wait-status", "1",
                           "--wait-status-seconds", "4", name="waits")
        ad = AuthDrive(wd, [http_block(silent), http_block(fast),
                            http_block(waits)],
                       mail_extra="    auth_http_timeout 2s;\n")
        ad.req(4, "imap", "plain", "alice", "s3cret", server=2)
        ad.req(1, "imap", "plain", "alice", "s3cret")
        wait_for(lambda: len(silent.records()) == 1, timeout=5,
                 what="the request at the silent server")
        # Both ends of the one connection are established (a TIME_WAIT
        # left on the port number by an earlier user does not count).
        assert sorted(x for x in tcp_states(silent.port) if x != "06") == \
            ["01", "01"], tcp_states(silent.port)
        # The WAIT answer came: the re-query is a second away.
        wait_for(lambda: len(waits.records()) == 1, timeout=5,
                 what="the WAIT answer")
        time.sleep(0.1)
        ad.send("cancel 1", "cancel 4")
        # Both ends closed: only the auth process's TIME_WAIT may stay.
        wait_for(lambda: all(s == "06" for s in tcp_states(silent.port)),
                 timeout=5, what="the connection to close")
        # Past the 2 s timeout and the 4 s Auth-Wait nothing comes for
        # them, and the harness and the auth process still answer.
        time.sleep(4.5)
        ok(ad.ask(2, "imap", "plain", "alice", "s3cret", server=1),
           "127.0.0.1:143")
        # Cancelling something unknown or already answered is harmless.
        ad.send("cancel 2", "cancel 77")
        ok(ad.ask(3, "imap", "plain", "alice", "s3cret", server=1),
           "127.0.0.1:143")
        ad.finish()
        assert not any(l.startswith(("result 1 ", "result 4 "))
                       for l in ad.all), ad.all
        assert len(silent.records()) == 1
        assert len(waits.records()) == 1, waits.records()
        assert ad.log_lines("timed out") == [], ad.log()


@test
def keepalive_with_servers_that_close():
    """auth_http_keepalive against a server that closes after every
    answer, and one that closes idle connections: every request still
    gets its answer."""
    with Workdir("kaclose") as wd:
        once = AuthServer(wd, "--no-keepalive", name="once")
        idle = AuthServer(wd, "--idle-timeout", "0.3", name="idle")
        ka = "        auth_http_keepalive 4;\n"
        ad = AuthDrive(wd, [http_block(once, ka), http_block(idle, ka)])
        for i in range(1, 11):
            ok(ad.ask(i, "imap", "plain", "alice", "s3cret"),
               "127.0.0.1:143")
        recs = once.records()
        assert len({x["conn"] for x in recs}) == len(recs) == 10, recs
        assert recs[0]["request"] == "GET /auth HTTP/1.1"
        for rnd in range(3):
            for i in range(4):
                ad.req(100 * rnd + i, "imap", "plain", "alice", "s3cret",
                       server=1)
            for i in range(4):
                ok(ad.result(100 * rnd + i), "127.0.0.1:143")
            time.sleep(0.6)         # the server closes them meanwhile
        recs = idle.records()
        conns = {x["conn"] for x in recs}
        assert len(recs) == 12 and 3 <= len(conns) <= 12, recs
        assert ad.log() == "", ad.log()
        # The idle connections the server closed are closed here too.
        assert all(st == "06" for st in tcp_states(idle.port)), \
            tcp_states(idle.port)


@test
def no_fd_or_memory_growth_keepalive_reuse():
    """10,000 requests (keep-alive and not, failures, refused and
    malformed servers among them): no descriptor or memory growth in
    the auth process; with auth_http_keepalive the server sees far
    fewer connections than requests."""
    with Workdir("leak") as wd:
        plain = AuthServer(wd, name="plain")
        kept = AuthServer(wd, name="kept")
        bad = AuthServer(wd, "--bad-header", name="bad")
        refused = free_port()
        ad = AuthDrive(wd, [
            http_block(plain),
            http_block(kept, "        auth_http_keepalive 8;\n"),
            http_block(bad),
            server_block("auth_http 127.0.0.1:%d/auth;" % refused)])
        # Per request: (server, password, expected status).
        kinds = [(1, "s3cret", "ok"), (1, "wrong", "fail"),
                 (1, "s3cret", "ok"), (0, "s3cret", "ok"),
                 (1, "s3cret", "ok"), (0, "wrong", "fail"),
                 (1, "s3cret", "ok"), (2, "s3cret", "tempfail"),
                 (1, "s3cret", "ok"), (3, "s3cret", "tempfail")]
        window = 8              # requests in flight, as many as kept
        next_id = [1]

        def run(n):
            sent = 0
            done = 0
            outstanding = {}
            deadline = time.monotonic() + 120
            while done < n:
                while sent < n and len(outstanding) < window:
                    rid = next_id[0]
                    next_id[0] += 1
                    srv, pw, want = kinds[rid % len(kinds)]
                    ad.req(rid, "imap", "plain", "alice", pw, server=srv)
                    outstanding[rid] = want
                    sent += 1
                line = ad.next_line(max(deadline - time.monotonic(), 0))
                assert line is not None, ("stalled", ad.log()[-2000:])
                if not line.startswith("result "):
                    continue
                rid = int(line.split()[1])
                r = ad.results.pop(rid)
                assert r["status"] == outstanding.pop(rid), r
                done += 1
            ad.all.clear()      # 10,000 lines need not be kept

        run(500)
        time.sleep(0.3)
        fd0, rss0 = ad.fds(), ad.rss_kb()
        t0 = time.monotonic()
        run(10000)
        took = time.monotonic() - t0
        time.sleep(0.3)
        fd1, rss1 = ad.fds(), ad.rss_kb()
        print("  10000 requests in %.1fs; fds %d -> %d; VmRSS %d -> %d kB"
              % (took, fd0, fd1, rss0, rss1))
        # The pool keeps up to 8 idle connections; they may differ.
        assert fd1 <= fd0 + 8, (fd0, fd1)
        assert rss1 <= rss0 + 1024, (rss0, rss1)
        recs = kept.records()
        conns = {x["conn"] for x in recs}
        print("  keep-alive: %d requests on %d connections"
              % (len(recs), len(conns)))
        assert len(recs) == 10500 * 6 // 10, len(recs)
        assert len(conns) <= 2 * window, len(conns)
        assert all(x["request"].endswith("HTTP/1.1") for x in recs[:5])
        assert list(recs[0]["headers"])[:2] == ["Host", "Connection"]
        assert recs[0]["headers"]["Connection"] == "keep-alive"
        # Without keep-alive, one connection per request, as nginx.
        precs = plain.records()
        assert len({x["conn"] for x in precs}) == len(precs) == 2100, \
            len(precs)
        assert ad.fds() <= fd0 + 8


def strace_counts(path):
    """{syscall: calls} from an strace -c summary."""
    out = {}
    with open(path) as f:
        for line in f:
            t = line.split()
            if len(t) < 5 or t[-1] == "total":
                continue
            try:
                float(t[0])
                out[t[-1]] = out.get(t[-1], 0) + int(t[3])
            except ValueError:
                continue
    return out


@test
def system_calls_per_request():
    """The auth process's system calls per request, strace attached
    over 40 sequential ones: at most 11 with a connection per request
    (two epoll_wait, the imsg recvmsg and sendmsg, socket, connect,
    the send at once, one event registration and its removal, recv,
    close), at most 6 with auth_http_keepalive, where the kept
    connection's event stays registered."""
    assert shutil.which("strace"), "strace(1) is needed (install-deps)"
    with Workdir("syscalls") as wd:
        srv = AuthServer(wd, name="sc")
        for ka, most in (("", 11), ("        auth_http_keepalive 4;\n", 6)):
            ad = AuthDrive(wd, [http_block(srv, ka)], name="sc%d" % most)
            for i in range(1, 6):
                ok(ad.ask(i, "imap", "plain", "alice", "s3cret"),
                   "127.0.0.1:143")
            out = os.path.join(wd.path, "strace-%d" % most)
            st = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p",
                                   str(ad.auth_pid)],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
            try:
                line = st.stderr.readline().decode()
                assert "attached" in line, line
                for i in range(100, 140):
                    ok(ad.ask(i, "imap", "plain", "alice", "s3cret"),
                       "127.0.0.1:143")
            finally:
                st.send_signal(signal.SIGINT)
                st.wait(timeout=10)
                st.stderr.close()
            # Memory comes from the allocator (mmap under the sanitizers).
            calls = {k: v for k, v in strace_counts(out).items()
                     if k not in ("mmap", "munmap", "brk", "mremap",
                                  "madvise")}
            per = sum(calls.values()) / 40
            print("  auth_http_keepalive %s: %.2f system calls per "
                  "request %s" % ("on" if ka else "off", per,
                                  sorted(calls.items())))
            # The interrupted epoll_wait strace attached in counts too.
            assert per <= most + 0.1, (per, calls)
            ad.stop()


@test
def request_waits_for_the_handshake():
    """A server whose accept queue is full answers the handshake only
    when the SYN is sent again, about a second later: the request is
    sent once the connection is up and gets its answer."""
    with Workdir("handshake") as wd:
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(0)
        wd.cleanup.append(lsn.close)
        port = lsn.getsockname()[1]
        # One connection nobody accepts fills the queue: SYNs are dropped.
        filler = socket.create_connection(("127.0.0.1", port))
        wd.cleanup.append(filler.close)
        time.sleep(0.1)
        ad = AuthDrive(wd, [server_block("auth_http 127.0.0.1:%d/auth;"
                                         % port)])
        t0 = time.monotonic()
        ad.req(1, "imap", "plain", "alice", "s3cret")
        time.sleep(0.5)
        assert 1 not in ad.results, ad.results
        a, _ = lsn.accept()     # the filler: room for the next SYN
        a.close()
        lsn.settimeout(10)
        c, _ = lsn.accept()
        with c:
            c.settimeout(10)
            req = b""
            while b"\r\n\r\n" not in req:
                got = c.recv(4096)
                assert got, req
                req += got
            assert req.startswith(b"GET /auth HTTP/1.0\r\n"), req
            c.sendall(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n"
                      b"Auth-Server: 127.0.0.1\r\nAuth-Port: 143\r\n\r\n")
            ok(ad.result(1), "127.0.0.1:143")
        took = ad.when[1] - t0
        print("  answered after %.2fs" % took)
        assert 0.9 <= took < 5, took
        assert ad.log() == "", ad.log()


#
# imsg robustness.
#

@test
def bad_imsg_drops_the_channel():
    """A wrong-size or unknown message from a worker, or a request whose
    lengths do not add up to its payload or do not fit their arrays:
    its channel is dropped ("closed"), the reason logged, the auth
    process lives on."""
    with Workdir("imsg") as wd:
        srv = AuthServer(wd)
        cases = [
            (IMSG_AUTH_REQUEST, 0, "bad IMSG_AUTH_REQUEST size"),
            (IMSG_AUTH_REQUEST, 100, "bad IMSG_AUTH_REQUEST size"),
            (IMSG_AUTH_REQUEST, AUTH_REQUEST_SIZE - 1,
             "bad IMSG_AUTH_REQUEST size"),
            (IMSG_AUTH_REQUEST, AUTH_REQUEST_SIZE + 1,
             "bad IMSG_AUTH_REQUEST size"),
            # The right size, all zeros: no protocol.
            (IMSG_AUTH_REQUEST, AUTH_REQUEST_SIZE, "malformed auth request"),
            (IMSG_AUTH_CANCEL, 4, "bad IMSG_AUTH_CANCEL"),
            (IMSG_AUTH_RESOLVE, 3, "bad IMSG_AUTH_RESOLVE"),
            (IMSG_AUTH_RESULT, 8, "unexpected message type"),
            (99, 0, "unexpected message type"),
            (0, 16, "unexpected message type"),
        ]
        # The lengths of the compact form, each checked exactly.
        good = dict(user=b"alice", client=b"127.0.0.1")
        cases += [
            # Lengths that claim more or less than the payload holds.
            (IMSG_AUTH_REQUEST, request_msg(3, lens={"user": 6}, **good),
             "bad IMSG_AUTH_REQUEST size"),
            (IMSG_AUTH_REQUEST, request_msg(3, lens={"pass": 1}, **good),
             "bad IMSG_AUTH_REQUEST size"),
            (IMSG_AUTH_REQUEST, request_msg(3, **good) + b"x",
             "bad IMSG_AUTH_REQUEST size"),
            (IMSG_AUTH_REQUEST, request_msg(3, lens={"ssl_cert": 65535},
                                            **good),
             "bad IMSG_AUTH_REQUEST size"),
            # A string that does not fit its array (AUTH_USER_MAX,
            # AUTH_PASS_MAX and AUTH_SALT_MAX include the NUL).
            (IMSG_AUTH_REQUEST, request_msg(3, user=b"u" * 1024,
                                            client=b"127.0.0.1"),
             "malformed auth request"),
            (IMSG_AUTH_REQUEST, request_msg(3, **good, **{"pass": b"p" *
                                                         8192}),
             "malformed auth request"),
            (IMSG_AUTH_REQUEST, request_msg(3, salt=b"<" + b"s" * 255,
                                            **good),
             "malformed auth request"),
            # A NUL inside a text; a header's line break in another.
            (IMSG_AUTH_REQUEST, request_msg(3, salt=b"<1.2\0@x>", **good),
             "malformed auth request"),
            (IMSG_AUTH_REQUEST, request_msg(3, user=b"alice",
                                            client=b"1.2.3.4\r\nX: y"),
             "malformed auth request"),
        ]
        for n, (typ, size, why) in enumerate(cases):
            ad = AuthDrive(wd, [http_block(srv)], name="ad%d" % n)
            ok(ad.ask(1, "imap", "plain", "alice", "s3cret"),
               "127.0.0.1:143")
            ad.req(2, "imap", "plain", "alice", "s3cret")
            ad.result(2)
            if isinstance(size, bytes):
                ad.send("rawhex %d %s" % (typ, size.hex()))
            else:
                ad.send("raw %d %d" % (typ, size))
            ad.pump(lambda: ad.closed, 5, "closed")
            # The parent (authdrive) is told, to give a new channel.
            ad.pump(lambda: "dropped 0 1" in ad.all, 5, "drop report")
            line = ("auth: [alert] worker process %d (slot 0) sent a "
                    "malformed message (%s): dropping its channel"
                    % (ad.proc.pid, why))
            wait_for(lambda: ad.log_lines(line), timeout=5,
                     what="log line %r" % line)
            time.sleep(0.3)
            assert alive(ad.auth_pid), (typ, size)
            assert ad.proc.poll() is None
            # Still alive, not crashed, until the harness goes.
            assert "fatal" not in ad.log().lower(), ad.log()
            ad.finish()
            wait_for(lambda: not alive(ad.auth_pid), timeout=5,
                     what="auth process to leave with authdrive")


@test
def compact_request_by_hand():
    """IMSG_AUTH_REQUEST's wire form as auth_http.h documents it, built
    here byte by byte: the auth process answers it, the strings arrive
    whole, any byte in the user and password, and the longest that fit
    (AUTH_USER_MAX - 1, AUTH_PASS_MAX - 1) are taken as they are."""
    with Workdir("compact") as wd:
        srv = AuthServer(wd)
        ad = AuthDrive(wd, [http_block(srv)])
        ad.send("rawhex %d %s" % (IMSG_AUTH_REQUEST, request_msg(
            5, user=b"alice", client=b"127.0.0.1",
            **{"pass": b"s3cret"}).hex()))
        ok(ad.result(5), "127.0.0.1:143")
        h = srv.records()[-1]["headers"]
        assert (h["Auth-User"], h["Auth-Pass"], h["Client-IP"]) == \
            ("alice", "s3cret", "127.0.0.1"), h
        user, pw = b"u\x00\r\n" + b"x" * 1019, b"\xff\x00" + b"p" * 8189
        ad.send("rawhex %d %s" % (IMSG_AUTH_REQUEST, request_msg(
            6, user=user, client=b"127.0.0.1", **{"pass": pw}).hex()))
        fail(ad.result(6))
        rec = srv.records()[-1]
        assert rec["user"].encode("utf-8", "surrogateescape") == user
        h = rec["headers"]
        assert h["Auth-User"].startswith("u%00%0D%0Axxx"), h
        assert len(h["Auth-User"]) == 3 * 3 + 1 + 1019, h
        assert len(h["Auth-Pass"].encode("utf-8", "surrogateescape")) == \
            1 + 3 + 8189, h
        assert not ad.closed
        assert alive(ad.auth_pid)


#
# The resolver.
#

def resolver_conf(dns, extra=""):
    return ("        resolver 127.0.0.1:%d valid=30s;\n"
            "        resolver_timeout 500ms;\n%s" % (dns.port, extra))


@test
def resolver_fcrdns():
    """Confirmed names, [UNAVAILABLE] and [TEMPUNAVAIL] from a fake DNS
    server; invalid PTR names are refused and logged escaped."""
    with Workdir("resolver") as wd:
        dns = fakedns.FakeDNS(drop={"slow.example"})
        rev = fakedns.reverse_name
        dns.add(rev("127.0.0.1"), "PTR", ["Mail.Example"])
        dns.add("mail.example", "A", ["127.0.0.1"])
        dns.add(rev("::1"), "PTR", ["v6.example"])
        dns.add("v6.example", "AAAA", ["::1"])
        dns.add("v6.example", "A", ["127.0.0.9"])
        # 127.0.0.2: NXDOMAIN (no entry).
        dns.add(rev("127.0.0.3"), "PTR", ["liar.example"])
        dns.add("liar.example", "A", ["127.0.0.33"])
        dns.add(rev("127.0.0.4"), "PTR", [["evil\r\nX: y"]])
        dns.add(rev("127.0.0.5"), "PTR", ["a_b.example"])
        dns.add(rev("127.0.0.6"), "PTR", ["slow.example"])
        # Two names, the second confirmed.
        dns.add(rev("127.0.0.7"), "PTR", ["no.example", "yes.example"])
        dns.add("no.example", "A", ["127.0.0.70"])
        dns.add("yes.example", "A", ["127.0.0.7"])
        # A name that exists with no address of the asked type.
        dns.add(rev("127.0.0.8"), "PTR", ["noaddr.example"])
        dns.add("noaddr.example", "AAAA", ["::8"])
        dns.start()
        wd.cleanup.append(dns.stop)
        srv = AuthServer(wd)
        ad = AuthDrive(wd, [http_block(srv, resolver_conf(dns)),
                            http_block(srv)])
        assert ad.resolve(1, "127.0.0.1") == "Mail.Example"
        assert dns.queries_of() == [(rev("127.0.0.1"), "PTR"),
                                    ("mail.example", "A")], dns.queries
        assert ad.resolve(2, "::1") == "v6.example"
        assert ("v6.example", "AAAA") in dns.queries_of()
        assert ("v6.example", "A") not in dns.queries_of()
        assert ad.resolve(3, "127.0.0.2") == "[UNAVAILABLE]"
        assert ad.resolve(4, "127.0.0.3") == "[UNAVAILABLE]"
        assert ad.resolve(5, "127.0.0.4") == "[TEMPUNAVAIL]"
        assert ad.resolve(6, "127.0.0.5") == "[TEMPUNAVAIL]"
        t0 = time.monotonic()
        assert ad.resolve(7, "127.0.0.6") == "[TEMPUNAVAIL]"
        assert 0.4 <= time.monotonic() - t0 < 3
        assert ad.resolve(8, "127.0.0.7") == "yes.example"
        assert ad.resolve(9, "127.0.0.8") == "[UNAVAILABLE]"
        # No resolver in the second server.
        n = len(dns.queries_of())
        assert ad.resolve(10, "127.0.0.1", server=1) == "[UNAVAILABLE]"
        assert len(dns.queries_of()) == n
        # valid=30s: the answer comes from the cache.
        assert ad.resolve(11, "127.0.0.1") == "Mail.Example"
        assert len(dns.queries_of()) == n
        # Several at once, answered independently of the slow one.
        ad.send("resolve 20 127.0.0.6 server=0")
        time.sleep(0.05)
        ad.send("resolve 21 127.0.0.7 server=0")
        ad.pump(lambda: 21 in ad.resolved, 0.4, "resolved 21")
        assert 20 not in ad.resolved
        ad.pump(lambda: 20 in ad.resolved, 3, "resolved 20")
        assert ad.resolved[20] == "[TEMPUNAVAIL]"
        # A cancelled look-up answers nothing.
        ad.send("resolve 22 127.0.0.6 server=0", "cancel 22")
        assert ad.resolve(23, "127.0.0.7") == "yes.example"
        time.sleep(0.8)
        assert ad.resolve(24, "127.0.0.3") == "[UNAVAILABLE]"
        assert 22 not in ad.resolved, ad.resolved
        log = ad.log()
        assert "\r\nX: y" not in log, log
        bad = ad.log_lines("is not a valid host name")
        assert len(bad) == 2, log
        assert "127.0.0.4: PTR name \"evil\\x0D\\x0AX: y\"" in bad[0], bad
        assert "127.0.0.5: PTR name \"a_b.example\"" in bad[1], bad
        # The name goes out in Client-Host as the harness is told.
        r = ad.ask(30, "smtp", "plain", "alice", "s3cret",
                   host=ad.resolved[1])
        ok(r, "127.0.0.1:25")
        assert srv.records()[-1]["headers"]["Client-Host"] == "Mail.Example"


@test
def resolver_silent_server_tempunavail():
    """A DNS server that never answers: [TEMPUNAVAIL] after
    resolver_timeout, for IPv4 and IPv6 clients."""
    with Workdir("dnssilent") as wd:
        dns = fakedns.FakeDNS(mode="silent").start()
        wd.cleanup.append(dns.stop)
        srv = AuthServer(wd)
        ad = AuthDrive(wd, [http_block(srv, resolver_conf(dns))])
        t0 = time.monotonic()
        ad.send("resolve 1 127.0.0.1 server=0", "resolve 2 ::1 server=0")
        ad.pump(lambda: len(ad.resolved) == 2, 5, "two answers")
        took = time.monotonic() - t0
        assert ad.resolved == {1: "[TEMPUNAVAIL]", 2: "[TEMPUNAVAIL]"}
        assert 0.45 <= took < 2, took
        assert sorted(dns.queries_of()) == sorted([
            (fakedns.reverse_name("127.0.0.1"), "PTR"),
            (fakedns.reverse_name("::1"), "PTR")]), dns.queries
        # Failures are not cached: the next one asks again.
        assert ad.resolve(3, "127.0.0.1") == "[TEMPUNAVAIL]"
        assert len(dns.queries_of()) == 3


#
# auth_cdb.
#

def ctl(*args, stdin=None):
    p = subprocess.run([CTL] + list(args), input=stdin, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def hash_schemes():
    """The schemes mailproxyctl hash -s knows and this system supports."""
    rc, _, err = ctl("hash", "-s", "no-such-scheme", stdin="pw\n")
    m = re.search(r"\(([^)]*)\)", err)
    assert rc == 1 and m, err
    out = []
    for name in [s.strip() for s in m.group(1).split(",")]:
        rc, h, err = ctl("hash", "-s", name, stdin="pw-%s\n" % name)
        if rc != 0:
            assert "not supported" in err, err
            continue
        out.append((name, h.strip()))
    return out


def makemap(wd, text, name="users"):
    src = wd.file(name, text, 0o600)
    rc, _, err = ctl("makemap", src)
    assert rc == 0, err
    return src + ".cdb"


def cdb_block(path, extra=""):
    return server_block("auth_cdb %s;" % path, extra)


@test
def cdb_logins():
    """auth_cdb: right, wrong, unknown, disabled; APOP and CRAM-MD5
    against {PLAIN}; every hash scheme; backend and overrides from the
    record."""
    with Workdir("cdb") as wd:
        schemes = hash_schemes()
        print("  schemes: " + " ".join(n for n, _ in schemes))
        assert schemes
        _, bobhash, _ = ctl("hash", stdin="bobpw\n")
        lines = [
            "alice {PLAIN}s3cret imap=127.0.0.1:143 pop3=127.0.0.2:110 "
            "smtp=[::1]:25",
            "bob %s imap=192.0.2.10:1143 user=bob@back pass=master"
            % bobhash.strip(),
            "carol * imap=127.0.0.1:143",
            "dave {PLAIN}davepw pop3=127.0.0.1:110",
        ]
        for name, h in schemes:
            lines.append("u-%s %s imap=127.0.0.1:%d" % (name, h,
                                                        1000 + len(lines)))
        table = makemap(wd, "\n".join(lines) + "\n")
        ad = AuthDrive(wd, [cdb_block(table)])

        def ask(rid, *a, **kw):
            return ad.ask(rid, *a, timeout=20, **kw)

        def cdbfail(r):
            fail(r, b"Authentication failed")

        r = ask(1, "imap", "plain", "alice", "s3cret")
        ok(r, "127.0.0.1:143")
        assert r["user"] == b"alice" and r["pass"] == b"s3cret", r
        ok(ask(2, "pop3", "plain", "alice", "s3cret"), "127.0.0.2:110")
        ok(ask(3, "smtp", "plain", "alice", "s3cret"), "[::1]:25")
        cdbfail(ask(4, "imap", "plain", "alice", "s3creT"))
        cdbfail(ask(5, "imap", "plain", "nobody-here", "s3cret"))
        cdbfail(ask(6, "imap", "plain", "carol", "*"))
        cdbfail(ask(7, "imap", "plain", "carol", ""))
        # APOP and CRAM-MD5 against the {PLAIN} secret.
        r = ask(8, "pop3", "apop", "alice", apop(SALT, "s3cret"), salt=SALT)
        ok(r, "127.0.0.2:110")
        assert r["pass"] == b"s3cret", r
        cdbfail(ask(9, "pop3", "apop", "alice", apop(SALT, "s3creT"),
                    salt=SALT))
        r = ask(10, "imap", "cram-md5", "alice", cram(SALT, "s3cret"),
                salt=SALT)
        ok(r, "127.0.0.1:143")
        assert r["user"] == b"alice" and r["pass"] == b"s3cret", r
        cdbfail(ask(11, "imap", "cram-md5", "alice", cram("<x@y>",
                                                          "s3cret"),
                    salt=SALT))
        # A hashed secret cannot check a digest.
        cdbfail(ask(12, "imap", "cram-md5", "bob", cram(SALT, "bobpw"),
                    salt=SALT))
        # Overrides.
        r = ask(13, "imap", "plain", "bob", "bobpw")
        ok(r, "192.0.2.10:1143")
        assert r["user"] == b"bob@back" and r["pass"] == b"master", r
        cdbfail(ask(14, "imap", "plain", "bob", "bobpW"))
        # Right password, no backend for the protocol: tempfail.
        tempfail(ask(15, "imap", "plain", "dave", "davepw"))
        ok(ask(16, "pop3", "plain", "dave", "davepw"), "127.0.0.1:110")
        # Methods a table cannot answer.
        tempfail(ask(17, "imap", "external", "alice", ""))
        tempfail(ask(18, "imap", "xoauth2", "alice", "s3cret"))
        # Every hash scheme.
        rid = 100
        for i, (name, _) in enumerate(schemes):
            r = ask(rid, "imap", "plain", "u-" + name, "pw-" + name)
            ok(r, "127.0.0.1:%d" % (1000 + 4 + i))
            assert r["pass"] == ("pw-" + name).encode(), r
            cdbfail(ask(rid + 1, "imap", "plain", "u-" + name, "pw-x"))
            rid += 2
        # A request cancelled while its hash is being checked: no result.
        ad.req(900, "imap", "plain", "u-" + schemes[0][0], "pw-x")
        ad.send("cancel 900")
        ok(ask(901, "imap", "plain", "alice", "s3cret"), "127.0.0.1:143")
        time.sleep(0.5)
        ad.send("cancel 901")
        ok(ask(902, "imap", "plain", "alice", "s3cret"), "127.0.0.1:143")
        assert 900 not in ad.results, ad.results[900]
        # (The reasons of failed logins are logged at level info, which
        # the harness's auth process, in debug mode, does not show.)
        log = ad.log()
        for why in ("auth_cdb: no backend for the protocol, client: "
                    "127.0.0.1", "auth_cdb cannot check the external method",
                    "auth_cdb cannot check the xoauth2 method"):
            assert len([l for l in log.splitlines() if why in l]) == 1, \
                (why, log)
        assert "s3creT" not in log and "bobpW" not in log


@test
def cdb_unknown_user_costs_a_wrong_password():
    """Wrong password and unknown user take comparable time."""
    with Workdir("cdbtime") as wd:
        lines = []
        for i in range(5):
            _, h, _ = ctl("hash", stdin="pw%d\n" % i)
            lines.append("user%d %s imap=127.0.0.1:143" % (i, h.strip()))
        table = makemap(wd, "\n".join(lines) + "\n")
        ad = AuthDrive(wd, [cdb_block(table)])
        ok(ad.ask(1, "imap", "plain", "user0", "pw0", timeout=20),
           "127.0.0.1:143")
        wrong, unknown = [], []
        rid = 10
        for i in range(10):
            for user, bucket in (("user%d" % (i % 5), wrong),
                                 ("ghost%d" % i, unknown)):
                t0 = time.monotonic()
                r = ad.ask(rid, "imap", "plain", user, "not-it", timeout=20)
                bucket.append(time.monotonic() - t0)
                fail(r, b"Authentication failed")
                rid += 1
        mw, mu = statistics.median(wrong), statistics.median(unknown)
        print("  median wrong password %.1f ms, unknown user %.1f ms"
              % (mw * 1000, mu * 1000))
        assert 0.5 <= mu / mw <= 2, (wrong, unknown)


def cdb_hash(key):
    h = 5381
    for c in key:
        h = (((h << 5) + h) ^ c) & 0xffffffff
    return h


def cdb_write(path, records):
    """A cdb file of (key, value) pairs, as cdbmake(1) writes one."""
    body = b""
    tables = [[] for _ in range(256)]
    for k, v in records:
        h = cdb_hash(k)
        tables[h & 255].append((h, 2048 + len(body)))
        body += struct.pack("<II", len(k), len(v)) + k + v
    head = b""
    tail = b""
    for t in tables:
        n = 2 * len(t)
        slots = [(0, 0)] * n
        for h, pos in t:
            i = (h >> 8) % n
            while slots[i][1] != 0:
                i = (i + 1) % n
            slots[i] = (h, pos)
        head += struct.pack("<II", 2048 + len(body) + len(tail), n)
        tail += b"".join(struct.pack("<II", *sl) for sl in slots)
    with open(path, "wb") as f:
        f.write(head + body + tail)
    return path


def cdb_daemon_body(port, table):
    return ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n        auth_cdb %s;\n    }\n"
            % (port, table))


@test
def cdb_missing_or_corrupt_is_a_startup_error():
    """The daemon does not start with a missing or corrupt table, and
    says which and why."""
    with Workdir("cdbstart") as wd:
        missing = os.path.join(wd.path, "missing.cdb")
        good = makemap(wd, "alice {PLAIN}x imap=127.0.0.1:143\n")
        with open(good, "rb") as f:
            data = f.read()
        truncated = wd.file("truncated.cdb", data[:len(data) - 100], 0o600)
        empty = wd.file("empty.cdb", b"", 0o600)
        foreign = cdb_write(os.path.join(wd.path, "foreign.cdb"),
                            [(b"alice", b"v1\0secret={PLAIN}x\0")])
        cases = [(missing, "open() failed (2: No such file or directory)"),
                 (truncated, "not a cdb file"), (empty, "not a cdb file"),
                 (foreign, "not a table made by mailproxyctl makemap")]
        for path, why in cases:
            d = Daemon(BINARY, cdb_daemon_body(free_port(), path),
                       name="cdbstart")
            try:
                d.start(wait=False)
                try:
                    d.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    raise AssertionError("daemon started with " + path)
                err = d.proc.stderr.read().decode(errors="replace")
                assert d.proc.returncode == 1, (d.proc.returncode, err)
                assert ('[emerg] auth_cdb "%s": %s in %s:' % (path, why,
                                                             d.conf)) in err, \
                    err
                assert d.read_pid() is None
            finally:
                d.stop()


@test
def cdb_reload():
    """HUP with a corrupt table keeps the old generation; with a new
    valid table a new auth process takes over."""
    with Workdir("cdbreload") as wd:
        d = None
        try:
            table = makemap(wd, "alice {PLAIN}one imap=127.0.0.1:143\n")
            d = Daemon(BINARY, cdb_daemon_body(free_port(), table),
                       name="cdbreload")
            d.start()
            (auth0,) = d.auth_now()
            workers0 = d.workers_now()
            with open(table, "rb") as f:
                data = f.read()
            bad = wd.file("bad.tmp", data[:len(data) - 100], 0o600)
            os.rename(bad, table)
            d.signal(signal.SIGHUP)
            d.wait_log("reconfiguring failed")
            assert 'auth_cdb "%s": not a cdb file' % table in d.logtext(), \
                d.logtext()
            time.sleep(0.5)
            assert d.auth_now() == [auth0] and d.workers_now() == workers0
            makemap(wd, "alice {PLAIN}two imap=127.0.0.1:143\n"
                        "bob {PLAIN}three pop3=127.0.0.1:110\n")
            d.signal(signal.SIGHUP)
            d.wait_log("reconfiguring done")
            wait_for(lambda: len(d.auth_now()) == 1 and
                     d.auth_now() != [auth0],
                     timeout=10, what="a new auth process alone")
            assert not alive(auth0)
            assert alive(d.pid)
        finally:
            if d is not None:
                d.stop()


#
# Resolver status zones through the real daemon: the answer classes of
# nginx's resolver, the Client-Host each leads to, and the counters in
# mailproxyctl and the metrics.
#

# 127.0.0.N: (what the fake DNS server does for it, Client-Host).
ZONE_CASES = {
    11: ("a confirmed name", "ok.example"),
    12: ("NXDOMAIN", "[UNAVAILABLE]"),
    13: ("SERVFAIL", "[TEMPUNAVAIL]"),
    14: ("FORMERR", "[TEMPUNAVAIL]"),
    15: ("NOTIMP", "[TEMPUNAVAIL]"),
    16: ("REFUSED", "[TEMPUNAVAIL]"),
    17: ("no answer", "[TEMPUNAVAIL]"),
    18: ("an A record for a PTR question", "[TEMPUNAVAIL]"),
    19: ("a PTR CNAME without its PTR", "[TEMPUNAVAIL]"),
    20: ("NOERROR without a record", "[UNAVAILABLE]"),
    21: ("an A CNAME whose end is asked", "alias.example"),
    22: ("an A answer with an MX record only", "[TEMPUNAVAIL]"),
    23: ("RCODE 9", "[TEMPUNAVAIL]"),
}
# What those 13 look-ups count: 13 PTR, 3 forward (11, 21, 22).
ZONE_COUNTS = {
    "queries": {"name": 3, "srv": 0, "addr": 13},
    "responses": {"success": 5, "timedout": 1, "format_error": 1,
                  "server_failure": 1, "not_found": 2, "unimplemented": 1,
                  "refused": 1, "other": 4},
}


def zone_dns():
    dns = fakedns.FakeDNS(drop={fakedns.reverse_name("127.0.0.17")})
    rev = lambda n: fakedns.reverse_name("127.0.0.%d" % n)  # noqa: E731
    dns.add(rev(11), "PTR", ["ok.example"])
    dns.add("ok.example", "A", ["127.0.0.11"])
    for n, code in ((12, 3), (13, 2), (14, 1), (15, 4), (16, 5), (23, 9)):
        dns.rcode(rev(n), code)
    dns.extra(rev(18), "PTR", "A", "127.0.0.18")
    dns.extra(rev(19), "PTR", "CNAME", "19.sub.0.0.127.in-addr.arpa")
    dns.add(rev(20), "AAAA", ["::20"])
    dns.add(rev(21), "PTR", ["alias.example"])
    dns.extra("alias.example", "A", "CNAME", "real.example")
    dns.add("real.example", "A", ["127.0.0.21"])
    dns.add(rev(22), "PTR", ["mx.example"])
    dns.extra("mx.example", "A", "MX", "mail.mx.example")
    return dns


def zone_body(dns, ports, zone="dns"):
    body = ""
    for port in ports:
        body += ("    server {\n        listen 127.0.0.1:%d;\n"
                 "        protocol smtp;\n        smtp_auth plain;\n"
                 "        resolver 127.0.0.1:%d status_zone=%s;\n"
                 "        resolver_timeout 500ms;\n    }\n"
                 % (port, dns.port, zone))
    return body


def zone_session(port, n):
    """An SMTP login from 127.0.0.n that the auth server refuses."""
    import smtplib
    c = smtplib.SMTP("127.0.0.1", port, timeout=10,
                     source_address=("127.0.0.%d" % n, 0))
    try:
        c.ehlo("client.test")
        try:
            c.login("alice", "wrong")
            raise AssertionError("login accepted")
        except smtplib.SMTPAuthenticationError:
            pass
    finally:
        c.close()


def zone_show(sock):
    p = subprocess.run([CTL, "-s", sock, "-j", "show", "resolvers"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
    return json.loads(p.stdout)["resolvers"]


def zone_metrics(port):
    """mailproxyd_resolver_* samples: {(name, labels): value}."""
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                  timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'(mailproxyd_resolver_\w+)\{zone="([^"]*)",'
                     r'(type|result)="(\w+)"\} (\d+)$', line)
        if m:
            out[(m.group(1), m.group(2), m.group(4))] = int(m.group(5))
    return out


def zone_scaled(k):
    return {part: {f: v * k for f, v in vals.items()}
            for part, vals in ZONE_COUNTS.items()}


@test
def resolver_status_zone():
    """Every answer class of nginx's resolver gives the Client-Host
    nginx sends and counts where Angie counts it; two servers naming one
    zone add up; show resolvers (text, JSON) and the metrics agree; the
    counts survive a reload that keeps the zone, and go with its name."""
    with Workdir("dnszone") as wd:
        dns = zone_dns().start()
        wd.cleanup.append(dns.stop)
        srv = AuthServer(wd)
        sock = os.path.join(wd.path, "ctl.sock")
        mport = free_port()
        ports = [free_port(), free_port()]
        d = Daemon(BINARY, zone_body(dns, ports), workers=1,
                   main_extra="control_socket %s;\nmetrics_listen "
                   "127.0.0.1:%d;\n" % (sock, mport), name="dnszone")
        d.text = (lambda body, t=d.text: t(body).replace(
            "auth_http 127.0.0.1:9/auth", "auth_http %s" % srv.url()))
        d.write(zone_body(dns, ports))
        wd.cleanup.append(d.stop)
        d.start()
        for n, (what, host) in sorted(ZONE_CASES.items()):
            mark = len(srv.records())
            zone_session(ports[0], n)
            recs = srv.records()[mark:]
            assert len(recs) == 1, (what, recs)
            h = recs[0]["headers"]
            assert h["Client-IP"] == "127.0.0.%d" % n, (what, h)
            assert h.get("Client-Host") == host, (what, h)
        assert zone_show(sock) == {"dns": zone_scaled(1)}, zone_show(sock)
        # The second server has its own resolver (and cache), in the
        # same zone: the same look-ups count again.
        for n in sorted(ZONE_CASES):
            zone_session(ports[1], n)
        assert zone_show(sock) == {"dns": zone_scaled(2)}
        m = zone_metrics(mport)
        for part, metric, label in (
                ("queries", "mailproxyd_resolver_requests_total", "type"),
                ("responses", "mailproxyd_resolver_responses_total",
                 "result")):
            for f, v in zone_scaled(2)[part].items():
                assert m[(metric, "dns", f)] == v, (metric, f, m)
        assert len(m) == 11, m
        p = subprocess.run([CTL, "-s", sock, "show", "resolvers"],
                           capture_output=True, text=True, timeout=30)
        lines = p.stdout.splitlines()
        assert lines[0].split() == [
            "ZONE", "NAME", "SRV", "ADDR", "SUCCESS", "TIMEDOUT", "FORMERR",
            "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "OTHER"], p.stdout
        assert lines[1].split() == ["dns", "6", "0", "26", "10", "2", "2",
                                    "2", "4", "2", "2", "8"], p.stdout
        # A reload: the old auth process's counts are kept by the
        # parent when it exits, the new one counts on.
        (auth0,) = d.auth_now()
        d.signal(signal.SIGHUP)
        d.wait_log("reconfiguring done")
        wait_for(lambda: d.auth_now() != [auth0] and not alive(auth0),
                 timeout=15, what="the old auth process gone")
        assert zone_show(sock) == {"dns": zone_scaled(2)}
        zone_session(ports[0], 12)
        after = zone_show(sock)["dns"]
        assert after["queries"]["addr"] == 27, after
        assert after["responses"]["not_found"] == 5, after
        # Another zone name: the old counts go with the old name.
        (auth1,) = d.auth_now()
        d.write(zone_body(dns, ports, zone="other"))
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.auth_now() != [auth1] and not alive(auth1),
                 timeout=15, what="the second auth process gone")
        assert zone_show(sock) == {"other": zone_scaled(0)}
        zone_session(ports[1], 11)
        assert zone_show(sock)["other"]["responses"]["success"] == 2
        assert "dns" not in {k[1] for k in zone_metrics(mport)}


def main():
    global BINARY
    if len(sys.argv) < 2:
        print("usage: test_auth.py DAEMON [name...]", file=sys.stderr)
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    os.makedirs(TMP, exist_ok=True)
    passed = failed = 0
    if os.geteuid() != 0:
        print("FAIL: the auth process tests drop privileges and chroot "
              "and must run as root")
        print("0 passed, 1 failed")
        return 1
    for path in (AUTHDRIVE, CTL, AUTHSERVER):
        if not os.access(path, os.X_OK):
            print("FAIL: %s not found (make check builds it)" % path)
            print("0 passed, 1 failed")
            return 1
    t_all = time.monotonic()
    for fn in TESTS:
        if only and fn.__name__ not in only:
            continue
        t0 = time.monotonic()
        try:
            fn()
        except Exception:  # noqa
            failed += 1
            print("FAIL %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print("ok %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
        sys.stdout.flush()
    print("  total %.1fs" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
