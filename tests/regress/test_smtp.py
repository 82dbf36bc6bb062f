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
"""End-to-end tests of SMTP proxying: mailproxyd between raw socket
clients and a real Postfix smtpd (tests/regress/postfix.py) that trusts
XCLIENT from loopback and delivers into maildirs, authenticating through
auth_http (the reference server contrib/auth-server/mailproxyd-auth-server,
started here with --record) and through auth_cdb (a table made with
mailproxyctl makemap).  A fake DNS server (fakedns.py) gives the client
address 127.0.0.2, from which every client connects, a forward-confirmed
name, so that XCLIENT NAME and ADDR can be told from the proxy's own.
Scripted fake SMTP backends stand in for Postfix where the backend's
input must be recorded or the backend must misbehave.

For proxy_smtp_auth a second Postfix (PF_SASL) does real SASL through
the auth sockets of two auth-only Dovecot instances: its first smtpd
offers PLAIN and LOGIN, its second (with its own Dovecot, whose only
mechanism is LOGIN) offers LOGIN only.  It relays for SASL-authenticated
clients only (smtpd_relay_restrictions = permit_sasl_authenticated,
reject, nobody in mynetworks), and its Received header names the SASL
user (smtpd_sasl_authenticated_header = yes).

The expected bytes come from the compatibility reference
(nginx-mail-behaviour.md, sections 2.2, 2.5, 3.0, 3.3 and 3.4), not from
the implementation.

Run as root.  Python 3 standard library only.
Usage: test_smtp.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import base64
import hashlib
import hmac
import json
import os
import re
import resource
import shutil
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
from postfix import Postfix, SmtpSink  # noqa: E402
from fakedns import FakeDNS  # noqa: E402
from dovecot import Dovecot, big_message  # noqa: E402

CTL = os.path.join(TOP, "bin", "mailproxyctl", "mailproxyctl")
TMP = os.path.join(TOP, "tests", "tmp")

BINARY = None
TESTS = []

CLIENT_ADDR = "127.0.0.2"          # every client connects from here
CLIENT_NAME = "client.example.test"  # its FCrDNS name (fake DNS)
CLIENT_HELO = "helo.client.test"

# Fixed strings of the reference (section 3.3 and 2.5).
GREETING = b"220 mx.test ESMTP ready\r\n"
INVALID = b"500 5.5.1 Invalid command\r\n"
INVALID_ARG = b"501 5.5.4 Invalid argument\r\n"
BAD_SEQ = b"503 5.5.1 Bad sequence of commands\r\n"
AUTH_REQUIRED = b"530 5.7.1 Authentication required\r\n"
OK = b"250 2.0.0 OK\r\n"
AUTH_OK = b"235 2.0.0 OK\r\n"
BYE = b"221 2.0.0 Bye\r\n"
INTERNAL = b"451 4.3.2 Internal server error\r\n"
PIPELINING = b"503 5.5.0 Improper use of SMTP command pipelining\r\n"
USERNAME = b"334 VXNlcm5hbWU6\r\n"
PASSWORD = b"334 UGFzc3dvcmQ6\r\n"
HTTP_FAIL = b"Invalid login or password"    # the auth server's Auth-Status
CDB_FAIL = b"Authentication failed"          # auth_cdb, mailproxyd.conf(5)
SALT_RE = re.compile(rb"^<(\d+)\.(\d+)@mx\.test>$")
INSUFFICIENT = b"550 5.7.0 Error: insufficient authorization\r\n"

ALICE_PW = "secret"


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


# --------------------------------------------------------------------------
# A raw client connection from CLIENT_ADDR

def Conn(port, **kw):
    """A client connection from CLIENT_ADDR."""
    return mpd.Conn(port, source=CLIENT_ADDR, **kw)


def smtp_conn(port, **kw):
    c = Conn(port, **kw)
    c.expect(GREETING, "greeting")
    return c


def check_salt(salt):
    m = SALT_RE.match(salt)
    assert m, "salt format: %r" % salt
    assert abs(int(m.group(2)) - time.time()) < 300, salt


def cram_response(user, password, salt):
    digest = hmac.new(password.encode(), salt, hashlib.md5).hexdigest()
    return b64(user + " " + digest)


_mid = [0]


def new_message(subject, rcpt="bob@example.test", body=()):
    """A message with CRLF ends and a unique Message-ID; lines that
    start with a dot are kept (the sender dot-stuffs them)."""
    _mid[0] += 1
    mid = "<%s.%d.%d@client.test>" % (re.sub(r"\W", "", subject)[:20],
                                      os.getpid(), _mid[0])
    lines = ["From: Alice <alice@example.org>", "To: " + rcpt,
             "Subject: " + subject,
             "Date: Mon, 23 Nov 2026 12:00:00 +0000",
             "Message-ID: " + mid, "", "Hello.",
             ".a line starting with a dot", "", "-- ", "end"] + list(body)
    return ("\r\n".join(lines) + "\r\n").encode(), mid.encode()


def stuffed(msg):
    out = re.sub(rb"(?m)^\.", b"..", msg)
    return out + b".\r\n"


def send_mail(c, sender, rcpt, msg):
    """A transaction relayed to Postfix: MAIL, RCPT, DATA."""
    c.send(b"MAIL FROM:<%s>\r\n" % sender.encode())
    r = c.reply()
    assert r.startswith(b"250 "), "MAIL: %r" % r
    c.send(b"RCPT TO:<%s>\r\n" % rcpt.encode())
    r = c.reply()
    assert r.startswith(b"250 "), "RCPT: %r" % r
    c.send(b"DATA\r\n")
    r = c.reply()
    assert r.startswith(b"354 "), "DATA: %r" % r
    c.send(stuffed(msg))
    r = c.reply(timeout=120)
    assert r.startswith(b"250 "), "end of data: %r" % r


def quit_(c):
    c.send(b"QUIT\r\n")
    r = c.reply()
    assert r.startswith(b"221 "), "QUIT: %r" % r
    c.eof()


def delivered(rcpt, mid, timeout=60, pf=None):
    """The delivered file of rcpt holding Message-ID mid."""
    def find():
        for m in (pf or PF).messages(rcpt):
            if b"\nMessage-ID: " + mid + b"\n" in m:
                return m
        return None
    return wait_for(find, timeout=timeout,
                    what="delivery of %r to %s" % (mid, rcpt))


def check_delivery(rcpt, msg, mid, helo=CLIENT_HELO):
    """Byte-identical (Postfix stores LF ends) and Received shows the
    client's address and name passed by XCLIENT."""
    got = delivered(rcpt, mid)
    eq(Postfix.stored_message(got), msg.replace(b"\r\n", b"\n"),
       "message as stored by Postfix")
    rec = Postfix.received(got)
    want = b"Received: from %s (%s [%s])" % (
        helo.encode(), CLIENT_NAME.encode(), CLIENT_ADDR.encode())
    assert rec.startswith(want), "Received header: %r, want %r" % (rec, want)


# --------------------------------------------------------------------------
# Fake SMTP backends

class FakeSMTP:
    """A scripted SMTP server on a loopback port.  Modes:
    good       greets, answers EHLO/HELO, XCLIENT (220), MAIL, RCPT,
               DATA, RSET, NOOP, QUIT
    noxclient  as good but refuses XCLIENT with 550
    close      closes after the first EHLO/HELO without answering
    auth       as good, EHLO also offers AUTH PLAIN LOGIN and any AUTH
               PLAIN or AUTH LOGIN dialogue ends in 235
    authlogin  as auth, but offers AUTH LOGIN only and refuses PLAIN
    pipe       as good, but answers MAIL only once RCPT came with it
               (RFC 2920), else 451
    nopipe     as good without PIPELINING: a command sent before the
               reply to MAIL is refused with 503
    strict     as nopipe, but EHLO offers PIPELINING
    mailno     as pipe, refusing MAIL and then RCPT, both replies in one
               segment
    Each connection's received bytes are appended to records."""

    def __init__(self, mode):
        self.mode = mode
        self.records = []
        self.lock = threading.Lock()
        self.stopping = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
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

        def line():
            while b"\n" not in buf[0]:
                try:
                    d = c.recv(65536)
                except OSError:
                    d = b""
                if not d:
                    raise EOFError
                rec.extend(d)
                buf[0] += d
            i = buf[0].index(b"\n") + 1
            out, buf[0] = buf[0][:i], buf[0][i:]
            return out

        def pending(t):
            # Whether a whole line comes within t seconds, unanswered.
            c.settimeout(t)
            try:
                line_ = line()
            except (socket.timeout, EOFError):
                return None
            finally:
                c.settimeout(30)
            return line_

        pipe = self.mode in ("pipe", "mailno")
        try:
            c.sendall(b"220 fake.test ESMTP fake\r\n")
            while True:
                ln = line()
                verb = ln[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    if self.mode == "close":
                        return
                    if verb == b"EHLO" and self.mode.startswith("auth"):
                        c.sendall(b"250-fake.test\r\n250-PIPELINING\r\n"
                                  b"250-AUTH %s\r\n"
                                  b"250 XCLIENT NAME ADDR LOGIN\r\n" % (
                                      b"LOGIN" if self.mode == "authlogin"
                                      else b"PLAIN LOGIN"))
                    elif verb == b"EHLO" and self.mode == "nopipe":
                        c.sendall(b"250-fake.test\r\n"
                                  b"250 XCLIENT NAME ADDR LOGIN\r\n")
                    elif verb == b"EHLO":
                        c.sendall(b"250-fake.test\r\n250-PIPELINING\r\n"
                                  b"250 XCLIENT NAME ADDR LOGIN\r\n")
                    else:
                        c.sendall(b"250 fake.test\r\n")
                elif ln.upper().startswith(b"XCLIENT"):
                    if self.mode == "noxclient":
                        c.sendall(INSUFFICIENT)
                    else:
                        c.sendall(b"220 fake.test ESMTP fake\r\n")
                elif (ln.upper().startswith(b"AUTH PLAIN") and
                      self.mode == "auth"):
                    c.sendall(b"235 2.7.0 Authentication successful\r\n")
                elif (ln.upper() == b"AUTH LOGIN\r\n" and
                      self.mode.startswith("auth")):
                    c.sendall(USERNAME)
                    line()
                    c.sendall(PASSWORD)
                    line()
                    c.sendall(b"235 2.7.0 Authentication successful\r\n")
                elif verb == b"AUTH":
                    c.sendall(b"504 5.5.4 Unsupported mechanism\r\n")
                elif verb == b"MAIL" and pipe:
                    rcpt = pending(2)
                    if rcpt is None or rcpt[:4].upper() != b"RCPT":
                        c.sendall(b"451 4.5.0 RCPT not pipelined\r\n")
                        return
                    if self.mode == "mailno":
                        c.sendall(b"550 5.7.1 <s@example.org>: Sender "
                                  b"address rejected\r\n"
                                  b"503 5.5.1 Error: need MAIL command\r\n")
                        continue
                    c.sendall(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n")
                elif verb == b"MAIL" and self.mode in ("nopipe", "strict"):
                    if pending(0.5) is not None:
                        c.sendall(b"503 5.5.0 Improper use of SMTP "
                                  b"command pipelining\r\n")
                        return
                    c.sendall(b"250 2.1.0 Ok\r\n")
                elif verb == b"MAIL":
                    c.sendall(b"250 2.1.0 Ok\r\n")
                elif verb == b"RCPT":
                    c.sendall(b"250 2.1.5 Ok\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go ahead\r\n")
                    while line() != b".\r\n":
                        pass
                    c.sendall(b"250 2.0.0 Ok: queued\r\n")
                elif verb in (b"RSET", b"NOOP"):
                    c.sendall(b"250 2.0.0 Ok\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 2.0.0 Bye\r\n")
                    return
                else:
                    c.sendall(b"502 5.5.2 Error: command not recognized\r\n")
        except (EOFError, OSError):
            pass
        finally:
            c.close()


# --------------------------------------------------------------------------
# The reference auth server

def header(rec, name):
    for k, v in rec["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


# --------------------------------------------------------------------------
# The environment shared by the tests

PF = None           # Postfix
PF_SASL = None      # Postfix with SASL (Dovecot), see the module's text
DC_SASL = []        # its Dovecot auth services: PLAIN LOGIN, LOGIN only
SINK = None         # smtp-sink (answers XCLIENT with 250)
AS = None           # auth server (records every request)
AS_WAIT = None      # auth server with --wait 1
DNS = None
D = None
BODY = None
CDB = None
CERTDIR = None
FAKES = {}
PORT = {}
STARTED = []

WEIRD_USER = "a b+c=d"

# Postfix's SASL users (Dovecot's passwd-file) and the proxy's users
# whose auth server answer carries them as Auth-User and Auth-Pass.
# Bob's password has a blank, "%41", "=" and "+": Auth-Pass is used as
# it came, not unescaped.
SASL_USERS = {"alice": "dc-alice-pw", "bob": "dc bob%41=pw+"}
SASL_CLIENT_PW = "client-pw"     # what clients give the proxy


def server_block(name, lines):
    PORT[name] = free_port()
    return ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol smtp;\n%s    }\n"
            % (PORT[name], "".join("        %s;\n" % ln for ln in lines)))


def start_daemon():
    global D
    D = Daemon(BINARY, BODY, workers=2, name="smtp",
               main_extra="worker_rlimit_nofile 8192;\n"
                          "events {\n    worker_connections 4096;\n}\n")
    D.start(env=subenv())


def ensure_daemon():
    if D is None or D.pid is None or not alive(D.pid):
        if D is not None:
            D.stop()
        start_daemon()


def setup_sasl():
    """PF_SASL and its two Dovecot auth services."""
    global PF_SASL
    for name, mechs in (("both", ""), ("login", "auth_mechanisms = login\n")):
        dc = Dovecot(SASL_USERS, name="smtp-sasl-dc-" + name, protocols=(),
                     auth_socket=True, extra_conf=mechs)
        STARTED.append(dc.stop)
        dc.start()
        DC_SASL.append(dc)
    PF_SASL = Postfix(
        ["alice@example.test", "bob@example.test"], name="smtp-postfix-sasl",
        extra_main="""
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = %s
smtpd_sasl_authenticated_header = yes
mynetworks = 192.0.2.1/32
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions =
""" % DC_SASL[0].auth_socket,
        extra_smtpd=[["smtpd_sasl_path=" + DC_SASL[1].auth_socket,
                      "smtpd_sasl_mechanism_filter=login"]])
    STARTED.append(PF_SASL.stop)
    # Postfix takes seconds to start: this one starts while the rest
    # of the setup goes on, and setup() waits for it at the end.
    err = []

    def start():
        try:
            PF_SASL.start()
        except Exception as e:  # noqa
            err.append(e)
    t = threading.Thread(target=start, daemon=True)
    t.start()

    def wait():
        t.join(timeout=120)
        if err:
            raise err[0]
        assert not t.is_alive(), "Postfix with SASL did not start"
    return wait


def setup():
    global PF, AS, AS_WAIT, DNS, CDB, BODY, CERTDIR, SINK
    os.makedirs(TMP, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)),
                                                hard))
    sasl_started = setup_sasl()
    # Its second smtpd offers no PIPELINING.
    PF = Postfix(["alice@example.test", "bob@example.test",
                  "carol@example.test"], name="smtp-postfix",
                 extra_smtpd=[["smtpd_discard_ehlo_keywords=pipelining"]])
    STARTED.append(PF.stop)
    PF.start()
    SINK = SmtpSink(name="smtp-sink")
    STARTED.append(SINK.stop)
    for m in ("good", "noxclient", "close", "auth", "authlogin", "pipe",
              "nopipe", "strict", "mailno"):
        FAKES[m] = FakeSMTP(m)
        STARTED.append(FAKES[m].stop)

    DNS = FakeDNS({("2.0.0.127.in-addr.arpa", "PTR"): [CLIENT_NAME],
                   (CLIENT_NAME, "A"): [CLIENT_ADDR]})
    DNS.start()
    STARTED.append(DNS.stop)

    pf = "smtp=127.0.0.1:%d" % PF.port

    def fk(mode):
        return "smtp=127.0.0.1:%d" % FAKES[mode].port
    users = "alice %s %s\n" % (ALICE_PW, pf)
    users += '"%s" pw %s\n' % (WEIRD_USER, fk("good"))
    users += "fx pw %s\n" % fk("good")
    users += "nox pw %s\n" % fk("noxclient")
    users += "fclose pw %s\n" % fk("close")
    users += "sinkuser pw smtp=127.0.0.1:%d\n" % SINK.port
    # proxy_smtp_auth: the client's password is SASL_CLIENT_PW, the
    # answer names Postfix's SASL user and password (or a wrong one).
    sasl = "smtp=127.0.0.1:%d" % PF_SASL.port
    sasl_login = "smtp=127.0.0.1:%d" % PF_SASL.extra_ports[0]
    for u, dest, buser, bpass in (
            ("sasl", sasl, "alice", SASL_USERS["alice"]),
            ("saslbad", sasl, "alice", "wrong-pw"),
            ("sasllogin", sasl_login, "bob", SASL_USERS["bob"]),
            ("sasllogbad", sasl_login, "bob", "wrong-pw"),
            ("fauth", fk("auth"), "b user", "b pw"),
            ("fauthlogin", fk("authlogin"), "b user", "b pw")):
        users += "%s %s %s backend_user=\"%s\" backend_pass=\"%s\"\n" % (
            u, SASL_CLIENT_PW, dest, buser, bpass)
    users += "rcpt alice@example.test 127.0.0.1:%d\n" % PF.port
    users += "rcpt bob@example.test 127.0.0.1:%d\n" % PF.port
    users += "rcpt fake@example.test 127.0.0.1:%d\n" % FAKES["good"].port
    users += "rcpt carol@example.test 127.0.0.1:%d\n" % PF.extra_ports[0]
    for m in ("pipe", "nopipe", "strict", "mailno"):
        users += "rcpt %s@example.test 127.0.0.1:%d\n" % (m, FAKES[m].port)
    AS = AuthServer(users, name="as")
    STARTED.append(AS.stop)
    AS_WAIT = AuthServer(users, "--wait", "1", name="aswait")
    STARTED.append(AS_WAIT.stop)

    cdir = tempfile.mkdtemp(prefix="smtp-cdb-", dir=TMP)
    src = os.path.join(cdir, "users")
    with open(src, "w") as f:
        f.write("alice {PLAIN}%s %s\n" % (ALICE_PW, pf))
    r = subprocess.run([CTL, "makemap", src], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    CDB = src + ".cdb"

    CERTDIR = tempfile.mkdtemp(prefix="smtp-cert-", dir=TMP)
    os.chmod(CERTDIR, 0o755)
    crt = os.path.join(CERTDIR, "cert.pem")
    key = os.path.join(CERTDIR, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-subj", "/CN=mx.test", "-days", "2",
                        "-keyout", key, "-out", crt],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    tls = ["ssl_certificate " + crt, "ssl_certificate_key " + key]

    http = "auth_http 127.0.0.1:%d/auth" % AS.port
    wait = "auth_http 127.0.0.1:%d/auth" % AS_WAIT.port
    cdb = "auth_cdb " + CDB
    res = ["resolver 127.0.0.1:%d valid=30s" % DNS.port,
           "resolver_timeout 2s"]
    body = ""
    body += server_block("sub_http", [
        http, "smtp_auth plain login cram-md5"] + res)
    body += server_block("sub_cdb", [
        cdb, "smtp_auth plain login cram-md5"] + res)
    body += server_block("mx", [http, "smtp_auth none"] + res)
    body += server_block("mx_pem", [http, "smtp_auth none",
                                    "proxy_pass_error_message on"] + res)
    body += server_block("mx_noxc", [http, "smtp_auth none", "xclient off"]
                         + res)
    body += server_block("mx_wait", [wait, "smtp_auth none plain login"]
                         + res)
    body += server_block("pem", [http, "proxy_pass_error_message on"] + res)
    body += server_block("maxerr", [http, "max_errors 3"])
    # proxy_smtp_auth with xclient on (the default) and off, with
    # proxy_pass_error_message off and on.
    body += server_block("noxc", [http, "xclient off"] + res)
    for name, lines in (("psa", []), ("psa_noxc", ["xclient off"]),
                        ("psa_pem", ["proxy_pass_error_message on"]),
                        ("psa_pem_noxc", ["proxy_pass_error_message on",
                                          "xclient off"])):
        body += server_block(name, [http, "proxy_smtp_auth on"] + lines +
                             res)
    body += server_block("buf", [http, "smtp_client_buffer 1k"])
    body += server_block("delay", [http, "smtp_greeting_delay 2s"])
    # EHLO combinations (reference 3.3), lists out of order on purpose.
    body += server_block("e_default", [http])
    body += server_block("e_none_caps", [
        http, "smtp_auth none",
        'smtp_capabilities "SIZE 10485760" 8BITMIME PIPELINING'])
    body += server_block("e_all", [
        http, "smtp_auth cram-md5 none login plain",
        "smtp_capabilities PIPELINING"])
    body += server_block("e_tls_on", [
        http, "smtp_auth login plain", "starttls on",
        'smtp_capabilities "SIZE 1000"'] + tls)
    body += server_block("e_tls_only", [
        http, "smtp_auth plain login", "starttls only",
        'smtp_capabilities "SIZE 1000"'] + tls)
    body += server_block("e_tls_off", [
        http, "smtp_auth plain cram-md5 login", "starttls off",
        "smtp_capabilities 8BITMIME"])
    BODY = body
    start_daemon()
    sasl_started()


def teardown(keep=True):
    if D is not None:
        D.stop()
    for fn in reversed(STARTED):
        try:
            fn()
        except Exception:  # noqa
            traceback.print_exc(file=sys.stdout)
    if not keep:
        dirs = [x.dir for x in [D, PF, PF_SASL, AS, AS_WAIT, SINK] + DC_SASL
                if x is not None]
        for d in (CDB and os.path.dirname(CDB), CERTDIR):
            if d:
                dirs.append(d)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except FileNotFoundError:
        return 0


class NoFdGrowth:
    """Around a block: the workers and the auth process hold no more
    descriptors afterwards (sessions ending a moment later allowed)."""

    def __enter__(self):
        self.procs = D.workers_now() + D.auth_now()
        self.before = {p: fd_count(p) for p in self.procs}
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            return False
        try:
            wait_for(lambda: all(fd_count(p) <= self.before[p]
                                 for p in self.procs), timeout=10,
                     what="descriptors back to their count")
        except AssertionError:
            after = {p: fd_count(p) for p in self.procs}
            raise AssertionError("descriptor growth: %s -> %s"
                                 % (self.before, after))
        return False


# ==========================================================================
# The backends on their own, without the proxy

def _direct(port, lines, source="127.0.0.1"):
    """Send each line, return the replies (multi-line joined)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(source, 0))
    c = mpd.Conn.wrap(s)
    try:
        out = [c.reply()]
        for ln in lines:
            c.send(ln + b"\r\n")
            if ln == b"DATA":
                out.append(c.reply())
                continue
            out.append(c.reply(timeout=30))
        return out
    finally:
        c.close()


@test
def backends_direct():
    """Postfix trusts XCLIENT from loopback and delivers with the passed
    address and name in Received; the fakes and smtp-sink answer as
    their descriptions say."""
    msg, mid = new_message("direct to postfix")
    r = _direct(PF.port, [b"EHLO mx.test",
                          b"XCLIENT ADDR=%s LOGIN=alice NAME=%s" % (
                              CLIENT_ADDR.encode(), CLIENT_NAME.encode()),
                          b"EHLO " + CLIENT_HELO.encode(),
                          b"MAIL FROM:<alice@example.org>",
                          b"RCPT TO:<bob@example.test>", b"DATA",
                          stuffed(msg)[:-2], b"QUIT"])
    assert r[0].startswith(b"220 "), r
    assert b"XCLIENT" in r[1], r[1]
    assert r[2].startswith(b"220 "), "XCLIENT: %r" % r[2]
    assert all(x.startswith(b"250") for x in r[3:6]), r
    assert r[6].startswith(b"354 ") and r[7].startswith(b"250 "), r
    check_delivery("bob@example.test", msg, mid)
    r = _direct(PF.port, [b"HELO x", b"MAIL FROM:<a@example.org>",
                          b"RCPT TO:<nobody@example.test>"])
    assert r[3].startswith(b"550 5.1.1 "), r
    FAKES["good"].clear()
    r = _direct(FAKES["good"].port, [b"EHLO mx.test", b"XCLIENT ADDR=1.2.3.4",
                                     b"HELO h", b"NOOP", b"QUIT"])
    eq(r, [b"220 fake.test ESMTP fake\r\n",
           b"250-fake.test\r\n250-PIPELINING\r\n"
           b"250 XCLIENT NAME ADDR LOGIN\r\n",
           b"220 fake.test ESMTP fake\r\n", b"250 fake.test\r\n",
           b"250 2.0.0 Ok\r\n", b"221 2.0.0 Bye\r\n"], "fake good")
    eq(FAKES["good"].last(),
       b"EHLO mx.test\r\nXCLIENT ADDR=1.2.3.4\r\nHELO h\r\nNOOP\r\n"
       b"QUIT\r\n", "fake record")
    r = _direct(FAKES["noxclient"].port, [b"EHLO mx.test",
                                          b"XCLIENT ADDR=1.2.3.4"])
    eq(r[2], INSUFFICIENT, "fake noxclient")
    s = socket.create_connection(("127.0.0.1", FAKES["close"].port),
                                 timeout=10)
    try:
        c = mpd.Conn.wrap(s)
        assert c.line().startswith(b"220 ")
        c.send(b"EHLO mx.test\r\n")
        c.expect_eof(what="fake close")
    finally:
        s.close()
    r = _direct(SINK.port, [b"EHLO mx.test", b"XCLIENT ADDR=1.2.3.4",
                            b"QUIT"])
    assert r[2].startswith(b"250 "), "smtp-sink XCLIENT: %r" % r


# ==========================================================================
# Greeting, EHLO (reference 3.3)

@test
def greeting():
    with Conn(PORT["sub_http"]) as c:
        eq(c.line(), GREETING)
        c.quiet_for(0.3)
        c.cmd(b"NOOP", OK)
        c.cmd(b"QUIT", BYE)
        c.expect_eof()


EHLO_WANT = {
    "sub_http": b"250-mx.test\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n",
    "e_default": b"250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n",
    "e_none_caps": b"250-mx.test\r\n250-SIZE 10485760\r\n250-8BITMIME\r\n"
                   b"250 PIPELINING\r\n",
    "e_all": b"250-mx.test\r\n250-PIPELINING\r\n"
             b"250 AUTH PLAIN LOGIN CRAM-MD5\r\n",
    # Reference 3.3: with starttls on, "250-AUTH ..." then "250 STARTTLS".
    "e_tls_on": b"250-mx.test\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n"
                b"250 STARTTLS\r\n",
    "e_tls_only": b"250-mx.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
    "e_tls_off": b"250-mx.test\r\n250-8BITMIME\r\n"
                 b"250 AUTH PLAIN LOGIN CRAM-MD5\r\n",
}


def _ehlo_test(name):
    def fn():
        with smtp_conn(PORT[name]) as c:
            c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT[name],
                  "EHLO on " + name)
            c.cmd(b"HELO " + CLIENT_HELO.encode(), b"250 mx.test\r\n",
                  "HELO on " + name)
            c.quiet_for(0.2)
    fn.__name__ = "ehlo_" + name
    return fn


for _n in EHLO_WANT:
    test(_ehlo_test(_n))


@test
def helo_ehlo_arguments():
    with smtp_conn(PORT["sub_http"]) as c:
        c.cmd(b"HELO", INVALID_ARG, "HELO without argument")
        c.cmd(b"HELO a b", INVALID_ARG, "HELO with two arguments")
        c.cmd(b"ehlo x", EHLO_WANT["sub_http"], "lower-case ehlo")


@test
def starttls_off_refused():
    with smtp_conn(PORT["e_tls_off"]) as c:
        c.cmd(b"STARTTLS", INVALID)
        c.cmd(b"NOOP", OK)


@test
def starttls_only_blocks_auth_not_mail():
    with smtp_conn(PORT["e_tls_only"]) as c:
        c.cmd(b"AUTH PLAIN " + b64("\0alice\0" + ALICE_PW), INVALID,
              "AUTH before TLS with starttls only")
        c.cmd(b"NOOP", OK)


@test
def pre_auth_commands():
    with smtp_conn(PORT["sub_http"]) as c:
        c.cmd(b"MAIL FROM:<a@example.org>", AUTH_REQUIRED,
              "MAIL without smtp_auth none")
        c.cmd(b"RSET", OK)
        c.cmd(b"NOOP", OK)
        c.cmd(b"VRFY alice", INVALID)
        c.cmd(b"EXPN list", INVALID)
        c.cmd(b"HELP", INVALID)
        c.cmd(b"AUTH", INVALID_ARG, "AUTH without mechanism")
        c.cmd(b"AUTH FOO", INVALID, "AUTH unknown mechanism")
        c.cmd(b"DATA", INVALID)
        c.cmd(b"QUIT", BYE)
        c.expect_eof()
    with smtp_conn(PORT["mx"]) as c:
        c.cmd(b"RCPT TO:<alice@example.test>", BAD_SEQ, "RCPT before MAIL")
        c.cmd(b"MAIL FROM:<a@example.org>", OK)
        c.cmd(b"MAIL FROM:<a@example.org>", BAD_SEQ, "second MAIL")
        c.cmd(b"RSET", OK)
        c.cmd(b"MAIL", INVALID_ARG, "MAIL without argument")


# ==========================================================================
# Greeting delay

@test
def greeting_delay_early_talker():
    with NoFdGrowth():
        with Conn(PORT["delay"]) as c:
            c.send(b"EHLO early\r\n")
            eq(c.eof(timeout=6), PIPELINING, "early talker")


@test
def greeting_delay_patient_client():
    t0 = time.monotonic()
    with Conn(PORT["delay"]) as c:
        eq(c.line(timeout=6), GREETING)
        took = time.monotonic() - t0
        assert took >= 1.8, "greeting after %.2fs, delay is 2s" % took
        c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["e_default"])


# ==========================================================================
# Submission: every mechanism, both auth sources, through to Postfix

def auth_plain_ir(c, user, pw):
    c.cmd(b"AUTH PLAIN " + b64("\0%s\0%s" % (user, pw)), AUTH_OK)


def auth_plain(c, user, pw):
    c.cmd(b"AUTH PLAIN", b"334 \r\n")
    c.cmd(b64("\0%s\0%s" % (user, pw)), AUTH_OK)


def auth_login(c, user, pw):
    c.cmd(b"AUTH LOGIN", USERNAME)
    c.cmd(b64(user), PASSWORD)
    c.cmd(b64(pw), AUTH_OK)


def auth_login_ir(c, user, pw):
    c.cmd(b"AUTH LOGIN " + b64(user), PASSWORD, "Microsoft-style AUTH LOGIN")
    c.cmd(b64(pw), AUTH_OK)


def auth_cram(c, user, pw):
    c.send(b"AUTH CRAM-MD5\r\n")
    ln = c.line()
    m = re.match(rb"^334 (\S+)\r\n$", ln)
    assert m, "CRAM-MD5 challenge: %r" % ln
    salt = base64.b64decode(m.group(1))
    check_salt(salt)
    c.cmd(cram_response(user, pw, salt), AUTH_OK)


MECHS = {"plain_ir": auth_plain_ir, "plain": auth_plain,
         "login": auth_login, "login_ir": auth_login_ir,
         "cram_md5": auth_cram}


def _submission(server, mech):
    def fn():
        mark = AS.mark()
        with smtp_conn(PORT[server]) as c:
            c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["sub_http"])
            MECHS[mech](c, "alice", ALICE_PW)
            msg, mid = new_message("submission %s %s" % (server, mech))
            send_mail(c, "alice@example.org", "bob@example.test", msg)
            quit_(c)
        check_delivery("bob@example.test", msg, mid)
        if server == "sub_http":
            recs = AS.since(mark)
            eq(len(recs), 1, "one auth request")
            r = recs[0]
            eq(header(r, "Auth-Method"),
               "cram-md5" if mech == "cram_md5" else "plain", "Auth-Method")
            eq(header(r, "Auth-User"), "alice")
            eq(header(r, "Auth-Protocol"), "smtp")
            eq(header(r, "Auth-Login-Attempt"), "1")
            eq(header(r, "Client-IP"), CLIENT_ADDR)
            eq(header(r, "Client-Host"), CLIENT_NAME)
            if mech != "cram_md5":
                eq(header(r, "Auth-Pass"), ALICE_PW)
            assert header(r, "Auth-SMTP-Helo") is None, r["headers"]
    fn.__name__ = "submit_%s_%s" % (mech, server[4:])
    return fn


for _srv in ("sub_http", "sub_cdb"):
    for _m in MECHS:
        test(_submission(_srv, _m))


@test
def swaks_submission():
    """A real client: swaks with AUTH PLAIN and AUTH LOGIN, pipelining,
    through both auth sources."""
    swaks = shutil.which("swaks")
    assert swaks, "swaks not installed (contrib/install-deps.sh)"
    for i, (server, mech) in enumerate((("sub_http", "PLAIN"),
                                        ("sub_cdb", "LOGIN"),
                                        ("sub_http", "LOGIN"))):
        mid = "<swaks.%d.%d@client.test>" % (os.getpid(), i)
        r = subprocess.run(
            [swaks, "--server", "127.0.0.1", "--port", str(PORT[server]),
             "--local-interface", CLIENT_ADDR, "--helo", CLIENT_HELO,
             "--from", "alice@example.org", "--to", "bob@example.test",
             "--auth", mech, "--auth-user", "alice",
             "--auth-password", ALICE_PW, "--pipeline",
             "--header", "Message-ID: " + mid,
             "--body", "swaks through %s with %s" % (server, mech)],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "swaks %s %s: exit %d\n%s" % (
            server, mech, r.returncode, r.stdout[-2000:] + r.stderr[-500:])
        assert "<-  235 2.0.0 OK" in r.stdout, r.stdout[-2000:]
        got = delivered("bob@example.test", mid.encode())
        rec = Postfix.received(got)
        assert rec.startswith(b"Received: from %s (%s [%s])" % (
            CLIENT_HELO.encode(), CLIENT_NAME.encode(),
            CLIENT_ADDR.encode())), rec
        assert (b"\nswaks through %s with %s\n" % (
            server.encode(), mech.encode())) in got, got[-300:]


@test
def curl_submission():
    """A real client: curl submits with AUTH PLAIN and AUTH LOGIN through
    both auth sources; the message arrives byte for byte."""
    curl = shutil.which("curl")
    assert curl, "curl not installed (contrib/install-deps.sh)"
    for i, (server, mech) in enumerate((("sub_http", "PLAIN"),
                                        ("sub_cdb", "LOGIN"))):
        mid = "<curl.%d.%d@client.test>" % (os.getpid(), i)
        body = ("From: alice@example.org\r\nTo: bob@example.test\r\n"
                "Subject: curl %s\r\nMessage-ID: %s\r\n\r\n"
                "curl through %s with %s\r\n" % (mech, mid, server, mech))
        r = subprocess.run(
            [curl, "-sS", "--interface", CLIENT_ADDR,
             "smtp://127.0.0.1:%d/%s" % (PORT[server], CLIENT_HELO),
             "--mail-from", "alice@example.org",
             "--mail-rcpt", "bob@example.test",
             "--user", "alice:" + ALICE_PW,
             "--login-options", "AUTH=" + mech, "--upload-file", "-"],
            input=body.encode(), capture_output=True, timeout=60)
        assert r.returncode == 0, "curl %s %s: exit %d\n%s" % (
            server, mech, r.returncode, r.stderr[-1000:])
        check_delivery("bob@example.test", body.encode(), mid.encode())


@test
def submission_without_ehlo():
    """HELO is not required before AUTH; the backend then gets no client
    HELO (reference 3.3 step 3), and Postfix, left without a HELO after
    XCLIENT, names the client by its XCLIENT NAME in Received."""
    with smtp_conn(PORT["sub_http"]) as c:
        auth_plain_ir(c, "alice", ALICE_PW)
        msg, mid = new_message("no ehlo")
        send_mail(c, "alice@example.org", "bob@example.test", msg)
        quit_(c)
    check_delivery("bob@example.test", msg, mid, helo=CLIENT_NAME)
    FAKES["good"].clear()
    with smtp_conn(PORT["sub_http"]) as c:
        auth_plain_ir(c, "fx", "pw")
        c.cmd(b"NOOP", b"250 2.0.0 Ok\r\n", "NOOP relayed to the backend")
        quit_(c)
    eq(FAKES["good"].last(),
       b"EHLO mx.test\r\n"
       b"XCLIENT ADDR=%s LOGIN=fx NAME=%s\r\nNOOP\r\nQUIT\r\n" % (
           CLIENT_ADDR.encode(), CLIENT_NAME.encode()),
       "no client HELO to repeat")


@test
def xclient_answered_250_smtp_sink():
    """The backend may answer XCLIENT with 250 as well as 220 (reference
    3.3 step 3); smtp-sink does."""
    msg, _ = new_message("to the sink")
    with smtp_conn(PORT["sub_http"], nodelay=True) as c:
        c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["sub_http"])
        auth_plain_ir(c, "sinkuser", "pw")
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\n"
               b"DATA\r\n")
        assert c.reply().startswith(b"250 ")
        assert c.reply().startswith(b"250 ")
        assert c.reply().startswith(b"354 ")
        c.send(stuffed(msg))
        assert c.reply().startswith(b"250 ")
        quit_(c)


@test
def wrong_password_http():
    with smtp_conn(PORT["sub_http"]) as c:
        c.cmd(b"AUTH PLAIN " + b64("\0alice\0wrong"),
              b"535 5.7.0 " + HTTP_FAIL + b"\r\n")
        c.expect_eof()


@test
def wrong_password_cdb():
    with smtp_conn(PORT["sub_cdb"]) as c:
        c.cmd(b"AUTH PLAIN " + b64("\0alice\0wrong"),
              b"535 5.7.0 " + CDB_FAIL + b"\r\n")
        c.expect_eof()


@test
def backend_dialogue_xclient():
    """Exact backend dialogue (reference 3.3): EHLO server_name, XCLIENT
    ADDR LOGIN NAME, the client's EHLO repeated; nothing else before the
    client's own commands."""
    FAKES["good"].clear()
    with smtp_conn(PORT["sub_http"]) as c:
        c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["sub_http"])
        auth_plain_ir(c, "fx", "pw")
        c.cmd(b"NOOP", b"250 2.0.0 Ok\r\n", "NOOP relayed to the backend")
        quit_(c)
    eq(FAKES["good"].last(),
       b"EHLO mx.test\r\n"
       b"XCLIENT ADDR=%s LOGIN=fx NAME=%s\r\n"
       b"EHLO %s\r\nNOOP\r\nQUIT\r\n" % (
           CLIENT_ADDR.encode(), CLIENT_NAME.encode(), CLIENT_HELO.encode()),
       "what the backend received")


# ==========================================================================
# Logins that need xtext, and injection attempts

@test
def login_xtext_encoded():
    FAKES["good"].clear()
    with smtp_conn(PORT["sub_http"]) as c:
        c.cmd(b"HELO " + CLIENT_HELO.encode(), b"250 mx.test\r\n")
        auth_plain_ir(c, WEIRD_USER, "pw")
        quit_(c)
    eq(FAKES["good"].last(),
       b"EHLO mx.test\r\n"
       b"XCLIENT ADDR=%s LOGIN=a+20b+2Bc+3Dd NAME=%s\r\n"
       b"HELO %s\r\nQUIT\r\n" % (
           CLIENT_ADDR.encode(), CLIENT_NAME.encode(), CLIENT_HELO.encode()),
       "LOGIN xtext-encoded")


@test
def login_crlf_not_injected():
    with NoFdGrowth():
        FAKES["good"].clear()
        mark = AS.mark()
        evil = "fx\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<x@y> "
        for how in ("plain", "login"):
            with smtp_conn(PORT["sub_http"]) as c:
                if how == "plain":
                    c.send(b"AUTH PLAIN " + b64("\0%s\0pw" % evil) + b"\r\n")
                else:
                    c.cmd(b"AUTH LOGIN", USERNAME)
                    c.cmd(b64(evil), PASSWORD)
                    c.send(b64("pw") + b"\r\n")
                r = c.line()
                assert r.startswith((b"535 ", b"500 ", b"501 ", b"235 ")), r
                if r.startswith(b"235 "):
                    quit_(c)
                else:
                    c.expect_eof()
        for rec in FAKES["good"].records:
            rec = bytes(rec)
            assert b"evil@" not in rec.replace(
                b"+0D+0AMAIL+20FROM:<evil@", b""), rec
        for r in AS.since(mark):
            u = header(r, "Auth-User")
            assert "\r" not in u and "\n" not in u, r
            eq(u, "fx%0D%0AMAIL%20FROM:<evil@example.org>%0D%0A"
                  "RCPT%20TO:<x@y>%20", "Auth-User escaped")


# ==========================================================================
# MX mode: smtp_auth none

@test
def mx_accepted_recipient():
    mark = AS.mark()
    with smtp_conn(PORT["mx"]) as c:
        c.cmd(b"EHLO " + CLIENT_HELO.encode(), b"250 mx.test\r\n")
        c.cmd(b"MAIL FROM:<s@example.org> SIZE=100", OK)
        c.send(b"RCPT TO:<alice@example.test>\r\n")
        r = c.reply()
        assert r.startswith(b"250 "), "RCPT answered by Postfix: %r" % r
        msg, mid = new_message("mx accepted", "alice@example.test")
        c.send(b"DATA\r\n")
        assert c.reply().startswith(b"354 ")
        c.send(stuffed(msg))
        assert c.reply(timeout=60).startswith(b"250 ")
        quit_(c)
    check_delivery("alice@example.test", msg, mid)
    recs = AS.since(mark)
    eq(len(recs), 1, "one auth request")
    r = recs[0]
    eq(header(r, "Auth-Method"), "none")
    eq(header(r, "Auth-User"), "")
    eq(header(r, "Auth-Pass"), "")
    eq(header(r, "Auth-Protocol"), "smtp")
    eq(header(r, "Client-IP"), CLIENT_ADDR)
    eq(header(r, "Client-Host"), CLIENT_NAME)
    eq(header(r, "Auth-SMTP-Helo"), CLIENT_HELO)
    eq(header(r, "Auth-SMTP-From"), "MAIL FROM:<s@example.org> SIZE=100")
    eq(header(r, "Auth-SMTP-To"), "RCPT TO:<alice@example.test>")


@test
def mx_rejected_recipient():
    with NoFdGrowth():
        with smtp_conn(PORT["mx"]) as c:
            c.cmd(b"HELO " + CLIENT_HELO.encode(), b"250 mx.test\r\n")
            c.cmd(b"MAIL FROM:<s@example.org>", OK)
            c.cmd(b"RCPT TO:<nobody@example.test>",
                  b"550 5.1.1 User unknown\r\n")
            c.expect_eof()


@test
def mx_pipelined_one_packet():
    msg, mid = new_message("mx pipelined", "bob@example.test")
    with smtp_conn(PORT["mx"], nodelay=True) as c:
        c.send(b"EHLO " + CLIENT_HELO.encode() + b"\r\n"
               b"MAIL FROM:<s@example.org>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n" + stuffed(msg) + b"QUIT\r\n")
        eq(c.reply(), b"250 mx.test\r\n", "EHLO")
        eq(c.reply(), OK, "MAIL")
        r = c.reply(timeout=30)
        assert r.startswith(b"250 "), "RCPT: %r" % r
        assert c.reply().startswith(b"354 ")
        assert c.reply(timeout=60).startswith(b"250 ")
        assert c.reply().startswith(b"221 ")
        c.eof()
    check_delivery("bob@example.test", msg, mid)


@test
def mx_backend_pipelining():
    """MAIL and RCPT go in one write when the EHLO after XCLIENT offers
    PIPELINING (RFC 2920): the "pipe" fake answers MAIL only once RCPT
    came with it.  Without PIPELINING, or after a HELO, or with no EHLO
    after XCLIENT, RCPT waits for MAIL's reply (the "nopipe" fake
    refuses anything sent before it).  The RCPT's reply is the client's
    either way."""
    for port, hello, rcpt, fake_ in (
            ("mx", b"EHLO", "pipe", "pipe"),
            ("mx_noxc", b"EHLO", "pipe", "pipe"),
            ("mx", b"EHLO", "nopipe", "nopipe"),
            ("mx", b"HELO", "strict", "strict"),
            ("mx", None, "strict", "strict")):
        FAKES[fake_].clear()
        with smtp_conn(PORT[port]) as c:
            if hello is not None:
                c.send(hello + b" " + CLIENT_HELO.encode() + b"\r\n")
                assert c.reply().startswith(b"250"), hello
            c.cmd(b"MAIL FROM:<s@example.org>", OK)
            c.cmd(b"RCPT TO:<%s@example.test>" % rcpt.encode(),
                  b"250 2.1.5 Ok\r\n", "%s %s %s" % (port, hello, rcpt))
            quit_(c)
        got = FAKES[fake_].last()
        tail = (b"MAIL FROM:<s@example.org>\r\n"
                b"RCPT TO:<%s@example.test>\r\nQUIT\r\n" % rcpt.encode())
        assert got.endswith(tail), (port, hello, got)
        if hello is None:
            # No EHLO after XCLIENT: nothing says PIPELINING holds.
            assert got.count(b"EHLO") == 1, got


@test
def mx_backend_pipelining_refused_mail():
    """MAIL refused, RCPT's reply in the same segment: the client gets
    the MAIL's refusal alone (proxy_pass_error_message on), as when RCPT
    waited for it, or the internal error (off)."""
    for port, want in (("mx_pem", b"550 5.7.1 <s@example.org>: Sender "
                        b"address rejected\r\n"), ("mx", INTERNAL)):
        with NoFdGrowth():
            with smtp_conn(PORT[port]) as c:
                c.cmd(b"EHLO " + CLIENT_HELO.encode(), b"250 mx.test\r\n")
                c.cmd(b"MAIL FROM:<s@example.org>", OK)
                c.send(b"RCPT TO:<mailno@example.test>\r\n")
                eq(c.eof(), want, port)


@test
def mx_postfix_without_pipelining():
    """Postfix without PIPELINING (smtpd_discard_ehlo_keywords): the
    session goes through and the mail is delivered.  That RCPT waited
    for MAIL's reply the "nopipe" fake checks (mx_backend_pipelining):
    Postfix 3.7 does not refuse a pipelined MAIL and RCPT."""
    msg, mid = new_message("mx no pipelining", "carol@example.test")
    with smtp_conn(PORT["mx"]) as c:
        c.cmd(b"EHLO " + CLIENT_HELO.encode(), b"250 mx.test\r\n")
        c.cmd(b"MAIL FROM:<s@example.org>", OK)
        c.send(b"RCPT TO:<carol@example.test>\r\n")
        r = c.reply(timeout=30)
        assert r.startswith(b"250 "), "RCPT answered by Postfix: %r" % r
        c.send(b"DATA\r\n")
        assert c.reply().startswith(b"354 ")
        c.send(stuffed(msg))
        assert c.reply(timeout=60).startswith(b"250 ")
        quit_(c)
    check_delivery("carol@example.test", msg, mid)
    PF.clear("carol@example.test")


@test
def mx_split_at_every_byte():
    msg, mid = new_message("mx split", "bob@example.test")
    data = (b"EHLO " + CLIENT_HELO.encode() + b"\r\n"
            b"MAIL FROM:<s@example.org>\r\n"
            b"RCPT TO:<bob@example.test>\r\n")
    with smtp_conn(PORT["mx"], nodelay=True) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.002)
        eq(c.reply(), b"250 mx.test\r\n", "EHLO")
        eq(c.reply(), OK, "MAIL")
        r = c.reply(timeout=30)
        assert r.startswith(b"250 "), "RCPT: %r" % r
        rest = b"DATA\r\n" + stuffed(msg) + b"QUIT\r\n"
        for i in range(len(rest)):
            c.send(rest[i:i + 1])
            time.sleep(0.001)
        assert c.reply().startswith(b"354 ")
        assert c.reply(timeout=60).startswith(b"250 ")
        assert c.reply().startswith(b"221 ")
        c.eof()
    check_delivery("bob@example.test", msg, mid)


@test
def mx_lf_line_ends():
    with smtp_conn(PORT["mx"]) as c:
        c.send(b"HELO " + CLIENT_HELO.encode() + b"\n")
        eq(c.line(), b"250 mx.test\r\n")
        c.send(b"NOOP\n")
        eq(c.line(), OK)


@test
def auth_failure_then_bad_base64_then_mail():
    """Reference 3.3 (1.29.1): MAIL discards credentials of earlier failed
    AUTHs; the RCPT-time request carries empty Auth-User/Auth-Pass."""
    mark = len(_records(AS_WAIT))
    with smtp_conn(PORT["mx_wait"]) as c:
        c.cmd(b"EHLO " + CLIENT_HELO.encode(),
              b"250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n")
        c.send(b"AUTH PLAIN " + b64("\0alice\0wrong") + b"\r\n")
        eq(c.line(timeout=10), b"535 5.7.0 " + HTTP_FAIL + b"\r\n",
           "failure with Auth-Wait")
        c.cmd(b"AUTH LOGIN", USERNAME)
        c.cmd(b64("alice"), PASSWORD)
        c.cmd(b"!!!not base64!!!", INVALID, "bad base64")
        c.cmd(b"MAIL FROM:<s@example.org>", OK)
        c.send(b"RCPT TO:<alice@example.test>\r\n")
        r = c.reply(timeout=15)
        assert r.startswith(b"250 "), "RCPT: %r" % r
        c.send(b"QUIT\r\n")
        assert c.reply().startswith(b"221 ")
    recs = AS_WAIT.records()[mark:]
    assert len(recs) >= 2, recs
    eq(header(recs[0], "Auth-Method"), "plain")
    eq(header(recs[0], "Auth-User"), "alice")
    r = recs[-1]
    eq(header(r, "Auth-Method"), "none")
    eq(header(r, "Auth-User"), "", "Auth-User after MAIL")
    eq(header(r, "Auth-Pass"), "", "Auth-Pass after MAIL")
    eq(header(r, "Auth-SMTP-From"), "MAIL FROM:<s@example.org>")
    eq(header(r, "Auth-SMTP-To"), "RCPT TO:<alice@example.test>")


def _records(a):
    return a.records()


# ==========================================================================
# Errors, limits, misbehaving backends

@test
def max_errors():
    with NoFdGrowth():
        with smtp_conn(PORT["maxerr"]) as c:
            for _ in range(5):          # not counted
                c.cmd(b"VRFY x", INVALID)
            c.cmd(b"NOOP", OK)
            c.cmd(b"FOO", INVALID)
            c.cmd(b"BARR x", INVALID)
            c.cmd(b"XCLIENT ADDR=1.2.3.4", INVALID)
            c.expect_eof(what="closed at max_errors 3")


@test
def client_buffer_overflow():
    with NoFdGrowth():
        with smtp_conn(PORT["buf"]) as c:
            c.send(b"NOOP " + b"a" * (1024 - 5))    # fills 1k, no LF
            eq(c.eof(), INVALID, "too long command")
        with smtp_conn(PORT["buf"]) as c:
            c.cmd(b"NOOP " + b"a" * 900, OK, "a command that fits")


@test
def one_mib_line():
    with NoFdGrowth():
        for srv in ("sub_http", "mx"):
            with smtp_conn(PORT[srv]) as c:
                try:
                    c.send(b"A" * (1 << 20) + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                got = c.eof(timeout=15)
                assert got in (b"", INVALID), got


@test
def nul_bytes():
    with NoFdGrowth():
        with smtp_conn(PORT["sub_http"]) as c:
            c.cmd(b"NO\0OP", INVALID, "NUL in the verb")
            c.cmd(b"\0\0\0\0", INVALID, "NULs only")
            c.cmd(b"NOOP", OK, "still served")
        with smtp_conn(PORT["sub_http"]) as c:
            c.send(b"AUTH PLAIN " + b64("\0alice\0sec\0ret") + b"\r\n")
            r = c.line()
            assert r.startswith((b"535 ", b"500 ", b"501 ")), r


@test
def backend_refuses_xclient():
    with NoFdGrowth():
        with smtp_conn(PORT["sub_http"]) as c:
            c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["sub_http"])
            c.send(b"AUTH PLAIN " + b64("\0nox\0pw") + b"\r\n")
            eq(c.eof(), INTERNAL, "proxy_pass_error_message off")
        with smtp_conn(PORT["pem"]) as c:
            c.send(b"AUTH PLAIN " + b64("\0nox\0pw") + b"\r\n")
            eq(c.eof(), INSUFFICIENT, "proxy_pass_error_message on")


@test
def backend_closes_mid_dialogue():
    with NoFdGrowth():
        for srv in ("sub_http", "pem"):
            with smtp_conn(PORT[srv]) as c:
                c.send(b"AUTH PLAIN " + b64("\0fclose\0pw") + b"\r\n")
                eq(c.eof(), INTERNAL, "backend EOF on " + srv)


# ==========================================================================
# proxy_smtp_auth: the proxy logs in to Postfix with real SASL (Dovecot)

def sasl_log(pf, received, timeout=10):
    """(method, user) of Postfix's log line for the queue id in a
    Received header: "<id>: client=..., sasl_method=M, sasl_username=U"."""
    m = re.search(rb" id ([0-9A-F]+)", received)
    assert m, "queue id in %r" % received
    qid = m.group(1).decode()
    pat = re.compile(r"\b%s: client=.*, sasl_method=(\w+), "
                     r"sasl_username=(\S+)" % qid)

    def find():
        m = pat.search(pf.logtext())
        return m and m.groups()
    return wait_for(find, timeout=timeout,
                    what="Postfix's SASL log line for " + qid)


def check_sasl_delivery(server, rcpt, msg, mid, sasl_user, method, helo,
                        esmtp):
    """Delivered byte for byte by PF_SASL to an authenticated client:
    Received says "Authenticated sender" (and ESMTPA after EHLO); with
    XCLIENT it also shows the client's address and name."""
    got = delivered(rcpt, mid, pf=PF_SASL)
    eq(Postfix.stored_message(got), msg.replace(b"\r\n", b"\n"),
       "message as stored by Postfix")
    rec = Postfix.received(got)
    if PORT_XCLIENT[server]:
        want = b"Received: from %s (%s [%s])" % (
            (helo or CLIENT_NAME).encode(), CLIENT_NAME.encode(),
            CLIENT_ADDR.encode())
    else:
        # The backend sees the proxy: its HELO and address.
        want = b"Received: from mx.test (unknown [127.0.0.1])"
    assert rec.startswith(want), "Received: %r, want %r" % (rec, want)
    assert b"(Authenticated sender: %s)" % sasl_user.encode() in rec, rec
    # RFC 3848's ESMTPA after EHLO; HELO has no such variant.
    proto = b"ESMTPA" if esmtp else b"SMTP"
    assert b" with %s id " % proto in rec, (rec, proto)
    eq(sasl_log(PF_SASL, rec), (method, sasl_user), "Postfix's SASL login")


PORT_XCLIENT = {"psa": True, "psa_pem": True, "psa_noxc": False,
                "psa_pem_noxc": False}


def _sasl_submission(server, hello, mech, user, sasl_user, method):
    """A client with HELO, EHLO or neither logs in to the proxy with
    mech; the proxy logs in to Postfix as the auth server's Auth-User
    with its Auth-Pass; Postfix, which relays for SASL clients only,
    takes the message."""
    def fn():
        mark = AS.mark()
        rcpt = "bob@example.test" if sasl_user == "alice" else \
            "alice@example.test"
        with smtp_conn(PORT[server]) as c:
            helo = None
            if hello == "EHLO":
                helo = CLIENT_HELO
                c.cmd(b"EHLO " + helo.encode(), EHLO_WANT["e_default"])
            elif hello == "HELO":
                helo = CLIENT_HELO
                c.cmd(b"HELO " + helo.encode(), b"250 mx.test\r\n")
            MECHS[mech](c, user, SASL_CLIENT_PW)
            msg, mid = new_message("sasl %s %s %s" % (server, hello, mech),
                                   rcpt)
            send_mail(c, "%s@example.test" % sasl_user, rcpt, msg)
            quit_(c)
        check_sasl_delivery(server, rcpt, msg, mid, sasl_user, method, helo,
                            hello == "EHLO")
        recs = AS.since(mark)
        eq(len(recs), 1, "one auth request")
        eq(header(recs[0], "Auth-User"), user)
        eq(header(recs[0], "Auth-Pass"), SASL_CLIENT_PW)
    fn.__name__ = "sasl_%s_%s_%s_%s" % (server, hello.lower(), mech,
                                        method.lower())
    return fn


# Postfix offering PLAIN and LOGIN: the proxy uses PLAIN.  Postfix
# offering LOGIN only: the proxy uses LOGIN.  xclient on and off, the
# client with EHLO, HELO or neither, each client mechanism.
for _args in (("psa", "EHLO", "plain_ir", "sasl", "alice", "PLAIN"),
              ("psa", "HELO", "login", "sasl", "alice", "PLAIN"),
              ("psa", "none", "plain", "sasl", "alice", "PLAIN"),
              ("psa_noxc", "EHLO", "login_ir", "sasl", "alice", "PLAIN"),
              ("psa_noxc", "HELO", "plain_ir", "sasl", "alice", "PLAIN"),
              ("psa_noxc", "none", "login", "sasl", "alice", "PLAIN"),
              ("psa", "EHLO", "login", "sasllogin", "bob", "LOGIN"),
              ("psa", "HELO", "plain_ir", "sasllogin", "bob", "LOGIN"),
              ("psa", "none", "login_ir", "sasllogin", "bob", "LOGIN"),
              ("psa_noxc", "EHLO", "plain", "sasllogin", "bob", "LOGIN")):
    test(_sasl_submission(*_args))


@test
def sasl_pipelined_and_swaks():
    """EHLO, AUTH, MAIL, RCPT and DATA in one packet reach a LOGIN-only
    Postfix through the proxy's LOGIN dialogue (xclient off); swaks,
    pipelining, submits through proxy_smtp_auth with xclient on."""
    msg, mid = new_message("sasl one packet", "alice@example.test")
    with smtp_conn(PORT["psa_noxc"], nodelay=True) as c:
        c.send(b"EHLO " + CLIENT_HELO.encode() + b"\r\nAUTH PLAIN " +
               b64("\0sasllogin\0" + SASL_CLIENT_PW) +
               b"\r\nMAIL FROM:<bob@example.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
        c.expect(EHLO_WANT["e_default"] + AUTH_OK, "EHLO and AUTH")
        assert c.reply().startswith(b"250 "), "MAIL"
        assert c.reply().startswith(b"250 "), "RCPT"
        assert c.reply().startswith(b"354 "), "DATA"
        c.send(stuffed(msg))
        assert c.reply().startswith(b"250 "), "end of data"
        quit_(c)
    check_sasl_delivery("psa_noxc", "alice@example.test", msg, mid, "bob",
                        "LOGIN", None, True)
    swaks = shutil.which("swaks")
    assert swaks, "swaks not installed (contrib/install-deps.sh)"
    mid = "<swaks.sasl.%d@client.test>" % os.getpid()
    r = subprocess.run(
        [swaks, "--server", "127.0.0.1", "--port", str(PORT["psa"]),
         "--local-interface", CLIENT_ADDR, "--helo", CLIENT_HELO,
         "--from", "alice@example.test", "--to", "bob@example.test",
         "--auth", "LOGIN", "--auth-user", "sasl",
         "--auth-password", SASL_CLIENT_PW, "--pipeline",
         "--header", "Message-ID: " + mid, "--body", "swaks with SASL"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "swaks: exit %d\n%s" % (
        r.returncode, r.stdout[-2000:] + r.stderr[-500:])
    got = delivered("bob@example.test", mid.encode(), pf=PF_SASL)
    rec = Postfix.received(got)
    assert rec.startswith(b"Received: from %s (%s [%s]) (Authenticated "
                          b"sender: alice)" % (
                              CLIENT_HELO.encode(), CLIENT_NAME.encode(),
                              CLIENT_ADDR.encode())), rec
    eq(sasl_log(PF_SASL, rec), ("PLAIN", "alice"), "Postfix's SASL login")
    assert b"\nswaks with SASL\n" in got, got[-300:]


@test
def sasl_postfix_direct():
    """PF_SASL on its own: nobody may send without SASL, even with
    XCLIENT from loopback; its PLAIN+LOGIN smtpd takes the Dovecot
    users' passwords and no others; its second smtpd offers LOGIN only
    and refuses AUTH PLAIN."""
    r = _direct(PF_SASL.port, [
        b"EHLO mx.test", b"XCLIENT ADDR=%s NAME=%s" % (
            CLIENT_ADDR.encode(), CLIENT_NAME.encode()),
        b"EHLO h", b"MAIL FROM:<a@example.org>", b"RCPT TO:<bob@example.test>"])
    assert b"250-AUTH PLAIN LOGIN\r\n" in r[1], r[1]
    assert r[2].startswith(b"220 "), "XCLIENT: %r" % r
    assert r[5].startswith(b"554 5.7.1 "), "unauthenticated RCPT: %r" % r
    plain = b"AUTH PLAIN " + b64("\0alice\0" + SASL_USERS["alice"])
    r = _direct(PF_SASL.port, [b"EHLO h", plain])
    assert r[2].startswith(b"235 "), r
    r = _direct(PF_SASL.port, [b"EHLO h", b"AUTH PLAIN " + b64(
        "\0alice\0" + SASL_CLIENT_PW)])
    assert r[2].startswith(b"535 5.7.8 "), r
    r = _direct(PF_SASL.extra_ports[0], [
        b"EHLO h", plain, b"AUTH LOGIN", b64("bob"),
        b64(SASL_USERS["bob"])])
    assert b"250-AUTH LOGIN\r\n" in r[1], r[1]
    assert r[2].startswith(b"535 5.7.8 "), "PLAIN on the LOGIN-only smtpd"
    eq(r[3:6], [USERNAME, PASSWORD, r[5]], "LOGIN dialogue")
    assert r[5].startswith(b"235 "), r


@test
def sasl_needed_without_proxy_smtp_auth():
    """The controls, without proxy_smtp_auth.  With xclient off the
    client gets the proxy's 235 but Postfix, never authenticated,
    refuses the recipient.  With xclient on, Postfix takes XCLIENT
    LOGIN (the auth server's Auth-User) from its authorized XCLIENT
    host as the SASL login, and relays."""
    with smtp_conn(PORT["noxc"]) as c:
        c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["e_default"])
        auth_plain_ir(c, "sasl", SASL_CLIENT_PW)
        c.cmd(b"MAIL FROM:<alice@example.test>", b"250 2.1.0 Ok\r\n")
        c.send(b"RCPT TO:<bob@example.test>\r\n")
        r = c.reply()
        assert r.startswith(b"554 5.7.1 "), "RCPT: %r" % r
        quit_(c)
    with smtp_conn(PORT["sub_http"]) as c:
        c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["sub_http"])
        auth_plain_ir(c, "sasl", SASL_CLIENT_PW)
        msg, mid = new_message("xclient login", "bob@example.test")
        send_mail(c, "alice@example.test", "bob@example.test", msg)
        quit_(c)
    rec = Postfix.received(delivered("bob@example.test", mid, pf=PF_SASL))
    assert b"(Authenticated sender: alice)" in rec, rec


@test
def sasl_backend_dialogue():
    """What the backend receives (fakes offering AUTH): with xclient on,
    XCLIENT without LOGIN, the client's EHLO, then AUTH with the auth
    server's Auth-User and Auth-Pass; with xclient off EHLO then AUTH.
    PLAIN when offered, LOGIN when only LOGIN is."""
    plain = b"AUTH PLAIN " + b64("\0b user\0b pw") + b"\r\n"
    login = b"AUTH LOGIN\r\n" + b64("b user") + b"\r\n" + b64("b pw") + \
        b"\r\n"
    xcl = b"XCLIENT ADDR=%s NAME=%s\r\nEHLO %s\r\n" % (
        CLIENT_ADDR.encode(), CLIENT_NAME.encode(), CLIENT_HELO.encode())
    for server, user, fake, want in (
            ("psa", "fauth", "auth", xcl + plain),
            ("psa", "fauthlogin", "authlogin", xcl + login),
            ("psa_noxc", "fauth", "auth", plain),
            ("psa_noxc", "fauthlogin", "authlogin", login)):
        FAKES[fake].clear()
        with smtp_conn(PORT[server]) as c:
            c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["e_default"])
            auth_login(c, user, SASL_CLIENT_PW)
            c.cmd(b"NOOP", b"250 2.0.0 Ok\r\n", "NOOP relayed to the backend")
            quit_(c)
        eq(FAKES[fake].last(),
           b"EHLO mx.test\r\n" + want + b"NOOP\r\nQUIT\r\n",
           "%s to the %s backend" % (server, fake))


@test
def sasl_wrong_backend_password():
    """The auth server accepts the client but answers with a password
    Postfix's SASL refuses: the client gets 451 4.3.2, or Postfix's 535
    under proxy_pass_error_message, and the connection ends; over PLAIN
    and over LOGIN (the LOGIN-only smtpd); no descriptor left behind."""
    fails = PF_SASL.logtext().count("authentication failed")
    with NoFdGrowth():
        # Each failure costs half a second in Dovecot (its failure
        # timer): each server once, each of PLAIN and LOGIN twice.
        for server, user in (("psa", "saslbad"), ("psa_noxc", "sasllogbad"),
                             ("psa_pem", "sasllogbad"),
                             ("psa_pem_noxc", "saslbad")):
            with smtp_conn(PORT[server]) as c:
                c.cmd(b"EHLO " + CLIENT_HELO.encode(),
                      EHLO_WANT["e_default"])
                c.send(b"AUTH PLAIN " + b64("\0%s\0%s" % (
                    user, SASL_CLIENT_PW)) + b"\r\n")
                got = c.eof()
            what = "%s %s" % (server, user)
            if "pem" in server:
                assert re.match(rb"^535 5\.7\.8 Error: authentication "
                                rb"failed: [^\r\n]*\r\n$", got), \
                    "%s: %r" % (what, got)
            else:
                eq(got, INTERNAL, what)
    wait_for(lambda: PF_SASL.logtext().count("authentication failed") >=
             fails + 4, what="Postfix's 4 SASL failures")
    log = PF_SASL.logtext()
    assert "SASL PLAIN authentication failed" in log
    assert "SASL LOGIN authentication failed: (reason unavailable), " \
           "sasl_username=bob" in log
    with smtp_conn(PORT["psa"]) as c:
        auth_plain_ir(c, "sasl", SASL_CLIENT_PW)
        quit_(c)


# ==========================================================================
# Volume

@test
def ten_mb_message():
    msg = big_message(10 * 1024 * 1024, subject="ten megabytes")
    m = re.search(rb"Message-ID: (<[^>]+>)", msg)
    mid = m.group(1)
    with smtp_conn(PORT["sub_http"], timeout=120) as c:
        c.cmd(b"EHLO " + CLIENT_HELO.encode(), EHLO_WANT["sub_http"])
        auth_plain_ir(c, "alice", ALICE_PW)
        send_mail(c, "alice@example.org", "carol@example.test", msg)
        quit_(c)
    got = delivered("carol@example.test", mid, timeout=120)
    stored = Postfix.stored_message(got)
    want = msg.replace(b"\r\n", b"\n")
    eq(len(stored), len(want), "size as stored")
    assert stored == want, "10 MB message altered"
    PF.clear("carol@example.test")


@test
def concurrent_200_submissions():
    PF.clear("alice@example.test")
    n = 200
    errors = []
    mids = []
    lock = threading.Lock()

    def one(i):
        try:
            msg, mid = new_message("concurrent %d" % i, "alice@example.test")
            with lock:
                mids.append(mid)
            with smtp_conn(PORT["sub_http" if i % 2 else "sub_cdb"],
                           timeout=60) as c:
                c.send(b"EHLO c%d\r\n" % i)
                c.reply()
                MECHS[("plain_ir", "login", "cram_md5")[i % 3]](
                    c, "alice", ALICE_PW)
                send_mail(c, "s%d@example.org" % i, "alice@example.test",
                          msg)
                quit_(c)
        except Exception as e:  # noqa
            with lock:
                errors.append("%d: %r" % (i, e))
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not errors, "%d failed: %s" % (len(errors), errors[:5])
    wait_for(lambda: len(PF.messages("alice@example.test")) >= n,
             timeout=90, what="%d deliveries" % n)
    got = PF.messages("alice@example.test")
    eq(len(got), n, "messages delivered")
    for mid in mids:
        assert any(b"\nMessage-ID: " + mid + b"\n" in m for m in got), mid


# ==========================================================================

def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    return run_suite(TESTS, setup, teardown, "mailproxyd and Postfix",
                     ensure_daemon, lambda: D)


if __name__ == "__main__":
    sys.exit(main())
