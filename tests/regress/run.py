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
"""End-to-end tests of the daemon foundation: the process family, the
privilege drop, the listening sockets, signals and reload.  Run as root
(privilege separation is what is tested).  Usage: run.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import grp
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpd import (Daemon, TOP, alive, children,  # noqa
                 free_port, listener_sockets, proc_status, wait_for)

BINARY = None
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def hello(port, host="127.0.0.1", family=socket.AF_INET, timeout=5.0):
    """Connect, read the greeting, say goodbye (IMAP LOGOUT, POP3 or SMTP
    QUIT) and read until the proxy closes; returns all it sent."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        data = b""
        while b"\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk
        s.sendall(b"a LOGOUT\r\n" if data.startswith(b"* ") else
                  b"QUIT\r\n")
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk


IMAP_HELLO = b"* OK IMAP4 ready\r\n* BYE\r\na OK completed\r\n"
POP3_HELLO = b"+OK POP3 ready\r\n+OK\r\n"
SMTP_HELLO = b"220 mx.test ESMTP ready\r\n221 2.0.0 Bye\r\n"


def imap_server(port, extra=""):
    return ("    server {\n        listen 127.0.0.1:%d%s;\n"
            "        protocol imap;\n    }\n" % (port, extra))


@test
def process_tree_and_privilege_drop():
    """One parent, N workers, one auth; children unprivileged, chrooted,
    NoNewPrivs, no capabilities."""
    port = free_port()
    d = Daemon(BINARY, imap_server(port), workers=3, name="tree")
    try:
        d.start()
        kids = children(d.pid)
        assert len(kids) == 4, kids
        assert len(d.workers_now()) == 3, kids
        assert len(d.auth_now()) == 1, kids
        assert "mailproxyd: parent" in (open("/proc/%d/cmdline" % d.pid,
                                             "rb").read().decode(
                                                 errors="replace")
                                        .replace("\0", " "))
        nobody = int(subprocess.check_output(["id", "-u", "nobody"]))
        nogroup = int(subprocess.check_output(["getent", "group",
                                               "nogroup"]).split(b":")[2])
        for pid in kids:
            st = proc_status(pid)
            uids = [int(x) for x in st["Uid"].split()]
            gids = [int(x) for x in st["Gid"].split()]
            assert uids == [nobody] * 4, (pid, uids)
            assert gids == [nogroup] * 4, (pid, gids)
            assert st["Groups"].split() == [str(nogroup)], st["Groups"]
            assert st["NoNewPrivs"] == "1", st["NoNewPrivs"]
            assert int(st["CapEff"], 16) == 0, st["CapEff"]
            assert os.readlink("/proc/%d/root" % pid) == d.chroot
            assert os.readlink("/proc/%d/cwd" % pid) == d.chroot
        # The parent stays root and unconfined.
        st = proc_status(d.pid)
        assert st["Uid"].split()[0] == "0"
        assert os.readlink("/proc/%d/root" % d.pid) == "/"
    finally:
        d.stop()


@test
def connection_is_logged_with_its_server():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="conn")
    try:
        d.start()
        data = hello(port)
        assert data == IMAP_HELLO, data
        d.wait_log("connected to 127.0.0.1:%d" % port)
        log = d.logtext()
        line = [x for x in log.splitlines() if "connected to" in x][0]
        # nginx's error_log shape: date time [level] pid#0: *sid text
        import re
        assert re.match(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[info\] "
                        r"\d+#0: \*\d+ client 127\.0\.0\.1:\d+ connected "
                        r"to 127\.0\.0\.1:%d$" % port, line), line
    finally:
        d.stop()


@test
def worker_connections_enforced():
    """worker_connections 20 in one worker: 20 clients are greeted, the
    rest wait in the listen queue unanswered, and the worker holds no
    more sockets; closing 5 sessions lets 5 waiting clients in, and the
    limit is logged once."""
    port = free_port()
    d = Daemon(BINARY, imap_server(port), workers=1, name="wconn",
               main_extra="events {\n    worker_connections 20;\n}\n")
    socks = []
    try:
        d.start()
        worker = d.workers_now()[0]
        base = len(os.listdir("/proc/%d/fd" % worker))
        for _ in range(60):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.setblocking(False)
            socks.append(c)

        def greeted():
            n = 0
            for c in socks:
                try:
                    if c.recv(4096):
                        c.setblocking(True)
                        c.settimeout(5)
                        n += 1
                        socks.remove(c)
                        greeted.done.append(c)
                        return True
                except BlockingIOError:
                    pass
            return False
        greeted.done = []

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(greeted.done) < 20:
            if not greeted():
                time.sleep(0.02)
        assert len(greeted.done) == 20, len(greeted.done)
        time.sleep(1)
        greeted()
        assert len(greeted.done) == 20, \
            "%d greeted over the limit" % len(greeted.done)
        fds = len(os.listdir("/proc/%d/fd" % worker))
        assert fds - base <= 20, (base, fds)
        d.wait_log("20 worker_connections are not enough")
        for c in greeted.done[:5]:
            c.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(greeted.done) < 25:
            if not greeted():
                time.sleep(0.02)
        assert len(greeted.done) == 25, len(greeted.done)
        time.sleep(0.5)
        greeted()
        assert len(greeted.done) == 25, len(greeted.done)
        # Coming and going from the limit is one episode in the log.
        eq_n = d.logtext().count("worker_connections are not enough")
        assert eq_n == 1, eq_n
        assert d.workers_now() == [worker]
    finally:
        for c in socks:
            c.close()
        d.stop()


@test
def listen_parameters_on_the_socket():
    """Every listen parameter is visible on the parent's sockets."""
    import socket as S
    p1, p2, p3, p4 = free_port(), free_port(), free_port(), free_port()
    p6 = free_port(S.AF_INET6, "::1")
    sock = os.path.join(TOP, "tests", "tmp", "mpd-%d.sock" % os.getpid())
    body = ("    server {\n"
            "        listen 127.0.0.1:%d backlog=17 rcvbuf=64k sndbuf=32k"
            " so_keepalive=2m:15s:4;\n"
            "        listen 127.0.0.1:%d so_keepalive=off;\n"
            "        listen [::1]:%d;\n"
            "        listen unix:%s;\n"
            "        protocol pop3;\n    }\n"
            "    server {\n"
            "        listen 127.0.0.1:%d reuseport so_keepalive=on;\n"
            "        listen 127.0.0.1:%d bind;\n"
            "        protocol smtp;\n    }\n"
            % (p1, p2, p6, sock, p3, p4))
    d = Daemon(BINARY, body, workers=2, name="listen")
    try:
        d.start()
        (s1,) = listener_sockets(d.pid, p1)
        assert s1.getsockopt(S.SOL_SOCKET, S.SO_KEEPALIVE) == 1
        assert s1.getsockopt(S.IPPROTO_TCP, S.TCP_KEEPIDLE) == 120
        assert s1.getsockopt(S.IPPROTO_TCP, S.TCP_KEEPINTVL) == 15
        assert s1.getsockopt(S.IPPROTO_TCP, S.TCP_KEEPCNT) == 4
        # Linux doubles the requested buffer sizes.
        assert s1.getsockopt(S.SOL_SOCKET, S.SO_RCVBUF) == 2 * 65536
        assert s1.getsockopt(S.SOL_SOCKET, S.SO_SNDBUF) == 2 * 32768
        assert s1.getsockopt(S.SOL_SOCKET, S.SO_REUSEPORT) == 0
        out = subprocess.check_output(["ss", "-Hltn", "sport = :%d" % p1])
        assert out.split()[2] == b"17", out     # Send-Q is the backlog
        (s2,) = listener_sockets(d.pid, p2)
        assert s2.getsockopt(S.SOL_SOCKET, S.SO_KEEPALIVE) == 0
        out = subprocess.check_output(["ss", "-Hltn", "sport = :%d" % p2])
        assert out.split()[2] == b"511", out    # nginx's default
        (s6,) = listener_sockets(d.pid, p6)
        assert s6.family == S.AF_INET6
        s3 = listener_sockets(d.pid, p3)
        assert len(s3) == 2, "reuseport: one socket per worker"
        for s in s3:
            assert s.getsockopt(S.SOL_SOCKET, S.SO_REUSEPORT) == 1
            assert s.getsockopt(S.SOL_SOCKET, S.SO_KEEPALIVE) == 1
        # Each worker holds exactly one of the reuseport sockets.
        for w in d.workers_now():
            assert len(listener_sockets(w, p3)) == 1
        (s4,) = listener_sockets(d.pid, p4)
        st = os.stat(sock)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == \
            0o666, oct(st.st_mode)
        # All of them accept and the worker logs which server it was.
        for port in (p1, p2):
            assert hello(port) == POP3_HELLO
        for port in (p3, p4):
            assert hello(port) == SMTP_HELLO
        assert hello(p6, "::1", S.AF_INET6) == POP3_HELLO
        with S.socket(S.AF_UNIX, S.SOCK_STREAM) as u:
            u.settimeout(5)
            u.connect(sock)
            assert u.recv(100) == b"+OK POP3 ready\r\n"
        d.wait_log("connected to unix:%s" % sock)
        d.wait_log("connected to [::1]:%d" % p6)
        for x in (s1, s2, s6, s4) + tuple(s3):
            x.close()
        d.signal(signal.SIGQUIT)
        wait_for(lambda: not alive(d.pid), what="exit")
        assert not os.path.exists(sock), "unix socket removed at exit"
    finally:
        d.stop()


@test
def listen_ipv6only_on_wildcards():
    """[::]:P binds v6 only by default, so *:P can coexist; ipv6only=off
    takes v4 clients too.  Run in a network namespace of its own, so the
    wildcard addresses reach no real interface."""
    import socket as S
    from mpd import NETNS_WRAP, netns_socket
    p1, p2 = free_port(), free_port()
    body = ("    server {\n        listen [::]:%d;\n        listen *:%d;\n"
            "        protocol imap;\n    }\n"
            "    server {\n        listen [::]:%d ipv6only=off;\n"
            "        protocol pop3;\n    }\n" % (p1, p1, p2))
    d = Daemon(BINARY, body, name="v6only")
    try:
        d.start(wrap=NETNS_WRAP)
        socks = listener_sockets(d.pid, p1)
        fams = sorted(s.family for s in socks)
        assert fams == [S.AF_INET, S.AF_INET6], fams
        for s in socks:
            if s.family == S.AF_INET6:
                assert s.getsockopt(S.IPPROTO_IPV6, S.IPV6_V6ONLY) == 1
        (s2,) = listener_sockets(d.pid, p2)
        assert s2.getsockopt(S.IPPROTO_IPV6, S.IPV6_V6ONLY) == 0
        # A v4 client reaches the dual-stack socket inside the namespace.
        c = netns_socket(d.pid, S.AF_INET)
        c.settimeout(5)
        c.connect(("127.0.0.1", p2))
        assert c.recv(100) == b"+OK POP3 ready\r\n"
        c.close()
        d.wait_log("client 127.0.0.1:")
        for s in socks + [s2]:
            s.close()
    finally:
        d.stop()


def mptcp_enabled():
    try:
        with open("/proc/sys/net/mptcp/enabled") as f:
            return f.read().strip() == "1"
    except FileNotFoundError:
        return False


@test
def listen_multipath():
    """MPTCP where the kernel has it, a clear error where it has not."""
    import socket as S
    port = free_port()
    d = Daemon(BINARY, imap_server(port, " multipath"), name="mptcp")
    try:
        if mptcp_enabled():
            d.start()
            (s,) = listener_sockets(d.pid, port)
            assert s.getsockopt(S.SOL_SOCKET, S.SO_PROTOCOL) == 262
            s.close()
            assert hello(port) == IMAP_HELLO
        else:
            p = d.start(wait=False)
            rc = p.wait(timeout=10)
            err = p.stderr.read().decode()
            assert rc == 1 and "multipath (MPTCP) is not supported" in \
                err, (rc, err)
    finally:
        d.stop()


@test
def wildcard_shares_socket_and_picks_server():
    """127.0.0.1:P without bind rides on *:P; the worker picks the
    exact server by local address (nginx's rule)."""
    port = free_port()
    body = ("    server {\n        listen *:%d;\n        protocol imap;\n"
            "    }\n    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol pop3;\n    }\n" % (port, port))
    d = Daemon(BINARY, body, name="wild")
    try:
        d.start()
        assert len(listener_sockets(d.pid, port)) == 1
        # The POP3 server of the exact address answers, not the IMAP one.
        assert hello(port) == POP3_HELLO
        d.wait_log("connected to 127.0.0.1:%d" % port)
    finally:
        d.stop()


@test
def bind_failure_is_a_clear_startup_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        d = Daemon(BINARY, imap_server(port), name="busy")
        try:
            p = d.start(wait=False)
            rc = p.wait(timeout=10)
            err = p.stderr.read().decode()
            assert rc == 1, rc
            assert "bind() to 127.0.0.1:%d failed (98: Address already " \
                "in use)" % port in err, err
            assert not os.path.exists(d.pidfile)
        finally:
            d.stop()


@test
def reload_refuses_no_connection():
    """A client loop on an unchanged port during HUP reloads sees no
    refused connection; the workers are replaced."""
    port = free_port()
    d = Daemon(BINARY, imap_server(port), workers=2, name="reload")
    stop = threading.Event()
    stats = {"ok": 0, "refused": 0, "other": []}

    def loop():
        while not stop.is_set():
            try:
                if hello(port) == IMAP_HELLO:
                    stats["ok"] += 1
                else:
                    stats["other"].append("no greeting")
            except ConnectionRefusedError:
                stats["refused"] += 1
            except Exception as e:  # noqa
                stats["other"].append(repr(e))

    try:
        d.start()
        old = set(d.workers_now())
        t = threading.Thread(target=loop)
        t.start()
        try:
            for i in range(5):
                before = set(d.workers_now()) | set(d.auth_now())
                d.signal(signal.SIGHUP)
                wait_for(lambda: not (set(d.workers_now()) & before) and
                         len(d.workers_now()) == 2 and
                         len(d.auth_now()) == 1, what="new generation")
                time.sleep(0.1)
        finally:
            stop.set()
            t.join()
        assert stats["refused"] == 0, stats
        assert stats["other"] == [], stats
        assert stats["ok"] > 20, stats
        assert not (set(d.workers_now()) & old)
        d.wait_log("reconfiguring done, generation 6 serving")
    finally:
        d.stop()


@test
def reload_with_broken_config_keeps_old():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="badreload")
    try:
        d.start()
        before = d.workers_now() + d.auth_now()
        d.write(imap_server(port) + "    bogus_directive on;\n")
        d.signal(signal.SIGHUP)
        d.wait_log('unknown directive "bogus_directive" in %s:' % d.conf)
        d.wait_log("reconfiguring failed: the old configuration stays")
        time.sleep(0.3)
        assert d.workers_now() + d.auth_now() == before
        assert hello(port) == IMAP_HELLO
        # A good file afterwards is taken.
        newport = free_port()
        d.write(imap_server(newport))
        d.signal(signal.SIGHUP)
        d.wait_log("generation 2 serving")
        assert hello(newport) == IMAP_HELLO
        wait_for(lambda: not any(alive(p) for p in before),
                 what="old children gone")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2)
            assert False, "old port still listening"
        except ConnectionRefusedError:
            pass
    finally:
        d.stop()


CONFIG_CERTS = os.path.join(TOP, "tests", "config", "certs")


def unworkable_configs(d, port):
    """Configurations the parent accepted or -t passed before, that no
    worker could run: (name, text, message, line needle)."""
    good = d.text(imap_server(port))
    owned = os.path.join(d.dir, "owned")
    os.mkdir(owned, 0o755)
    os.chown(owned, 65534, 65534)
    gwrite = os.path.join(d.dir, "gwrite")
    os.mkdir(gwrite)
    os.chmod(gwrite, 0o775)
    tls = ("    server {\n        listen 127.0.0.1:%d ssl;\n"
           "        protocol imap;\n"
           "        ssl_certificate %s/mail.crt;\n"
           "        ssl_certificate_key %s/mail.key;\n"
           "        ssl_conf_command Certificate %s/a.crt;\n    }\n"
           % (port, CONFIG_CERTS, CONFIG_CERTS, CONFIG_CERTS))
    return [
        ("unknown user",
         good.replace("user nobody nogroup;", "user nginx_mpd_none;"),
         'getpwnam("nginx_mpd_none") failed (user): no such user',
         "user "),
        ("root",
         good.replace("user nobody nogroup;", "user root;"),
         'user "root" has uid 0 (user): the worker and auth processes '
         'must not run as root', "user "),
        ("unknown group",
         good.replace("user nobody nogroup;", "user nobody nogroup_none;"),
         'getgrnam("nogroup_none") failed (user): no such group', "user "),
        ("missing chroot",
         good.replace(d.chroot, d.chroot + "/nonexistent"),
         'chroot directory "%s/nonexistent" (chroot): stat() failed '
         '(2: No such file or directory)' % d.chroot, "chroot "),
        ("chroot not root's",
         good.replace(d.chroot, owned),
         'chroot directory "%s" (chroot): owned by uid 65534, not by root'
         % owned, "chroot "),
        ("chroot group-writable",
         good.replace(d.chroot, gwrite),
         'chroot directory "%s" (chroot): writable by its group '
         '(mode 0775)' % gwrite, "chroot "),
        ("ssl_conf_command file",
         d.text(tls),
         'ssl_conf_command "Certificate" is not supported: it names a '
         'file, which the chrooted workers cannot open; use '
         'ssl_certificate', "ssl_conf_command "),
    ]


def line_in(text, needle):
    for i, ln in enumerate(text.split("\n"), 1):
        if ln.lstrip().startswith(needle):
            return i
    raise AssertionError("%r not in the configuration" % needle)


@test
def t_refuses_what_start_refuses():
    """-t fails, naming the file, line and directive, for every
    configuration the start refuses; and so does the start."""
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="tcheck")
    try:
        for name, text, msg, needle in unworkable_configs(d, port):
            d.write("", raw=text)
            where = " in %s:%d\n" % (d.conf, line_in(text, needle))
            for args in (["-t"], []):
                # A start the parent wrongly accepts runs in the
                # foreground (daemon off) and ends at the timeout.
                r = subprocess.run([BINARY] + args + ["-c", d.conf],
                                   capture_output=True, timeout=10)
                err = r.stderr.decode()
                assert r.returncode == 1, (name, args, err)
                assert "[emerg] " + msg + where in err, (name, args, err)
    finally:
        d.stop()


@test
def reload_refuses_what_cannot_run():
    """mailproxyd -t && mailproxyd -s reload: -t fails first; a reload
    sent anyway is refused by the parent, which says why in the log, and
    the old generation keeps serving: no worker starts and crashes."""
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="tcheckhup")
    try:
        d.start()
        before = d.workers_now() + d.auth_now()
        cases = unworkable_configs(d, port)
        for n, (name, text, msg, needle) in enumerate(cases, 1):
            d.write("", raw=text)
            r = subprocess.run("%s -t -c %s && %s -c %s -s reload" % (
                BINARY, d.conf, BINARY, d.conf), shell=True,
                capture_output=True, timeout=20)
            assert r.returncode == 1, (name, r.stderr)
            assert msg in r.stderr.decode(), (name, r.stderr)
            assert "test failed" in r.stderr.decode(), (name, r.stderr)
            subprocess.run([BINARY, "-c", d.conf, "-s", "reload"],
                           check=True, timeout=10)
            wait_for(lambda: d.logtext().count(
                "reconfiguring failed: the old configuration stays in "
                "use") == n, what="reload %s refused" % name)
            where = " in %s:%d\n" % (d.conf, line_in(text, needle))
            assert msg + where in d.logtext(), (name, d.logtext())
            assert d.workers_now() + d.auth_now() == before, name
            assert hello(port) == IMAP_HELLO, name
        time.sleep(0.5)
        log = d.logtext()
        assert "generation 2" not in log, log
        assert "fatal code" not in log and "exited" not in log, log
        assert d.workers_now() + d.auth_now() == before
        # The configuration made good again is taken.
        d.write(imap_server(port))
        d.signal(signal.SIGHUP)
        d.wait_log("generation 2 serving")
        assert hello(port) == IMAP_HELLO
    finally:
        d.stop()


@test
def crashed_worker_is_replaced():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), workers=2, name="segv")
    try:
        d.start()
        victim = d.workers_now()[0]
        os.kill(victim, signal.SIGSEGV)
        wait_for(lambda: victim not in d.workers_now() and
                 len(d.workers_now()) == 2, what="replacement")
        d.wait_log("worker process %d exited on signal 11" % victim)
        assert hello(port) == IMAP_HELLO
        # The auth process too; the workers get a new channel to it.
        auth = d.auth_now()[0]
        os.kill(auth, signal.SIGSEGV)
        # One look per try: the old one may go between two.
        wait_for(lambda: [a for a in d.auth_now() if a != auth],
                 what="auth replacement")
        d.wait_log("auth process %d exited on signal 11" % auth)
        assert "waiting for its replacement" in d.logtext()
        assert alive(d.pid)
    finally:
        d.stop()


@test
def crash_loop_is_slowed_down():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), workers=1, name="loop")
    try:
        d.start()
        for i in range(6):
            w = wait_for(lambda: d.workers_now(), what="a worker")[0]
            wait_for(lambda: d.dropped(w), what="drop")
            os.kill(w, signal.SIGKILL)
            wait_for(lambda: w not in d.workers_now(), what="reaped")
        d.wait_log("children are crashing in a loop")
        # It still comes back.
        wait_for(lambda: len(d.workers_now()) == 1, timeout=15,
                 what="worker back")
    finally:
        d.stop()


@test
def quit_is_graceful_and_removes_pid_file():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="quit")
    try:
        d.start()
        kids = list(children(d.pid))
        d.signal(signal.SIGQUIT)
        rc = d.proc.wait(timeout=10)
        assert rc == 0, rc
        assert not os.path.exists(d.pidfile)
        assert not any(alive(p) for p in kids)
        d.wait_log("gracefully shutting down")
    finally:
        d.stop()


@test
def term_is_fast():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="term")
    try:
        d.start()
        kids = list(children(d.pid))
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 2.0
        assert not os.path.exists(d.pidfile)
        assert not any(alive(p) for p in kids)
    finally:
        d.stop()


@test
def parent_death_ends_children():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="orphan")
    try:
        d.start()
        kids = list(children(d.pid))
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(timeout=5)
        wait_for(lambda: not any(alive(p) for p in kids), timeout=3,
                 what="children to exit")
    finally:
        d.stop()


@test
def usr1_reopens_logs():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="reopen")
    try:
        d.start()
        os.rename(d.log, d.log + ".1")
        d.signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(d.log), what="new log file")
        time.sleep(0.3)
        hello(port)
        d.wait_log("connected to 127.0.0.1:%d" % port)
        assert "reopening logs" in open(d.log + ".1").read()
    finally:
        d.stop()


@test
def dash_s_signals_through_pid_file():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="dashs")
    try:
        d.start()
        first = d.workers_now()
        subprocess.run([BINARY, "-c", d.conf, "-s", "reload"], check=True,
                       timeout=10)
        wait_for(lambda: d.workers_now() and
                 not set(d.workers_now()) & set(first), what="reload")
        subprocess.run([BINARY, "-c", d.conf, "-s", "quit"], check=True,
                       timeout=10)
        assert d.proc.wait(timeout=10) == 0
        r = subprocess.run([BINARY, "-c", d.conf, "-s", "reload"],
                           capture_output=True, timeout=10)
        assert r.returncode == 1
        assert b"open() \"%s\" failed" % d.pidfile.encode() in r.stderr
        r = subprocess.run([BINARY, "-c", d.conf, "-s", "bogus"],
                           capture_output=True, timeout=10)
        assert r.returncode == 1 and b'invalid option: "-s bogus"' in \
            r.stderr, r.stderr
    finally:
        d.stop()


@test
def daemonizes_and_writes_pid():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="daemon")
    try:
        d.write(None, raw=d.text(imap_server(port)).replace(
            "daemon off;", "daemon on;"))
        r = subprocess.run([BINARY, "-c", d.conf], timeout=10)
        assert r.returncode == 0
        d.wait_ready()
        assert alive(d.pid)
        st = proc_status(d.pid)
        assert st["PPid"] != str(os.getpid())   # detached
        assert hello(port) == IMAP_HELLO
        os.kill(d.pid, signal.SIGQUIT)
        wait_for(lambda: not alive(d.pid), what="exit")
        assert not os.path.exists(d.pidfile)
    finally:
        d.stop()


@test
def systemd_notify_protocol():
    port = free_port()
    d = Daemon(BINARY, imap_server(port), name="notify")
    path = os.path.join(d.dir, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.settimeout(10)
    try:
        d.start(env={"NOTIFY_SOCKET": path})
        assert ns.recv(512) == b"READY=1"
        d.signal(signal.SIGHUP)
        msg = ns.recv(512).decode()
        assert msg.startswith("RELOADING=1\nMONOTONIC_USEC="), msg
        assert ns.recv(512) == b"READY=1"
        d.signal(signal.SIGQUIT)
        assert ns.recv(512) == b"STOPPING=1"
        d.proc.wait(timeout=10)
    finally:
        ns.close()
        d.stop()


@test
def example_config_passes_t():
    """etc/mailproxyd.conf passes -t where its user and chroot exist
    (INSTALL says how to make them); where they do not, -t says so and
    the same file with ones this system has passes."""
    example = os.path.join(TOP, "etc", "mailproxyd.conf")
    r = subprocess.run([BINARY, "-t", "-c", example],
                       capture_output=True, timeout=10)
    with open(example) as f:
        text = f.read()
    try:
        pwd.getpwnam("_mailproxyd")
        grp.getgrnam("_mailproxyd")
        have = os.path.isdir("/var/empty")
    except KeyError:
        have = False
    if not have:
        assert r.returncode == 1, r.stderr
        assert b"(user): no such user in %s:%d" % (
            example.encode(), line_in(text, "user ")) in r.stderr or \
            b"(chroot): stat() failed" in r.stderr, r.stderr
        d = Daemon(BINARY, "", name="example")
        try:
            d.write("", raw=text.replace(
                "_mailproxyd;", "nobody nogroup;").replace(
                "/var/empty;", d.chroot + ";"))
            r = subprocess.run([BINARY, "-t", "-c", d.conf],
                               capture_output=True, timeout=10)
        finally:
            d.stop()
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode().endswith("test is successful\n"), r.stderr


@test
def usage_matches_man_synopsis():
    r = subprocess.run([BINARY, "-x"], capture_output=True, timeout=10)
    assert r.returncode == 1
    usage = " ".join(r.stderr.decode().split("usage:", 1)[1].split())
    man = subprocess.run(["mandoc", "-T", "ascii",
                          os.path.join(TOP, "man", "mailproxyd.8")],
                         capture_output=True, timeout=10).stdout.decode()
    # Strip overstrike from mandoc's ascii output and compare words.
    import re
    man = re.sub(r".\x08", "", man)
    syn = man.split("SYNOPSIS", 1)[1].split("DESCRIPTION", 1)[0]
    assert " ".join(syn.split()) == usage, (syn, usage)


@test
def help_flags_exit_zero():
    """-h and -? print the usage and the options, and exit 0, as nginx
    does; an unknown option is named and exits 1."""
    for flag in ("-h", "-?"):
        r = subprocess.run([BINARY, flag], capture_output=True, timeout=10)
        assert r.returncode == 0, (flag, r.returncode)
        err = r.stderr.decode()
        assert "usage: mailproxyd [-?DdhnqTtVv]" in err, err
        assert "-?,-h" in err and "-s signal" in err, err
    r = subprocess.run([BINARY, "-x"], capture_output=True, timeout=10)
    assert r.returncode == 1
    assert 'invalid option: "-x"' in r.stderr.decode(), r.stderr


@test
def dash_T_prints_files_as_nginx():
    """-T prints every file read, the main one and each include in the
    order read, after "# configuration file NAME:", byte for byte, as
    nginx -T does; -D prints the canonical dump -T printed before."""
    import tempfile
    d = tempfile.mkdtemp(prefix="dashT-", dir=os.path.join(TOP, "tests",
                                                            "tmp"))
    inc = os.path.join(d, "servers.conf")
    main = os.path.join(d, "main.conf")
    inc_text = ("server {\n    listen 127.0.0.1:%d;\n    protocol imap;\n"
                "}  # no newline at the end" % free_port())
    main_text = ("user nobody nogroup;\nchroot %s;\n# a comment\n"
                 "mail {\n    auth_http 127.0.0.1:9/auth;\n"
                 "    include servers.conf;\n}\n" % d)
    with open(inc, "w") as f:
        f.write(inc_text)
    with open(main, "w") as f:
        f.write(main_text)
    r = subprocess.run([BINARY, "-T", "-c", main], capture_output=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    want = ("# configuration file %s:\n%s\n# configuration file %s:\n%s\n"
            % (main, main_text, inc, inc_text))
    assert r.stdout.decode() == want, r.stdout.decode()
    assert r.stderr.decode().endswith("test is successful\n"), r.stderr
    r = subprocess.run([BINARY, "-D", "-c", main], capture_output=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "    server {\n" in out and "login_timeout 3m;" in out, out
    assert "# configuration file" not in out, out


@test
def nginx_main_directives():
    """worker_priority and worker_cpu_affinity apply to the workers, as
    in nginx; the main and events directives that mean nothing here are
    accepted with a notice naming them."""
    port = free_port()
    ncpu = os.cpu_count() or 1
    masks = ["0" * (ncpu - 1 - i) + "1" + "0" * i for i in range(ncpu)]
    d = Daemon(BINARY, imap_server(port), workers=2, name="nginxmain",
               main_extra="worker_priority 5;\n"
                          "worker_cpu_affinity %s;\n"
                          "worker_rlimit_core 500m;\ntimer_resolution 100ms;\n"
                          "pcre_jit on;\nlock_file /tmp/x.lock;\n"
                          "thread_pool default threads=32 max_queue=65536;\n"
                          "events {\n    accept_mutex off;\n"
                          "    debug_connection 127.0.0.1;\n}\n"
                          % " ".join(masks))
    try:
        r = subprocess.run([BINARY, "-t", "-c", d.conf], capture_output=True,
                           timeout=10)
        assert r.returncode == 0, r.stderr
        err = r.stderr.decode()
        for name in ("worker_rlimit_core", "timer_resolution", "pcre_jit",
                     "lock_file", "thread_pool", "accept_mutex",
                     "debug_connection"):
            assert '"%s" is ignored' % name in err, (name, err)
        d.start()
        seen = set()
        for pid in d.workers_now():
            with open("/proc/%d/stat" % pid) as f:
                nice = int(f.read().rsplit(")", 1)[1].split()[16])
            assert nice == 5, nice
            cpus = proc_status(pid)["Cpus_allowed_list"]
            assert cpus.isdigit(), cpus
            seen.add(int(cpus))
        # One CPU each, the first two masks (the last repeats past them).
        assert seen == set(range(min(2, ncpu))), seen
        assert hello(port) == IMAP_HELLO
    finally:
        d.stop()


@test
def version_flags():
    r = subprocess.run([BINARY, "-v"], capture_output=True, timeout=10)
    assert r.returncode == 0
    assert r.stderr.startswith(b"mailproxyd version: mailproxyd/")
    r = subprocess.run([BINARY, "-V"], capture_output=True, timeout=10)
    assert r.returncode == 0 and b"built with OpenSSL" in r.stderr


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    os.makedirs(os.path.join(TOP, "tests", "tmp"), exist_ok=True)
    passed = failed = 0
    if os.geteuid() != 0:
        print("FAIL: the regress suite checks privilege separation and "
              "must run as root")
        print("0 passed, 1 failed")
        return 1
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
            print("ok   %s (%.1fs)" % (fn.__name__, time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
