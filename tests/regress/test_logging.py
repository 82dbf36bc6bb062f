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
"""End-to-end test of error_log as nginx has it: per server block (server,
mail and main levels), syslog to a UDP socket of the test and to a
private rsyslogd on a unix socket, log reopen, -d on stderr at the
configured level, and the journal's <N> prefixes under the systemd
unit's own command line.  Failed logins through the real daemon make
the session lines.  Run as root.
Usage: test_logging.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpd import (TOP, AuthServer, Daemon, alive, free_port,  # noqa
                 kill_pid, run_suite, wait_for)

BINARY = None
TESTS = []
D = None
AS = None
UDP = None
RSYSLOG = None
PORT = {}
LOGS = {}
UNIT = os.path.join(TOP, "contrib", "systemd", "mailproxyd.service.in")
UNIT_PID = "/run/mailproxyd/mailproxyd.pid"
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
HOST = socket.gethostname().lower()


def test(fn):
    TESTS.append(fn)
    return fn


def fail_login(port, user):
    """A failed IMAP LOGIN: the "client login failed" line of a session
    of the server listening on port."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.recv(4096)
        s.sendall(b"a LOGIN %s wrong\r\n" % user)
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
        # A NO, or the BAD of an auth service that cannot be reached.
        assert got.startswith(b"a NO ") or b" BAD " in got, got
    finally:
        s.close()


def text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_text(path, needle, timeout=10):
    return wait_for(lambda: needle in text(path), timeout=timeout,
                    what="%r in %s" % (needle, path))


def udp_recv_all(sock, needle, timeout=10):
    """Datagrams until one contains needle; returns them all."""
    got = []
    deadline = time.monotonic() + timeout
    while not any(needle in g for g in got):
        left = deadline - time.monotonic()
        assert left > 0, "no datagram with %r: %r" % (needle, got[-5:])
        r, _, _ = select.select([sock], [], [], left)
        if r:
            got.append(sock.recv(65536).decode(errors="replace"))
    return got


def syslog_re(pri, tag, level, host=True):
    """An RFC 3164 datagram as nginx sends an error_log line."""
    return re.compile(
        r"^<%d>(%s) ([ 1-3]\d) (\d\d):(\d\d):(\d\d) %s%s: "
        r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d) \[%s\] (\d+)#0: "
        r"\*(\d+) " % (pri, "|".join(MONTHS),
                       re.escape(HOST) + " " if host else "",
                       re.escape(tag), level))


def check_dates(m):
    """The syslog header's time is the line's own date, local time."""
    mon, day, hh, mm, ss = m.group(1, 2, 3, 4, 5)
    y, mo, d, h2, m2, s2 = m.group(6, 7, 8, 9, 10, 11)
    assert MONTHS.index(mon) + 1 == int(mo), m.group(0)
    assert int(day) == int(d) and "%2d" % int(d) == day, m.group(0)
    assert (hh, mm, ss) == (h2, m2, s2), m.group(0)
    assert abs(time.mktime((int(y), int(mo), int(d), int(hh), int(mm),
                            int(ss), 0, 0, -1)) - time.time()) < 60


# --------------------------------------------------------------------------
# Per server block

@test
def session_lines_go_to_their_server_log():
    """A session's lines (the worker's: connected, login failed; the auth
    process's: the auth server it could not reach) are in its server's
    error_log and in no other; a server without error_log inherits the
    mail level's; the daemon's own lines stay in the main log."""
    fail_login(PORT["a"], b"alice_a")
    fail_login(PORT["b"], b"bob_b")
    fail_login(PORT["c"], b"carol_c")
    wait_text(LOGS["a"], 'login: "alice_a"')
    wait_text(LOGS["b"], 'user="bob_b"')
    wait_text(LOGS["mail"], 'login: "carol_c"')
    a, b, m, top = (text(LOGS["a"]), text(LOGS["b"]), text(LOGS["mail"]),
                    text(D.log))
    w = "|".join(map(str, D.workers_now()))
    assert re.search(r"\[info\] (%s)#0: \*(\d+) client 127\.0\.0\.1:\d+ "
                     r"connected to 127\.0\.0\.1:%d\n" % (w, PORT["a"]), a), a
    assert re.search(r"\[info\] (%s)#0: \*\d+ client login failed: .* "
                     r'login: "alice_a"' % w, a), a
    # Server b's auth_http refuses connections: the auth process's line.
    auth = D.auth_now()[0]
    assert re.search(r"\[error\] %d#0: \*\d+ connect\(\) to auth http "
                     r"server 127\.0\.0\.1:9 failed .*client: 127\.0\.0\.1"
                     % auth, b), b
    assert re.search(r'session done: .*user="bob_b"', b), b
    for other, name in ((b, "b"), (m, "mail"), (top, "main")):
        assert "alice_a" not in other, (name, other)
        assert "connected to 127.0.0.1:%d" % PORT["a"] not in other, name
    for other, name in ((a, "a"), (m, "mail"), (top, "main")):
        assert "bob_b" not in other, (name, other)
        assert "auth http server 127.0.0.1:9" not in other, (name, other)
    assert "carol_c" not in a + b + top
    # The main log: the parent's lines, no session's.
    assert "started worker process" in top, top[-2000:]
    assert not re.search(r"#0: \*\d+ ", top), top[-2000:]


@test
def syslog_udp_datagrams_as_nginx_sends_them():
    """error_log syslog:server=127.0.0.1:PORT at server level: one
    datagram per line, RFC 3164 as nginx sends it, byte for byte:
    <PRI> from facility and the line's level, "Mmm dd hh:mm:ss" (the
    line's own time), host name, tag, then the error_log line; the
    nohostname target leaves the host out.  Nothing of another
    server."""
    fail_login(PORT["b"], b"not_for_udp")
    fail_login(PORT["s"], b"dave_s")
    got = udp_recv_all(UDP, 'login: "dave_s"')
    time.sleep(0.3)
    got += drain(UDP)
    assert not any("not_for_udp" in g for g in got), got
    # facility mail (2) * 8 + info (6), tag mpd_s.
    fails = [g for g in got if "client login failed" in g and
             "<22>" in g[:4]]
    assert len(fails) == 1, got
    m = syslog_re(22, "mpd_s", "info").match(fails[0])
    assert m, fails[0]
    check_dates(m)
    assert int(m.group(12)) in D.workers_now(), fails[0]
    assert fails[0].endswith('login: "dave_s"'), fails[0]
    assert "\n" not in fails[0]
    # The nohostname target, local3 (19) * 8 + info.
    bare = [g for g in got if g.startswith("<158>") and
            "client login failed" in g]
    assert len(bare) == 1, got
    m = syslog_re(158, "mailproxyd", "info", host=False).match(bare[0])
    assert m, bare[0]
    check_dates(m)
    # Exactly the line of the file target at the same level, after the
    # header.
    line = [ln for ln in text(LOGS["s"]).splitlines()
            if 'login: "dave_s"' in ln and "login failed" in ln]
    assert len(line) == 1, line
    assert fails[0] == fails[0][:fails[0].index(": 2") + 2] + line[0], \
        (fails[0], line[0])


def drain(sock):
    out = []
    while select.select([sock], [], [], 0)[0]:
        out.append(sock.recv(65536).decode(errors="replace"))
    return out


@test
def rsyslog_unix_socket_receives_server_lines():
    """A private rsyslogd with a unix socket input: the server's lines
    arrive with their facility, severity and tag, the message being the
    error_log line."""
    fail_login(PORT["r"], b"erin_r")
    out = RSYSLOG["out"]
    wait_text(out, 'user="erin_r"')
    wait_text(out, "mail|err|")
    lines = text(out).splitlines()
    done = [ln for ln in lines if 'user="erin_r"' in ln]
    assert len(done) == 1, lines
    fac, sev, tag, msg = done[0].split("|", 3)
    assert (fac, sev, tag) == ("mail", "info", "mpd_r:"), done[0]
    m = re.match(r"^ ?\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[info\] (\d+)#0: "
                 r"\*(\d+) session done: client=127\.0\.0\.1:\d+ "
                 r'user="erin_r" ', msg)
    assert m and int(m.group(1)) in D.workers_now(), msg
    # The same session's line of the auth process (its auth server
    # refused) at severity err.
    errs = [ln for ln in lines if ln.startswith("mail|err|mpd_r:")]
    assert len(errs) == 1, lines
    assert re.search(r"\[error\] %d#0: \*%s connect\(\) to auth http "
                     r"server 127\.0\.0\.1:9 failed" % (D.auth_now()[0],
                                                      m.group(2)),
                     errs[0]), errs
    assert "carol_c" not in text(out) and "alice_a" not in text(out)


@test
def reopen_reopens_server_logs():
    """SIGUSR1: a server's log file moved away is created anew and gets
    the next session's lines; the moved file gets no more."""
    moved = LOGS["a"] + ".1"
    os.rename(LOGS["a"], moved)
    D.signal(signal.SIGUSR1)
    D.wait_log("reopening logs")
    wait_for(lambda: os.path.exists(LOGS["a"]), what="reopened file")
    fail_login(PORT["a"], b"after_reopen")
    wait_text(LOGS["a"], 'login: "after_reopen"')
    assert "after_reopen" not in text(moved)


@test
def reload_switches_server_logs():
    """After a reload naming another file for a server, new sessions'
    lines go there, and no more to the old one."""
    port = free_port()
    d = Daemon(BINARY, "", workers=1, name="lgreload")
    old, new = os.path.join(d.dir, "old.log"), os.path.join(d.dir, "new.log")

    def conf(path):
        return d.text("    server {\n        listen 127.0.0.1:%d;\n"
                      "        protocol imap;\n"
                      "        auth_http 127.0.0.1:%d/auth;\n"
                      "        error_log %s info;\n    }\n"
                      % (port, AS.port, path))
    try:
        d.write(None, raw=conf(old))
        d.start()
        fail_login(port, b"before_reload")
        wait_text(old, 'login: "before_reload"')
        d.write(None, raw=conf(new))
        d.signal(signal.SIGHUP)
        d.wait_log("reconfiguring done")
        wait_for(lambda: "generation 1 has ended" in d.logtext(),
                 what="old generation gone")
        fail_login(port, b"after_reload")
        wait_text(new, 'login: "after_reload"')
        assert "after_reload" not in text(old)
        assert "before_reload" not in text(new)
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def unopenable_server_log_fails_start():
    """A server's error_log that cannot be opened stops the start, in the
    parent, naming the file and the server."""
    d = Daemon(BINARY, "", workers=1, name="lgbad")
    try:
        bad = os.path.join(d.dir, "no", "such", "dir.log")
        d.write(None, raw=d.text(
            "    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n        error_log %s info;\n    }\n"
            % (free_port(), bad)))
        p = d.start(wait=False)
        _, err = p.communicate(timeout=20)
        err = err.decode(errors="replace") + d.logtext()
        assert p.returncode == 1, err
        assert 'could not open error log "%s" of the server in %s:' \
            % (bad, d.conf) in err, err
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# Foreground and the journal

def foreground(name, main_log, args, env=None, server_log=None,
               unit=False):
    """A daemon with one IMAP server (its auth server refuses), started
    with args, its stderr a pipe of ours: (daemon, read end, port,
    dev:ino of the pipe)."""
    port, bad = free_port(), free_port()
    d = Daemon(BINARY, "", workers=1, name=name)
    body = ("    server {\n        listen 127.0.0.1:%d;\n"
            "        protocol imap;\n        auth_http 127.0.0.1:%d/auth;\n"
            "%s    }\n" % (port, AS.port,
                           "        error_log %s;\n" % server_log
                           if server_log else ""))
    # The mail level's auth_http (port 9) refuses: an error line.
    body += ("    server {\n        listen 127.0.0.1:%d;\n"
             "        protocol imap;\n    }\n" % bad)
    conf = d.text(body).replace("error_log %s info;\n" % d.log,
                                main_log.replace("LOG", d.log))
    if unit:
        # The unit names the pid file with -g: ours instead of its path.
        conf = conf.replace("pid %s;\n" % d.pidfile, "")
        args = [a.replace(UNIT_PID, d.pidfile) for a in args]
    d.write(None, raw=conf)
    r, w = os.pipe()
    st = os.fstat(w)
    e = dict(os.environ)
    e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + \
        ":detect_leaks=0:handle_segv=0"
    if env:
        e.update({k: v.replace("PIPE", "%d:%d" % (st.st_dev, st.st_ino))
                  for k, v in env.items()})
    d.proc = subprocess.Popen([BINARY] + list(args) + ["-c", d.conf],
                              env=e, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=w)
    os.close(w)
    d.proc.stderr = os.fdopen(r, "rb")
    d.proc.stdout = open(os.devnull, "rb")
    d.wait_ready()
    return d, (port, bad)


def stop_and_read(d):
    os.kill(d.pid, signal.SIGTERM)
    d.proc.wait(timeout=10)
    return d.proc.stderr.read().decode(errors="replace")


@test
def debug_mode_stderr_at_configured_level():
    """-d: stderr gets the level the error_log stderr target says (warn
    here, so not the info lines the file gets); without a stderr target
    the most verbose level configured (info), session lines with their
    id; the files are written as configured."""
    d, (port, bad) = foreground("lgdbg", "error_log stderr warn;\n"
                                "error_log LOG info;\n", ["-d"])
    try:
        fail_login(port, b"quiet_one")
        fail_login(bad, b"quiet_two")
        d.wait_log('login: "quiet_one"')
        d.wait_log('user="quiet_two"')
        err = stop_and_read(d)
        assert "quiet_one" not in err, err
        assert re.search(r"auth: \[error\] \*\d+ connect\(\) to auth http "
                         r"server", err), err
        assert "started worker process" not in err, err
    finally:
        d.stop()
    d, (port, bad) = foreground("lgdbg2", "error_log LOG notice;\n", ["-d"],
                         server_log=os.path.join(TOP, "tests", "tmp",
                                                 "lgdbg2-srv.log") + " info")
    try:
        fail_login(port, b"loud_one")
        wait_text(os.path.join(TOP, "tests", "tmp", "lgdbg2-srv.log"),
                  'login: "loud_one"')
        err = stop_and_read(d)
        assert re.search(r'worker: \[info\] \*\d+ client login failed: '
                         r'.* login: "loud_one"\n', err), err
        assert re.search(r"worker: \[info\] \*\d+ client 127\.0\.0\.1:\d+ "
                         r"connected to", err), err
        assert "parent: [notice]" in err or "parent: [info]" in err, err
    finally:
        d.stop()
        try:
            os.unlink(os.path.join(TOP, "tests", "tmp", "lgdbg2-srv.log"))
        except FileNotFoundError:
            pass


def unit_exec_start():
    """ExecStart= of the shipped unit: its arguments after the binary."""
    with open(UNIT) as f:
        for ln in f:
            if ln.startswith("ExecStart="):
                return shlex.split(ln.split("=", 1)[1])[1:]
    raise AssertionError("no ExecStart in %s" % UNIT)


@test
def journal_gets_priorities_under_the_unit():
    """The unit's own command line with stderr the journal (JOURNAL_STREAM
    names the pipe, as systemd sets it): every line on stderr starts with
    sd-daemon(3)'s <N>, N the syslog severity of its level: <6> for
    info (the failed login), <3> for error (the auth server refused),
    <5> for notice; the file gets its lines without prefix."""
    args = unit_exec_start()
    assert "-d" in args, args
    d, (port, bad) = foreground("lgjournal", "error_log LOG info;\n", args,
                                env={"JOURNAL_STREAM": "PIPE"}, unit=True)
    try:
        fail_login(port, b"jo")
        fail_login(bad, b"jo_bad")
        d.wait_log('login: "jo"')
        d.wait_log('user="jo_bad"')
        d.signal(signal.SIGUSR1)
        d.wait_log("reopening logs")
        err = stop_and_read(d)
        lines = err.splitlines()
        assert lines and all(re.match(r"^<[0-7]>", ln) for ln in lines), \
            err
        assert any(re.match(r'^<6>worker: \[info\] \*\d+ client login '
                            r'failed: .*login: "jo"$', ln)
                   for ln in lines), err
        assert any(re.match(r"^<3>auth: \[error\] \*\d+ connect\(\) to "
                            r"auth http server", ln) for ln in lines), err
        assert "<5>parent: [notice] reopening logs" in lines, err
        assert not re.search(r"^<\d>", d.logtext(), re.M)
    finally:
        d.stop()
    # The same pipe without JOURNAL_STREAM: no prefix.
    d, (port, bad) = foreground("lgnojournal", "error_log LOG info;\n",
                                args, unit=True)
    try:
        fail_login(port, b"jo2")
        d.wait_log('login: "jo2"')
        err = stop_and_read(d)
        assert re.search(r'^worker: \[info\] \*\d+ client login failed: '
                         r'.*login: "jo2"$', err, re.M), err
        assert not re.search(r"^<\d>", err, re.M), err
    finally:
        d.stop()


# --------------------------------------------------------------------------

def config_text(a_log=None):
    body = ""
    for name, extra in (
            ("a", "auth_http 127.0.0.1:%d/auth;\n"
                  "        error_log %s info;" % (AS.port,
                                                   a_log or LOGS["a"])),
            # b: the mail level's auth_http (port 9 refuses).
            ("b", "error_log %s info;" % LOGS["b"]),
            ("c", "auth_http 127.0.0.1:%d/auth;" % AS.port),
            ("s", "auth_http 127.0.0.1:%d/auth;\n"
                  "        error_log %s info;\n"
                  "        error_log syslog:server=127.0.0.1:%d,"
                  "facility=mail,tag=mpd_s info;\n"
                  "        error_log syslog:server=127.0.0.1:%d,"
                  "facility=local3,nohostname info;"
                  % (AS.port, LOGS["s"], PORT["udp"], PORT["udp"])),
            ("r", "error_log syslog:server=unix:%s,facility=mail,"
                  "tag=mpd_r,nohostname info;" % RSYSLOG["sock"])):
        body += ("    server {\n        listen 127.0.0.1:%d;\n"
                 "        protocol imap;\n        %s\n    }\n"
                 % (PORT[name], extra))
    body = "    error_log %s info;\n%s" % (LOGS["mail"], body)
    return D.text(body)


def start_rsyslog(d):
    rdir = os.path.join(d, "rsyslog")
    os.makedirs(rdir)
    sock = os.path.join(rdir, "log.sock")
    out = os.path.join(rdir, "out.log")
    conf = os.path.join(rdir, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write('global(workDirectory="%s")\n'
                'module(load="imuxsock" SysSock.Use="off")\n'
                'input(type="imuxsock" Socket="%s" RateLimit.Interval="0")\n'
                'template(name="t" type="string" string="'
                '%%syslogfacility-text%%|%%syslogseverity-text%%|'
                '%%syslogtag%%|%%msg%%\\n")\n'
                '*.* action(type="omfile" file="%s" template="t")\n'
                % (rdir, sock, out))
    pidfile = os.path.join(rdir, "rsyslogd.pid")
    errlog = open(os.path.join(rdir, "stderr"), "wb")
    p = subprocess.Popen(["rsyslogd", "-n", "-f", conf, "-i", pidfile],
                         stdin=subprocess.DEVNULL, stdout=errlog,
                         stderr=errlog)
    errlog.close()
    wait_for(lambda: os.path.exists(sock) or p.poll() is not None,
             timeout=15, what="rsyslogd socket")
    assert p.poll() is None, text(os.path.join(rdir, "stderr"))
    return {"proc": p, "sock": sock, "out": out, "dir": rdir}


def setup():
    global D, AS, UDP, RSYSLOG
    if shutil.which("rsyslogd") is None:
        raise AssertionError("rsyslogd not found: contrib/install-deps.sh "
                             "installs rsyslog")
    AS = AuthServer("alice pw imap=127.0.0.1:9\n", name="lg")
    UDP = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    UDP.bind(("127.0.0.1", 0))
    PORT["udp"] = UDP.getsockname()[1]
    for name in ("a", "b", "c", "s", "r"):
        PORT[name] = free_port()
    D = Daemon(BINARY, "", workers=2, name="lg")
    RSYSLOG = start_rsyslog(D.dir)
    for name in ("a", "b", "s", "mail"):
        LOGS[name] = os.path.join(D.dir, "%s.log" % name)
    D.write(None, raw=config_text())
    D.start()


def teardown(keep=True):
    if D is not None:
        D.stop()
    if RSYSLOG is not None:
        p = RSYSLOG["proc"]
        if p.poll() is None:
            kill_pid(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_pid(p.pid)
                p.wait(timeout=5)
    if UDP is not None:
        UDP.close()
    if AS is not None:
        AS.stop()
    if not keep:
        for x in (D, AS):
            if x is not None:
                shutil.rmtree(x.dir, ignore_errors=True)


def ensure_daemon():
    if D.pid is None or not alive(D.pid):
        D.start()


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    return run_suite(TESTS, setup, teardown, "mailproxyd and rsyslogd",
                     ensure_daemon, lambda: D)


if __name__ == "__main__":
    sys.exit(main())
