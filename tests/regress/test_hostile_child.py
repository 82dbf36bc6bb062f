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
"""End-to-end tests of a compromised worker: this suite plays one.  It
takes a duplicate of a real worker's end of a channel (pidfd_getfd(2),
which needs ptrace rights over the worker: root here, never the daemon
itself) and writes on it what the worker could write: a malformed imsg
header, an unknown message type, a payload of the wrong size, a flood of
log lines.  The channels are the worker's to the parent, to the auth
process and to the key process; ss(8) tells which descriptor is which.

What must hold (mailproxyd(8), SECURITY; DESIGN section 2): the parent
and the listeners stay up, the offending worker is killed and replaced
when it wrote to the parent, the auth and key processes drop only that
worker's channel and the parent gives it a new one, logins work again at
once, each drop is logged at alert with the worker's pid.  A worker
holds no writable descriptor on the error log; its lines are written by
the parent, with its pid, escaped, and bounded in volume.

Real components: Dovecot as the IMAP backend, the reference auth server
(contrib/auth-server), imaplib as the client, openssl for the
certificate.

Run as root.  Python 3 standard library only.
Usage: test_hostile_child.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import imaplib
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mpd import (AuthServer, Daemon, TMP, TOP, alive, free_port,  # noqa: E402
                 run_tests, socket_inodes, steal_fd, wait_for)
from dovecot import Dovecot  # noqa: E402

BINARY = None
TESTS = []
DC = None           # Dovecot
AS = None           # the auth server
SLOW = None         # the auth server that answers after SLOW_DELAY
CERT = None         # (certificate, key)
SLOW_DELAY = 4
ALICE_PW = "s3cret"
IMAP_INTERNAL = b"* BAD internal server error\r\n"


def test(fn):
    TESTS.append(fn)
    return fn


def imsg_types():
    """enum imsg_type of mailproxyd.h: {name: value}."""
    with open(os.path.join(TOP, "bin", "mailproxyd", "mailproxyd.h")) as f:
        text = f.read()
    body = text[text.index("enum imsg_type {"):]
    body = body[:body.index("};")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = re.findall(r"\b(IMSG_[A-Z0-9_]+)\b", body)
    return {n: i for i, n in enumerate(names)}


T = imsg_types()
HDR = struct.Struct("=IIIII")           # struct imsg_hdr
LOGLINE = struct.Struct("=iIQiI")        # struct child_logline
LOG_LVL_CRIT = 3


def imsg(typ, payload=b"", length=None):
    """One message as a worker would write it; length: a header's lie."""
    n = HDR.size + len(payload) if length is None else length
    return HDR.pack(typ, n, 0, 0, 0) + payload


def log_imsg(text, level=LOG_LVL_CRIT):
    return imsg(T["IMSG_CHILD_LOG"],
                LOGLINE.pack(level, 0, 0, -1, 0) + text + b"\0")


# What each channel gets: a header shorter than a header, a type no
# process knows, and a known type with a payload of the wrong size.
def hostile(short_type):
    return [("bad header", imsg(0, length=4), "bad header"),
            ("unknown type", imsg(9999), "unexpected message"),
            ("short payload", imsg(T[short_type], b"abc"), None)]


# --------------------------------------------------------------------------
# The daemon and its processes

def body(port, tls_port, slow_port):
    crt, key = CERT
    return ("    server {\n"
            "        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n"
            "        auth_http 127.0.0.1:%d/auth;\n"
            "    }\n"
            "    server {\n"
            "        listen 127.0.0.1:%d ssl;\n"
            "        protocol imap;\n"
            "        ssl_certificate %s;\n"
            "        ssl_certificate_key %s;\n"
            "        auth_http 127.0.0.1:%d/auth;\n"
            "    }\n"
            "    server {\n"
            "        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n"
            "        auth_http 127.0.0.1:%d/auth;\n"
            "    }\n" % (port, AS.port, tls_port, crt, key, AS.port,
                         slow_port, SLOW.port))


class Proxy:
    """One daemon with one worker, so that every login meets the worker
    the test attacked (or its replacement)."""

    def __init__(self, name, workers=1, daemonize=False, args=()):
        self.port, self.tls_port, self.slow_port = \
            free_port(), free_port(), free_port()
        b = body(self.port, self.tls_port, self.slow_port)
        self.d = Daemon(BINARY, b, workers=workers, name=name)
        if daemonize:
            self.d.write(None, raw=self.d.text(b).replace(
                "daemon off;", "daemon on;"))
        self.d.start(args=args)

    def stop(self):
        self.d.stop()

    def children(self, what):
        from mpd import children
        return sorted(p for p, c in children(self.d.pid).items()
                      if what in c)

    def worker(self):
        w = self.children("worker process")
        assert len(w) == 1, w
        return w[0]

    def auth(self):
        (a,) = self.children("auth process")
        return a

    def key(self):
        (k,) = self.children("key process")
        return k


def unix_peers():
    """{inode: peer inode} of every connected unix socket (ss -x)."""
    out = subprocess.run(["ss", "-xanH"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=10,
                         check=True).stdout.decode()
    peers = {}
    for line in out.splitlines():
        f = line.split()
        # Netid State Recv-Q Send-Q Local Port Peer Port
        if len(f) >= 8 and f[5].isdigit() and f[7].isdigit():
            peers[int(f[5])] = int(f[7])
    return peers


def channel_fd(worker, other):
    """The descriptor of worker's end of its channel to process other
    (once both hold their ends of it)."""
    def one():
        mine = socket_inodes(worker)
        theirs = socket_inodes(other)
        peers = unix_peers()
        found = [fd for ino, fd in mine.items()
                 if peers.get(ino) in theirs]
        return found[0] if len(found) == 1 else None
    return wait_for(one, timeout=10, what="channel %d <-> %d"
                    % (worker, other))


def attack(pid, fd, data):
    """Write data on a duplicate of pid's descriptor fd, as pid could."""
    s = socket.socket(fileno=steal_fd(pid, fd))
    try:
        s.settimeout(10)
        s.sendall(data)
    finally:
        s.close()


def writable_log_fds(pid, path):
    """pid's descriptors on the file path that are open for writing."""
    st = os.stat(path)
    out = []
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            fst = os.stat(os.path.join(d, fd))
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                info = dict(l.split(":", 1) for l in f if ":" in l)
        except OSError:
            continue
        if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            continue
        if int(info["flags"].strip(), 8) & (os.O_WRONLY | os.O_RDWR):
            out.append(int(fd))
    return out


# --------------------------------------------------------------------------
# Clients

def login(port, use_tls=False):
    """A full IMAP login through the proxy to Dovecot, and a SELECT."""
    if use_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx,
                              timeout=10)
    else:
        c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        typ, _ = c.login("alice", ALICE_PW)
        assert typ == "OK", typ
        typ, _ = c.select("INBOX")
        assert typ == "OK", typ
    finally:
        try:
            c.logout()
        except Exception:  # noqa
            pass


def six_logins(p, use_tls=False):
    for i in range(6):
        try:
            login(p.tls_port if use_tls else p.port, use_tls)
        except Exception as e:  # noqa
            raise AssertionError("login %d of 6 failed: %r\nlog tail:\n%s"
                                 % (i + 1, e, p.d.logtext()[-3000:]))


def pending_login(port):
    """A LOGIN sent and not yet answered (the slow auth server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK"), "no greeting"
    s.sendall(b"a1 LOGIN alice " + ALICE_PW.encode() + b"\r\n")
    return s, f


# --------------------------------------------------------------------------
# The channel to the parent

@test
def parent_channel_malformed_kills_only_that_worker():
    """A malformed header, an unknown type and a short payload on a
    worker's parent channel: each time the parent logs an alert with
    the role and pid, kills that worker and starts another; the parent,
    the auth and key processes and the listeners stay; logins work."""
    p = Proxy("hparent")
    try:
        parent, auth, key = p.d.pid, p.auth(), p.key()
        for what, data, why in hostile("IMSG_CHILD_LOG"):
            w = p.worker()
            login(p.port)
            attack(w, 3, data)
            line = "[alert] %d#0: worker process %d sent a malformed " \
                "message (%s" % (parent, w, why or "IMSG_CHILD_LOG of 3")
            p.d.wait_log(line)
            wait_for(lambda: not alive(w), what="worker %d to die" % w)
            p.d.wait_log("worker process %d exited on signal 9" % w)
            nw = wait_for(lambda: [x for x in p.children("worker process")
                                   if x != w], what="a new worker")[0]
            p.d.wait_log("started worker process %d" % nw)
            assert alive(parent), what
            assert p.auth() == auth and p.key() == key, what
            # The listeners kept accepting: full logins, plain and TLS.
            six_logins(p)
            login(p.tls_port, True)
        assert "[emerg]" not in p.d.logtext(), p.d.logtext()
    finally:
        p.stop()


# --------------------------------------------------------------------------
# The channels to the auth and key processes

def peer_case(p, other, role, data, why, use_tls):
    w, parent = p.worker(), p.d.pid
    fd = channel_fd(w, other)
    # This case's lines, not an earlier case's of the same words.
    mark = len(p.d.logtext())
    attack(w, fd, data)
    line = "worker process %d (slot 0) sent a malformed message (%s" % (
        w, why)
    wait_for(lambda: line in p.d.logtext()[mark:], what=line)
    text = p.d.logtext()[mark:]
    assert ("[alert] %d#0: %s" % (other, line)) in text, text[-2000:]
    new = "new channel between worker process %d and the %s process %d" % (
        w, role, other)
    wait_for(lambda: new in p.d.logtext()[mark:], what=new)
    assert alive(parent) and alive(other) and alive(w)
    six_logins(p, use_tls)
    assert p.worker() == w


@test
def auth_channel_malformed_gets_a_new_channel():
    """The auth process drops the channel of a worker that sends it
    nonsense, logs it at alert with the worker's pid, and lives on; a
    login waiting on that channel gets the temporary-failure reply; the
    parent gives the worker a new channel, and the next 6 logins on it
    succeed."""
    p = Proxy("hauth")
    try:
        auth, key = p.auth(), p.key()
        for what, data, why in hostile("IMSG_AUTH_REQUEST"):
            login(p.port)
            s, f = pending_login(p.slow_port)
            try:
                # The request is with the auth process (and no longer in
                # the worker's socket, where our bytes could cut it).
                time.sleep(0.3)
                t0 = time.monotonic()
                peer_case(p, auth, "auth", data,
                          why or "bad IMSG_AUTH_REQUEST size", False)
                s.settimeout(SLOW_DELAY - 1)
                got = f.readline()
                assert got == IMAP_INTERNAL, (what, got)
                assert time.monotonic() - t0 < SLOW_DELAY - 1
            finally:
                f.close()
                s.close()
            assert p.auth() == auth and p.key() == key, what
    finally:
        p.stop()


# IMSG_AUTH_REQUEST's compact form (bin/mailproxyd/auth_http.h, struct
# auth_request_msg): the numbers and one uint16_t length per string (user,
# password, salt, client address, then 16 more), then the strings.
AUTH_REQUEST = struct.Struct("=QIiiiiiiiHHHH20H")


def auth_request(user=b"alice", salt=b"", lens=None):
    """An IMAP LOGIN's request; lens: {string index: the length to claim}."""
    strings = [user, b"s3cret", salt, b"127.0.0.1"] + [b""] * 16
    claimed = [len(x) for x in strings]
    for i, n in (lens or {}).items():
        claimed[i] = n
    return AUTH_REQUEST.pack(1, 1, 0, 1, 0, 0, 0, 0, 0, 50000, 0, 0, 0,
                             *claimed) + b"".join(strings)


@test
def auth_channel_lying_lengths():
    """Requests in the compact form whose lengths lie: more or fewer
    bytes than the payload holds, a string longer than its field (the
    user name's 1023 bytes), a NUL inside a text.  The auth process
    checks each exactly, drops that worker's channel, logs it at alert
    with the worker's pid and lives on; the worker gets a new channel
    and logs work at once.  A well-formed one is a login like any."""
    p = Proxy("hlen")
    try:
        auth, key = p.auth(), p.key()
        cases = [
            ("a user longer than the payload", auth_request(lens={0: 6}),
             "bad IMSG_AUTH_REQUEST size"),
            ("a password shorter", auth_request(lens={1: 5}),
             "bad IMSG_AUTH_REQUEST size"),
            ("bytes after the strings", auth_request() + b"x",
             "bad IMSG_AUTH_REQUEST size"),
            ("a user over its field", auth_request(user=b"u" * 1024),
             "malformed auth request"),
            ("a NUL in the salt", auth_request(salt=b"<1.2\0@x>"),
             "malformed auth request"),
        ]
        for what, payload, why in cases:
            login(p.port)
            peer_case(p, auth, "auth", imsg(T["IMSG_AUTH_REQUEST"],
                                            payload), why, False)
            assert p.auth() == auth and p.key() == key, what
        # The same layout, lengths true, is a request the process takes:
        # the channel stays (no new one) and the next login works.
        w = p.worker()
        mark = len(p.d.logtext())
        attack(w, channel_fd(w, auth), imsg(T["IMSG_AUTH_REQUEST"],
                                            auth_request()))
        time.sleep(0.5)
        login(p.port)
        assert "malformed" not in p.d.logtext()[mark:], \
            p.d.logtext()[mark:]
        assert p.worker() == w and p.auth() == auth
    finally:
        p.stop()


@test
def key_channel_malformed_gets_a_new_channel():
    """The same towards the key process: the channel is dropped and
    replaced, the key process lives on, TLS logins on the worker work."""
    p = Proxy("hkey")
    try:
        auth, key = p.auth(), p.key()
        for what, data, why in hostile("IMSG_KEY_OP"):
            login(p.tls_port, True)
            peer_case(p, key, "key", data, why or "bad IMSG_KEY_OP", True)
            assert p.auth() == auth and p.key() == key, what
    finally:
        p.stop()


@test
def repeated_drops_end_the_worker():
    """A worker that keeps sending nonsense to the auth process is
    killed by the parent after PEER_DROPS_MAX new channels (8) in a
    minute and replaced; the auth process stays."""
    p = Proxy("hrepeat")
    try:
        auth, w = p.auth(), p.worker()
        for i in range(8):
            attack(w, channel_fd(w, auth), imsg(9999))
            p.d.wait_log("new channel between worker process %d and the "
                         "auth process" % w)
            wait_for(lambda: p.d.logtext().count(
                "new channel between worker process %d" % w) == i + 1,
                what="channel %d" % (i + 1))
        attack(w, channel_fd(w, auth), imsg(9999))
        p.d.wait_log("worker process %d sent a malformed message (9 of its "
                     "channels dropped within 60 seconds)" % w)
        wait_for(lambda: not alive(w), what="worker to die")
        wait_for(lambda: p.children("worker process"), what="a new worker")
        assert p.auth() == auth
        six_logins(p)
    finally:
        p.stop()


# --------------------------------------------------------------------------
# The error log

def check_no_log_fds(p):
    path = p.d.log
    for w in p.children("worker process"):
        assert writable_log_fds(w, path) == [], w
        for fd in os.listdir("/proc/%d/fd" % w):
            try:
                assert not os.path.samefile("/proc/%d/fd/%s" % (w, fd),
                                            path), (w, fd)
            except FileNotFoundError:
                pass
    # The check does see such a descriptor where there is one.
    assert writable_log_fds(p.auth(), path), "auth holds no log fd?"


@test
def worker_holds_no_log_descriptor():
    """No worker holds a descriptor on the error log file, in the
    foreground (daemon off) and daemonized, where the parent's standard
    error is the log file; the worker's lines still reach the file,
    with the worker's pid."""
    p = Proxy("hfd", workers=2)
    try:
        check_no_log_fds(p)
        login(p.port)
        w = p.children("worker process")
        p.d.wait_log("client logged in")
        assert re.search(r"\[info\] (%s)#0: \*\d+ client logged in"
                         % "|".join(map(str, w)), p.d.logtext())
    finally:
        p.stop()

    q = Proxy("hfdd", workers=2, daemonize=True)
    try:
        check_no_log_fds(q)
        # The parent's stderr is the log file; a worker's is /dev/null.
        for w in q.children("worker process"):
            for fd in (1, 2):
                assert os.readlink("/proc/%d/fd/%d" % (w, fd)) == \
                    "/dev/null", (w, fd)
        login(q.port)
        q.d.wait_log("client logged in")
    finally:
        q.stop()


@test
def forged_lines_are_escaped_and_attributed():
    """A line a worker sends with a newline and a forged prefix stays on
    one line, escaped, under the worker's own pid."""
    p = Proxy("hforge")
    try:
        w = p.worker()
        attack(w, 3, log_imsg(b"hello\n2030/01/01 00:00:00 [emerg] 1#0: "
                              b"forged\x1b[2J end"))
        p.d.wait_log(" end\n")
        text = p.d.logtext()
        assert ("[crit] %d#0: hello\\x0A2030/01/01 00:00:00 [emerg] 1#0: "
                "forged\\x1B[2J end\n" % w) in text, text[-1000:]
        assert not any(l.startswith("2030/") for l in text.splitlines())
        assert alive(w)
    finally:
        p.stop()


@test
def log_flood_is_bounded():
    """20 MB of log lines from one worker: the file grows by about the
    burst (1 MiB) and the rate (256 KiB a second), the rest is dropped
    and counted in a note; the worker and the parent stay."""
    p = Proxy("hflood")
    try:
        w, parent = p.worker(), p.d.pid
        size0 = os.path.getsize(p.d.log)
        line = log_imsg(b"F" * 4000)
        n = 5000
        s = socket.socket(fileno=steal_fd(w, 3))
        t0 = time.monotonic()
        try:
            s.settimeout(30)
            for i in range(n):
                s.sendall(line)
        finally:
            s.close()
        note = wait_for(lambda: re.findall(
            r"\[warn\] %d#0: worker process %d logs more than 262144 bytes "
            r"a second: (\d+) lines dropped" % (parent, w), p.d.logtext()),
            timeout=10, what="the drop note")
        took = time.monotonic() - t0
        grown = os.path.getsize(p.d.log) - size0
        written = p.d.logtext().count("F" * 4000)
        print("  %d lines of 4000 bytes in %.2fs: %d written, %s dropped "
              "in %d notes, log grew %d bytes"
              % (n, took, written, "+".join(note), len(note), grown))
        allowed = 1024 * 1024 + 256 * 1024 * (took + 1)
        assert 200 <= written and grown <= allowed, (written, grown)
        assert written + sum(map(int, note)) == n, (written, note)
        assert alive(w) and alive(parent)
        login(p.port)
    finally:
        p.stop()


@test
def debug_mode_lines_unchanged():
    """With -d (the systemd unit's way) a worker's line reaches the
    parent's standard error as before: "worker: [error] ..."; without
    -d the same line is in the file with the worker's pid."""
    p = Proxy("hdebug", args=("-d",))
    try:
        w, a = p.worker(), p.auth()
        os.kill(a, signal.SIGKILL)
        wait_for(lambda: p.children("auth process") and
                 p.auth() != a, what="auth replacement")
        time.sleep(0.3)
        login(p.port)
        os.kill(p.d.pid, signal.SIGTERM)
        _, err = p.d.proc.communicate(timeout=10)
        err = err.decode(errors="replace")
        assert ("worker: [error] the auth process went away; waiting for "
                "its replacement\n") in err, err[-2000:]
        assert "parent: [alert] auth process %d exited on signal 9" % a \
            in err, err[-2000:]
    finally:
        p.stop()
    q = Proxy("hnodebug")
    try:
        w, a = q.worker(), q.auth()
        os.kill(a, signal.SIGKILL)
        q.d.wait_log("[error] %d#0: the auth process went away; waiting "
                     "for its replacement\n" % w)
    finally:
        q.stop()


# --------------------------------------------------------------------------

def setup():
    global DC, AS, SLOW, CERT
    os.makedirs(TMP, exist_ok=True)
    DC = Dovecot({"alice": ALICE_PW}, name="hc-dovecot")
    DC.start()
    users = "alice %s imap=127.0.0.1:%d\n" % (ALICE_PW, DC.imap_port)
    AS = AuthServer(users, name="hc")
    SLOW = AuthServer(users, "--delay", str(SLOW_DELAY), name="hcslow")
    d = tempfile.mkdtemp(prefix="hc-cert-", dir=TMP)
    os.chmod(d, 0o755)
    CERT = (os.path.join(d, "rsa.crt"), os.path.join(d, "rsa.key"))
    subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "30",
                    "-subj", "/CN=mx.test", "-newkey", "rsa:2048",
                    "-keyout", CERT[1], "-out", CERT[0]],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60, check=True)
    os.chmod(CERT[1], 0o600)


def teardown(keep=True):
    for x in (SLOW, AS, DC):
        if x is not None:
            try:
                x.stop()
            except Exception:  # noqa
                traceback.print_exc(file=sys.stdout)


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    return run_tests(TESTS, "takes descriptors of the daemon's processes",
                     setup, teardown)



if __name__ == "__main__":
    sys.exit(main())
