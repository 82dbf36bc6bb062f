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
"""End-to-end tests of IMAP and POP3 proxying: mailproxyd between real
clients (imaplib, poplib, curl, raw sockets) and a real Dovecot
(tests/regress/dovecot.py), authenticating through auth_http (the
reference server contrib/auth-server/mailproxyd-auth-server, started
here) and through auth_cdb (a table made with mailproxyctl makemap).
Scripted fake backends stand in for Dovecot where a backend must
misbehave.

The expected bytes come from the compatibility reference
(nginx-mail-behaviour.md, sections 2.5, 3.0, 3.1, 3.2 and 3.4) and from
mailproxyd.conf(5), not from the implementation.

Run as root.  Python 3 standard library only.
Usage: test_imap_pop3.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import re
import resource
import shutil
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mpd  # noqa: E402
from mpd import (alive, AuthServer, Daemon, free_port, kill_pid,  # noqa: E402
                 run_suite, subenv, TOP, wait_for)
from dovecot import Dovecot, make_message  # noqa: E402

CTL = os.path.join(TOP, "bin", "mailproxyctl", "mailproxyctl")
TMP = os.path.join(TOP, "tests", "tmp")

BINARY = None
TESTS = []

SERVER_NAME = b"mx.test"         # mpd.Daemon's server_name
SALT_RE = re.compile(rb"^<(\d+)\.(\d+)@mx\.test>$")

# Fixed strings of the reference (section 3.1 and 3.2).
IMAP_GREETING = b"* OK IMAP4 ready\r\n"
POP3_GREETING = b"+OK POP3 ready\r\n"
IMAP_INTERNAL = b"* BAD internal server error\r\n"
POP3_INTERNAL = b"-ERR internal server error\r\n"
POP3_INVALID = b"-ERR invalid command\r\n"
HTTP_FAIL = b"Invalid login or password"    # the auth server's Auth-Status
CDB_FAIL = b"Authentication failed"          # auth_cdb, mailproxyd.conf(5)


def test(fn):
    TESTS.append(fn)
    return fn


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s\n  got:  %r\n  want: %r"
                             % (what or "mismatch", got, want))


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s)


def sanitized():
    try:
        with open(BINARY, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# --------------------------------------------------------------------------
# A raw client connection

Conn = mpd.Conn


def imap_conn(port, **kw):
    c = Conn(port, **kw)
    c.expect(IMAP_GREETING, "IMAP greeting")
    return c


def pop3_conn(port, salted=False, **kw):
    c = Conn(port, **kw)
    g = c.line()
    if salted:
        m = re.match(rb"^\+OK POP3 ready (<[^>]*>)\r\n$", g)
        assert m, "greeting with salt: %r" % g
        c.salt = m.group(1)
        check_salt(c.salt)
    else:
        eq(g, POP3_GREETING, "POP3 greeting")
    return c


def check_salt(salt):
    """<random.unixtime@server_name> (reference 2.6)."""
    m = SALT_RE.match(salt)
    assert m, "salt format: %r" % salt
    assert abs(int(m.group(2)) - time.time()) < 300, salt


def cram_response(user, password, salt):
    digest = hmac.new(password.encode(), salt, hashlib.md5).hexdigest()
    return b64(user + " " + digest)


def apop_digest(salt, password):
    return hashlib.md5(salt + password.encode()).hexdigest().encode()


# --------------------------------------------------------------------------
# Checks of a logged-in session (Dovecot behind the proxy)

def imap_fetch(c, tag, n):
    """FETCH n BODY.PEEK[] on a raw connection: the message bytes."""
    c.send(tag + b" FETCH %d BODY.PEEK[]\r\n" % n)
    data = None
    while True:
        ln = c.line(timeout=60)
        m = re.search(rb"\{(\d+)\}\r\n$", ln)
        if m and ln.startswith(b"* "):
            data = c.exact(int(m.group(1)), timeout=60)
            continue
        if ln.startswith(tag + b" "):
            assert ln.startswith(tag + b" OK"), ln
            break
    assert data is not None, "no literal in the FETCH response"
    return data


def imap_check_mailbox(c, user, logout=True):
    msgs = DC.messages[user]
    c.send(b"s SELECT INBOX\r\n")
    lines = c.until_tagged(b"s")
    assert lines[-1].startswith(b"s OK "), lines
    assert b"* %d EXISTS\r\n" % len(msgs) in lines, lines
    eq(imap_fetch(c, b"f", 1), msgs[0], "message 1 through the proxy")
    if logout:
        c.send(b"z LOGOUT\r\n")
        lines = c.until_tagged(b"z")
        assert lines[0].startswith(b"* BYE"), lines
        assert lines[-1].startswith(b"z OK"), lines
        c.eof()


def pop3_retr(c, n):
    c.send(b"RETR %d\r\n" % n)
    first = c.line(timeout=60)
    assert first.startswith(b"+OK"), first
    out = []
    while True:
        ln = c.line(timeout=60)
        if ln == b".\r\n":
            break
        if ln.startswith(b".."):
            ln = ln[1:]
        out.append(ln)
    return b"".join(out)


def pop3_check_mailbox(c, user, quit=True):
    msgs = DC.messages[user]
    c.send(b"STAT\r\n")
    eq(c.line(), b"+OK %d %d\r\n" % (len(msgs), sum(len(m) for m in msgs)),
       "STAT through the proxy")
    eq(pop3_retr(c, 1), msgs[0], "RETR 1 through the proxy")
    if quit:
        c.send(b"QUIT\r\n")
        assert c.line().startswith(b"+OK"), "QUIT"
        c.eof()


# --------------------------------------------------------------------------
# Fake backends

class FakeBackend:
    """A scripted IMAP or POP3 server on a loopback port.  Modes:
    good      logs in as the reference says the proxy does, then answers
              NOOP, STAT and LOGOUT/QUIT; IMAP LOGIN's arguments may be
              quoted strings or synchronising literals
    litplus   (IMAP) as good, with LITERAL+ in the greeting: the
              arguments may be non-synchronising literals too
    untagged  (IMAP) as good, with one untagged line before the OK
    reject    refuses the password
    close     closes after the first login command
    silent    accepts and never says anything
    preauth   (IMAP) greets with * PREAUTH
    garbage   greets with binary bytes
    spray     (IMAP) refuses the password with three lines
    Each connection's received bytes are appended to records."""

    def __init__(self, proto, mode):
        self.proto = proto
        self.mode = mode
        self.records = []
        self.lock = threading.Lock()
        self.stopping = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.settimeout(0.3)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()

    def clear(self):
        with self.lock:
            del self.records[:]

    def last(self, timeout=5.0):
        wait_for(lambda: self.records, timeout=timeout,
                 what="a connection to the fake backend")
        return bytes(self.records[-1])

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = bytearray()
            with self.lock:
                self.records.append(rec)
            threading.Thread(target=self.serve, args=(c, rec),
                             daemon=True).start()

    def serve(self, c, rec):
        c.settimeout(30)
        buf = [b""]

        def fill():
            try:
                d = c.recv(65536)
            except OSError:
                d = b""
            if not d:
                raise EOFError
            rec.extend(d)
            buf[0] += d

        def line(keep=False):
            while b"\n" not in buf[0]:
                fill()
            i = buf[0].index(b"\n") + 1
            out = buf[0][:i]
            if not keep:
                buf[0] = buf[0][i:]
            return out

        def exact(n, pending=False):
            if pending:
                return buf[0]
            while len(buf[0]) < n:
                fill()
            out, buf[0] = buf[0][:n], buf[0][n:]
            return out

        try:
            if self.mode == "silent":
                while True:
                    fill()
            if self.mode == "garbage":
                c.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03"
                          b"\x1b[2J\x00 NO forged\r\n")
                line()
                return
            if self.proto == "imap":
                self.serve_imap(c, line, exact)
            else:
                self.serve_pop3(c, line)
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    def serve_imap(self, c, line, exact):
        if self.mode == "preauth":
            c.sendall(b"* PREAUTH fake ready\r\n")
            line()
            return
        plus = self.mode == "litplus"
        c.sendall(b"* OK [CAPABILITY IMAP4rev1 LITERAL+] fake IMAP ready\r\n"
                  if plus else b"* OK fake IMAP ready\r\n")
        m = re.match(rb"^(\S+) LOGIN ", line(keep=True))
        if not m or self.mode == "close":
            return
        tag = m.group(1)
        exact(len(m.group(0)))
        for i in range(2):
            if i == 1 and exact(1) != b" ":
                return
            if self.imap_arg(c, line, exact, plus) is None:
                return
        if exact(2) != b"\r\n":
            return
        if self.mode == "reject":
            c.sendall(tag + b" NO [AUTHENTICATIONFAILED] "
                      b"Authentication failed.\r\n")
            return
        if self.mode == "spray":
            c.sendall(b"* x\r\n* y\r\n" + tag + b" NO nope\r\n")
            return
        if self.mode == "untagged":
            c.sendall(b"* CAPABILITY IMAP4rev1 FAKE\r\n")
        c.sendall(tag + b" OK LOGIN completed\r\n")
        while True:
            p = line().rstrip(b"\r\n").split(b" ")
            cmd = p[1].upper() if len(p) > 1 else b""
            if cmd == b"NOOP":
                c.sendall(p[0] + b" OK NOOP done\r\n")
            elif cmd == b"LOGOUT":
                c.sendall(b"* BYE fake\r\n" + p[0] + b" OK LOGOUT done\r\n")
                return
            else:
                c.sendall(p[0] + b" BAD fake\r\n")

    @staticmethod
    def imap_arg(c, line, exact, plus):
        """One LOGIN argument as RFC 9051 has it: a quoted string, a
        literal {n} whose data may only come after our "+", or (plus) a
        non-synchronising literal {n+}; None when it is none of these."""
        first = exact(1)
        if first == b'"':
            out = b""
            while True:
                ch = exact(1)
                if ch == b"\\":
                    ch = exact(1)
                    if ch not in (b'"', b"\\"):
                        return None
                elif ch == b'"':
                    return out
                elif ch in (b"\r", b"\n", b"\0") or ch[0] > 0x7f:
                    return None
                out += ch
        if first != b"{":
            return None
        m = re.match(rb"^(\d+)(\+?)\}\r\n$", line())
        if not m or (m.group(2) and not plus):
            return None
        if not m.group(2):
            if exact(0, pending=True):
                return None     # the data came before the "+"
            c.sendall(b"+ OK\r\n")
        return exact(int(m.group(1)))

    def serve_pop3(self, c, line):
        c.sendall(b"+OK fake POP3 ready\r\n")
        if not line().startswith(b"USER ") or self.mode == "close":
            return
        c.sendall(b"+OK\r\n")
        if not line().startswith(b"PASS "):
            return
        if self.mode == "reject":
            c.sendall(b"-ERR [AUTH] Authentication failed.\r\n")
            return
        c.sendall(b"+OK fake logged in\r\n")
        while True:
            cmd = line().rstrip(b"\r\n").upper()
            if cmd == b"NOOP":
                c.sendall(b"+OK\r\n")
            elif cmd == b"STAT":
                c.sendall(b"+OK 0 0\r\n")
            elif cmd == b"QUIT":
                c.sendall(b"+OK fake bye\r\n")
                return
            else:
                c.sendall(b"-ERR fake\r\n")


# --------------------------------------------------------------------------
# The reference auth server

# --------------------------------------------------------------------------
# The environment shared by the tests

DC = None           # Dovecot
AS = None           # auth server
AS_WAIT = None      # auth server with --wait 1
D = None            # mailproxyd
BODY = None         # its server blocks
CDB = None
FAKES = {}          # (proto, mode) -> FakeBackend
PORT = {}           # server name -> port
CLOSED_PORT = None  # a port nobody listens on
STARTED = []        # things to stop at the end

ALICE_PW = "s3cret"
BOB_PW = "bobpw"
DAVE_PW = "davepw"
LONG_USER = "lngpw"          # chosen so that a literal fills 1024 bytes
LONG_PW = "L" * 1000
QUINN_PW = 'q"u\\o te'     # a quoted string with escapes
ULLA_PW = "p\u00e4sswort"   # 8-bit: a literal


def fake(proto, mode):
    return FAKES[(proto, mode)]


def server_block(name, proto, lines):
    PORT[name] = free_port()
    return ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol %s;\n%s    }\n"
            % (PORT[name], proto,
               "".join("        %s;\n" % ln for ln in lines)))


def start_daemon():
    global D
    D = Daemon(BINARY, BODY, workers=2, name="imappop3",
               main_extra="worker_rlimit_nofile 8192;\n"
                          "events {\n    worker_connections 4096;\n}\n")
    D.start(env=subenv())


def ensure_daemon():
    if D is None or D.pid is None or not alive(D.pid):
        if D is not None:
            D.stop()
        start_daemon()


def setup():
    global DC, AS, AS_WAIT, CDB, BODY, CLOSED_PORT
    os.makedirs(TMP, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)),
                                                hard))

    DC = Dovecot({"alice": ALICE_PW, "bob": BOB_PW, "dave": DAVE_PW},
                 name="ip-dovecot")
    STARTED.append(DC.stop)
    DC.add_message("alice", make_message(
        "first message", ["Hello alice.", ".a line starting with a dot",
                          "", "-- ", "end"]))
    DC.add_message("alice", make_message("second message", ["Bye."]))
    DC.add_big_message("bob", 10 * 1024 * 1024)
    DC.add_message("dave", make_message("for dave", ["Hi dave."]))
    for u in (("quinn", QUINN_PW), ("ulla", ULLA_PW)):
        DC.add_user(*u)
        DC.add_message(u[0], make_message("for " + u[0], ["Hi."]))
    DC.start()

    for proto, modes in (("imap", ("good", "untagged", "reject", "close",
                                   "silent", "preauth", "garbage",
                                   "spray", "litplus")),
                         ("pop3", ("good", "reject", "close", "silent",
                                   "garbage"))):
        for m in modes:
            FAKES[(proto, m)] = FakeBackend(proto, m)
            STARTED.append(FAKES[(proto, m)].stop)
    CLOSED_PORT = free_port()

    dc = "imap=127.0.0.1:%d pop3=127.0.0.1:%d" % (DC.imap_port, DC.pop3_port)

    def fk(mode):
        out = "imap=127.0.0.1:%d" % fake("imap", mode).port
        if ("pop3", mode) in FAKES:
            out += " pop3=127.0.0.1:%d" % fake("pop3", mode).port
        return out

    users = ("alice %s %s\nbob %s %s\ndave %s %s\n"
             % (ALICE_PW, dc, BOB_PW, dc, DAVE_PW, dc))
    users += "quinn '%s' %s\nulla %s %s\n" % (QUINN_PW, dc, ULLA_PW, dc)
    users += ("f_quote pw %s backend_pass='p\"w\\x'\n"
              "f_8bit pw %s backend_pass=%s\n"
              "f_8bitplus pw %s backend_pass=%s\n"
              "f_8user pw %s backend_user=j\u00fcrgen backend_pass=%s\n"
              "f_8userplus pw %s backend_user=j\u00fcrgen "
              "backend_pass=%s\n"
              "f_good2 pw %s\n"
              % (fk("good"), fk("good"), ULLA_PW, fk("litplus"), ULLA_PW,
                 fk("good"), ULLA_PW, fk("litplus"), ULLA_PW,
                 fk("litplus")))
    users += "%s %s %s backend_user=alice backend_pass=%s\n" % (
        LONG_USER, LONG_PW, dc, ALICE_PW)
    for mode in ("good", "untagged", "reject", "close", "silent", "preauth",
                 "garbage", "spray"):
        users += "f_%s pw %s\n" % (mode, fk(mode))
    users += ("f_refused pw imap=127.0.0.1:%d pop3=127.0.0.1:%d\n"
              % (CLOSED_PORT, CLOSED_PORT))
    users += ('f_override pw %s backend_user=be_user '
              'backend_pass="be pass"\n' % fk("good"))
    AS = AuthServer(users, name="as")
    STARTED.append(AS.stop)
    AS_WAIT = AuthServer(users, "--wait", "1", name="aswait")
    STARTED.append(AS_WAIT.stop)

    # The auth_cdb table: hashed secrets for plain logins, {PLAIN} for
    # APOP and CRAM-MD5.
    cdir = tempfile.mkdtemp(prefix="ip-cdb-", dir=TMP)

    def hash_of(pw):
        r = subprocess.run([CTL, "hash"], input=pw + "\n",
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    src = os.path.join(cdir, "users")
    with open(src, "w") as f:
        f.write("alice %s %s\n" % (hash_of(ALICE_PW), dc))
        f.write("bob %s %s\n" % (hash_of(BOB_PW), dc))
        f.write("dave {PLAIN}%s %s\n" % (DAVE_PW, dc))
        f.write("f_good {PLAIN}pw %s\n" % fk("good"))
    r = subprocess.run([CTL, "makemap", src], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    CDB = src + ".cdb"

    http = "auth_http 127.0.0.1:%d/auth" % AS.port
    wait = "auth_http 127.0.0.1:%d/auth" % AS_WAIT.port
    down = "auth_http 127.0.0.1:%d/auth" % CLOSED_PORT
    cdb = "auth_cdb " + CDB
    body = ""
    for p in ("imap", "pop3"):
        body += server_block(p + "_http", p, [http])
        body += server_block(p + "_cdb", p, [
            cdb, "imap_auth plain login cram-md5" if p == "imap"
            else "pop3_auth plain apop cram-md5"])
        body += server_block(p + "_wait", p, [wait])
        body += server_block(p + "_down", p, [down])
        body += server_block(p + "_pem", p, [
            http, "proxy_pass_error_message on"])
        body += server_block(p + "_maxerr", p, [http, "max_errors 3"])
        body += server_block(p + "_maxcmd", p, [http, "max_commands 3"])
        body += server_block(p + "_timeout", p, [http, "timeout 1s"])
        body += server_block(p + "_ptimeout", p, [http, "proxy_timeout 1s"])
        body += server_block(p + "_logints", p, [http, "login_timeout 2s"])
        body += server_block(p + "_cancel", p, [http, "max_errors 3",
                                                "max_commands 40"])
    # Configured capabilities and methods, listed out of order on purpose.
    body += server_block("imap_conf", "imap", [
        http, "imap_capabilities IMAP4rev1 LITERAL+ SASL-IR IDLE",
        "imap_auth cram-md5 login plain"])
    body += server_block("imap_buf", "imap", [
        http, "imap_client_buffer 1k"])
    body += server_block("pop3_conf", "pop3", [
        http, "pop3_capabilities UIDL TOP PIPELINING",
        "pop3_auth cram-md5 apop plain"])
    BODY = body
    start_daemon()


def teardown(keep=True):
    """Stop everything by PID; without failures also remove the files
    (the Dovecot directory holds a 10 MB message)."""
    if D is not None:
        D.stop()
    for fn in reversed(STARTED):
        try:
            fn()
        except Exception:  # noqa
            traceback.print_exc(file=sys.stdout)
    if not keep:
        dirs = [x.dir for x in (D, DC, AS, AS_WAIT) if x is not None]
        if CDB:
            dirs.append(os.path.dirname(CDB))
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


# ==========================================================================
# IMAP pre-auth dialogue (reference 3.1)

@test
def imap_greeting():
    with Conn(PORT["imap_http"]) as c:
        eq(c.line(), IMAP_GREETING)
        c.quiet_for(0.3)


@test
def imap_capability_default():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t CAPABILITY\r\n")
        c.expect(b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n"
                 b"t OK completed\r\n")


@test
def imap_capability_configured():
    """imap_capabilities as given; AUTH= in the order PLAIN, LOGIN,
    CRAM-MD5 whatever the order of imap_auth."""
    with imap_conn(PORT["imap_conf"]) as c:
        c.send(b"a1 capability\r\n")
        c.expect(b"* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR IDLE AUTH=PLAIN "
                 b"AUTH=LOGIN AUTH=CRAM-MD5\r\na1 OK completed\r\n")


@test
def imap_noop_logout():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t NOOP\r\n")
        c.expect(b"t OK completed\r\n")
        c.send(b"A.b-c_9 noop\r\n")
        c.expect(b"A.b-c_9 OK completed\r\n")
        c.send(b"t LOGOUT\r\n")
        c.expect(b"* BYE\r\nt OK completed\r\n")
        c.expect_eof()


@test
def imap_lf_line_ends():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t NOOP\n")
        c.expect(b"t OK completed\r\n")
        c.send(b"u LOGIN alice " + ALICE_PW.encode() + b"\n")
        ln = c.line()
        assert ln.startswith(b"u OK "), ln
        imap_check_mailbox(c, "alice")


@test
def imap_invalid_commands():
    """Commands the proxy does not serve before login: tagged BAD."""
    for cmd in (b"ENABLE UTF8=ACCEPT", b"COMPRESS DEFLATE",
                b"NAMESPACE", b"SELECT INBOX", b"FOO"):
        with imap_conn(PORT["imap_http"]) as c:
            c.send(b"t " + cmd + b"\r\n")
            c.expect(b"t BAD invalid command\r\n", cmd.decode())
            c.send(b"u NOOP\r\n")
            c.expect(b"u OK completed\r\n", "session goes on after " +
                     cmd.decode())


@test
def imap_id_is_answered_before_login():
    """Beyond nginx (issue 4): ID before login gets an answer instead of
    "t BAD invalid command", and the session goes on to log in."""
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b't ID ("name" "test")\r\n')
        c.expect(b"* ID NIL\r\nt OK completed\r\n")
        c.send(b"u ID NIL\r\n")
        c.expect(b"* ID NIL\r\nu OK completed\r\n")
        c.send(b"v NOOP\r\n")
        c.expect(b"v OK completed\r\n")


@test
def imap_starttls_not_configured():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t STARTTLS\r\n")
        c.expect(b"t BAD invalid command\r\n")


@test
def imap_tags():
    """Tags: 1-32 of A-Z a-z 0-9 - . _; otherwise untagged BAD."""
    tag32 = b"T" * 32
    with imap_conn(PORT["imap_http"]) as c:
        c.send(tag32 + b" NOOP\r\n")
        c.expect(tag32 + b" OK completed\r\n", "32-character tag")
    for bad in (b"T" * 33, b"a*b", b"a+b", b"a%b", b'a"b', b"a{b",
                b"\xc3\xa9", b"*", b"+"):
        with imap_conn(PORT["imap_http"]) as c:
            c.send(bad + b" NOOP\r\n")
            c.expect(b"* BAD invalid command\r\n", "tag %r" % bad)


@test
def imap_login_arguments():
    """LOGIN takes exactly 2 arguments and a non-empty user."""
    for args in (b"", b" alice", b" alice s3cret extra", b' "" s3cret'):
        with imap_conn(PORT["imap_http"]) as c:
            c.send(b"t LOGIN" + args + b"\r\n")
            c.expect(b"t BAD invalid command\r\n", "LOGIN%r" % args)


@test
def imap_literal_continuation():
    """{n} gets "+ OK"; {n+} is taken without it; quoted strings keep
    their escapes resolved."""
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t LOGIN {5}\r\n")
        c.expect(b"+ OK\r\n", "continuation for the user")
        c.send(b"alice {%d}\r\n" % len(ALICE_PW))
        c.expect(b"+ OK\r\n", "continuation for the password")
        c.send(ALICE_PW.encode() + b"\r\n")
        ln = c.line()
        assert ln.startswith(b"t OK "), ln
        imap_check_mailbox(c, "alice")
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t LOGIN {5+}\r\nalice \"" + ALICE_PW.encode() + b"\"\r\n")
        ln = c.line()
        assert ln.startswith(b"t OK "), ln
        imap_check_mailbox(c, "alice")


@test
def imap_sasl_prompts():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t AUTHENTICATE PLAIN\r\n")
        c.expect(b"+ \r\n", "PLAIN: empty challenge")
        c.send(b"*\r\n")
        c.expect(b"t BAD invalid command\r\n", "SASL cancel")
        c.send(b"u AUTHENTICATE LOGIN\r\n")
        c.expect(b"+ VXNlcm5hbWU6\r\n", "LOGIN: Username:")
        c.send(b64("alice") + b"\r\n")
        c.expect(b"+ UGFzc3dvcmQ6\r\n", "LOGIN: Password:")
        c.send(b"*\r\n")
        c.expect(b"u BAD invalid command\r\n", "SASL cancel")
        c.send(b"v AUTHENTICATE LOGIN " + b64("alice") + b"\r\n")
        c.expect(b"+ UGFzc3dvcmQ6\r\n", "LOGIN with initial user")
        c.send(b"!!!notbase64\r\n")
        c.expect(b"v BAD invalid command\r\n", "bad base64")
        c.send(b"w AUTHENTICATE PLAIN " + b64("no-nul-here") + b"\r\n")
        c.expect(b"w BAD invalid command\r\n", "malformed PLAIN")
        c.send(b"x NOOP\r\n")
        c.expect(b"x OK completed\r\n")


@test
def imap_sasl_mechanisms_not_enabled():
    """CRAM-MD5 only when imap_auth lists it; unknown mechanisms: BAD."""
    for mech in (b"CRAM-MD5", b"EXTERNAL", b"FOO"):
        with imap_conn(PORT["imap_http"]) as c:
            c.send(b"t AUTHENTICATE " + mech + b"\r\n")
            c.expect(b"t BAD invalid command\r\n", mech.decode())


@test
def imap_cram_md5_challenge():
    with imap_conn(PORT["imap_conf"]) as c:
        c.send(b"t AUTHENTICATE CRAM-MD5\r\n")
        ln = c.line()
        m = re.match(rb"^\+ (\S+)\r\n$", ln)
        assert m, ln
        check_salt(base64.b64decode(m.group(1)))
        c.send(b"*\r\n")
        c.expect(b"t BAD invalid command\r\n", "cancel")
        c.send(b"u AUTHENTICATE CRAM-MD5 " + b64("x") + b"\r\n")
        c.expect(b"u BAD invalid command\r\n",
                 "CRAM-MD5 takes no initial response")


# ==========================================================================
# POP3 pre-auth dialogue (reference 3.2)

@test
def pop3_greeting():
    with Conn(PORT["pop3_http"]) as c:
        eq(c.line(), POP3_GREETING)
        c.quiet_for(0.3)
    for name in ("pop3_conf", "pop3_cdb"):
        with pop3_conn(PORT[name], salted=True):
            pass


@test
def pop3_capa_default():
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"CAPA\r\n")
        c.expect(b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n"
                 b"SASL PLAIN LOGIN\r\n.\r\n")


@test
def pop3_capa_configured():
    with pop3_conn(PORT["pop3_conf"], salted=True) as c:
        c.send(b"capa\r\n")
        c.expect(b"+OK Capability list follows\r\nUIDL\r\nTOP\r\n"
                 b"PIPELINING\r\nSASL PLAIN LOGIN CRAM-MD5\r\n.\r\n")


@test
def pop3_auth_listing():
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"AUTH\r\n")
        c.expect(b"+OK methods supported:\r\nPLAIN\r\nLOGIN\r\n.\r\n")
    with pop3_conn(PORT["pop3_conf"], salted=True) as c:
        c.send(b"AUTH\r\n")
        c.expect(b"+OK methods supported:\r\nPLAIN\r\nLOGIN\r\n"
                 b"CRAM-MD5\r\n.\r\n")


@test
def pop3_noop_quit():
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"NOOP\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"noop\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"QUIT\r\n")
        c.expect(b"+OK\r\n")
        c.expect_eof()


@test
def pop3_invalid_commands():
    for cmd in (b"STAT", b"LIST", b"RETR 1", b"UIDL", b"TOP 1 1", b"UTF8",
                b"STLS", b"US alice", b"USERS alice", b"FOO"):
        with pop3_conn(PORT["pop3_http"]) as c:
            c.send(cmd + b"\r\n")
            c.expect(POP3_INVALID, cmd.decode())
            c.send(b"NOOP\r\n")
            c.expect(b"+OK\r\n", "session goes on after " + cmd.decode())


@test
def pop3_user_pass_rules():
    """PASS only right after USER; after USER only PASS, CAPA, QUIT and
    NOOP, anything else resets to the start."""
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"PASS s3cret\r\n")
        c.expect(POP3_INVALID, "PASS without USER")
        c.send(b"USER alice\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"NOOP\r\n")
        c.expect(b"+OK\r\n", "NOOP after USER")
        c.send(b"CAPA\r\n")
        c.expect(b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n"
                 b"SASL PLAIN LOGIN\r\n.\r\n", "CAPA after USER")
        c.send(b"STAT\r\n")
        c.expect(POP3_INVALID, "STAT after USER")
        c.send(b"PASS " + ALICE_PW.encode() + b"\r\n")
        c.expect(POP3_INVALID, "PASS after the reset")
        c.send(b"USER alice\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"AUTH PLAIN\r\n")
        c.expect(POP3_INVALID, "AUTH after USER")
        c.send(b"user alice\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"pass " + ALICE_PW.encode() + b"\r\n")
        ln = c.line()
        assert ln.startswith(b"+OK"), ln
        pop3_check_mailbox(c, "alice")


@test
def pop3_sasl_prompts():
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"AUTH PLAIN\r\n")
        c.expect(b"+ \r\n")
        c.send(b"*\r\n")
        c.expect(POP3_INVALID, "cancel")
        c.send(b"AUTH LOGIN\r\n")
        c.expect(b"+ VXNlcm5hbWU6\r\n")
        c.send(b64("alice") + b"\r\n")
        c.expect(b"+ UGFzc3dvcmQ6\r\n")
        c.send(b"*\r\n")
        c.expect(POP3_INVALID, "cancel")
        c.send(b"AUTH LOGIN " + b64("alice") + b"\r\n")
        c.expect(b"+ UGFzc3dvcmQ6\r\n", "LOGIN with initial user")
        c.send(b"@@@\r\n")
        c.expect(POP3_INVALID, "bad base64")
        c.send(b"NOOP\r\n")
        c.expect(b"+OK\r\n")


@test
def pop3_methods_not_enabled():
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"APOP alice " + b"0" * 32 + b"\r\n")
        c.expect(POP3_INVALID, "APOP not enabled")
        c.send(b"AUTH CRAM-MD5\r\n")
        c.expect(POP3_INVALID, "CRAM-MD5 not enabled")
        c.send(b"AUTH FOO\r\n")
        c.expect(POP3_INVALID, "unknown mechanism")


@test
def pop3_cram_md5_challenge_is_the_greeting_salt():
    with pop3_conn(PORT["pop3_conf"], salted=True) as c:
        c.send(b"AUTH CRAM-MD5\r\n")
        c.expect(b"+ " + b64(c.salt) + b"\r\n")


# ==========================================================================
# Every login method ends in a working backend session

def imap_login_methods():
    """(name, function(conn, user, password)) for raw IMAP logins; each
    returns the tagged reply line."""
    def login(c, u, p):
        c.send(b"t LOGIN %s %s\r\n" % (u.encode(), p.encode()))
        return c.line()

    def login_quoted_literal(c, u, p):
        c.send(b't LOGIN "%s" {%d}\r\n' % (u.encode(), len(p)))
        c.expect(b"+ OK\r\n")
        c.send(p.encode() + b"\r\n")
        return c.line()

    def plain_ir(c, u, p):
        c.send(b"t AUTHENTICATE PLAIN " + b64("\0%s\0%s" % (u, p)) + b"\r\n")
        return c.line()

    def plain(c, u, p):
        c.send(b"t AUTHENTICATE PLAIN\r\n")
        c.expect(b"+ \r\n")
        c.send(b64("%s\0%s\0%s" % (u, u, p)) + b"\r\n")
        return c.line()

    def login_mech(c, u, p):
        c.send(b"t AUTHENTICATE LOGIN\r\n")
        c.expect(b"+ VXNlcm5hbWU6\r\n")
        c.send(b64(u) + b"\r\n")
        c.expect(b"+ UGFzc3dvcmQ6\r\n")
        c.send(b64(p) + b"\r\n")
        return c.line()

    def login_mech_blanks(c, u, p):
        # Trailing spaces and tabs after the base64, as nginx accepts.
        c.send(b"t AUTHENTICATE LOGIN\r\n")
        c.expect(b"+ VXNlcm5hbWU6\r\n")
        c.send(b64(u) + b" \t \r\n")
        c.expect(b"+ UGFzc3dvcmQ6\r\n")
        c.send(b64(p) + b"  \r\n")
        return c.line()

    return [("LOGIN", login), ("LOGIN_literal", login_quoted_literal),
            ("PLAIN_ir", plain_ir), ("PLAIN", plain),
            ("AUTH_LOGIN", login_mech),
            ("AUTH_LOGIN_trailing_blanks", login_mech_blanks)]


def pop3_login_methods():
    def userpass(c, u, p):
        c.send(b"USER %s\r\n" % u.encode())
        c.expect(b"+OK\r\n")
        c.send(b"PASS %s\r\n" % p.encode())
        return c.line()

    def plain_ir(c, u, p):
        c.send(b"AUTH PLAIN " + b64("\0%s\0%s" % (u, p)) + b"\r\n")
        return c.line()

    def plain(c, u, p):
        c.send(b"AUTH PLAIN\r\n")
        c.expect(b"+ \r\n")
        c.send(b64("\0%s\0%s" % (u, p)) + b"\r\n")
        return c.line()

    def login_mech(c, u, p):
        c.send(b"AUTH LOGIN\r\n")
        c.expect(b"+ VXNlcm5hbWU6\r\n")
        c.send(b64(u) + b"\r\n")
        c.expect(b"+ UGFzc3dvcmQ6\r\n")
        c.send(b64(p) + b"\r\n")
        return c.line()

    def plain_blanks(c, u, p):
        # Trailing spaces and tabs after the base64, as nginx accepts.
        c.send(b"AUTH PLAIN\r\n")
        c.expect(b"+ \r\n")
        c.send(b64("\0%s\0%s" % (u, p)) + b"\t  \r\n")
        return c.line()

    return [("USER_PASS", userpass), ("PLAIN_ir", plain_ir),
            ("PLAIN", plain), ("AUTH_LOGIN", login_mech),
            ("PLAIN_trailing_blanks", plain_blanks)]


def _imap_method_test(server, method, fn, user, pw):
    def t():
        with imap_conn(PORT[server]) as c:
            ln = fn(c, user, pw)
            # The backend's own tagged OK (Dovecot: "t OK [...] Logged in").
            assert ln.startswith(b"t OK ") and ln.endswith(b"\r\n"), ln
            assert b"Logged in" in ln, ln
            imap_check_mailbox(c, user)
    t.__name__ = "imap_%s_%s" % (method, server.split("_")[1])
    return t


def _pop3_method_test(server, method, fn, user, pw, salted):
    def t():
        with pop3_conn(PORT[server], salted=salted) as c:
            ln = fn(c, user, pw)
            assert ln.startswith(b"+OK") and ln.endswith(b"\r\n"), ln
            pop3_check_mailbox(c, user)
    t.__name__ = "pop3_%s_%s" % (method, server.split("_")[1])
    return t


for _srv in ("imap_http", "imap_cdb"):
    for _m, _fn in imap_login_methods():
        test(_imap_method_test(_srv, _m, _fn, "alice", ALICE_PW))
for _srv, _salted in (("pop3_http", False), ("pop3_cdb", True)):
    for _m, _fn in pop3_login_methods():
        test(_pop3_method_test(_srv, _m, _fn, "alice", ALICE_PW, _salted))


def imap_cram(server, user, pw):
    with imap_conn(PORT[server]) as c:
        c.send(b"t AUTHENTICATE CRAM-MD5\r\n")
        m = re.match(rb"^\+ (\S+)\r\n$", c.line())
        assert m
        salt = base64.b64decode(m.group(1))
        check_salt(salt)
        c.send(cram_response(user, pw, salt) + b"\r\n")
        ln = c.line()
        assert ln.startswith(b"t OK "), ln
        imap_check_mailbox(c, user)


@test
def imap_CRAM_MD5_http():
    imap_cram("imap_conf", "alice", ALICE_PW)


@test
def imap_CRAM_MD5_cdb():
    imap_cram("imap_cdb", "dave", DAVE_PW)


def pop3_apop(server, user, pw):
    with pop3_conn(PORT[server], salted=True) as c:
        c.send(b"APOP %s %s\r\n" % (user.encode(),
                                    apop_digest(c.salt, pw)))
        ln = c.line()
        assert ln.startswith(b"+OK"), ln
        pop3_check_mailbox(c, user)


def pop3_cram(server, user, pw):
    with pop3_conn(PORT[server], salted=True) as c:
        c.send(b"AUTH CRAM-MD5\r\n")
        c.expect(b"+ " + b64(c.salt) + b"\r\n")
        c.send(cram_response(user, pw, c.salt) + b"\r\n")
        ln = c.line()
        assert ln.startswith(b"+OK"), ln
        pop3_check_mailbox(c, user)


@test
def pop3_APOP_http():
    pop3_apop("pop3_conf", "alice", ALICE_PW)


@test
def pop3_APOP_cdb():
    pop3_apop("pop3_cdb", "dave", DAVE_PW)


@test
def pop3_CRAM_MD5_http():
    pop3_cram("pop3_conf", "alice", ALICE_PW)


@test
def pop3_CRAM_MD5_cdb():
    pop3_cram("pop3_cdb", "dave", DAVE_PW)


# Real clients

@test
def imaplib_sessions():
    """imaplib: LOGIN, AUTHENTICATE PLAIN, CRAM-MD5, over both auth
    services."""
    msgs = DC.messages["alice"]
    for server, how in (("imap_http", "login"), ("imap_cdb", "login"),
                        ("imap_http", "plain"), ("imap_cdb", "plain"),
                        ("imap_conf", "cram"), ("imap_cdb", "cram")):
        user, pw = ("dave", DAVE_PW) if (how, server) == ("cram", "imap_cdb") \
            else ("alice", ALICE_PW)
        m = imaplib.IMAP4("127.0.0.1", PORT[server], timeout=20)
        try:
            if how == "login":
                typ, _ = m.login(user, pw)
            elif how == "plain":
                typ, _ = m.authenticate(
                    "PLAIN", lambda _: ("\0%s\0%s" % (user, pw)).encode())
            else:
                typ, _ = m.login_cram_md5(user, pw)
            eq(typ, "OK", "%s via %s" % (how, server))
            typ, data = m.select("INBOX")
            eq(data[0], str(len(DC.messages[user])).encode())
            typ, data = m.fetch("1", "(BODY.PEEK[])")
            eq(data[0][1], DC.messages[user][0])
            if user == "alice":
                typ, data = m.uid("FETCH", "2", "(BODY.PEEK[])")
                eq(data[0][1], msgs[1])
            m.logout()
        finally:
            imap_close(m)


@test
def poplib_sessions():
    """poplib: USER/PASS and APOP (with the greeting's salt)."""
    for server, how, user, pw in (
            ("pop3_http", "user", "alice", ALICE_PW),
            ("pop3_cdb", "user", "alice", ALICE_PW),
            ("pop3_conf", "apop", "alice", ALICE_PW),
            ("pop3_cdb", "apop", "dave", DAVE_PW)):
        p = poplib.POP3("127.0.0.1", PORT[server], timeout=20)
        try:
            if how == "user":
                p.user(user)
                p.pass_(pw)
            else:
                p.apop(user, pw)
            msgs = DC.messages[user]
            eq(p.stat(), (len(msgs), sum(len(x) for x in msgs)),
               "STAT via %s %s" % (server, how))
            for i, want in enumerate(msgs, 1):
                _, lines, _ = p.retr(i)
                eq(b"\r\n".join(lines) + b"\r\n", want,
                   "RETR %d via %s %s" % (i, server, how))
            p.quit()
        finally:
            p.close()


def imap_close(m):
    """Close an imaplib connection, logged out or not."""
    try:
        m.shutdown()
    except OSError:
        pass


def curl(*args, timeout=60):
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout - 5)] +
                          list(args), capture_output=True, timeout=timeout)


@test
def curl_sessions():
    """curl picks its mechanism from what the proxy announces: PLAIN
    without initial response (no SASL-IR), CRAM-MD5, PLAIN with initial
    response (SASL-IR), APOP."""
    alice, dave = DC.messages["alice"], DC.messages["dave"]
    cases = [
        ("imap://127.0.0.1:%d/INBOX;UID=2" % PORT["imap_http"],
         "alice", ALICE_PW, None, alice[1]),
        ("imap://127.0.0.1:%d/INBOX;UID=1" % PORT["imap_conf"],
         "alice", ALICE_PW, None, alice[0]),
        ("imap://127.0.0.1:%d/INBOX;UID=2" % PORT["imap_conf"],
         "alice", ALICE_PW, "AUTH=PLAIN", alice[1]),
        ("imap://127.0.0.1:%d/INBOX;UID=1" % PORT["imap_cdb"],
         "dave", DAVE_PW, None, dave[0]),
        ("imap://127.0.0.1:%d/INBOX;UID=1" % PORT["imap_cdb"],
         "alice", ALICE_PW, "AUTH=LOGIN", alice[0]),
        ("imap://127.0.0.1:%d/INBOX?ALL" % PORT["imap_http"],
         "alice", ALICE_PW, None, b"* SEARCH 1 2\r\n"),
        ("pop3://127.0.0.1:%d/1" % PORT["pop3_http"],
         "alice", ALICE_PW, None, alice[0]),
        ("pop3://127.0.0.1:%d/2" % PORT["pop3_conf"],
         "alice", ALICE_PW, "AUTH=+APOP", alice[1]),
        ("pop3://127.0.0.1:%d/1" % PORT["pop3_cdb"],
         "alice", ALICE_PW, "AUTH=PLAIN", alice[0]),
        ("pop3://127.0.0.1:%d/1" % PORT["pop3_cdb"],
         "dave", DAVE_PW, None, dave[0]),
    ]
    for url, user, pw, opts, want in cases:
        args = [url, "-u", user + ":" + pw]
        if opts:
            args += ["--login-options", opts]
        r = curl(*args)
        what = "curl %s as %s (%s)" % (url, user, opts or "default")
        eq(r.returncode, 0, what + ": " + r.stderr.decode(errors="replace"))
        eq(r.stdout, want, what)


# ==========================================================================
# Authentication failures

@test
def imap_wrong_password_http():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t LOGIN alice wrong\r\n")
        c.expect(b"t NO " + HTTP_FAIL + b"\r\n")
        c.expect_eof()
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t LOGIN nosuchuser wrong\r\n")
        c.expect(b"t NO " + HTTP_FAIL + b"\r\n")
        c.expect_eof()


@test
def imap_wrong_password_cdb():
    for user in (b"alice", b"nosuchuser"):
        with imap_conn(PORT["imap_cdb"]) as c:
            c.send(b"t AUTHENTICATE PLAIN " + b64(b"\0" + user + b"\0wrong") +
                   b"\r\n")
            c.expect(b"t NO " + CDB_FAIL + b"\r\n")
            c.expect_eof()


@test
def pop3_wrong_password_http():
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"USER alice\r\nPASS wrong\r\n")
        c.expect(b"+OK\r\n-ERR " + HTTP_FAIL + b"\r\n")
        c.expect_eof()


@test
def pop3_wrong_password_cdb():
    with pop3_conn(PORT["pop3_cdb"], salted=True) as c:
        c.send(b"USER alice\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"PASS wrong\r\n")
        c.expect(b"-ERR " + CDB_FAIL + b"\r\n")
        c.expect_eof()
    with pop3_conn(PORT["pop3_cdb"], salted=True) as c:
        c.send(b"APOP dave " + b"0" * 32 + b"\r\n")
        c.expect(b"-ERR " + CDB_FAIL + b"\r\n")
        c.expect_eof()


@test
def imap_auth_wait():
    """Auth-Wait: nothing for the wait, then NO, and the client may try
    again in the same session."""
    with imap_conn(PORT["imap_wait"]) as c:
        t0 = time.monotonic()
        c.send(b"t LOGIN alice wrong\r\n")
        c.quiet_for(0.7)
        c.expect(b"t NO " + HTTP_FAIL + b"\r\n")
        assert time.monotonic() - t0 < 5
        c.send(b"u NOOP\r\n")
        c.expect(b"u OK completed\r\n")
        c.send(b"v LOGIN alice " + ALICE_PW.encode() + b"\r\n")
        ln = c.line()
        assert ln.startswith(b"v OK "), ln
        imap_check_mailbox(c, "alice")


@test
def pop3_auth_wait():
    with pop3_conn(PORT["pop3_wait"]) as c:
        c.send(b"USER alice\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"PASS wrong\r\n")
        c.quiet_for(0.7)
        c.expect(b"-ERR " + HTTP_FAIL + b"\r\n")
        c.send(b"PASS " + ALICE_PW.encode() + b"\r\n")
        c.expect(POP3_INVALID, "back to the start: PASS needs USER")
        c.send(b"USER alice\r\nPASS " + ALICE_PW.encode() + b"\r\n")
        c.expect(b"+OK\r\n")
        ln = c.line()
        assert ln.startswith(b"+OK"), ln
        pop3_check_mailbox(c, "alice")


@test
def auth_server_down():
    with imap_conn(PORT["imap_down"]) as c:
        c.send(b"t LOGIN alice " + ALICE_PW.encode() + b"\r\n")
        c.expect(IMAP_INTERNAL)
        c.expect_eof()
    with pop3_conn(PORT["pop3_down"]) as c:
        c.send(b"USER alice\r\nPASS " + ALICE_PW.encode() + b"\r\n")
        c.expect(b"+OK\r\n" + POP3_INTERNAL)
        c.expect_eof()


# ==========================================================================
# Backend login and backend faults (fake backends)

@test
def imap_backend_login_sequence():
    """<client tag> LOGIN "<user>" "<password>" in one write (nginx:
    two synchronising literals, three round trips); the backend's tagged
    reply is the answer; Auth-User/Auth-Pass replace the client's;
    pipelined commands follow the login."""
    fb = fake("imap", "good")
    fb.clear()
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"tag1 LOGIN f_good pw\r\ntag2 NOOP\r\n")
        c.expect(b"tag1 OK LOGIN completed\r\ntag2 OK NOOP done\r\n")
        c.send(b"tag3 LOGOUT\r\n")
        c.expect(b"* BYE fake\r\ntag3 OK LOGOUT done\r\n")
        c.expect_eof()
    eq(fb.last(), b'tag1 LOGIN "f_good" "pw"\r\ntag2 NOOP\r\n'
       b"tag3 LOGOUT\r\n", "what the backend received")
    fb.clear()
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"x AUTHENTICATE PLAIN " + b64("\0f_override\0pw") + b"\r\n")
        c.expect(b"x OK LOGIN completed\r\n")
    eq(fb.last(), b'x LOGIN "be_user" "be pass"\r\n',
       "Auth-User and Auth-Pass used for the backend")


@test
def imap_backend_login_forms():
    """Each LOGIN argument goes as a quoted string when RFC 9051 allows
    one ('"' and '\\' escaped), else as a non-synchronising literal when
    the greeting offers LITERAL+ (RFC 7888), else as nginx's
    synchronising literal, whose data waits for the backend's "+".  The
    fakes check the syntax and never send a "+" that was not asked
    for, so a proxy waiting for one would time out."""
    cases = (
        ("good", "f_quote", b'"f_quote" "p\\"w\\\\x"\r\n'),
        ("good", "f_8bit", b'"f_8bit" {9}\r\np\xc3\xa4sswort\r\n'),
        ("litplus", "f_8bitplus",
         b'"f_8bitplus" {9+}\r\np\xc3\xa4sswort\r\n'),
        ("good", "f_8user", b"{7}\r\nj\xc3\xbcrgen {9}\r\n"
         b"p\xc3\xa4sswort\r\n"),
        ("litplus", "f_8userplus", b"{7+}\r\nj\xc3\xbcrgen {9+}\r\n"
         b"p\xc3\xa4sswort\r\n"),
        ("litplus", "f_good2", b'"f_good2" "pw"\r\n'),
    )
    for mode, user, want in cases:
        fb = fake("imap", mode)
        fb.clear()
        with imap_conn(PORT["imap_http"]) as c:
            c.send(b"t LOGIN " + user.encode() + b" pw\r\n")
            c.expect(b"t OK LOGIN completed\r\n", user)
        eq(fb.last(), b"t LOGIN " + want, "%s: what the backend got" % user)


@test
def imap_backend_login_dovecot_forms():
    """The same against Dovecot (whose greeting offers LITERAL+): a
    password that needs quoting and an 8-bit one log in."""
    for user in ("quinn", "ulla"):
        pw = DC.users[user].encode()
        with imap_conn(PORT["imap_http"]) as c:
            c.send(b"t LOGIN " + user.encode() + b" {%d+}\r\n" % len(pw) +
                   pw + b"\r\n")
            ln = c.line()
            assert ln.startswith(b"t OK "), (user, ln)
            imap_check_mailbox(c, user)


@test
def imap_backend_untagged_line_relayed():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t LOGIN f_untagged pw\r\n")
        c.expect(b"* CAPABILITY IMAP4rev1 FAKE\r\nt OK LOGIN completed\r\n")


@test
def pop3_backend_login_sequence():
    fb = fake("pop3", "good")
    fb.clear()
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"USER f_good\r\nPASS pw\r\nSTAT\r\n")
        c.expect(b"+OK\r\n+OK fake logged in\r\n+OK 0 0\r\n")
        c.send(b"QUIT\r\n")
        c.expect(b"+OK fake bye\r\n")
        c.expect_eof()
    eq(fb.last(), b"USER f_good\r\nPASS pw\r\nSTAT\r\nQUIT\r\n")
    fb.clear()
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"AUTH PLAIN " + b64("\0f_override\0pw") + b"\r\n")
        c.expect(b"+OK fake logged in\r\n")
    eq(fb.last(), b"USER be_user\r\nPASS be pass\r\n")


@test
def backend_refused():
    """A closed port as backend: the internal error, whatever
    proxy_pass_error_message says (there is no backend reply to pass)."""
    for server in ("imap_http", "imap_pem"):
        with imap_conn(PORT[server]) as c:
            c.send(b"t LOGIN f_refused pw\r\n")
            c.expect(IMAP_INTERNAL, server)
            c.expect_eof()
    for server in ("pop3_http", "pop3_pem"):
        with pop3_conn(PORT[server]) as c:
            c.send(b"USER f_refused\r\nPASS pw\r\n")
            c.expect(b"+OK\r\n" + POP3_INTERNAL, server)
            c.expect_eof()


@test
def backend_closes_mid_login():
    for server in ("imap_http", "imap_pem"):
        with imap_conn(PORT[server]) as c:
            c.send(b"t LOGIN f_close pw\r\n")
            c.expect(IMAP_INTERNAL, server)
            c.expect_eof()
    for server in ("pop3_http", "pop3_pem"):
        with pop3_conn(PORT[server]) as c:
            c.send(b"USER f_close\r\nPASS pw\r\n")
            c.expect(b"+OK\r\n" + POP3_INTERNAL, server)
            c.expect_eof()


@test
def imap_backend_preauth_greeting():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t LOGIN f_preauth pw\r\n")
        c.expect(IMAP_INTERNAL)
        c.expect_eof()


@test
def backend_rejects_login_pem_off():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t LOGIN f_reject pw\r\n")
        c.expect(IMAP_INTERNAL)
        c.expect_eof()
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"USER f_reject\r\nPASS pw\r\n")
        c.expect(b"+OK\r\n" + POP3_INTERNAL)
        c.expect_eof()


@test
def backend_rejects_login_pem_on():
    """proxy_pass_error_message on: the backend's reply, then close."""
    with imap_conn(PORT["imap_pem"]) as c:
        c.send(b"t LOGIN f_reject pw\r\n")
        c.expect(b"t NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
        c.expect_eof()
    with pop3_conn(PORT["pop3_pem"]) as c:
        c.send(b"USER f_reject\r\nPASS pw\r\n")
        c.expect(b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n")
        c.expect_eof()


@test
def pem_on_only_a_printable_line():
    """proxy_pass_error_message on passes only a well-formed error reply:
    a binary greeting or a burst of lines from the backend gets the
    proxy's own temporary-failure reply instead, and is logged."""
    with imap_conn(PORT["imap_pem"]) as c:
        c.send(b"t LOGIN f_garbage pw\r\n")
        c.expect(IMAP_INTERNAL)
        c.expect_eof()
    with imap_conn(PORT["imap_pem"]) as c:
        c.send(b"t LOGIN f_spray pw\r\n")
        c.expect(IMAP_INTERNAL)
        c.expect_eof()
    with pop3_conn(PORT["pop3_pem"]) as c:
        c.send(b"USER f_garbage\r\nPASS pw\r\n")
        c.expect(b"+OK\r\n" + POP3_INTERNAL)
        c.expect_eof()
    D.wait_log("error reply is not one printable line")


@test
def pem_on_still_works():
    with imap_conn(PORT["imap_pem"]) as c:
        c.send(b"t LOGIN alice " + ALICE_PW.encode() + b"\r\n")
        assert c.line().startswith(b"t OK ")
        imap_check_mailbox(c, "alice")


# ==========================================================================
# Parser robustness: literals, NUL, split input, long lines, pipelining

@test
def imap_literal_sizes_invalid():
    """{4294967295} is refused before any continuation; negative, empty,
    non-numeric and overflowing sizes are invalid commands."""
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t LOGIN {4294967295}\r\n")
        c.expect(b"t BAD invalid command\r\n", "no + OK for 4 GiB")
        c.send(b"u NOOP\r\n")
        rest = b""
        try:
            c.expect(b"u OK completed\r\n")
        except AssertionError:
            rest = c.eof()
            eq(rest, b"", "either the session goes on or it is closed")
    for size in (b"-1", b"", b"abc", b"0x10", b" 5", b"5 ",
                 b"18446744073709551616", b"99999999999999999999999"):
        with imap_conn(PORT["imap_http"]) as c:
            c.send(b"t LOGIN alice {" + size + b"}\r\n")
            ln = c.line()
            eq(ln, b"t BAD invalid command\r\n", "literal {%s}" % size)


@test
def imap_literal_buffer_boundary():
    """imap_client_buffer 1k: a command with its literal filling the 1024
    bytes exactly is served; one byte more is an invalid command and the
    session ends."""
    def cmd(n):
        return b"t LOGIN %s {%d}\r\n" % (LONG_USER.encode(), n)
    n_at = 1000
    assert len(cmd(n_at)) + n_at + 2 == 1024, "test arithmetic"
    # At the limit: LONG_PW is 1000 bytes; the auth server maps it to
    # alice on Dovecot.
    with imap_conn(PORT["imap_buf"]) as c:
        c.send(cmd(n_at))
        c.expect(b"+ OK\r\n")
        c.send(LONG_PW.encode() + b"\r\n")
        ln = c.line()
        assert ln.startswith(b"t OK "), ln
        imap_check_mailbox(c, "alice")
    # Below: accepted, and the (wrong) password reaches the auth server.
    with imap_conn(PORT["imap_buf"]) as c:
        c.send(cmd(999))
        c.expect(b"+ OK\r\n")
        c.send(b"x" * 999 + b"\r\n")
        c.expect(b"t NO " + HTTP_FAIL + b"\r\n")
        c.expect_eof()
    # Above: invalid command, then close (with or without "+ OK" first).
    with imap_conn(PORT["imap_buf"]) as c:
        c.send(cmd(1001))
        ln = c.line()
        if ln == b"+ OK\r\n":
            c.send(b"x" * 1001 + b"\r\n")
            ln = c.line()
        eq(ln, b"t BAD invalid command\r\n", "literal over the buffer")
        c.expect_eof()
    # A plain line over the buffer: the same.
    with imap_conn(PORT["imap_buf"]) as c:
        c.send(b"t LOGIN alice " + b"y" * 1100 + b"\r\n")
        c.expect(b"t BAD invalid command\r\n")
        c.expect_eof()


@test
def pop3_line_buffer_boundary():
    """The POP3 buffer is 128 bytes: a 128-byte command is served, 129
    bytes are an invalid command and the session ends."""
    with pop3_conn(PORT["pop3_http"]) as c:
        line = b"USER " + b"u" * (128 - 7) + b"\r\n"
        eq(len(line), 128)
        c.send(line)
        c.expect(b"+OK\r\n", "128-byte USER")
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"USER " + b"u" * (129 - 7) + b"\r\n")
        c.expect(POP3_INVALID, "129-byte USER")
        c.expect_eof()


@test
def nul_bytes():
    cases = [
        (b'a LOGIN "al\0ice" pw\r\n', b"a BAD invalid command\r\n"),
        (b"a LOGIN alice p\0w\r\n", b"a BAD invalid command\r\n"),
        (b"a NO\0OP\r\n", b"a BAD invalid command\r\n"),
        (b"a NOOP\0\r\n", b"a BAD invalid command\r\n"),
        (b"a\0b NOOP\r\n", b"* BAD invalid command\r\n"),
        (b"a AUTHENTICATE PLAIN " + b64("\0al\0ice\0pw") + b"\r\n",
         b"a BAD invalid command\r\n"),
    ]
    for data, want in cases:
        with imap_conn(PORT["imap_http"]) as c:
            c.send(data)
            c.expect(want, repr(data))
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"a LOGIN {6}\r\n")
        c.expect(b"+ OK\r\n")
        c.send(b"al\0ice pw\r\n")
        c.expect(b"a BAD invalid command\r\n", "NUL in a literal")
    for data in (b"USER al\0ice\r\n", b"NO\0OP\r\n", b"NOOP\0\r\n",
                 b"AUTH PLAIN " + b64("\0al\0ice\0pw") + b"\r\n"):
        with pop3_conn(PORT["pop3_http"]) as c:
            c.send(data)
            c.expect(POP3_INVALID, repr(data))
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"USER alice\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"PASS s3\0cret\r\n")
        c.expect(POP3_INVALID, "NUL in PASS")


def send_bytewise(c, data):
    for i in range(len(data)):
        c.send(data[i:i + 1])
        time.sleep(0.002)


@test
def imap_one_byte_at_a_time():
    with imap_conn(PORT["imap_http"], nodelay=True) as c:
        send_bytewise(c, b"a CAPABILITY\r\n")
        c.expect(b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n"
                 b"a OK completed\r\n")
        send_bytewise(c, b"b LOGIN {5}\r\n")
        c.expect(b"+ OK\r\n")
        send_bytewise(c, b"alice \"" + ALICE_PW.encode() + b"\"\r\n")
        ln = c.line()
        assert ln.startswith(b"b OK "), ln
        send_bytewise(c, b"s SELECT INBOX\r\n")
        lines = c.until_tagged(b"s")
        assert lines[-1].startswith(b"s OK"), lines
    with imap_conn(PORT["imap_http"], nodelay=True) as c:
        send_bytewise(c, b"a AUTHENTICATE PLAIN\r\n")
        c.expect(b"+ \r\n")
        send_bytewise(c, b64("\0alice\0" + ALICE_PW) + b"\r\n")
        ln = c.line()
        assert ln.startswith(b"a OK "), ln
        imap_check_mailbox(c, "alice")


@test
def pop3_one_byte_at_a_time():
    with pop3_conn(PORT["pop3_http"], nodelay=True) as c:
        send_bytewise(c, b"CAPA\r\nUSER alice\r\nPASS " + ALICE_PW.encode() +
                      b"\r\n")
        c.expect(b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n"
                 b"SASL PLAIN LOGIN\r\n.\r\n+OK\r\n")
        assert c.line().startswith(b"+OK")
        pop3_check_mailbox(c, "alice")


def long_line_test(conn, data, want):
    """Send data from a thread (the proxy may close while it is being
    sent) and check the single reply, then the close."""
    errors = []

    def sender():
        try:
            conn.send(data)
        except OSError as e:
            errors.append(e)
    th = threading.Thread(target=sender, daemon=True)
    th.start()
    conn.expect(want)
    conn.expect_eof(timeout=15)
    th.join(timeout=15)


@test
def one_mib_lines():
    with imap_conn(PORT["imap_http"]) as c:
        long_line_test(c, b"t LOGIN alice " + b"a" * (1 << 20) + b"\r\n",
                       b"t BAD invalid command\r\n")
    with pop3_conn(PORT["pop3_http"]) as c:
        long_line_test(c, b"USER " + b"a" * (1 << 20) + b"\r\n", POP3_INVALID)
    # The daemon is still serving.
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"t NOOP\r\n")
        c.expect(b"t OK completed\r\n")


@test
def imap_pipelined_burst():
    with imap_conn(PORT["imap_http"]) as c:
        c.send(b"a NOOP\r\nb CAPABILITY\r\nc FOO\r\nd NOOP\r\n"
               b"e LOGIN alice " + ALICE_PW.encode() + b"\r\n"
               b"f SELECT INBOX\r\ng LOGOUT\r\n")
        c.expect(b"a OK completed\r\n"
                 b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n"
                 b"b OK completed\r\nc BAD invalid command\r\n"
                 b"d OK completed\r\n")
        ln = c.line()
        assert ln.startswith(b"e OK "), ln
        lines = c.until_tagged(b"f")
        assert b"* 2 EXISTS\r\n" in lines and \
            lines[-1].startswith(b"f OK"), lines
        lines = c.until_tagged(b"g")
        assert lines[0].startswith(b"* BYE") and \
            lines[-1].startswith(b"g OK"), lines
        c.eof()


@test
def pop3_pipelined_burst():
    msgs = DC.messages["alice"]
    with pop3_conn(PORT["pop3_http"]) as c:
        c.send(b"CAPA\r\nNOOP\r\nSTAT\r\nUSER alice\r\nPASS " +
               ALICE_PW.encode() + b"\r\nSTAT\r\nQUIT\r\n")
        c.expect(b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n"
                 b"SASL PLAIN LOGIN\r\n.\r\n+OK\r\n" + POP3_INVALID +
                 b"+OK\r\n")
        assert c.line().startswith(b"+OK")
        eq(c.line(), b"+OK %d %d\r\n" % (len(msgs),
                                         sum(len(m) for m in msgs)))
        assert c.line().startswith(b"+OK")
        c.eof()


# ==========================================================================
# Limits and timers

@test
def max_errors():
    """max_errors 3: the third error reply is the last thing sent.
    Commands refused only because of the state are not counted."""
    with imap_conn(PORT["imap_maxerr"]) as c:
        for tag in (b"a", b"b"):
            c.send(tag + b" FOO\r\n")
            c.expect(tag + b" BAD invalid command\r\n")
        c.send(b"c NOOP\r\n")
        c.expect(b"c OK completed\r\n")
        c.send(b"d FOO\r\n")
        c.expect(b"d BAD invalid command\r\n")
        c.expect_eof()
    with pop3_conn(PORT["pop3_maxerr"]) as c:
        for _ in range(4):
            c.send(b"PASS x\r\n")
            c.expect(POP3_INVALID, "PASS without USER (not counted)")
        for _ in range(2):
            c.send(b"FOO\r\n")
            c.expect(POP3_INVALID)
        c.send(b"NOOP\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"FOO\r\n")
        c.expect(POP3_INVALID)
        c.expect_eof()


@test
def max_commands():
    """max_commands 3: the fourth command gets the error reply, then the
    session is closed."""
    with imap_conn(PORT["imap_maxcmd"]) as c:
        for tag in (b"a", b"b", b"c"):
            c.send(tag + b" NOOP\r\n")
            c.expect(tag + b" OK completed\r\n")
        c.send(b"d NOOP\r\n")
        c.expect(b"d BAD invalid command\r\n")
        c.expect_eof()
    with pop3_conn(PORT["pop3_maxcmd"]) as c:
        for _ in range(3):
            c.send(b"NOOP\r\n")
            c.expect(b"+OK\r\n")
        c.send(b"NOOP\r\n")
        c.expect(POP3_INVALID)
        c.expect_eof()
    # A login within the limit still works.
    with imap_conn(PORT["imap_maxcmd"]) as c:
        c.send(b"a NOOP\r\nb LOGIN alice " + ALICE_PW.encode() + b"\r\n")
        c.expect(b"a OK completed\r\n")
        assert c.line().startswith(b"b OK ")
        imap_check_mailbox(c, "alice")


def closes_silently_after(c, lo, hi):
    t0 = time.monotonic()
    rest = c.eof(timeout=hi + 2)
    dt = time.monotonic() - t0
    eq(rest, b"", "a timed-out session is closed without a word")
    assert lo <= dt <= hi, "closed after %.2fs, not in [%s, %s]" % (dt, lo,
                                                                   hi)


@test
def timeout_preauth():
    """timeout 1s: idle before login, also in the middle of a line."""
    with imap_conn(PORT["imap_timeout"]) as c:
        closes_silently_after(c, 0.5, 3.5)
    with imap_conn(PORT["imap_timeout"]) as c:
        c.send(b"t NOOP\r\n")
        c.expect(b"t OK completed\r\n")
        c.send(b"t NO")
        closes_silently_after(c, 0.5, 3.5)
    with pop3_conn(PORT["pop3_timeout"]) as c:
        closes_silently_after(c, 0.5, 3.5)
    with pop3_conn(PORT["pop3_timeout"]) as c:
        c.send(b"USER alice\r\n")
        c.expect(b"+OK\r\n")
        closes_silently_after(c, 0.5, 3.5)


@test
def login_timeout_trickle():
    """login_timeout 2s bounds the time from connect to login, however
    the client trickles: a byte every 0.3s (well inside `timeout`) is
    closed without a word at about 2s, and logged."""
    for port, conn, line in ((PORT["imap_logints"], imap_conn,
                              b"t NOOP\r\n" * 50),
                             (PORT["pop3_logints"], pop3_conn,
                              b"NOOP\r\n" * 50)):
        with conn(port) as c:
            t0 = time.monotonic()
            closed_at = None
            for ch in line:
                r, _, _ = select.select([c.s], [], [], 0.3)
                if r:
                    try:
                        chunk = c.s.recv(4096)
                    except ConnectionResetError:
                        chunk = b""
                    if not chunk:
                        closed_at = time.monotonic() - t0
                        break
                    assert b"OK" in chunk, chunk
                    continue
                try:
                    c.s.send(bytes([ch]))
                except OSError:
                    closed_at = time.monotonic() - t0
                    break
                if time.monotonic() - t0 > 8:
                    break
            assert closed_at is not None, "still open after 8s"
            assert 1.7 <= closed_at <= 4.5, "closed after %.2fs" % closed_at
    D.wait_log("client login timed out after 2s")


@test
def login_timeout_not_after_login():
    """login_timeout ends at the login: a logged-in IMAP session idles
    past it and goes on."""
    with imap_conn(PORT["imap_logints"]) as c:
        c.send(b"a LOGIN alice " + ALICE_PW.encode() + b"\r\n")
        assert c.line().startswith(b"a OK "), "login"
        time.sleep(2.8)
        c.send(b"b NOOP\r\n")
        assert c.line().startswith(b"b OK"), "NOOP after login_timeout"
        imap_check_mailbox(c, "alice")


@test
def sasl_cancel_bounded():
    """A SASL exchange cancelled with "*" is not a parse error, as in
    nginx: max_errors 3 is not reached after 10 of them; max_commands
    (40: 20 rounds of AUTHENTICATE and "*") ends the loop."""
    with imap_conn(PORT["imap_cancel"]) as c:
        for i in range(10):
            c.send(b"a%d AUTHENTICATE PLAIN\r\n" % i)
            c.expect(b"+ \r\n")
            c.send(b"*\r\n")
            c.expect(b"a%d BAD invalid command\r\n" % i)
        n = 10
        while True:
            c.send(b"a%d AUTHENTICATE PLAIN\r\n" % n)
            got = c.line()
            if got != b"+ \r\n":
                eq(got, b"a%d BAD invalid command\r\n" % n, "over limit")
                break
            c.send(b"*\r\n")
            got = c.line()
            if got != b"a%d BAD invalid command\r\n" % n:
                break
            n += 1
            assert n < 40, "max_commands never ended the loop"
        c.expect_eof()
        assert 19 <= n <= 21, n
    with pop3_conn(PORT["pop3_cancel"]) as c:
        for i in range(10):
            c.send(b"AUTH PLAIN\r\n")
            c.expect(b"+ \r\n")
            c.send(b"*\r\n")
            c.expect(POP3_INVALID)
        c.send(b"NOOP\r\n")
        c.expect(b"+OK\r\n")


@test
def timeout_backend_login():
    """timeout also covers connecting and logging in to the backend: a
    backend that never greets gives the internal error."""
    with imap_conn(PORT["imap_timeout"]) as c:
        t0 = time.monotonic()
        c.send(b"t LOGIN f_silent pw\r\n")
        c.expect(IMAP_INTERNAL)
        dt = time.monotonic() - t0
        assert 0.7 <= dt <= 5, dt
        c.expect_eof()
    with pop3_conn(PORT["pop3_timeout"]) as c:
        t0 = time.monotonic()
        c.send(b"USER f_silent\r\nPASS pw\r\n")
        c.expect(b"+OK\r\n" + POP3_INTERNAL)
        dt = time.monotonic() - t0
        assert 0.7 <= dt <= 5, dt
        c.expect_eof()


@test
def timeout_does_not_cut_relayed_sessions():
    with imap_conn(PORT["imap_timeout"]) as c:
        c.send(b"t LOGIN alice " + ALICE_PW.encode() + b"\r\n")
        assert c.line().startswith(b"t OK ")
        time.sleep(2)
        c.send(b"n NOOP\r\n")
        assert c.until_tagged(b"n")[-1].startswith(b"n OK")


@test
def proxy_timeout():
    """proxy_timeout 1s: a relayed session busy for 2.5 s lives; idle, it
    is closed after about a second."""
    with imap_conn(PORT["imap_ptimeout"]) as c:
        c.send(b"t LOGIN alice " + ALICE_PW.encode() + b"\r\n")
        assert c.line().startswith(b"t OK ")
        for i in range(8):
            c.send(b"n%d NOOP\r\n" % i)
            assert c.until_tagged(b"n%d" % i)[-1].startswith(b"n%d OK" % i)
            time.sleep(0.3)
        closes_silently_after(c, 0.5, 3.5)
    with pop3_conn(PORT["pop3_ptimeout"]) as c:
        c.send(b"USER alice\r\nPASS " + ALICE_PW.encode() + b"\r\n")
        c.expect(b"+OK\r\n")
        assert c.line().startswith(b"+OK")
        for i in range(8):
            c.send(b"NOOP\r\n")
            c.expect(b"+OK\r\n")
            time.sleep(0.3)
        closes_silently_after(c, 0.5, 3.5)


# ==========================================================================
# Volume: a 10 MB message, 200 concurrent sessions

@test
def ten_mb_message():
    want = hashlib.sha256(DC.messages["bob"][0]).hexdigest()
    size = len(DC.messages["bob"][0])
    # imaplib through auth_http
    m = imaplib.IMAP4("127.0.0.1", PORT["imap_http"], timeout=60)
    try:
        m.login("bob", BOB_PW)
        m.select("INBOX", readonly=True)
        _, data = m.fetch("1", "(BODY.PEEK[])")
        eq(len(data[0][1]), size, "IMAP size")
        eq(hashlib.sha256(data[0][1]).hexdigest(), want, "IMAP sha256")
        m.logout()
    finally:
        imap_close(m)
    # poplib through auth_cdb
    p = poplib.POP3("127.0.0.1", PORT["pop3_cdb"], timeout=60)
    try:
        p.user("bob")
        p.pass_(BOB_PW)
        _, lines, _ = p.retr(1)
        got = b"\r\n".join(lines) + b"\r\n"
        eq(hashlib.sha256(got).hexdigest(), want, "POP3 sha256")
        p.quit()
    finally:
        p.close()
    # curl through auth_cdb
    r = curl("imap://127.0.0.1:%d/INBOX;UID=1" % PORT["imap_cdb"],
             "-u", "bob:" + BOB_PW, "--login-options", "AUTH=PLAIN",
             timeout=90)
    eq(r.returncode, 0, r.stderr)
    eq(hashlib.sha256(r.stdout).hexdigest(), want, "curl IMAP sha256")


@test
def relay_small_without_splice():
    """A relayed session of small commands and replies moves them with
    recv/send through its buffers: splice(2) (a pipe, two calls more a
    direction) only once a read fills the buffer, as a big FETCH does."""
    port = free_port()
    body = ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n        auth_http 127.0.0.1:%d/auth;\n"
            "    }\n" % (port, AS.port))
    d = Daemon(BINARY, body, workers=1, name="smallrelay")
    d.write(None, raw=d.text(body).replace(" info;\n", " debug;\n", 1))
    try:
        d.start(env=subenv())
        m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        try:
            m.login("bob", BOB_PW)
            typ, _ = m.select("INBOX", readonly=True)
            eq(typ, "OK", "SELECT")
            m.noop()
            m.logout()
        finally:
            imap_close(m)
        d.wait_log("proxied session done")
        assert "relaying, bulk with splice" in d.logtext()
        assert "relaying with splice" not in d.logtext(), d.logtext()
    finally:
        d.stop()


@test
def backend_end_ends_the_session():
    """When the backend ends the session (LOGOUT) and the client has
    sent nothing more, the proxy closes at once, as nginx does: the
    client reads every byte of the answer, then its end, and the
    session is over (logged) while the client still holds its socket.
    A client that sends after that finds the connection closed."""
    port = free_port()
    body = ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n        auth_http 127.0.0.1:%d/auth;\n"
            "    }\n" % (port, AS.port))
    d = Daemon(BINARY, body, workers=1, name="backendend")
    try:
        d.start(env=subenv())
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            f = s.makefile("rb")
            assert f.readline().startswith(b"* OK"), "greeting"
            s.sendall(b'a LOGIN bob "%s"\r\n' % BOB_PW.encode())
            line = f.readline()
            while line.startswith(b"* "):
                line = f.readline()
            assert line.startswith(b"a OK"), line
            s.sendall(b"b LOGOUT\r\n")
            rest = f.read()          # up to the proxy's FIN
            assert b"* BYE" in rest and b"b OK" in rest, rest
            d.wait_log("proxied session done", timeout=5)
            try:
                s.sendall(b"c NOOP\r\n")
                time.sleep(0.2)
                s.sendall(b"d NOOP\r\n")
                late = s.recv(100)
            except (BrokenPipeError, ConnectionResetError):
                late = b""
            eq(late, b"", "an answer after the end")
        finally:
            s.close()
    finally:
        d.stop()


@test
def ten_mb_message_read_write_relay():
    """The relay without splice(2), as TLS sessions and the BSDs use it:
    MAILPROXYD_RELAY=readwrite in the workers' environment (through the
    env directive) forces it."""
    want = hashlib.sha256(DC.messages["bob"][0]).hexdigest()
    port = free_port()
    body = ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n        auth_http 127.0.0.1:%d/auth;\n"
            "    }\n" % (port, AS.port))
    for extra, mode in (("env MAILPROXYD_RELAY=readwrite;\n",
                         "relaying with read/write"),
                        ("", "relaying with splice")):
        d = Daemon(BINARY, body, workers=1, name="rwrelay",
                   main_extra=extra)
        d.write(None, raw=d.text(body).replace(" info;\n", " debug;\n", 1))
        try:
            d.start(env=subenv())
            m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
            try:
                m.login("bob", BOB_PW)
                m.select("INBOX", readonly=True)
                _, data = m.fetch("1", "(BODY.PEEK[])")
                eq(hashlib.sha256(data[0][1]).hexdigest(), want, mode)
                m.logout()
            finally:
                imap_close(m)
            d.wait_log("proxied session done")
            assert mode in d.logtext(), mode
            assert "relaying with" in d.logtext()
            other = ("relaying with splice" if "read/write" in mode
                     else "relaying with read/write")
            assert other not in d.logtext(), other
        finally:
            d.stop()


@test
def concurrent_200():
    """200 sessions logged in at the same time (IMAP and POP3, auth_http
    and auth_cdb), each then reading a message."""
    n = 200
    barrier = threading.Barrier(n, timeout=90)
    results = [None] * n
    msgs = DC.messages["alice"]

    def run(i):
        try:
            proto = "imap" if i % 2 == 0 else "pop3"
            server = proto + ("_http" if i % 4 < 2 else "_cdb")
            if proto == "imap":
                with imap_conn(PORT[server], timeout=60) as c:
                    c.send(b"a%d LOGIN alice %s\r\n" % (i, ALICE_PW.encode()))
                    ln = c.line(timeout=60)
                    assert ln.startswith(b"a%d OK " % i), ln
                    barrier.wait()
                    c.send(b"s EXAMINE INBOX\r\n")
                    assert c.until_tagged(b"s")[-1].startswith(b"s OK")
                    eq(imap_fetch(c, b"f", 1 + i % 2), msgs[i % 2])
                    c.send(b"z LOGOUT\r\n")
                    c.until_tagged(b"z")
            else:
                with pop3_conn(PORT[server], salted=server == "pop3_cdb",
                               timeout=60) as c:
                    c.send(b"USER alice\r\nPASS %s\r\n" % ALICE_PW.encode())
                    c.expect(b"+OK\r\n")
                    ln = c.line(timeout=60)
                    assert ln.startswith(b"+OK"), ln
                    barrier.wait()
                    eq(pop3_retr(c, 1 + i % 2), msgs[i % 2])
                    c.send(b"QUIT\r\n")
                    c.line()
            results[i] = True
        except Exception as e:  # noqa
            results[i] = "%s: %r" % (type(e).__name__, e)
            try:
                barrier.abort()
            except Exception:  # noqa
                pass

    threads = [threading.Thread(target=run, args=(i,), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    bad = [(i, r) for i, r in enumerate(results) if r is not True]
    assert not bad, "%d of %d sessions failed, e.g. %s" % (len(bad), n,
                                                           bad[:3])


# ==========================================================================
# Resources: 10,000 sessions leave no descriptors and no memory behind

def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def short_session(k):
    """One short session of kind k % 8; raises on a wrong answer."""
    kind = k % 8
    if kind in (0, 1):      # IMAP login to the fake backend, two commands
        srv = "imap_http" if kind == 0 else "imap_cdb"
        with imap_conn(PORT[srv]) as c:
            c.send(b"a LOGIN f_good pw\r\nb NOOP\r\nc LOGOUT\r\n")
            eq(c.eof(), b"a OK LOGIN completed\r\nb OK NOOP done\r\n"
               b"* BYE fake\r\nc OK LOGOUT done\r\n")
    elif kind in (2, 3):    # POP3 login to the fake backend
        srv = "pop3_http" if kind == 2 else "pop3_cdb"
        with pop3_conn(PORT[srv], salted=kind == 3) as c:
            c.send(b"USER f_good\r\nPASS pw\r\nSTAT\r\nQUIT\r\n")
            eq(c.eof(), b"+OK\r\n+OK fake logged in\r\n+OK 0 0\r\n"
               b"+OK fake bye\r\n")
    elif kind == 4:         # pre-auth only
        with imap_conn(PORT["imap_http"]) as c:
            c.send(b"a CAPABILITY\r\nb FOO\r\nc LOGOUT\r\n")
            eq(c.eof(), b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS AUTH=PLAIN\r\n"
               b"a OK completed\r\nb BAD invalid command\r\n"
               b"* BYE\r\nc OK completed\r\n")
    elif kind == 5:         # failed login
        with pop3_conn(PORT["pop3_http"]) as c:
            c.send(b"USER f_good\r\nPASS wrong\r\n")
            eq(c.eof(), b"+OK\r\n-ERR " + HTTP_FAIL + b"\r\n")
    elif kind == 6:         # client gone in the middle of a SASL exchange
        with imap_conn(PORT["imap_http"]) as c:
            c.send(b"a AUTHENTICATE LOGIN\r\n")
            c.expect(b"+ VXNlcm5hbWU6\r\n")
    else:                   # client gone while its login is in flight
        c = Conn(PORT["imap_cdb"])
        c.expect(IMAP_GREETING)
        c.send(b"a LOGIN f_good pw\r\n")
        c.close()


def run_sessions(total, threads=8):
    errors = []
    counter = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                k = counter[0]
                if k >= total or len(errors) > 5:
                    return
                counter[0] += 1
            try:
                short_session(k)
            except Exception as e:  # noqa
                with lock:
                    errors.append("session %d: %s: %r" % (k, type(e).__name__,
                                                          e))
    ts = [threading.Thread(target=worker, daemon=True)
          for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not errors, errors[:5]


@test
def no_leaks_over_10000_sessions():
    procs = D.workers_now() + D.auth_now()
    run_sessions(800)           # warm up allocators and pools
    time.sleep(0.5)
    fd0 = {p: fd_count(p) for p in procs}
    rss0 = {p: rss_kb(p) for p in procs}
    t0 = time.monotonic()
    run_sessions(10000)
    took = time.monotonic() - t0
    eq(sorted(D.workers_now() + D.auth_now()), sorted(procs),
       "the same processes served every session")
    # Sessions whose client left early end a moment later.
    try:
        wait_for(lambda: all(fd_count(p) <= fd0[p] for p in procs),
                 timeout=10, what="descriptors back to their count")
    except AssertionError:
        pass
    fd1 = {p: fd_count(p) for p in procs}
    rss1 = {p: rss_kb(p) for p in procs}
    slack_kb = 16384 if sanitized() else 2048
    for p in procs:
        assert fd1[p] <= fd0[p], "pid %d: %d descriptors, %d before" % (
            p, fd1[p], fd0[p])
        assert rss1[p] - rss0[p] <= slack_kb, \
            "pid %d: VmRSS %d kB after 10000 sessions, %d kB before" % (
                p, rss1[p], rss0[p])
    print("    10000 sessions in %.1fs; fds %s; VmRSS kB %s -> %s"
          % (took, fd1, rss0, rss1))


# ==========================================================================
# make demo

@test
def make_demo():
    env = subenv()
    env["MAILPROXYD_DEMO_EXIT"] = "1"
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    env.pop("MAKELEVEL", None)
    p = subprocess.Popen(["make", "-C", TOP, "demo"], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        # The demo's shell stops what it started on SIGTERM.
        os.killpg(p.pid, signal.SIGTERM)
        try:
            out, _ = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
        raise AssertionError("make demo did not finish in 240s:\n" +
                             out.decode(errors="replace")[-3000:])
    text = out.decode(errors="replace")
    assert p.returncode == 0, "make demo exited %d:\n%s" % (
        p.returncode, text[-4000:])
    assert "client sessions through mailproxyd succeeded" in text, \
        text[-3000:]


@test
def cdb_swapped_under_load_and_hup():
    """Issue 3: the auth_cdb file replaced (makemap renames atomically)
    and HUP while clients log in: no login with credentials valid in
    both tables fails, and afterwards the changed entry answers the new
    way.  Its own daemon, so the shared one is not reloaded."""
    cdir = tempfile.mkdtemp(prefix="ip-swap-", dir=TMP)
    src = os.path.join(cdir, "users")
    dc = "imap=127.0.0.1:%d" % DC.imap_port

    def hashed(pw):
        r = subprocess.run([CTL, "hash", "-s", "sha512"], input=pw + "\n",
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def table(alice_pw):
        with open(src, "w") as f:
            f.write("alice %s %s pass=%s\n" % (hashed(alice_pw), dc,
                                               ALICE_PW))
            f.write("carol %s %s user=alice pass=%s\n" % (
                hashed("carolpw"), dc, ALICE_PW))
        r = subprocess.run([CTL, "makemap", src], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr

    def login(port, user, pw):
        m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        try:
            m.login(user, pw)
            typ, _ = m.select("INBOX", readonly=True)
            assert typ == "OK"
            m.logout()
            return True
        except imaplib.IMAP4.error:
            return False

    table("before")
    port = free_port()
    body = ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n        auth_cdb %s.cdb;\n    }\n"
            % (port, src))
    d = Daemon(BINARY, body, workers=2, name="cdbswap")
    stop = threading.Event()
    stats = {"ok": 0, "bad": []}

    def loop():
        while not stop.is_set():
            try:
                if login(port, "carol", "carolpw"):
                    stats["ok"] += 1
                else:
                    stats["bad"].append("refused")
            except Exception as e:  # noqa
                stats["bad"].append(repr(e))

    try:
        d.start(env=subenv())
        assert login(port, "alice", "before")
        assert not login(port, "alice", "after")
        auth_before = d.auth_now()
        threads = [threading.Thread(target=loop) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            for i, pw in enumerate(("after", "later")):
                table(pw)
                d.signal(signal.SIGHUP)
                d.wait_log("generation %d serving" % (i + 2), timeout=20)
                time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert stats["bad"] == [], stats
        assert stats["ok"] > 20, stats
        assert d.auth_now() != auth_before
        assert login(port, "alice", "later")
        assert not login(port, "alice", "before")
        assert not login(port, "alice", "after")
    finally:
        d.stop()
        shutil.rmtree(cdir, ignore_errors=True)


# ==========================================================================

def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    return run_suite(TESTS, setup, teardown, "mailproxyd and Dovecot",
                     ensure_daemon, lambda: D)


if __name__ == "__main__":
    sys.exit(main())
