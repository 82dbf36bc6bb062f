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
"""End-to-end tests of oversized client input before login (issue 10):
every command a client may send before login, made longer than the
client buffer, over plain TCP, over implicit TLS ("listen ... ssl") and
after STARTTLS / STLS, for IMAP, POP3 and SMTP.

An OpenSSL bufferevent decrypts whole TLS records (16 KiB) past the
read high-water mark, so over TLS a worker may hold more than the
configured buffer; the parsers must still see at most the buffer
(the contract above PARSE_MORE in bin/mailproxyd/mailproxyd.h).  Before
that was so, "a LOGIN <12,000-byte atom> x" over TLS overflowed the
worker's heap, and a POP3 or SMTP line longer than the buffer but
inside one record was taken as a command.

What a user sees (mailproxyd.conf(5), imap_client_buffer,
pop3_client_buffer, smtp_client_buffer, all left at their defaults of
4k, 128 and 4k here): a command of at most the buffer's size, its line
end included, is handled as usual; a longer one gets the protocol's
invalid-command reply ("<tag> BAD invalid command", "* BAD invalid
command" when no tag was read, "-ERR invalid command", "500 5.5.1
Invalid command") and the session closes.

Cases: IMAP atoms, quoted strings (ASCII, bytes 0x80-0xFF, backslash
escapes), literals ({n} and {n+}) and the AUTHENTICATE PLAIN response
line; POP3 USER, PASS, APOP and the AUTH PLAIN response line; SMTP
EHLO, MAIL FROM, AUTH PLAIN with an initial response and the AUTH PLAIN
response line.  Sizes: once, twice and three times the buffer and
64 KiB; sent in one write, and in full TLS records of 16 KiB each (over
TCP: 16 KiB writes).  The boundary both ways: a login command of
exactly the buffer's size reaches the auth server, one byte more does
not.

After every case the worker processes are the same (no crash), the
error log has no "exited on signal" or "exited with fatal code" line,
and neither the daemon's stderr nor its log has a sanitizer report
(SANITIZE=1 build).

Real components: mailproxyd, the reference auth server
(contrib/auth-server, recording its requests), certificates from
tlsfix.py, Python's ssl module as the TLS client (over memory BIOs, so
that every record written is seen and counted).

Run as root.  Python 3 standard library only.
Usage: test_biginput.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import base64
import os
import re
import shutil
import socket
import ssl
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mpd import (alive, AuthServer, Daemon, free_port,  # noqa: E402
                 run_suite, subenv, wait_for)
from tlsfix import Certs  # noqa: E402

BINARY = None
TESTS = []

# The defaults of mailproxyd.conf(5).
BUFSIZE = {"imap": 4096, "pop3": 128, "smtp": 4096}
# TLS plaintext records are at most 2^14 bytes (RFC 8446 section 5.1).
RECORD = 16384
SIZES = ("1x", "2x", "3x", "64k")
WRITES = ("one", "records")
TRANSPORTS = ("plain", "ssl", "starttls")

IMAP_GREETING = b"* OK IMAP4 ready\r\n"
POP3_GREETING = b"+OK POP3 ready"
SMTP_GREETING = b"220 mx.test ESMTP ready\r\n"
IMAP_BAD = b"a BAD invalid command\r\n"
IMAP_BAD_NOTAG = b"* BAD invalid command\r\n"
POP3_INVALID = b"-ERR invalid command\r\n"
SMTP_INVALID = b"500 5.5.1 Invalid command\r\n"
FAIL_TEXT = b"Invalid login or password"    # the auth server's
USER = "alice"
PASSWORD = "s3cret-Alice"

CRASH_LOG = ("exited on signal", "exited with fatal code")
SANITIZER = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer",
             b"runtime error:", b"SUMMARY: AddressSanitizer",
             b"SUMMARY: UndefinedBehaviorSanitizer")

CERTS = None
AS = None
D = None
PORT = {}
STDERR = bytearray()
STDERR_LOCK = threading.Lock()
STARTED = []


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s\n  got:  %r\n  want: %r"
                             % (what or "mismatch", short(got), short(want)))


def short(b):
    if isinstance(b, (bytes, bytearray)) and len(b) > 300:
        return bytes(b[:150]) + b"...(%d bytes)..." % len(b) + \
            bytes(b[-100:])
    return b


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s)


def size_of(proto, size):
    if size == "64k":
        return 65536
    return BUFSIZE[proto] * int(size[0])


def plain_response(n):
    """A SASL PLAIN response (base64) of exactly n bytes, n a multiple
    of 4: authzid empty, the user, a password of 'p's."""
    assert n % 4 == 0
    raw = 3 * n // 4
    out = b64(b"\0" + USER.encode() + b"\0" +
              b"p" * (raw - 2 - len(USER)))
    assert len(out) == n, (len(out), n)
    return out


# --------------------------------------------------------------------------
# TLS records

def tls_records(data):
    """[(content type, length)] of the TLS records in data, which must
    hold whole records."""
    out = []
    i = 0
    while i < len(data):
        assert len(data) - i >= 5, "partial record header"
        ctype, n = data[i], int.from_bytes(data[i + 3:i + 5], "big")
        assert len(data) - i - 5 >= n, "partial record"
        out.append((ctype, n))
        i += 5 + n
    return out


def check_one_record(data, plain_len):
    """data is one application data record carrying plain_len bytes:
    its length is the plaintext's plus the cipher's overhead (AEAD tag,
    TLS 1.3 inner type or TLS 1.2 explicit nonce), never another
    record."""
    recs = tls_records(data)
    eq(len(recs), 1, "records for one write of %d bytes" % plain_len)
    ctype, n = recs[0]
    eq(ctype, 23, "content type of the record (application data)")
    assert plain_len < n <= plain_len + 64, \
        "record of %d bytes for %d bytes of data" % (n, plain_len)


# --------------------------------------------------------------------------
# A client whose TLS runs over memory BIOs: every byte on the wire is
# written here, so the records can be counted and sized.

class Client:
    def __init__(self, port, timeout=10.0):
        self.s = socket.create_connection(("127.0.0.1", port),
                                          timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.tls = None
        self.buf = b""
        self.closed = False
        self.send_error = None
        self.full_records = 0

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- TLS ------------------------------------------------------------

    def starttls(self):
        """The handshake; nothing the server sent before may be left
        unread (that would be plaintext ahead of TLS)."""
        if self.buf:
            raise AssertionError("bytes before the TLS handshake: %r"
                                 % short(self.buf))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(CERTS.crt("ca"))
        self.inbio = ssl.MemoryBIO()
        self.outbio = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inbio, self.outbio,
                                server_hostname="mx.test")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._recv_raw(deadline):
                    raise AssertionError("closed during the handshake")
        self._flush()

    def _flush(self):
        out = self.outbio.read()
        if out:
            self._send_raw(out)

    def _send_raw(self, data):
        if self.send_error is not None:
            return
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            # The server may close once it has answered.
            self.send_error = e

    def _recv_raw(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.s.settimeout(left)
        try:
            chunk = self.s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if self.tls is not None:
            if chunk:
                self.inbio.write(chunk)
            else:
                self.inbio.write_eof()
        return chunk

    # -- writing --------------------------------------------------------

    def send(self, data, how="one"):
        """how "one": the whole of data in one write (over TLS: all its
        records in one sendall); "records": one 16 KiB TLS record per
        write, each checked to be one full record (over TCP: 16 KiB
        writes)."""
        if how == "one":
            if self.tls is None:
                self._send_raw(data)
                return
            self.tls.write(data)
            self._send_raw(self.outbio.read())
            return
        for i in range(0, len(data), RECORD):
            chunk = data[i:i + RECORD]
            if self.tls is None:
                self._send_raw(chunk)
                continue
            self.tls.write(chunk)
            out = self.outbio.read()
            check_one_record(out, len(chunk))
            if len(chunk) == RECORD:
                self.full_records += 1
            self._send_raw(out)

    # -- reading --------------------------------------------------------

    def _fill(self, deadline):
        if self.tls is None:
            chunk = self._recv_raw(deadline)
            if not chunk:
                self.closed = True
            self.buf += chunk
            return chunk
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._flush()
                self._recv_raw(deadline)
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                chunk = b""
            if not chunk:
                self.closed = True
            self.buf += chunk
            return chunk

    def line(self):
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            try:
                if not self._fill(deadline):
                    raise AssertionError("connection closed; have %r"
                                         % short(self.buf))
            except socket.timeout:
                raise AssertionError("no complete line in time; have %r"
                                     % short(self.buf))
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def expect(self, want, what="reply"):
        got = b"".join(self.line() for _ in range(want.count(b"\n")))
        eq(got, want, what)

    def smtp_reply(self):
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln[3:4] != b"-":
                return b"".join(out)

    def expect_close(self, what="nothing more, then the close"):
        deadline = time.monotonic() + self.timeout
        while not self.closed:
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError("session not closed in time; have %r"
                                     % short(self.buf))
            except (ssl.SSLError, OSError):
                self.closed = True
        eq(self.buf, b"", what)


# --------------------------------------------------------------------------
# Sessions up to the point where the case starts

def session(proto, transport):
    """A client past the greeting (and STARTTLS), ready for commands."""
    c = Client(PORT[(proto, transport)])
    try:
        if transport == "ssl":
            c.starttls()
        if proto == "imap":
            c.expect(IMAP_GREETING, "IMAP greeting")
            if transport == "starttls":
                c.send(b"s STARTTLS\r\n")
                c.expect(b"s OK completed\r\n", "STARTTLS")
                c.starttls()
        elif proto == "pop3":
            g = c.line()
            # pop3_auth apop: the greeting carries the APOP salt.
            assert re.match(rb"^\+OK POP3 ready <[^>]+>\r\n$", g), g
            c.salt = g[len(POP3_GREETING) + 1:-2]
            if transport == "starttls":
                c.send(b"STLS\r\n")
                c.expect(b"+OK\r\n", "STLS")
                c.starttls()
        else:
            c.expect(SMTP_GREETING, "SMTP greeting")
            if transport == "starttls":
                c.send(b"EHLO client.test\r\n")
                r = c.smtp_reply()
                assert r.endswith(b"250 STARTTLS\r\n"), r
                c.send(b"STARTTLS\r\n")
                c.expect(b"220 2.0.0 Start TLS\r\n", "STARTTLS")
                c.starttls()
    except Exception:
        c.close()
        raise
    return c


def smtp_ehlo(c):
    c.send(b"EHLO client.test\r\n")
    r = c.smtp_reply()
    assert r.startswith(b"250-mx.test\r\n"), r
    assert b"250-AUTH PLAIN LOGIN\r\n" in r or \
        b"250 AUTH PLAIN LOGIN\r\n" in r, "AUTH offered: %r" % r


# --------------------------------------------------------------------------
# The cases: each builds the oversized input of n bytes (the argument or
# the line, so the command is longer than the buffer whatever n), and
# returns the reply expected before the close.

def imap_atom(c, n):
    return b"a LOGIN " + b"u" * n + b" x\r\n", IMAP_BAD


def imap_quoted(c, n):
    return b'a LOGIN "' + b"u" * n + b'" x\r\n', IMAP_BAD


def imap_quoted8(c, n):
    body = bytes(0x80 + i % 0x80 for i in range(n))
    return b'a LOGIN "' + body + b'" x\r\n', IMAP_BAD


def imap_escapes(c, n):
    body = (b'\\\\\\"' * (n // 4 + 1))[:n - n % 2]
    return b'a LOGIN "' + body + b'" x\r\n', IMAP_BAD


def imap_literal(c, n):
    # A literal that cannot fit is refused at its header, before any
    # "+ OK"; a client sending its data anyway has that data read as
    # the next command, without a tag, and too long.
    return (b"a LOGIN {%d}\r\n" % n + b"u" * n + b" x\r\n",
            IMAP_BAD + IMAP_BAD_NOTAG)


def imap_literal_plus(c, n):
    # After a refused non-synchronising literal the data cannot be
    # told from commands: the session closes at once.
    return b"a LOGIN {%d+}\r\n" % n + b"u" * n + b" x\r\n", IMAP_BAD


def imap_sasl(c, n):
    c.send(b"a AUTHENTICATE PLAIN\r\n")
    c.expect(b"+ \r\n", "AUTHENTICATE PLAIN challenge")
    return plain_response(n) + b"\r\n", IMAP_BAD


def pop3_user(c, n):
    return b"USER " + b"u" * n + b"\r\n", POP3_INVALID


def pop3_pass(c, n):
    c.send(b"USER alice\r\n")
    c.expect(b"+OK\r\n", "USER")
    return b"PASS " + b"p" * n + b"\r\n", POP3_INVALID


def pop3_apop(c, n):
    return b"APOP " + b"u" * n + b" " + b"0" * 32 + b"\r\n", POP3_INVALID


def pop3_sasl(c, n):
    c.send(b"AUTH PLAIN\r\n")
    c.expect(b"+ \r\n", "AUTH PLAIN challenge")
    return plain_response(n) + b"\r\n", POP3_INVALID


def smtp_ehlo_arg(c, n):
    return b"EHLO " + b"h" * n + b"\r\n", SMTP_INVALID


def smtp_mail(c, n):
    smtp_ehlo(c)
    return (b"MAIL FROM:<" + b"f" * n + b"@example.test>\r\n",
            SMTP_INVALID)


def smtp_auth_ir(c, n):
    smtp_ehlo(c)
    return b"AUTH PLAIN " + plain_response(n) + b"\r\n", SMTP_INVALID


def smtp_sasl(c, n):
    smtp_ehlo(c)
    c.send(b"AUTH PLAIN\r\n")
    c.expect(b"334 \r\n", "AUTH PLAIN challenge")
    return plain_response(n) + b"\r\n", SMTP_INVALID


KINDS = {
    "imap": (("atom", imap_atom), ("quoted", imap_quoted),
             ("quoted8bit", imap_quoted8), ("escapes", imap_escapes),
             ("literal", imap_literal), ("literalplus", imap_literal_plus),
             ("sasl", imap_sasl)),
    "pop3": (("user", pop3_user), ("pass", pop3_pass),
             ("apop", pop3_apop), ("sasl", pop3_sasl)),
    "smtp": (("ehlo", smtp_ehlo_arg), ("mail", smtp_mail),
             ("authir", smtp_auth_ir), ("sasl", smtp_sasl)),
}


# --------------------------------------------------------------------------
# Checks after each case: no crash, no sanitizer report

class Watch:
    """What the daemon looks like before a case, to compare after it."""

    def __init__(self):
        self.workers = D.workers_now()
        self.log = len(D.logtext())
        with STDERR_LOCK:
            self.err = len(STDERR)

    def problems(self, settle=0.0):
        if settle:
            time.sleep(settle)
        out = []
        now = D.workers_now()
        if now != self.workers:
            out.append("worker processes changed: %s -> %s"
                       % (self.workers, now))
        log = D.logtext()[self.log:]
        for ln in log.splitlines():
            if any(x in ln for x in CRASH_LOG) or \
                    any(x.decode() in ln for x in SANITIZER):
                out.append("log: " + ln)
        with STDERR_LOCK:
            err = bytes(STDERR[self.err:])
        for x in SANITIZER:
            i = err.find(x)
            if i != -1:
                # The report's first line and the top of its stack.
                out.append("sanitizer report on stderr:\n    " +
                           "\n    ".join(err[i:].decode(
                               errors="replace").splitlines()[:8]))
                break
        return out


def run_cases(name, cases):
    """cases: [(label, fn)] where fn() raises on a wrong reply.  Every
    case runs; the test fails with all the failures."""
    failures = []
    whole = Watch()
    for label, fn in cases:
        # After a crash, the next case meets a full set of workers.
        try:
            wait_for(lambda: len(D.workers_now()) == D.workers,
                     timeout=30, what="the workers")
        except AssertionError as e:
            failures.append("%s: %s" % (label, e))
        w = Watch()
        try:
            fn()
        except Exception as e:  # noqa
            failures.append("%s: %s: %s" % (label, type(e).__name__, e))
        for p in w.problems():
            failures.append("%s: %s" % (label, p))
    for p in whole.problems(settle=0.2):
        failures.append("%s (whole test): %s" % (name, p))
    if failures:
        raise AssertionError("%d failure(s):\n  " % len(failures) +
                             "\n  ".join(failures))


def too_long_case(proto, transport, build, size, how):
    def run():
        n = size_of(proto, size)
        mark = AS.mark()
        with session(proto, transport) as c:
            data, want = build(c, n)
            assert len(data) > BUFSIZE[proto], "not too long"
            c.send(data, how)
            c.expect(want, "reply to a command of %d bytes" % len(data))
            c.expect_close()
            if how == "records" and c.tls is not None:
                eq(c.full_records, len(data) // RECORD,
                   "full 16 KiB records written")
        eq(AS.since(mark), [], "auth requests")
    return run


def literal_waiting_case(transport, size):
    """A client that waits for "+ OK" before a literal's data, as
    RFC 9051 section 4.3 asks: a literal that cannot fit is refused at
    its header, nothing was sent after it, and the session goes on."""
    def run():
        n = size_of("imap", size)
        with session("imap", transport) as c:
            c.send(b"a LOGIN {%d}\r\n" % n)
            c.expect(IMAP_BAD, "a literal header of %d bytes" % n)
            c.send(b"b NOOP\r\n")
            c.expect(b"b OK completed\r\n", "NOOP after the refusal")
    return run


def make_too_long_test(proto, kind, build, transport):
    def fn():
        cases = [("%s %s" % (size, how),
                  too_long_case(proto, transport, build, size, how))
                 for size in SIZES for how in WRITES]
        if build is imap_literal:
            cases += [("%s waiting for + OK" % size,
                       literal_waiting_case(transport, size))
                      for size in SIZES]
        run_cases(fn.__name__, cases)
    fn.__name__ = "%s_%s_%s" % (proto, kind, transport)
    fn.__doc__ = ("%s: a too long %s over %s gets the invalid-command "
                  "reply and the close" % (proto, kind, transport))
    return fn


# --------------------------------------------------------------------------
# The boundary: exactly the buffer fits, one byte more does not

def header(rec, name):
    for k, v in rec["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


def expect_auth(mark, user, password):
    recs = []
    deadline = time.monotonic() + 10
    while not recs and time.monotonic() < deadline:
        recs = AS.since(mark)
        if not recs:
            time.sleep(0.02)
    eq(len(recs), 1, "auth requests")
    eq(header(recs[0], "Auth-User"), user, "Auth-User")
    eq(header(recs[0], "Auth-Pass"), password, "Auth-Pass")


def imap_boundary(transport, how, extra):
    """LOGIN alice <password>: the command, CRLF included, is
    imap_client_buffer + extra bytes."""
    def run():
        mark = AS.mark()
        head = b"a LOGIN alice "
        pw = "p" * (BUFSIZE["imap"] - len(head) - 2 + extra)
        data = head + pw.encode() + b"\r\n"
        eq(len(data), BUFSIZE["imap"] + extra, "command length")
        with session("imap", transport) as c:
            c.send(data, how)
            if extra > 0:
                c.expect(IMAP_BAD, "a command one byte too long")
                c.expect_close()
                eq(AS.since(mark), [], "auth requests")
                return
            c.expect(b"a NO " + FAIL_TEXT + b"\r\n", "LOGIN that fits")
            c.expect_close()
        expect_auth(mark, USER, pw)
    return run


def imap_literal_boundary(transport, how, extra):
    """LOGIN {5+} alice {n+} <password>: literals included, the
    command is imap_client_buffer + extra bytes."""
    def run():
        mark = AS.mark()
        n = BUFSIZE["imap"] - 2
        while True:
            data = (b"a LOGIN {5+}\r\nalice {%d+}\r\n" % n + b"p" * n +
                    b"\r\n")
            if len(data) <= BUFSIZE["imap"] + extra:
                break
            n -= 1
        eq(len(data), BUFSIZE["imap"] + extra, "command length")
        with session("imap", transport) as c:
            c.send(data, how)
            if extra > 0:
                c.expect(IMAP_BAD, "a command one byte too long")
                c.expect_close()
                eq(AS.since(mark), [], "auth requests")
                return
            c.expect(b"a NO " + FAIL_TEXT + b"\r\n", "LOGIN that fits")
            c.expect_close()
        expect_auth(mark, USER, "p" * n)
    return run


def pop3_boundary(transport, how, extra, which):
    """USER <user> and PASS <password>, each of pop3_client_buffer
    bytes, CRLF included; extra bytes more on the command named by
    which."""
    def run():
        mark = AS.mark()
        size = BUFSIZE["pop3"]
        user = "u" * (size - 7 + (extra if which == "user" else 0))
        pw = "p" * (size - 7 + (extra if which == "pass" else 0))
        with session("pop3", transport) as c:
            c.send(b"USER " + user.encode() + b"\r\n", how)
            if which == "user" and extra > 0:
                c.expect(POP3_INVALID, "USER one byte too long")
                c.expect_close()
                eq(AS.since(mark), [], "auth requests")
                return
            c.expect(b"+OK\r\n", "USER that fits")
            c.send(b"PASS " + pw.encode() + b"\r\n", how)
            if extra > 0:
                c.expect(POP3_INVALID, "PASS one byte too long")
                c.expect_close()
                eq(AS.since(mark), [], "auth requests")
                return
            c.expect(b"-ERR " + FAIL_TEXT + b"\r\n", "PASS that fits")
            c.expect_close()
        expect_auth(mark, user, pw)
    return run


def smtp_boundary(transport, how, extra):
    """AUTH PLAIN <initial response>, spaces before the response (the
    grammar allows several) making the command smtp_client_buffer +
    extra bytes, CRLF included."""
    def run():
        mark = AS.mark()
        size = BUFSIZE["smtp"]
        n = (size - len(b"AUTH PLAIN ") - 2) // 4 * 4
        resp = plain_response(n)
        spaces = size - len(b"AUTH PLAIN") - n - 2 + extra
        data = b"AUTH PLAIN" + b" " * spaces + resp + b"\r\n"
        eq(len(data), size + extra, "command length")
        with session("smtp", transport) as c:
            smtp_ehlo(c)
            c.send(data, how)
            if extra > 0:
                c.expect(SMTP_INVALID, "a command one byte too long")
                c.expect_close()
                eq(AS.since(mark), [], "auth requests")
                return
            c.expect(b"535 5.7.0 " + FAIL_TEXT + b"\r\n",
                     "AUTH PLAIN that fits")
            c.expect_close()
        expect_auth(mark, USER, "p" * (3 * n // 4 - 2 - len(USER)))
    return run


def make_boundary_test(proto, transport):
    def fn():
        cases = []
        for how in WRITES:
            for extra in (0, 1):
                what = "fits" if extra == 0 else "one byte more"
                if proto == "imap":
                    cases.append(("LOGIN %s %s" % (what, how),
                                  imap_boundary(transport, how, extra)))
                    cases.append(("literals %s %s" % (what, how),
                                  imap_literal_boundary(transport, how,
                                                        extra)))
                elif proto == "pop3":
                    for which in ("user", "pass"):
                        cases.append(("%s %s %s" % (which, what, how),
                                      pop3_boundary(transport, how, extra,
                                                    which)))
                else:
                    cases.append(("AUTH PLAIN %s %s" % (what, how),
                                  smtp_boundary(transport, how, extra)))
        run_cases(fn.__name__, cases)
    fn.__name__ = "%s_boundary_%s" % (proto, transport)
    fn.__doc__ = ("%s over %s: a command of exactly the buffer's size is "
                  "handled, one byte more is refused" % (proto, transport))
    return fn


for _proto in ("imap", "pop3", "smtp"):
    for _transport in TRANSPORTS:
        TESTS.append(make_boundary_test(_proto, _transport))
        for _kind, _build in KINDS[_proto]:
            TESTS.append(make_too_long_test(_proto, _kind, _build,
                                            _transport))


def test(fn):
    TESTS.append(fn)
    return fn


@test
def record_sizes():
    """The client's TLS writes are what the cases say: 48 KiB written at
    once are three full records on the wire (one write per record is
    checked by Client.send itself)."""
    with session("imap", "ssl") as c:
        c.send(b"a NOOP\r\n", "records")
        c.expect(b"a OK completed\r\n", "NOOP")
        data = b"x" * (3 * RECORD)
        c.tls.write(data)
        recs = tls_records(c.outbio.read())
        eq(len(recs), 3, "records for 48 KiB in one write")
        for t, n in recs:
            eq(t, 23, "application data")
            assert RECORD < n <= RECORD + 64, n


# --------------------------------------------------------------------------
# Setup

def server_block(name, proto, transport, lines):
    port = free_port()
    while port in PORT.values():
        port = free_port()
    PORT[(proto, transport)] = port
    return ("    server {\n        listen 127.0.0.1:%d%s;\n"
            "        protocol %s;\n%s    }\n"
            % (port, " ssl" if transport == "ssl" else "", proto,
               "".join("        %s;\n" % ln for ln in lines)))


def drain_stderr(f):
    """The daemon's stderr (its children's too: sanitizer reports go
    there) into STDERR, until it closes."""
    fd = f.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        with STDERR_LOCK:
            STDERR.extend(chunk)


def start_daemon(body):
    global D
    D = Daemon(BINARY, body, workers=2, name="biginput")
    D.start(env=subenv())
    threading.Thread(target=drain_stderr, args=(D.proc.stderr,),
                     daemon=True).start()


def ensure_daemon():
    if D is None or D.pid is None or not alive(D.pid):
        if D is not None:
            D.stop()
        start_daemon(BODY)


BODY = None


def setup():
    global CERTS, AS, BODY
    CERTS = Certs()
    STARTED.append(CERTS.remove)
    AS = AuthServer("%s %s imap=127.0.0.1:9 pop3=127.0.0.1:9 "
                    "smtp=127.0.0.1:9\n" % (USER, PASSWORD), name="big")
    STARTED.append(AS.stop)
    http = "auth_http 127.0.0.1:%d/auth" % AS.port
    tls = ["ssl_certificate " + CERTS.crt("ec"),
           "ssl_certificate_key " + CERTS.key("ec")]
    extra = {"imap": [], "pop3": ["pop3_auth plain apop"],
             "smtp": ["smtp_auth none plain login"]}
    body = ""
    for proto in ("imap", "pop3", "smtp"):
        for transport in TRANSPORTS:
            lines = [http] + extra[proto]
            if transport != "plain":
                lines += tls
            if transport == "starttls":
                lines.append("starttls on")
            body += server_block(proto + "_" + transport, proto, transport,
                                 lines)
    BODY = body
    start_daemon(BODY)


def teardown(keep=True):
    if D is not None:
        D.stop()
    for fn in reversed(STARTED):
        if CERTS is not None and fn is CERTS.remove and keep:
            continue
        try:
            fn()
        except Exception:  # noqa
            traceback.print_exc(file=sys.stdout)
    if not keep:
        for x in (D, AS):
            if x is not None:
                shutil.rmtree(x.dir, ignore_errors=True)


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    return run_suite(TESTS, setup, teardown, "mailproxyd", ensure_daemon,
                     lambda: D)


if __name__ == "__main__":
    sys.exit(main())
