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
"""Runtime control and metrics (issue 13): mailproxyctl over the control
socket and the Prometheus endpoint of metrics_listen, with real sessions
through Dovecot (IMAP, POP3) and Postfix (SMTP, XCLIENT), logins checked
by the reference auth server, and the metrics read with Debian's
python3-prometheus-client text parser.

What is asserted is what mailproxyctl(8) and mailproxyd.conf(5) say: the
sessions listed with their user and backend, kick closing exactly the
sessions named (and logged), counters equal to the logins made, metrics
equal to "show stats", permission checks by peer credentials, pause and
resume, log verbose, reload through the socket, the socket file
replaced only when it is a socket, and bad input on the socket and on
the metrics listener changing nothing.

Run as root.  Usage: test_ctl.py DAEMON [name...]
Ends with the line "N passed, M failed"."""

import imaplib
import json
import os
import poplib
import re
import resource
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mpd import (alive, AuthServer, Daemon, free_port,  # noqa: E402
                 run_suite, subenv, TOP, wait_for)
from dovecot import Dovecot, make_message  # noqa: E402
from postfix import Postfix  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client, for a python3 not Debian's own.
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

CTL = os.path.join(TOP, "bin", "mailproxyctl", "mailproxyctl")
TMP = os.path.join(TOP, "tests", "tmp")
HEADER = os.path.join(TOP, "bin", "mailproxyd", "mailproxyd.h")

BINARY = None
TESTS = []
STARTED = []
D = None
DC = None
PF = None
AS = None
BODY = None
PORT = {}
METRICS = None
SOCK = None

PW = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


def test(fn):
    TESTS.append(fn)
    return fn


def imsg_types():
    """The imsg type numbers, read from the daemon's one enumeration."""
    with open(HEADER) as f:
        text = f.read()
    body = text[text.index("enum imsg_type {"):]
    body = body[:body.index("};")]
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = re.findall(r"\b(IMSG_[A-Z0-9_]+)\b", body)
    return {n: i for i, n in enumerate(names)}


T = imsg_types()


def ctl(*args, sock=None, check=True, timeout=20):
    r = subprocess.run([CTL, "-s", sock or SOCK] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("mailproxyctl %s: %d %s %s"
                             % (" ".join(args), r.returncode, r.stdout,
                                r.stderr))
    return r


def ctlj(*args, sock=None):
    return json.loads(ctl("-j", *args, sock=sock).stdout)


def imap_login(user, pw=None, port=None):
    c = imaplib.IMAP4("127.0.0.1", port or PORT["imap"], timeout=10)
    c.login(user, pw or PW[user])
    return c


def pop3_login(user, pw=None):
    c = poplib.POP3("127.0.0.1", PORT["pop3"], timeout=10)
    c.user(user)
    c.pass_(pw or PW[user])
    return c


def smtp_login(user):
    c = smtplib.SMTP("127.0.0.1", PORT["smtp"], timeout=10)
    c.ehlo("client.test")
    c.login(user, PW[user])
    return c


def imap_fail(user):
    c = imaplib.IMAP4("127.0.0.1", PORT["imap"], timeout=10)
    try:
        c.login(user, "wrong")
    except imaplib.IMAP4.error:
        pass
    else:
        raise AssertionError("login with a wrong password accepted")
    try:
        c.logout()
    except Exception:  # noqa
        pass


def closed(sock, timeout=5):
    """True once the peer closed the connection."""
    sock.settimeout(timeout)
    try:
        while True:
            d = sock.recv(4096)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def wait_sessions(pred, what):
    return wait_for(lambda: pred(ctlj("show", "sessions")["sessions"]),
                    timeout=10, what=what)


def totals(stats):
    p = stats["protocols"]
    return {k: sum(p[x][k] for x in ("imap", "pop3", "smtp"))
            for k in ("connections", "logins_ok", "logins_failed")}


def scrape(port=None, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s"
                                % (port or METRICS, path), timeout=10) as r:
        return r.read().decode()


def families(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = fam
    return out


def sample(fams, family, name, **labels):
    for s in fams[family].samples:
        if s.name == name and all(s.labels.get(k) == v
                                  for k, v in labels.items()):
            return s.value
    raise AssertionError("no sample %s %r" % (name, labels))


def raw_ctl(sock=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    deadline = time.monotonic() + 10
    while True:
        try:
            s.connect(sock or SOCK)
            return s
        except BlockingIOError:     # the listen queue is full: wait
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def imsg(typ, data=b"", peerid=0, length=None):
    n = 20 + len(data) if length is None else length
    return struct.pack("=IIIII", T[typ], n, peerid, os.getpid(), 0) + data


def read_answer(s):
    """The messages of one answer, up to IMSG_CTL_END: [(type, data)]."""
    buf = b""
    out = []
    while True:
        while len(buf) < 20 or len(buf) < struct.unpack("=I", buf[4:8])[0]:
            d = s.recv(65536)
            if not d:
                raise AssertionError("closed before the end: %r" % out)
            buf += d
        typ, n = struct.unpack("=II", buf[:8])
        out.append((typ, buf[20:n]))
        buf = buf[n:]
        if typ == T["IMSG_CTL_END"]:
            return out


def server_block(name, proto, lines):
    PORT[name] = free_port()
    return ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol %s;\n%s    }\n"
            % (PORT[name], proto, "".join("        %s;\n" % ln
                                           for ln in lines)))


def start_daemon():
    global D, SOCK, METRICS
    D = Daemon(BINARY, BODY, workers=2, name="ctl")
    SOCK = os.path.join(D.dir, "ctl.sock")
    METRICS = free_port()
    D.main_extra = ("control_socket %s;\nmetrics_listen 127.0.0.1:%d;\n"
                    "worker_rlimit_nofile 8192;\n"
                    "events {\n    worker_connections 4096;\n}\n"
                    % (SOCK, METRICS))
    D.write(BODY)
    D.start(env=subenv())


def ensure_daemon():
    if D is None or D.pid is None or not alive(D.pid):
        if D is not None:
            D.stop()
        start_daemon()


def setup():
    global DC, PF, AS, BODY
    os.makedirs(TMP, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)),
                                                hard))
    DC = Dovecot(dict(PW), name="ctl-dovecot")
    STARTED.append(DC.stop)
    DC.add_message("alice", make_message("hello", ["Hi alice."]))
    DC.start()
    PF = Postfix(["alice@example.test", "bob@example.test"],
                 name="ctl-postfix")
    STARTED.append(PF.stop)
    PF.start()
    PORT["closed"] = free_port()
    be = "imap=127.0.0.1:%d pop3=127.0.0.1:%d smtp=127.0.0.1:%d" % (
        DC.imap_port, DC.pop3_port, PF.port)
    users = "".join("%s %s %s\n" % (u, p, be) for u, p in PW.items())
    users += "refused pw imap=127.0.0.1:%d\n" % PORT["closed"]
    AS = AuthServer(users, name="ctl-as")
    STARTED.append(AS.stop)
    http = "auth_http 127.0.0.1:%d/auth" % AS.port
    BODY = (server_block("imap", "imap", [http]) +
            server_block("pop3", "pop3", [http]) +
            server_block("smtp", "smtp", [http, "smtp_auth plain login"]))
    start_daemon()


def teardown(keep=False):
    if D is not None:
        D.stop()
        if not keep:
            shutil.rmtree(D.dir, ignore_errors=True)
    for stop in reversed(STARTED):
        try:
            stop()
        except Exception:  # noqa
            pass


# ==========================================================================

@test
def test_sessions_listed():
    """Real sessions through Dovecot and Postfix appear in show sessions
    with their user, backend, protocol and state; the text output is a
    table whose columns line up."""
    i = imap_login("alice")
    p = pop3_login("bob")
    s = smtp_login("carol")
    try:
        def have(ss):
            got = {(x["protocol"], x["user"], x["backend"], x["state"])
                   for x in ss}
            return {("imap", "alice", "127.0.0.1:%d" % DC.imap_port,
                     "relay"),
                    ("pop3", "bob", "127.0.0.1:%d" % DC.pop3_port, "relay"),
                    ("smtp", "carol", "127.0.0.1:%d" % PF.port, "relay")
                    } <= got
        wait_sessions(have, "three sessions")
        ss = ctlj("show", "sessions")["sessions"]
        mine = [x for x in ss if x["user"] in ("alice", "bob", "carol")]
        pids = set(D.workers_now())
        for x in mine:
            assert x["pid"] in pids, (x, pids)
            assert x["client"].startswith("127.0.0.1:"), x
            assert x["local"] in ("127.0.0.1:%d" % PORT[x["protocol"]],), x
            assert x["tls"] is False and x["id"] > 0, x
        out = ctl("show", "sessions").stdout.splitlines()
        head = out[0]
        assert head.split() == ["ID", "PID", "PROTO", "CLIENT", "LOCAL",
                                "USER", "STATE", "BACKEND", "TLS", "IN",
                                "OUT", "AGE"], head
        col = head.index("USER")
        users = sorted(ln[col:].split()[0] for ln in out[1:])
        assert "alice" in users and "bob" in users and "carol" in users, out
        i.noop()
    finally:
        for c in (i, p, s):
            try:
                c.logout() if hasattr(c, "logout") else c.quit()
            except Exception:  # noqa
                pass


@test
def test_kick_user():
    """kick user closes every session of that user and no other, and
    the parent and the workers log it."""
    a1 = imap_login("alice")
    a2 = pop3_login("alice")
    b = imap_login("bob")
    try:
        wait_sessions(lambda ss: sum(x["user"] == "alice" for x in ss) == 2
                      and any(x["user"] == "bob" for x in ss),
                      "alice's and bob's sessions")
        r = ctl("kick", "user", "alice")
        assert r.stdout.strip() == "2 sessions closed", r.stdout
        assert closed(a1.sock) and closed(a2.sock)
        assert b.noop()[0] == "OK"
        ss = ctlj("show", "sessions")["sessions"]
        assert not any(x["user"] == "alice" for x in ss), ss
        assert any(x["user"] == "bob" for x in ss), ss
        D.wait_log('kick user "alice" by uid 0: 2 sessions closed')
        D.wait_log("session kicked through the control socket")
        assert "end=kicked" in D.logtext()
        r = ctl("kick", "user", "nobody-here")
        assert r.stdout.strip() == "0 sessions closed", r.stdout
    finally:
        b.logout()


@test
def test_kick_session():
    """kick session ID closes that session only."""
    a = imap_login("alice")
    b = imap_login("alice")
    try:
        ss = wait_sessions(lambda ss: [x for x in ss
                                       if x["user"] == "alice"
                                       and x["state"] == "relay"],
                           "alice's sessions")
        assert len(ss) == 2, ss
        victim = ss[0]["id"]
        assert ctlj("kick", "session", str(victim))["kicked"] == 1
        left = [x["id"] for x in ctlj("show", "sessions")["sessions"]
                if x["user"] == "alice"]
        assert left == [ss[1]["id"]], (left, ss)
        socks = [a, b]
        dead = [c for c in socks if closed(c.sock, timeout=1)]
        assert len(dead) == 1, dead
        D.wait_log("kick session %d by uid 0: 1 session closed" % victim)
        r = ctl("kick", "session", "abc", check=False)
        assert r.returncode == 1 and "session id" in r.stderr, r
    finally:
        for c in (a, b):
            try:
                c.logout()
            except Exception:  # noqa
                pass


@test
def test_counters_match_logins():
    """show stats counts exactly the connections, logins and failures
    made, per protocol and per listen, and the latency histogram counts
    every login; show summary has the same totals; show backends counts
    the connections to each backend and a refused one's failure."""
    before = ctlj("show", "stats")
    bb = {b["backend"]: b for b in ctlj("show", "backends")["backends"]}
    for _ in range(3):
        imap_login("alice").logout()
    for _ in range(2):
        pop3_login("bob").quit()
    smtp_login("carol").quit()
    for _ in range(2):
        imap_fail("alice")
    c = imaplib.IMAP4("127.0.0.1", PORT["imap"], timeout=10)
    try:
        c.login("refused", "pw")
    except imaplib.IMAP4.error:
        pass
    try:
        c.logout()
    except Exception:  # noqa
        pass
    after = wait_for(lambda: (lambda s: s if s["protocols"]["imap"]
                              ["connections"] >= before["protocols"]["imap"]
                              ["connections"] + 6 else None)(
                                  ctlj("show", "stats")), what="counters")
    bp, ap = before["protocols"], after["protocols"]
    for proto, conns, ok, bad in (("imap", 6, 3, 2), ("pop3", 2, 2, 0),
                                  ("smtp", 1, 1, 0)):
        assert ap[proto]["connections"] - bp[proto]["connections"] == conns
        assert ap[proto]["logins_ok"] - bp[proto]["logins_ok"] == ok, proto
        assert ap[proto]["logins_failed"] - bp[proto]["logins_failed"] == \
            bad, proto
        # Every login that ended counts once in the histogram.
        lat_a, lat_b = ap[proto]["login_latency"], bp[proto]["login_latency"]
        assert lat_a["count"] - lat_b["count"] == ok + bad, proto
        assert sum(x["count"] for x in lat_a["buckets"]) == lat_a["count"]
        lb = before["listens"]["127.0.0.1:%d" % PORT[proto]]
        la = after["listens"]["127.0.0.1:%d" % PORT[proto]]
        assert la["connections"] - lb["connections"] == conns, proto
        assert la["logins_ok"] - lb["logins_ok"] == ok, proto
    assert ap["imap"]["bytes_in"] > bp["imap"]["bytes_in"]
    assert ap["imap"]["bytes_out"] > bp["imap"]["bytes_out"]
    summ = ctlj("show", "summary")
    t = totals(after)
    assert summ["logins_ok"] == t["logins_ok"], (summ, t)
    assert summ["logins_failed"] == t["logins_failed"], (summ, t)
    assert summ["workers"] == 2 and summ["generation"] >= 1, summ
    ba = {b["backend"]: b for b in ctlj("show", "backends")["backends"]}
    dc = "127.0.0.1:%d" % DC.imap_port
    assert ba[dc]["connections"] - bb.get(dc, {"connections": 0})[
        "connections"] == 3, ba
    ref = "127.0.0.1:%d" % PORT["closed"]
    assert ba[ref]["failures"] - bb.get(ref, {"failures": 0})[
        "failures"] == 1, ba
    assert ba[ref]["last_error"] == "Connection refused", ba[ref]
    out = ctl("show", "backends").stdout
    assert re.search(r"^BACKEND\s+CONNECTIONS\s+FAILURES", out, re.M), out
    assert "Connection refused" in out
    out = ctl("show", "stats").stdout
    assert re.search(r"^imap\s+\d+\s+\d+\s+\d+", out, re.M), out
    assert "LOGIN-LATENCY" in out


@test
def test_metrics_agree():
    """The metrics page parses with prometheus_client's text parser and
    says what show stats says; login counters end in _total; the login
    latency is a histogram whose count is the logins'."""
    imap_login("alice").logout()
    stats = ctlj("show", "stats")
    summ = ctlj("show", "summary")
    fams = families(scrape())
    for proto in ("imap", "pop3", "smtp"):
        p = stats["protocols"][proto]
        assert sample(fams, "mailproxyd_logins", "mailproxyd_logins_total",
                      protocol=proto, result="ok") == p["logins_ok"]
        assert sample(fams, "mailproxyd_logins", "mailproxyd_logins_total",
                      protocol=proto, result="failed") == p["logins_failed"]
        assert sample(fams, "mailproxyd_connections",
                      "mailproxyd_connections_total",
                      protocol=proto) == p["connections"]
        assert sample(fams, "mailproxyd_client_bytes_received",
                      "mailproxyd_client_bytes_received_total",
                      protocol=proto) == p["bytes_in"]
        h = "mailproxyd_login_latency_seconds"
        assert fams[h].type == "histogram"
        assert sample(fams, h, h + "_count", protocol=proto) == \
            p["login_latency"]["count"]
        assert sample(fams, h, h + "_bucket", protocol=proto, le="+Inf") == \
            p["login_latency"]["count"]
        le = sample(fams, h, h + "_bucket", protocol=proto, le="0.005")
        assert le == p["login_latency"]["buckets"][0]["count"]
    for name, l in stats["listens"].items():
        assert sample(fams, "mailproxyd_listen_connections",
                      "mailproxyd_listen_connections_total",
                      listen=name) == l["connections"]
    assert fams["mailproxyd_logins"].type == "counter"
    assert sample(fams, "mailproxyd_workers", "mailproxyd_workers") == \
        summ["workers"]
    assert sample(fams, "mailproxyd_generation",
                  "mailproxyd_generation") == summ["generation"]
    # The process serving it: unprivileged, chrooted.
    mp = [p for p, c in __import__("mpd").children(D.pid).items()
          if "metrics process" in c]
    assert len(mp) == 1, mp
    st = open("/proc/%d/status" % mp[0]).read()
    assert re.search(r"^Uid:\s+65534\s", st, re.M), st
    assert os.readlink("/proc/%d/root" % mp[0]) == D.chroot


def http_raw(data, port=None, shut=True, timeout=10):
    s = socket.create_connection(("127.0.0.1", port or METRICS), timeout=5)
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass            # answered and closed before all was sent
        s.settimeout(timeout)
        out = b""
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            out += d
        return out
    finally:
        s.close()


@test
def test_metrics_bad_input():
    """Only GET /metrics is answered; other methods, paths, garbage,
    oversized and truncated requests get an error or nothing, and the
    endpoint and the daemon carry on unchanged."""
    before = scrape()
    assert http_raw(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(
        b"HTTP/1.1 405 ")
    assert http_raw(b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert http_raw(b"GET /metricsx HTTP/1.1\r\n\r\n").startswith(
        b"HTTP/1.1 404 ")
    assert http_raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n"
                    ).startswith(b"HTTP/1.1 400 ")
    assert http_raw(b"GET /metrics\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert http_raw(b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 9000 +
                    b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
    assert http_raw(b"GET /met") == b""          # truncated: closed
    assert http_raw(b"\0" * 100 + b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # Many at once, some idle: the page is still served.
    idle = [socket.create_connection(("127.0.0.1", METRICS))
            for _ in range(20)]
    try:
        assert http_raw(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").startswith(
            b"HTTP/1.1 200 ")
    finally:
        for s in idle:
            s.close()
    after = scrape()
    assert families(before).keys() == families(after).keys()


@test
def test_socket_bad_input():
    """Garbage, oversized, truncated and unknown messages, a descriptor,
    and two requests at once on the control socket drop only that
    client; the others, the sessions and the daemon are untouched."""
    keep = raw_ctl()
    a = imap_login("alice")
    try:
        cases = [
            b"\xff" * 64,                                    # garbage
            imsg("IMSG_CTL_SHOW_STATS", b"x" * 3000),        # too long
            imsg("IMSG_CTL_SHOW_STATS", b"y" * (65535 - 20)),  # largest
            struct.pack("=IIIII", 9999, 20, 0, 0, 0),        # unknown
            imsg("IMSG_CTL_KICK", b"\1\0\0\0"),              # truncated
            imsg("IMSG_CTL_LOG_VERBOSE", struct.pack("=i", 7)),
            imsg("IMSG_CTL_SHOW_STATS") * 2,                 # two at once
            struct.pack("=II", T["IMSG_CTL_SHOW_STATS"], 3),  # bad length
            imsg("IMSG_CTL_STATS_RECORD", b"\0" * 16),       # not a request
        ]
        for data in cases:
            s = raw_ctl()
            s.sendall(data)
            if len(data) < 20:
                s.shutdown(socket.SHUT_WR)
            assert closed(s), data[:40]
            s.close()
        # A descriptor with a request.
        s = raw_ctl()
        r, w = os.pipe()
        socket.send_fds(s, [imsg("IMSG_CTL_SHOW_STATS")], [r])
        os.close(r)
        os.close(w)
        assert closed(s)
        s.close()
        # A truncated request, then the client goes.
        s = raw_ctl()
        s.sendall(imsg("IMSG_CTL_SHOW_STATS")[:10])
        s.close()
        # The quiet client is still served, the session still relays.
        keep.sendall(imsg("IMSG_CTL_SHOW_STATS"))
        ans = read_answer(keep)
        assert any(t == T["IMSG_CTL_STATS_RECORD"] for t, _ in ans), ans
        assert a.noop()[0] == "OK"
        assert "dropping a client of uid 0" in D.logtext()
        summ = ctlj("show", "summary")
        assert summ["log_verbose"] is False, summ
    finally:
        keep.close()
        a.logout()


def as_nobody(path, gid=65534):
    """Connect as uid 65534 with primary group gid in a forked child;
    returns what it read after asking for the summary ("" when the
    daemon closed the connection without an answer)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(65534)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            s.sendall(imsg("IMSG_CTL_SHOW_STATS"))
            try:
                got = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                got = b""
            os.write(wfd, b"ok" if got else b"refused")
        except PermissionError:
            os.write(wfd, b"eacces")
        except (BrokenPipeError, ConnectionResetError):
            os.write(wfd, b"refused")
        except Exception as e:  # noqa
            os.write(wfd, repr(e).encode())
        os._exit(0)
    os.close(wfd)
    out = b""
    while True:
        d = os.read(rfd, 1024)
        if not d:
            break
        out += d
    os.close(rfd)
    os.waitpid(pid, 0)
    return out.decode()


def daemon_with(extra_fn, name):
    port = free_port()
    body = ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n    }\n" % port)
    d = Daemon(BINARY, body, workers=1, name=name)
    d.main_extra = extra_fn(d)
    d.write(body)
    d.body = body
    d.port = port
    return d


@test
def test_permissions():
    """The socket is 0660 root:group; a peer that is neither root nor in
    the control_socket group is refused (and logged), a member of the
    group is served; the group takes effect on reload, and the socket
    keeps working after it."""
    sock = [None]

    def extra(d):
        sock[0] = os.path.join(d.dir, "c.sock")
        return "control_socket %s;\n" % sock[0]
    d = daemon_with(extra, "ctlperm")
    try:
        d.start(env=subenv())
        st = os.stat(sock[0])
        assert oct(st.st_mode & 0o7777) == "0o660", oct(st.st_mode)
        assert (st.st_uid, st.st_gid) == (0, 0)
        # The mode keeps others out; with the mode opened, the daemon
        # still refuses them by their credentials.
        assert as_nobody(sock[0]) == "eacces"
        os.chmod(sock[0], 0o666)
        got = as_nobody(sock[0])
        assert got == "refused", got
        d.wait_log("refused a connection from uid 65534 gid 65534")
        # control_socket with a group, by reload through the socket.
        d.main_extra = "control_socket %s nogroup;\n" % sock[0]
        d.write(d.body)
        gen = ctlj("show", "summary", sock=sock[0])["generation"]
        assert ctl("reload", sock=sock[0]).stdout.strip() == "reloading"
        wait_for(lambda: ctlj("show", "summary", sock=sock[0])[
            "generation"] == gen + 1, what="generation after reload")
        st = os.stat(sock[0])
        assert st.st_gid == 65534 and st.st_mode & 0o7777 == 0o660
        assert as_nobody(sock[0]) == "ok"
        # Not in the group: refused.
        assert as_nobody(sock[0], gid=1) == "eacces"
        d.wait_log("control socket: reload requested by uid 0")
        # A configuration that does not parse: the reload fails, says
        # so, and the old socket serves on.
        d.write(None, raw="nonsense;\n")
        r = ctl("reload", sock=sock[0], check=False)
        assert r.returncode == 1 and "reload failed" in r.stdout, r
        assert ctlj("show", "summary", sock=sock[0])["generation"] == \
            gen + 1
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def test_socket_file_replaced_safely():
    """A stale socket at the path is replaced; a regular file or a
    symlink there stops the start with a message and is left alone; the
    socket goes with the daemon only while it is its own."""
    path = [None]

    def extra(d):
        path[0] = os.path.join(d.dir, "s.sock")
        return "control_socket %s;\n" % path[0]
    d = daemon_with(extra, "ctlstale")
    try:
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path[0])
        stale.close()
        d.start(env=subenv())
        assert ctlj("show", "summary", sock=path[0])["workers"] == 1
        d.stop()
        assert not os.path.exists(path[0])
        # A regular file: refused, untouched.
        with open(path[0], "w") as f:
            f.write("keep me\n")
        r = subprocess.run([BINARY, "-c", d.conf], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 1, r
        assert "not a socket" in open(d.log).read()
        assert open(path[0]).read() == "keep me\n"
        os.unlink(path[0])
        # A symlink to a file: not followed, not replaced.
        target = os.path.join(d.dir, "target")
        with open(target, "w") as f:
            f.write("target\n")
        os.symlink(target, path[0])
        r = subprocess.run([BINARY, "-c", d.conf], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 1, r
        assert os.path.islink(path[0]) and open(target).read() == \
            "target\n"
        os.unlink(path[0])
        # -t checks the path and the group.
        d.main_extra = "control_socket %s nosuchgroup-x;\n" % path[0]
        d.write(d.body)
        r = subprocess.run([BINARY, "-t", "-c", d.conf],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1 and "nosuchgroup-x" in r.stderr and \
            "control_socket" in r.stderr, r.stderr
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def test_worker_control_answers_checked():
    """A worker's control messages are checked like the rest of what it
    sends: a short event or a record of no kind gets it killed and
    replaced; so does a resolver zone's row, which only the auth
    process sends, and the auth process sending a worker's row; the
    parent and its control socket carry on."""
    path = [None]

    def extra(d):
        path[0] = os.path.join(d.dir, "w.sock")
        return "control_socket %s;\n" % path[0]
    d = daemon_with(extra, "ctlworker")
    try:
        d.start(env=subenv())
        for typ, data in (("IMSG_CTL_EVENT", b"\0" * 8),
                          ("IMSG_CTL_STATS_RECORD", b"\0" * 4096)):
            w = d.workers_now()[0]
            fd = __import__("mpd").steal_fd(w, 3)   # PROC_PARENT_FD
            os.write(fd, imsg(typ, data))
            os.close(fd)
            d.wait_log("worker process %d sent a malformed message" % w)
            wait_for(lambda: (lambda ws: ws and ws[0] != w)(
                d.workers_now()), what="a new worker")
            d.wait_ready()
            assert alive(d.pid)
            assert ctlj("show", "summary", sock=path[0])["workers"] == 1
        # A well-formed row of a resolver zone is the auth process's to
        # send, and a worker's row is not: either sender is replaced.
        for role, kind in (("worker", "STATS_RESOLVER"),
                           ("auth", "STATS_BACKEND")):
            pid = (d.workers_now() if role == "worker" else d.auth_now())[0]
            fd = __import__("mpd").steal_fd(pid, 3)
            row = (struct.pack("=IIq", stats_kinds()[kind], 2, 0) +
                   b"z".ljust(256, b"\0") + b"\0" * 128 + b"\0" * 8 * 32)
            os.write(fd, imsg("IMSG_CTL_STATS_RECORD", row))
            os.close(fd)
            d.wait_log("%s process %d sent a malformed message" % (role, pid))
            now = d.workers_now if role == "worker" else d.auth_now
            wait_for(lambda: (lambda ps: ps and ps[0] != pid)(now()),
                     what="a new %s process" % role)
            d.wait_ready()
            assert alive(d.pid)
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


def stats_kinds():
    """enum stats_kind of the daemon's header, by name."""
    with open(HEADER) as f:
        text = f.read()
    body = text[text.index("enum stats_kind {"):]
    body = re.sub(r"/\*.*?\*/", "", body[:body.index("};")], flags=re.S)
    names = re.findall(r"\b(STATS_[A-Z_]+)\b", body)
    return {n: i + 1 for i, n in enumerate(names)}


@test
def test_socket_after_upgrade():
    """After a binary upgrade (SIGUSR2) the socket at the path is the new
    parent's, and stays when the old one quits; after a rollback (the
    new binary ends) the old parent's is back at the path."""
    path = [None]

    def extra(d):
        path[0] = os.path.join(d.dir, "u.sock")
        return "control_socket %s;\n" % path[0]
    d = daemon_with(extra, "ctlupgrade")
    new = None
    try:
        d.start(env=subenv())
        old = d.pid
        assert ctlj("show", "summary", sock=path[0])["pid"] == old
        # Rollback first: the new binary ends, the old parent's socket
        # comes back.
        os.kill(old, signal.SIGUSR2)
        new = wait_for(lambda: (lambda p: p if p and p != old else None)(
            d.read_pid()), what="new binary's pid file")
        wait_for(lambda: ctlj("show", "summary", sock=path[0])["pid"] ==
                 new, what="the new parent at the path")
        os.kill(new, signal.SIGTERM)
        wait_for(lambda: not alive(new), what="new binary gone")
        wait_for(lambda: ctlj("show", "summary", sock=path[0])["pid"] ==
                 old, what="the old parent at the path again")
        d.wait_log("is ours again")
        # Then the whole upgrade: the new one serves once the old quits.
        os.kill(old, signal.SIGUSR2)
        new = wait_for(lambda: (lambda p: p if p and p != old else None)(
            d.read_pid()), what="new binary's pid file")
        wait_for(lambda: ctlj("show", "summary", sock=path[0])["pid"] ==
                 new, what="the new parent at the path")
        os.kill(old, signal.SIGQUIT)
        wait_for(lambda: not alive(old), timeout=20, what="old parent gone")
        assert ctlj("show", "summary", sock=path[0])["pid"] == new
        assert stat_mode(path[0]) == 0o660
    finally:
        if new is not None and alive(new):
            os.kill(new, signal.SIGTERM)
            wait_for(lambda: not alive(new), what="new parent stopped")
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


def stat_mode(path):
    return os.stat(path).st_mode & 0o7777


@test
def test_pause_resume():
    """pause stops accepting: a new client is not greeted; resume
    accepts again and it is; show summary and the metrics say so."""
    assert ctl("pause").stdout.strip() == "paused"
    s = None
    try:
        assert ctlj("show", "summary")["paused"] is True
        assert sample(families(scrape()), "mailproxyd_paused",
                      "mailproxyd_paused") == 1
        s = socket.create_connection(("127.0.0.1", PORT["imap"]), timeout=5)
        s.settimeout(1.0)
        try:
            got = s.recv(100)
        except socket.timeout:
            got = None
        assert got is None, got
        D.wait_log("paused, not accepting connections by uid 0")
    finally:
        assert ctl("resume").stdout.strip() == "resumed"
    s.settimeout(5)
    assert s.recv(100).startswith(b"* OK"), "no greeting after resume"
    s.close()
    assert ctlj("show", "summary")["paused"] is False
    imap_login("alice").logout()


@test
def test_log_verbose():
    """log verbose makes the workers' and the parent's debug lines
    appear; log brief stops them."""
    mark = len(D.logtext())
    assert ctl("log", "verbose").stdout.strip() == "log verbose"
    imap_login("alice").logout()
    wait_for(lambda: re.search(r"\[debug\] \d+#0: \*\d+ auth request",
                               D.logtext()[mark:]), what="debug lines")
    assert ctl("log", "brief").stdout.strip() == "log brief"
    time.sleep(0.3)
    mark = len(D.logtext())
    imap_login("alice").logout()
    time.sleep(0.5)
    assert "[debug]" not in D.logtext()[mark:], D.logtext()[mark:]


@test
def test_monitor():
    """monitor streams login, login-failed and logout events."""
    p = subprocess.Popen([CTL, "-s", SOCK, "monitor"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lines = []
    t = threading.Thread(target=lambda: lines.extend(iter(
        p.stdout.readline, "")), daemon=True)
    t.start()
    try:
        wait_for(lambda: ctlj("show", "summary")["control_clients"] >= 2,
                 what="monitor attached")
        c = imap_login("alice")
        c.logout()
        imap_fail("bob")
        wait_for(lambda: sum(" logout " in ln for ln in lines) >= 1 and
                 any("login-failed" in ln for ln in lines),
                 what="events: %r" % lines)
        login = [ln for ln in lines if " login imap " in ln]
        assert login and 'user="alice"' in login[0], lines
        assert "backend=127.0.0.1:%d" % DC.imap_port in login[0], login
        out = [ln for ln in lines if " logout " in ln][0]
        assert "end=" in out and "in=" in out, out
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=5)
        p.stdout.close()
        p.stderr.close()
    # Gone: the workers stop sending (nothing to see, but no error).
    imap_login("alice").logout()


@test
def test_many_control_clients():
    """1,000 control clients at once, half of them asking, while logins
    go on: every one is answered, every login works, the daemon keeps
    its children."""
    stop = threading.Event()
    res = {"ok": 0, "bad": []}

    def logins():
        while not stop.is_set():
            try:
                imap_login("alice").logout()
                res["ok"] += 1
            except Exception as e:  # noqa
                res["bad"].append(repr(e))
    th = threading.Thread(target=logins)
    th.start()
    socks = []
    try:
        for i in range(1000):
            socks.append(raw_ctl())
        asked = socks[::2]
        for s in asked:
            s.sendall(imsg("IMSG_CTL_SHOW_STATS"))
        for s in asked:
            ans = read_answer(s)
            assert ans[-1][0] == T["IMSG_CTL_END"]
        summ = ctlj("show", "summary")
        assert summ["control_clients"] >= 1001, summ
    finally:
        stop.set()
        th.join(timeout=30)
        for s in socks:
            s.close()
    assert res["bad"] == [], res["bad"][:3]
    assert res["ok"] > 0
    wait_for(lambda: ctlj("show", "summary")["control_clients"] == 1,
             what="clients gone")


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    return run_suite(TESTS, setup, teardown, "Dovecot, Postfix and the "
                     "daemon", ensure_daemon, lambda: D)


if __name__ == "__main__":
    sys.exit(main())
