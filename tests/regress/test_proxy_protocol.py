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
"""End-to-end tests of the PROXY protocol (HAProxy's v1 and v2):
`listen ... proxy_protocol` with `set_real_ip_from`, and
`proxy_protocol on|v2` towards backends.

mailproxyd runs between raw socket clients playing the load balancer
and a real Dovecot (IMAP and POP3 logins), authenticating through the
reference auth server contrib/auth-server/mailproxyd-auth-server, whose
--record shows the Client-IP and Proxy-Protocol-* headers it received.
A second Dovecot listens with `haproxy = yes` and takes the header the
proxy sends (its log names the client it saw).  Where the backend's
input must be recorded byte for byte, small Python backends stand in
(an IMAP one and an SMTP one that accepts XCLIENT).

The expected behaviour comes from the compatibility reference
(nginx-mail-behaviour.md 1.1, 1.3, 1.4, 2.2, 3.0; hostile-inputs.md
T-NET-01) and HAProxy's proxy-protocol.txt, not from the
implementation.

Run as root.  Python 3 standard library only.
Usage: test_proxy_protocol.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import base64
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
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
from mpd import (alive, Daemon, free_port, kill_pid, run_suite,  # noqa: E402
                 subenv, TOP, wait_for)
from dovecot import Dovecot  # noqa: E402

TMP = os.path.join(TOP, "tests", "tmp")

BINARY = None
TESTS = []

IMAP_GREETING = b"* OK IMAP4 ready\r\n"
POP3_GREETING = b"+OK POP3 ready\r\n"
SMTP_GREETING = b"220 mx.test ESMTP ready\r\n"
V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"
ALICE_PW = "alice-pw"

# The client the load balancer speaks for.
REAL4 = "192.0.2.7"
REAL6 = "2001:db8::7"
REAL_PORT = 40000


def test(fn):
    TESTS.append(fn)
    return fn


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s\n  got:  %r\n  want: %r"
                             % (what or "mismatch", got, want))


# --------------------------------------------------------------------------
# PROXY headers as a load balancer writes them (proxy-protocol.txt)

def v1(src, dst, sport, dport):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport,
                                          dport)).encode()


def v2(src, dst, sport, dport, cmd=0x21, tlvs=b""):
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version == 4:
        fam, block = 0x11, a.packed + b.packed
    else:
        fam, block = 0x21, a.packed + b.packed
    block += struct.pack("!HH", sport, dport) + tlvs
    return V2SIG + bytes([cmd, fam]) + struct.pack("!H", len(block)) + block


def dst_for(src):
    """A destination of the source's family."""
    return "2001:db8::1" if ":" in src else "198.51.100.2"


def tlv(t, value):
    return bytes([t]) + struct.pack("!H", len(value)) + value


# --------------------------------------------------------------------------
# A raw client

def Conn(port, **kw):
    return mpd.Conn(port, nodelay=True, **kw)


# --------------------------------------------------------------------------
# Backends that record what they receive

def split_header(data):
    """(PROXY header, rest) of a backend's input, or (None, data)."""
    if data.startswith(b"PROXY "):
        i = data.find(b"\r\n")
        return (data[:i + 2], data[i + 2:]) if i >= 0 else (None, data)
    if data.startswith(V2SIG) and len(data) >= 16:
        n = 16 + struct.unpack("!H", data[14:16])[0]
        if len(data) >= n:
            return data[:n], data[n:]
    return None, data


class Recorder:
    """A backend on a loopback port that waits a moment for what the
    proxy sends before any greeting (recorded apart as "first": the
    header alone, in one write), greets, takes a PROXY header if one
    came first, then plays IMAP (LOGIN with quoted strings or
    synchronising literals, then
    any command answered OK) or SMTP (EHLO with XCLIENT, XCLIENT, QUIT,
    anything else 250)."""

    def __init__(self, proto, host="127.0.0.1"):
        self.proto = proto
        self.records = []
        self.lock = threading.Lock()
        self.stopping = False
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(256)
        self.sock.settimeout(0.3)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()

    def mark(self):
        with self.lock:
            return len(self.records)

    def since(self, mark, timeout=10.0):
        """The first connection after mark, once it has ended."""
        wait_for(lambda: len(self.records) > mark, timeout=timeout,
                 what="a connection to the recording backend")
        rec = self.records[mark]
        wait_for(lambda: rec["done"], timeout=timeout,
                 what="the recorded connection to end")
        return rec

    def accept_loop(self):
        while not self.stopping:
            try:
                c, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = {"first": None, "data": bytearray(), "done": False}
            with self.lock:
                self.records.append(rec)
            threading.Thread(target=self.serve, args=(c, rec),
                             daemon=True).start()

    def serve(self, c, rec):
        c.settimeout(20)
        buf = [b""]

        def fill():
            try:
                d = c.recv(65536)
            except OSError:
                d = b""
            if not d:
                raise EOFError
            rec["data"].extend(d)
            buf[0] += d

        def line():
            while b"\n" not in buf[0]:
                fill()
            i = buf[0].index(b"\n") + 1
            out, buf[0] = buf[0][:i], buf[0][i:]
            return out

        def exact(n):
            while len(buf[0]) < n:
                fill()
            out, buf[0] = buf[0][:n], buf[0][n:]
            return out

        def header():
            while (buf[0].startswith(b"PROXY ") or
                   (buf[0].startswith(V2SIG[:len(buf[0])]) and
                    buf[0][:1] == b"\r")):
                h, rest = split_header(buf[0])
                if h is not None:
                    buf[0] = rest
                    return
                fill()

        try:
            c.settimeout(1.0)
            try:
                d = c.recv(65536)
            except socket.timeout:
                d = b""
            c.settimeout(20)
            rec["first"] = d
            rec["data"].extend(d)
            buf[0] += d
            c.sendall(b"* OK recorder ready\r\n" if self.proto == "imap"
                      else b"220 recorder ESMTP\r\n")
            header()
            if self.proto == "imap":
                self.serve_imap(c, line, exact)
            else:
                self.serve_smtp(c, line)
        except (EOFError, OSError):
            pass
        finally:
            c.close()
            rec["done"] = True

    def serve_imap(self, c, line, exact):
        first = line()
        q = rb'"(?:[^"\\\r\n]|\\["\\])*"'
        m = re.match(rb"^(\S+) LOGIN " + q + b" " + q + rb"\r\n$", first)
        if m:
            tag = m.group(1)
        else:
            m = re.match(rb"^(\S+) LOGIN \{(\d+)\}\r\n$", first)
            if not m:
                return
            tag = m.group(1)
            c.sendall(b"+ OK\r\n")
            exact(int(m.group(2)))
            m = re.match(rb"^ \{(\d+)\}\r\n$", line())
            if not m:
                return
            c.sendall(b"+ OK\r\n")
            exact(int(m.group(1)))
            if line() != b"\r\n":
                return
        c.sendall(tag + b" OK LOGIN completed\r\n")
        while True:
            ln = line()
            t = ln.split(b" ", 1)[0]
            if b"LOGOUT" in ln.upper():
                c.sendall(b"* BYE\r\n" + t + b" OK LOGOUT completed\r\n")
                return
            c.sendall(t + b" OK done\r\n")

    def serve_smtp(self, c, line):
        while True:
            ln = line()
            verb = ln[:4].upper()
            if verb == b"EHLO":
                c.sendall(b"250-recorder\r\n250 XCLIENT NAME ADDR LOGIN\r\n")
            elif verb == b"HELO":
                c.sendall(b"250 recorder\r\n")
            elif ln.upper().startswith(b"XCLIENT"):
                c.sendall(b"220 recorder ESMTP\r\n")
            elif verb == b"QUIT":
                c.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                c.sendall(b"250 2.0.0 Ok\r\n")


# --------------------------------------------------------------------------
# The reference auth server

AuthServer = mpd.AuthServer


def headers_since(mark):
    """The headers of the one auth request after mark."""
    return AS.one_since(mark)["headers"]


def pp_headers(h):
    """The Client-IP and Proxy-Protocol-* headers of a request."""
    keys = ("Client-IP", "Proxy-Protocol-Addr", "Proxy-Protocol-Port",
            "Proxy-Protocol-Server-Addr", "Proxy-Protocol-Server-Port")
    return {k: h.get(k) for k in keys}


# --------------------------------------------------------------------------
# The environment

DC = None           # Dovecot, plain
DCH = None          # Dovecot with haproxy = yes
AS = None
D = None
BODY = None
PORT = {}
REC = {}
UNIX_PATH = None
STARTED = []


def server_block(name, proto, lines, listen=None):
    PORT[name] = free_port(socket.AF_INET6 if listen == "v6" else
                           socket.AF_INET, "::1" if listen == "v6"
                           else "127.0.0.1")
    if listen == "v6":
        addr = "[::1]:%d" % PORT[name]
    elif listen == "unix":
        addr = "unix:" + UNIX_PATH
    else:
        addr = "127.0.0.1:%d" % PORT[name]
    first = lines[0] if lines and lines[0].startswith("listen") else None
    if first:
        addr += first[len("listen"):]
        lines = lines[1:]
    return ("    server {\n        listen %s;\n        protocol %s;\n%s    }\n"
            % (addr, proto, "".join("        %s;\n" % ln for ln in lines)))


class HaproxyDovecot(Dovecot):
    """A Dovecot whose IMAP listener takes a PROXY header first."""

    def text(self):
        t = super().text()
        old = "    port = %d\n  }" % self.imap_port
        assert old in t
        return t.replace(old, "    port = %d\n    haproxy = yes\n  }"
                         % self.imap_port)


def start_daemon():
    global D
    D = Daemon(BINARY, BODY, workers=2, name="pp")
    D.start(env=subenv())


def ensure_daemon():
    if D is None or D.pid is None or not alive(D.pid):
        if D is not None:
            D.stop()
        start_daemon()


def setup():
    global DC, DCH, AS, BODY, UNIX_PATH
    os.makedirs(TMP, exist_ok=True)
    DC = Dovecot({"alice": ALICE_PW}, name="pp-dovecot")
    STARTED.append(DC.stop)
    DC.start()
    DCH = HaproxyDovecot({"alice": ALICE_PW}, name="pp-dovecot-haproxy",
                         protocols=("imap",),
                         extra_conf="haproxy_trusted_networks = "
                                    "127.0.0.0/8 ::1\n"
                                    "login_trusted_networks = "
                                    "127.0.0.0/8 ::1\n")
    STARTED.append(DCH.stop)
    # Dovecot's own start() waits for a greeting, which a haproxy
    # listener gives only after a header: wait for the port instead.
    with open(DCH.conf, "w") as f:
        f.write(DCH.text())
    DCH.proc = subprocess.Popen([DCH.binary, "-F", "-c", DCH.conf],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    DCH.pid = DCH.proc.pid

    def greets():
        try:
            with socket.create_connection(("127.0.0.1", DCH.imap_port),
                                          timeout=2) as s:
                s.sendall(v1("127.0.0.1", "127.0.0.1", 1, 2))
                return s.recv(64).startswith(b"* OK")
        except OSError:
            return False
    wait_for(greets, timeout=30, what="dovecot with haproxy = yes")

    for name, proto, host in (("imap", "imap", "127.0.0.1"),
                              ("imap6", "imap", "::1"),
                              ("smtp", "smtp", "127.0.0.1")):
        REC[name] = Recorder(proto, host)
        STARTED.append(REC[name].stop)

    users = ("alice %s imap=127.0.0.1:%d pop3=127.0.0.1:%d\n"
             % (ALICE_PW, DC.imap_port, DC.pop3_port))
    users += "rec pw imap=127.0.0.1:%d\n" % REC["imap"].port
    users += "rec6 pw imap=[::1]:%d\n" % REC["imap6"].port
    users += "hap %s imap=127.0.0.1:%d backend_user=alice\n" % (
        ALICE_PW, DCH.imap_port)
    users += "smtprec pw smtp=127.0.0.1:%d\n" % REC["smtp"].port
    AS = AuthServer(users)
    STARTED.append(AS.stop)

    UNIX_PATH = tempfile.mktemp(prefix="mpd-pp-", suffix=".sock",
                                dir="/tmp")
    http = "auth_http 127.0.0.1:%d/auth" % AS.port
    lb = "listen proxy_protocol"
    body = ""
    # Reading headers.
    body += server_block("trusted", "imap", [
        lb, http, "set_real_ip_from 127.0.0.0/8", "timeout 2s"])
    body += server_block("untrusted", "imap", [
        lb, http, "set_real_ip_from 192.0.2.0/24",
        "set_real_ip_from ::1", "timeout 2s"])
    body += server_block("trusted6", "imap", [
        lb, http, "set_real_ip_from ::1/128", "timeout 2s"], listen="v6")
    body += server_block("pop3", "pop3", [
        lb, http, "set_real_ip_from 127.0.0.1"])
    body += server_block("unix", "imap", [
        lb, http, "set_real_ip_from unix:"], listen="unix")
    body += server_block("smtp", "smtp", [
        lb, http, "set_real_ip_from 127.0.0.1", "smtp_auth plain",
        "xclient on"])
    # Sending headers.
    body += server_block("out1", "imap", [http, "proxy_protocol on"])
    body += server_block("out2", "imap", [http, "proxy_protocol v2"])
    body += server_block("out1_6", "imap", [http, "proxy_protocol on"],
                         listen="v6")
    body += server_block("out2_6", "imap", [http, "proxy_protocol v2"],
                         listen="v6")
    body += server_block("out_off", "imap", [http, "proxy_protocol off"])
    body += server_block("relay1", "imap", [
        lb, http, "set_real_ip_from 127.0.0.1", "proxy_protocol on"])
    body += server_block("relay2", "imap", [
        lb, http, "set_real_ip_from 127.0.0.1", "proxy_protocol v2"])
    body += server_block("relay2_untrusted", "imap", [
        lb, http, "set_real_ip_from 10.0.0.0/8", "proxy_protocol v2"])
    BODY = body
    start_daemon()


def teardown(keep=True):
    if D is not None:
        D.stop()
    for fn in reversed(STARTED):
        try:
            fn()
        except Exception:  # noqa
            traceback.print_exc(file=sys.stdout)
    if UNIX_PATH and os.path.exists(UNIX_PATH):
        os.unlink(UNIX_PATH)
    if not keep:
        for x in (D, AS, DC, DCH):
            if x is not None:
                shutil.rmtree(x.dir, ignore_errors=True)


def imap_login(c, user="alice", pw=ALICE_PW, tag=b"a1"):
    c.send(tag + b" LOGIN %s %s\r\n" % (user.encode(), pw.encode()))
    r = b"".join(c.until_tagged(tag))
    assert r.split(b"\r\n")[-2].startswith(tag + b" OK"), r
    return r


def imap_logout(c, tag=b"z9"):
    c.send(tag + b" LOGOUT\r\n")
    r = b"".join(c.until_tagged(tag))
    assert b"* BYE" in r, r
    c.eof()


def session_login(server, header, user="alice", pw=ALICE_PW, host=None,
                  unix=None):
    """Header, greeting, login, logout; the auth request's headers."""
    mark = AS.mark()
    with Conn(PORT.get(server, 0), host=host or "127.0.0.1",
              unix=unix) as c:
        c.send(header)
        c.expect(IMAP_GREETING, "greeting after the header")
        imap_login(c, user, pw)
        imap_logout(c)
    return headers_since(mark)


def broken(server, data, why, host="127.0.0.1", close=True):
    """The proxy closes without a byte (no greeting) and logs it."""
    n = D.logtext().count("broken header")
    with Conn(PORT[server], host=host) as c:
        c.send(data)
        if close:
            c.s.shutdown(socket.SHUT_WR)
        eq(c.eof(timeout=10), b"", "nothing from the proxy: " + why)
    wait_for(lambda: D.logtext().count("broken header") > n, timeout=5,
             what="the broken header log line: " + why)


# ==========================================================================
# Reading: v1 and v2, trusted and untrusted sources

@test
def v1_trusted_replaces_client():
    """A v1 header from a set_real_ip_from source: the auth server gets
    the header's source as Client-IP, and the Proxy-Protocol-* headers;
    the login goes through to Dovecot; the logs name the real client."""
    h = session_login("trusted", v1(REAL4, "198.51.100.2", REAL_PORT, 143))
    eq(pp_headers(h), {"Client-IP": REAL4, "Proxy-Protocol-Addr": REAL4,
                       "Proxy-Protocol-Port": str(REAL_PORT),
                       "Proxy-Protocol-Server-Addr": "198.51.100.2",
                       "Proxy-Protocol-Server-Port": "143"})
    D.wait_log("session done: client=%s:%d user=\"alice\""
               % (REAL4, REAL_PORT))


@test
def v1_untrusted_keeps_client():
    """The same header from a source not in set_real_ip_from: Client-IP
    stays the connection's address; the header still goes to the auth
    server in Proxy-Protocol-* (reference 2.2, row 10)."""
    h = session_login("untrusted", v1(REAL4, "198.51.100.2", REAL_PORT,
                                      143))
    eq(pp_headers(h), {"Client-IP": "127.0.0.1",
                       "Proxy-Protocol-Addr": REAL4,
                       "Proxy-Protocol-Port": str(REAL_PORT),
                       "Proxy-Protocol-Server-Addr": "198.51.100.2",
                       "Proxy-Protocol-Server-Port": "143"})


@test
def v2_trusted_and_untrusted():
    """v2 binary headers, IPv4 and IPv6 endpoints, with TLVs (ALPN,
    authority, NOOP padding) that are skipped."""
    tl = tlv(0x01, b"imap") + tlv(0x02, b"mx.example.org") + \
        tlv(0x04, b"\0" * 40)
    h = session_login("trusted", v2(REAL4, "198.51.100.2", REAL_PORT, 993,
                                    tlvs=tl))
    eq(pp_headers(h), {"Client-IP": REAL4, "Proxy-Protocol-Addr": REAL4,
                       "Proxy-Protocol-Port": str(REAL_PORT),
                       "Proxy-Protocol-Server-Addr": "198.51.100.2",
                       "Proxy-Protocol-Server-Port": "993"})
    h = session_login("trusted", v2(REAL6, "2001:db8::143", 65535, 143))
    eq(pp_headers(h), {"Client-IP": REAL6, "Proxy-Protocol-Addr": REAL6,
                       "Proxy-Protocol-Port": "65535",
                       "Proxy-Protocol-Server-Addr": "2001:db8::143",
                       "Proxy-Protocol-Server-Port": "143"})
    h = session_login("untrusted", v2(REAL6, "2001:db8::143", 1, 143,
                                      tlvs=tl))
    eq(pp_headers(h), {"Client-IP": "127.0.0.1",
                       "Proxy-Protocol-Addr": REAL6,
                       "Proxy-Protocol-Port": "1",
                       "Proxy-Protocol-Server-Addr": "2001:db8::143",
                       "Proxy-Protocol-Server-Port": "143"})


@test
def ipv6_peer():
    """A load balancer connecting over IPv6 (::1): trusted by
    set_real_ip_from ::1/128 on one server, not on the other (whose
    list has only ::1 as IPv6 but listens on IPv4)."""
    h = session_login("trusted6", v1(REAL6, "2001:db8::1", REAL_PORT, 143),
                      host="::1")
    eq(h.get("Client-IP"), REAL6, "Client-IP")
    h = session_login("trusted6", v2(REAL4, "198.51.100.2", 5, 6),
                      host="::1")
    eq(pp_headers(h), {"Client-IP": REAL4, "Proxy-Protocol-Addr": REAL4,
                       "Proxy-Protocol-Port": "5",
                       "Proxy-Protocol-Server-Addr": "198.51.100.2",
                       "Proxy-Protocol-Server-Port": "6"})


@test
def unix_listener_trusted():
    """A unix-socket listen with set_real_ip_from unix: trusts its
    peers."""
    h = session_login("unix", v1(REAL4, "198.51.100.2", REAL_PORT, 143),
                      unix=UNIX_PATH)
    eq(h.get("Client-IP"), REAL4, "Client-IP")
    eq(h.get("Proxy-Protocol-Addr"), REAL4, "Proxy-Protocol-Addr")


@test
def no_addresses_unknown_local():
    """v1 UNKNOWN and v2 LOCAL (health checks) are valid headers without
    addresses: the session goes on with the connection's own address and
    no Proxy-Protocol-* headers, as nginx does."""
    for hdr in (b"PROXY UNKNOWN\r\n",
                b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
                V2SIG + b"\x20\x00\x00\x00",
                V2SIG + b"\x21\x00\x00\x00"):
        h = session_login("trusted", hdr)
        eq(pp_headers(h), {"Client-IP": "127.0.0.1",
                           "Proxy-Protocol-Addr": None,
                           "Proxy-Protocol-Port": None,
                           "Proxy-Protocol-Server-Addr": None,
                           "Proxy-Protocol-Server-Port": None}, repr(hdr))


@test
def pop3_with_header():
    """POP3 too: the header, the greeting, USER/PASS to Dovecot."""
    mark = AS.mark()
    with Conn(PORT["pop3"]) as c:
        c.send(v1(REAL4, "198.51.100.2", REAL_PORT, 110))
        c.expect(POP3_GREETING, "pop3 greeting")
        c.send(b"USER alice\r\n")
        c.expect(b"+OK\r\n")
        c.send(b"PASS %s\r\n" % ALICE_PW.encode())
        assert c.line().startswith(b"+OK"), "PASS"
        c.send(b"QUIT\r\n")
        assert c.line().startswith(b"+OK"), "QUIT"
        c.eof()
    eq(headers_since(mark).get("Client-IP"), REAL4, "Client-IP")


# ==========================================================================
# Reading: byte for byte

@test
def pipelined_after_header():
    """Commands sent in the same packet as the header are the
    protocol's: none is lost or swallowed, for v1 and v2."""
    for hdr in (v1(REAL4, "198.51.100.2", REAL_PORT, 143),
                v2(REAL4, "198.51.100.2", REAL_PORT, 143,
                   tlvs=tlv(0x04, b"xx"))):
        mark = AS.mark()
        with Conn(PORT["trusted"]) as c:
            c.send(hdr + b"a1 CAPABILITY\r\na2 NOOP\r\na3 LOGIN alice %s\r\n"
                   % ALICE_PW.encode())
            c.expect(IMAP_GREETING, "greeting")
            r = b"".join(c.until_tagged(b"a1"))
            assert r.startswith(b"* CAPABILITY "), r
            assert r.endswith(b"a1 OK completed\r\n"), r
            c.expect(b"a2 OK completed\r\n", "NOOP")
            r = b"".join(c.until_tagged(b"a3"))
            assert r.split(b"\r\n")[-2].startswith(b"a3 OK"), r
            imap_logout(c)
        eq(headers_since(mark).get("Client-IP"), REAL4, "Client-IP")


@test
def header_in_small_pieces():
    """A header split across many small writes (one byte each, then a
    few bytes each) is read as one."""
    for hdr, step in ((v1(REAL6, "2001:db8::1", REAL_PORT, 143), 1),
                      (v2(REAL4, "198.51.100.2", REAL_PORT, 143,
                          tlvs=tlv(0x02, b"host.example")), 1),
                      (v2(REAL6, "2001:db8::1", REAL_PORT, 143), 5)):
        mark = AS.mark()
        with Conn(PORT["trusted"]) as c:
            for i in range(0, len(hdr), step):
                c.send(hdr[i:i + step])
                time.sleep(0.01)
            c.expect(IMAP_GREETING, "greeting")
            imap_login(c)
            imap_logout(c)
        eq(headers_since(mark).get("Proxy-Protocol-Port"), str(REAL_PORT),
           "Proxy-Protocol-Port")


@test
def second_header_is_a_command():
    """After the header, another PROXY line is only a bad IMAP command:
    it changes nothing."""
    mark = AS.mark()
    with Conn(PORT["trusted"]) as c:
        c.send(v1(REAL4, "198.51.100.2", REAL_PORT, 143))
        c.expect(IMAP_GREETING)
        c.send(v1("203.0.113.9", "198.51.100.2", 1, 143))
        ln = c.line()
        assert ln.startswith(b"PROXY BAD") or ln.startswith(b"* BAD"), ln
        imap_login(c)
        imap_logout(c)
    eq(headers_since(mark).get("Client-IP"), REAL4, "Client-IP")


# ==========================================================================
# Reading: what is refused

@test
def malformed_headers_close():
    """Garbage, and each kind of malformed header, close the connection
    without a greeting and with a "broken header" log line."""
    ok4 = v2(REAL4, "198.51.100.2", 1, 2)
    cases = [
        (b"a1 LOGIN alice pw\r\n", "an IMAP command, no header"),
        (b"GET / HTTP/1.0\r\n\r\n", "HTTP"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.2 40000 143\n", "LF without CR"),
        (b"PROXY TCP5 192.0.2.7 198.51.100.2 40000 143\r\n", "protocol"),
        (b"PROXY TCP4 192.0.2.777 198.51.100.2 40000 143\r\n", "address"),
        (b"PROXY TCP4 2001:db8::1 198.51.100.2 40000 143\r\n", "family"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.2 70000 143\r\n", "port"),
        (b"PROXY TCP4  192.0.2.7 198.51.100.2 1 2\r\n", "double space"),
        (b"PROXY TCP4 192.0.2.7 198.51.100.2 1\r\n", "missing field"),
        (b"PROXY TCP4 192.0.2.7\x00 198.51.100.2 1 2\r\n", "NUL"),
        (ok4[:12] + b"\x11" + ok4[13:], "v2 version 1"),
        (ok4[:12] + b"\x23" + ok4[13:], "v2 command 3"),
        (ok4[:13] + b"\x51" + ok4[14:], "v2 family 5"),
        (V2SIG + b"\x21\x11\x00\x08" + b"\0" * 8, "v2 short address block"),
        (V2SIG + b"\x21\x11\x00\x0e" + b"\0" * 14, "v2 truncated TLV"),
        (V2SIG + b"\x21\x11\x00\x11" + b"\0" * 12 + b"\x01\x00\x09ab",
         "v2 TLV longer than the header"),
        (V2SIG[:11] + b"X", "v2 signature"),
    ]
    for data, why in cases:
        broken("trusted", data, why, close=False)


@test
def oversized_headers_close():
    """A v1 line without CR LF in 107 bytes, and a v2 header announcing
    more than 4096 bytes, are refused as soon as that is known, without
    waiting for the rest."""
    broken("trusted", b"PROXY UNKNOWN " + b"x" * 93, "107 bytes, no LF",
           close=False)
    broken("trusted", b"PROXY TCP4 " + b"1" * 300 + b"\r\n",
           "300-byte line", close=False)
    broken("trusted", V2SIG + b"\x21\x11\x10\x00", "v2 of 4112 bytes",
           close=False)
    broken("trusted", V2SIG + b"\x21\x11\xff\xff" + b"\0" * 8000,
           "v2 of 65551 bytes", close=False)
    # The largest v2 header allowed, 4096 bytes, is fine.
    pad = 4096 - 16 - 12 - 3
    h = session_login("trusted", v2(REAL4, "198.51.100.2", 7, 143,
                                    tlvs=tlv(0x04, b"\0" * pad)))
    eq(h.get("Client-IP"), REAL4, "Client-IP after a 4096-byte header")


@test
def eof_inside_header_closes():
    """The load balancer closing in the middle of a header."""
    broken("trusted", b"PROXY TCP4 192.0.2.7 ", "EOF in v1")
    broken("trusted", V2SIG + b"\x21\x11\x00\x0c\xc0", "EOF in v2")


@test
def slow_header_times_out():
    """No header, or one that trickles in, within `timeout` (2s here)
    from the accept: closed without a greeting ("client timed out").  The
    time is for the whole header: bytes arriving do not extend it."""
    for mode in ("nothing", "partial", "trickle"):
        t0 = time.monotonic()
        with Conn(PORT["trusted"]) as c:
            if mode == "partial":
                c.send(b"PROXY TCP4 192.0.2.7 198.51")
            elif mode == "trickle":
                for b in b"PROXY TCP4 192.0.2.7 198.51.100.2 4000":
                    try:
                        c.send(bytes([b]))
                    except OSError:
                        break
                    time.sleep(0.1)
            eq(c.eof(timeout=10), b"", "nothing from the proxy: " + mode)
        dt = time.monotonic() - t0
        assert 1.5 < dt < 6, "%s: closed after %.1fs" % (mode, dt)
    D.wait_log("client timed out")


@test
def smtp_xclient_addr_from_header():
    """SMTP: XCLIENT ADDR (and the auth server's Client-IP) is the
    header's source, IPv4 and IPv6 (with the IPV6: prefix)."""
    for src, want in ((REAL4, REAL4.encode()),
                      (REAL6, b"IPV6:" + REAL6.encode())):
        mark = REC["smtp"].mark()
        amark = AS.mark()
        with Conn(PORT["smtp"]) as c:
            c.send(v1(src, dst_for(src), REAL_PORT, 587))
            c.expect(SMTP_GREETING, "greeting")
            c.send(b"EHLO client.test\r\n")
            while not c.line().startswith(b"250 "):
                pass
            c.send(b"AUTH PLAIN " + base64.b64encode(b"\0smtprec\0pw") +
                   b"\r\n")
            ln = c.line()
            assert ln.startswith(b"235 "), ln
            c.send(b"QUIT\r\n")
            assert c.line().startswith(b"221 ")
            c.eof()
        rec = REC["smtp"].since(mark)
        m = re.search(rb"XCLIENT ADDR=(\S+)", bytes(rec["data"]))
        assert m, bytes(rec["data"])
        eq(m.group(1), want, "XCLIENT ADDR")
        eq(headers_since(amark).get("Client-IP"), src, "Client-IP")


# ==========================================================================
# Sending: the header to the backend, byte for byte

def backend_header(server, user, host="127.0.0.1", header=b""):
    """Log in as user through server; (bytes the backend got first,
    all its bytes, the client's port)."""
    rec = REC["imap6" if user == "rec6" else "imap"]
    mark = rec.mark()
    with Conn(PORT[server], host=host) as c:
        cport = c.local_port()
        c.send(header)
        c.expect(IMAP_GREETING)
        imap_login(c, user, "pw")
        imap_logout(c)
    r = rec.since(mark)
    return r["first"], bytes(r["data"]), cport


def check_first(first, data, want):
    eq(first, want, "the backend's first read: the header alone")
    assert data.startswith(want + b"a"), data[:120]
    assert re.match(rb'^a\d* LOGIN "', data[len(want):]), data[:120]


@test
def send_v1_ipv4():
    """proxy_protocol on: "PROXY TCP4 <client> <proxy's address> <client
    port> <proxy's port>" CR LF, the very first bytes, in one write."""
    first, data, cport = backend_header("out1", "rec")
    check_first(first, data, b"PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n"
                % (cport, PORT["out1"]))


@test
def send_v2_ipv4():
    """proxy_protocol v2: the binary header, PROXY command, TCP over
    IPv4, no TLVs."""
    first, data, cport = backend_header("out2", "rec")
    want = V2SIG + b"\x21\x11\x00\x0c" + bytes([127, 0, 0, 1, 127, 0, 0, 1]) \
        + struct.pack("!HH", cport, PORT["out2"])
    check_first(first, data, want)


@test
def send_v1_v2_ipv6():
    """A client over IPv6: TCP6 in v1, AF_INET6 in v2 (to an IPv6
    backend and to an IPv4 one)."""
    for user in ("rec", "rec6"):
        first, data, cport = backend_header("out1_6", user, host="::1")
        check_first(first, data, b"PROXY TCP6 ::1 ::1 %d %d\r\n"
                    % (cport, PORT["out1_6"]))
        first, data, cport = backend_header("out2_6", user, host="::1")
        lo = ipaddress.ip_address("::1").packed
        check_first(first, data, V2SIG + b"\x21\x21\x00\x24" + lo + lo +
                    struct.pack("!HH", cport, PORT["out2_6"]))


@test
def send_off():
    """proxy_protocol off: the backend's first bytes are the login."""
    first, data, cport = backend_header("out_off", "rec")
    eq(first, b"", "bytes before the greeting")
    assert re.match(rb'^a\d* LOGIN "', data), data[:80]


@test
def relay_realip_to_backend():
    """A trusted header in, a header out: the source is the real client,
    the destination the proxy's own address; an IPv6 client on an IPv4
    listener goes out as TCP6 with the proxy's address IPv4-mapped.  An
    untrusted peer's header is not passed on: the source is the peer."""
    hdr = v1(REAL4, "198.51.100.2", REAL_PORT, 143)
    first, data, _ = backend_header("relay1", "rec", header=hdr)
    check_first(first, data, b"PROXY TCP4 %s 127.0.0.1 %d %d\r\n"
                % (REAL4.encode(), REAL_PORT, PORT["relay1"]))
    first, data, _ = backend_header("relay2", "rec", header=hdr)
    check_first(first, data, v2(REAL4, "127.0.0.1", REAL_PORT,
                                PORT["relay2"]))
    hdr6 = v2(REAL6, "2001:db8::1", REAL_PORT, 143)
    first, data, _ = backend_header("relay1", "rec", header=hdr6)
    check_first(first, data, b"PROXY TCP6 %s ::ffff:127.0.0.1 %d %d\r\n"
                % (REAL6.encode(), REAL_PORT, PORT["relay1"]))
    first, data, _ = backend_header("relay2", "rec", header=hdr6)
    check_first(first, data, v2(REAL6, "::ffff:127.0.0.1", REAL_PORT,
                                PORT["relay2"]))
    first, data, cport = backend_header("relay2_untrusted", "rec",
                                        header=hdr)
    check_first(first, data, v2("127.0.0.1", "127.0.0.1", cport,
                                PORT["relay2_untrusted"]))


@test
def dovecot_takes_our_header():
    """A real Dovecot with haproxy = yes takes the v1 and v2 headers the
    proxy sends: the login succeeds and Dovecot's log names the real
    client (rip=) that the trusted incoming header gave."""
    for server, src in (("relay1", REAL4), ("relay2", REAL6)):
        n = DCH.logtext().count("rip=%s" % src)
        hdr = v1(src, dst_for(src), REAL_PORT, 143)
        h = session_login(server, hdr, user="hap")
        eq(h.get("Client-IP"), src, "Client-IP")
        wait_for(lambda: DCH.logtext().count("rip=%s" % src) > n,
                 timeout=10, what="dovecot log with rip=%s" % src)
        assert "user=<alice>" in DCH.logtext(), DCH.logtext()[-500:]


# ==========================================================================

def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    return run_suite(TESTS, setup, teardown, "mailproxyd and Dovecot",
                     ensure_daemon, lambda: D)


if __name__ == "__main__":
    sys.exit(main())
