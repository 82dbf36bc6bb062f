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
"""The binary upgrade on the fly, as nginx does it (mailproxyd(8),
SIGNALS): SIGUSR2 starts the new binary with the listening sockets
inherited (MAILPROXYD="fd;fd;") and renames the pid file to
PIDFILE.oldbin; SIGWINCH stops the old workers gracefully; SIGQUIT to the
old parent completes the upgrade, SIGHUP to it rolls the upgrade back;
the service manager learns the new main pid (MAINPID=) from the process
that is its main pid then, as systemd's NotifyAccess=main requires.

Every test keeps a client making IMAP logins through the daemon, on TCP
and on a unix socket, to a real Dovecot (tests/regress/dovecot.py) behind
the reference auth server, and not one login may fail.

Run as root.  Python 3 standard library only.
Usage: test_upgrade.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import imaplib
import os
import shutil
import signal
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mpd import (alive, AuthServer, children, Daemon, free_port,  # noqa: E402
                 kill_pid, listening_inodes, run_tests, socket_inodes,
                 subenv, TMP, wait_for)
from dovecot import Dovecot  # noqa: E402

BINARY = None
TESTS = []
DC = None
AS = None
PW = "up-s3cret"
# What a sanitizer build writes on the daemon's stderr (the parents'
# and, in such a build, the workers').
SANITIZER = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer",
             b"runtime error:", b"SUMMARY: AddressSanitizer",
             b"SUMMARY: UndefinedBehaviorSanitizer")
STDERR = []         # the stderr of every daemon a test started


def test(fn):
    TESTS.append(fn)
    return fn


# --------------------------------------------------------------------------
# Logins, all the time


def login_tcp(port):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        typ, _ = m.login("alice", PW)
        if typ != "OK":
            raise AssertionError("LOGIN answered %s" % typ)
    finally:
        try:
            m.logout()
        except Exception:  # noqa
            pass


def login_unix(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        f = s.makefile("rb")
        greeting = f.readline()
        if not greeting.startswith(b"* OK"):
            raise AssertionError("greeting %r" % greeting)
        s.sendall(b"a1 LOGIN alice %s\r\n" % PW.encode())
        while True:
            line = f.readline()
            if not line:
                raise AssertionError("closed before the LOGIN answer")
            if line.startswith(b"a1 "):
                break
        if not line.startswith(b"a1 OK"):
            raise AssertionError("LOGIN answered %r" % line)
        s.sendall(b"a2 LOGOUT\r\n")
        f.close()


class Logins:
    """A thread making logins through the daemon, alternately on TCP
    and on the unix socket, until stopped; every failure is kept."""

    def __init__(self, port, path):
        self.port, self.path = port, path
        self.ok = 0
        self.bad = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        i = 0
        while not self.stop_ev.is_set():
            i += 1
            try:
                if i % 2:
                    login_tcp(self.port)
                else:
                    login_unix(self.path)
                self.ok += 1
            except Exception as e:  # noqa
                self.bad.append("%s login %d: %r" % (
                    "tcp" if i % 2 else "unix", i, e))
            time.sleep(0.01)

    def more(self, n=6, timeout=30):
        """Wait for n more successful logins."""
        want = self.ok + n
        wait_for(lambda: self.ok >= want or self.bad, timeout=timeout,
                 what="%d more logins" % n)
        self.check()

    def check(self):
        if self.bad:
            raise AssertionError("%d login(s) failed: %s"
                                 % (len(self.bad), self.bad[:5]))

    def stop(self):
        self.stop_ev.set()
        self.t.join(timeout=30)
        self.check()


# --------------------------------------------------------------------------
# The daemon


class Upg:
    """A daemon with an IMAP server on a TCP port and a unix socket."""

    def __init__(self, name, binary=None):
        self.port = free_port()
        body = ("    server {\n"
                "        listen 127.0.0.1:%d;\n"
                "        listen unix:%%s;\n"
                "        protocol imap;\n"
                "        auth_http 127.0.0.1:%d/auth;\n"
                "    }\n" % (self.port, AS.port))
        self.d = Daemon(binary or BINARY, "", workers=2, name=name)
        self.sock = os.path.join(self.d.dir, "imap.sock")
        self.d.write(body % self.sock)
        self.oldbin = self.d.pidfile + ".oldbin"
        self.pids = []
        self.logins = None

    def start(self, env=None):
        e = subenv()
        if env:
            e.update(env)
        self.d.start(env=e)
        self.pids.append(self.d.pid)
        self.logins = Logins(self.port, self.sock)
        self.logins.more()

    def roles(self, pid, role):
        return sorted(p for p, c in children(pid).items()
                      if role + " process" in c)

    def usr2(self):
        """SIGUSR2 to the running parent; returns the new parent's pid
        once its workers serve."""
        old = self.d.pid
        os.kill(old, signal.SIGUSR2)
        new = wait_for(lambda: self.d.read_pid() not in (None, old) and
                       self.d.read_pid(), what="new pid file")
        self.pids.append(new)
        with open(self.oldbin) as f:
            assert int(f.read()) == old, "the .oldbin pid file"
        assert new in children(old), "new parent is the old one's child"
        wait_for(lambda: len(self.roles(new, "worker")) == 2 and
                 len(self.roles(new, "auth")) == 1, what="new workers")
        self.d.wait_log("binary upgrade: serving")
        assert alive(old) and alive(new)
        assert len(self.roles(old, "worker")) == 2, "old workers stay"
        return new

    def log_has(self, *needles):
        text = self.d.logtext()
        for n in needles:
            assert n in text, "no log line %r" % n

    def stop(self):
        if self.logins is not None:
            self.logins.stop_ev.set()
            self.logins.t.join(timeout=30)
        for p in reversed(self.pids):
            if alive(p):
                kill_pid(p, signal.SIGTERM)
        for p in self.pids:
            try:
                wait_for(lambda: not alive(p), timeout=5, what="exit")
            except AssertionError:
                kill_pid(p)
        self.d.pid = self.pids[0] if self.pids else None
        if self.d.proc is not None:
            try:
                self.d.proc.wait(timeout=5)
            except Exception:  # noqa
                pass
            fd = self.d.proc.stderr.fileno()
            os.set_blocking(fd, False)
            try:
                STDERR.append(os.read(fd, 1 << 20) or b"")
            except BlockingIOError:
                pass
        self.d.stop()


def gone(pid):
    return not alive(pid)


class NotifySocket:
    """A service manager's NOTIFY_SOCKET that, as systemd with
    NotifyAccess=main does, takes a message only from the main pid: the
    daemon's at first, then whatever pid a MAINPID= names.  The sender's
    pid comes from the kernel (SO_PASSCRED, SCM_CREDENTIALS)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.s.bind(path)
        self.s.settimeout(15)
        self.main = None

    def recv(self):
        data, anc, _, _ = self.s.recvmsg(512, socket.CMSG_SPACE(12))
        pids = [struct.unpack("iII", d[:12])[0] for lvl, typ, d in anc
                if lvl == socket.SOL_SOCKET and
                typ == socket.SCM_CREDENTIALS]
        assert len(pids) == 1, anc
        assert pids[0] == self.main, \
            "%r from pid %d, but the main pid is %d" % (data, pids[0],
                                                        self.main)
        for line in data.split(b"\n"):
            if line.startswith(b"MAINPID="):
                self.main = int(line[8:])
        return data

    def quiet(self, seconds=1):
        self.s.settimeout(seconds)
        try:
            data, anc, _, _ = self.s.recvmsg(512, socket.CMSG_SPACE(12))
            raise AssertionError("unexpected %r" % data)
        except socket.timeout:
            pass
        finally:
            self.s.settimeout(15)

    def close(self):
        self.s.close()


# --------------------------------------------------------------------------
# Tests


@test
def upgrade_with_logins_running():
    """USR2, WINCH, QUIT to the old parent: the new parent serves on the
    very same listening socket, the pid file is its own, and not one
    login failed."""
    u = Upg("upgrade")
    try:
        u.start()
        old = u.d.pid
        (ino,) = listening_inodes(u.port)
        unix_ino = os.stat(u.sock).st_ino
        old_workers = u.roles(old, "worker")

        new = u.usr2()
        u.logins.more()
        u.log_has("signal 12 (SIGUSR2) received, changing binary")
        assert ino in socket_inodes(new), "new parent adopted the socket"

        os.kill(old, signal.SIGWINCH)
        wait_for(lambda: not any(alive(p) for p in old_workers),
                 what="old workers gone")
        wait_for(lambda: list(children(old)) == [new],
                 what="old auth process gone")
        u.log_has("signal 28 (SIGWINCH) received")
        u.logins.more()

        os.kill(old, signal.SIGQUIT)
        wait_for(lambda: gone(old), what="old parent exit")
        u.logins.more()
        u.logins.stop()
        u.log_has("signal 3 (SIGQUIT) received, shutting down")
        assert u.d.read_pid() == new
        assert not os.path.exists(u.oldbin), ".oldbin removed"
        assert listening_inodes(u.port) == [ino], "no rebind"
        assert ino in socket_inodes(new)
        assert os.stat(u.sock).st_ino == unix_ino, "unix socket file kept"
        login_unix(u.sock)
        login_tcp(u.port)
        assert u.logins.ok > 20, u.logins.ok

        # The new parent is an ordinary one now: it stops, and takes its
        # pid file and socket file with it.
        os.kill(new, signal.SIGQUIT)
        wait_for(lambda: gone(new), what="new parent exit")
        assert not os.path.exists(u.d.pidfile)
        assert not os.path.exists(u.sock)
    finally:
        u.stop()


def binary_copy():
    """A copy of the daemon binary in a directory of its own, so that a
    test can replace it as a package upgrade would."""
    bindir = os.path.join(TMP, "upgrade-bin-%d" % os.getpid())
    os.makedirs(bindir, exist_ok=True)
    copy = os.path.join(bindir, "mailproxyd")
    shutil.copy2(BINARY, copy)
    return copy


def replace_binary(path, text=None):
    """Put a new file at path, renamed over the old one as a package
    manager does: the daemon binary, or a script."""
    tmp = path + ".new"
    if text is None:
        shutil.copy2(BINARY, tmp)
    else:
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
    os.rename(tmp, path)


FAILING = "#!/bin/sh\necho 'broken new binary' >&2\nexit 1\n"


@test
def rollback_with_logins_running():
    """USR2, WINCH, then HUP to the old parent starts its workers again
    (from its own executable, though the file on disk is now one that
    cannot run) and QUIT to the new parent leaves the old one serving,
    with its pid file back and the unix socket file in place."""
    copy = binary_copy()
    u = Upg("rollback", binary=copy)
    try:
        u.start()
        old = u.d.pid
        (ino,) = listening_inodes(u.port)
        new = u.usr2()
        u.logins.more()
        os.kill(old, signal.SIGWINCH)
        wait_for(lambda: list(children(old)) == [new],
                 what="old children gone")
        u.logins.more()

        replace_binary(copy, FAILING)
        os.kill(old, signal.SIGHUP)
        wait_for(lambda: len(u.roles(old, "worker")) == 2 and
                 len(u.roles(old, "auth")) == 1 and
                 all(u.d.dropped(p) for p in u.roles(old, "worker")),
                 what="old workers again")
        u.log_has("signal 1 (SIGHUP) received, starting the worker "
                  "processes again")
        u.logins.more()

        os.kill(new, signal.SIGQUIT)
        wait_for(lambda: gone(new), what="new parent exit")
        wait_for(lambda: u.d.read_pid() == old and
                 not os.path.exists(u.oldbin), what="pid file restored")
        u.log_has("new binary process %d exited with code 0" % new,
                  "binary upgrade undone")
        u.logins.more()
        u.logins.stop()
        assert os.path.exists(u.sock), "unix socket file kept"
        login_unix(u.sock)
        assert listening_inodes(u.port) == [ino]
        assert alive(old)
        assert "exited with fatal code" not in u.d.logtext()
    finally:
        u.stop()
        shutil.rmtree(os.path.dirname(copy), ignore_errors=True)


@test
def new_binary_ending_restarts_old_workers():
    """After WINCH, the new binary ending (here QUIT to it) makes the old
    parent start its workers again by itself, as nginx's does."""
    u = Upg("autoroll")
    try:
        u.start()
        old = u.d.pid
        new = u.usr2()
        os.kill(old, signal.SIGWINCH)
        wait_for(lambda: list(children(old)) == [new],
                 what="old children gone")
        u.logins.more()
        os.kill(new, signal.SIGQUIT)
        wait_for(lambda: gone(new), what="new parent exit")
        wait_for(lambda: len(u.roles(old, "worker")) == 2,
                 what="old workers again")
        wait_for(lambda: u.d.read_pid() == old, what="pid file restored")
        u.logins.more()
        u.logins.stop()
        assert os.path.exists(u.sock)
    finally:
        u.stop()


@test
def new_binary_failing_to_start():
    """The binary on disk fails: the old parent logs it, renames the pid
    file back and goes on serving; an upgrade after that works."""
    copy = binary_copy()
    u = Upg("failing", binary=copy)
    try:
        u.start()
        old = u.d.pid
        replace_binary(copy, FAILING)
        os.kill(old, signal.SIGUSR2)
        u.d.wait_log("exited with code 1")
        wait_for(lambda: "binary upgrade undone" in u.d.logtext(),
                 what="pid file restored")
        assert u.d.read_pid() == old
        assert not os.path.exists(u.oldbin)
        assert alive(old) and len(u.roles(old, "worker")) == 2
        u.logins.more()

        # The real binary again: this upgrade goes through.
        replace_binary(copy)
        u.usr2()
        u.logins.more()
        u.logins.stop()
    finally:
        u.stop()
        shutil.rmtree(os.path.dirname(copy), ignore_errors=True)


@test
def second_upgrade_refused():
    """While an upgrade is under way, USR2 to either parent is refused
    with a log line and changes nothing."""
    u = Upg("refuse")
    try:
        u.start()
        old = u.d.pid
        new = u.usr2()
        os.kill(old, signal.SIGUSR2)
        u.d.wait_log("binary upgrade refused: the new binary (pid %d)"
                     % new)
        os.kill(new, signal.SIGUSR2)
        u.d.wait_log("binary upgrade refused: the old parent process %d"
                     % old)
        time.sleep(0.5)
        assert u.d.read_pid() == new
        with open(u.oldbin) as f:
            assert int(f.read()) == old
        assert sorted(p for p, c in children(old).items()
                      if "process" not in c) == [new], "one new binary"
        assert not any("process" not in c
                       for c in children(new).values()), \
            "no third parent"
        u.logins.more()
        u.logins.stop()
    finally:
        u.stop()


@test
def signals_log_a_line():
    """Every signal the parent handles logs what it does."""
    u = Upg("siglog")
    try:
        u.start()
        old = u.d.pid
        for sig, line in ((signal.SIGUSR1, "signal 10 (SIGUSR1) received"),
                          (signal.SIGHUP,
                           "signal 1 (SIGHUP) received, reconfiguring")):
            os.kill(old, sig)
            u.d.wait_log(line)
        u.d.wait_log("reconfiguring done")
        u.logins.more()
        u.logins.stop()
        os.kill(old, signal.SIGTERM)
        wait_for(lambda: gone(old), what="exit")
        u.log_has("signal 15 (SIGTERM) received, exiting")
    finally:
        u.stop()
    u = Upg("sigint")
    try:
        u.start()
        u.logins.stop()
        os.kill(u.d.pid, signal.SIGINT)
        wait_for(lambda: gone(u.d.pid), what="exit")
        u.log_has("signal 2 (SIGINT) received, exiting")
    finally:
        u.stop()


@test
def systemd_follows_the_upgrade():
    """Under Type=notify and NotifyAccess=main every message comes from
    the main pid: the old parent names the new one (MAINPID= with
    READY=1) once it serves, and says nothing more; a rollback gives the
    service back from the new parent, then the old one; the new parent,
    once main, reports its reloads and its stop."""
    u = Upg("notify")
    path = os.path.join(u.d.dir, "notify.sock")
    ns = NotifySocket(path)
    try:
        u.start(env={"NOTIFY_SOCKET": path})
        old = u.d.pid
        ns.main = old
        assert ns.recv() == b"READY=1"

        # A rollback first.
        new = u.usr2()
        assert ns.recv() == b"MAINPID=%d\nREADY=1" % new
        assert ns.main == new
        u.log_has("binary upgrade: the new binary (pid %d) is the "
                  "service's main process now" % new)
        os.kill(old, signal.SIGWINCH)
        wait_for(lambda: list(children(old)) == [new], what="old drained")
        done = u.d.logtext().count("reconfiguring done")
        os.kill(old, signal.SIGHUP)
        wait_for(lambda: len(u.roles(old, "worker")) == 2,
                 what="old workers again")
        # Serving again while the new binary runs: the old parent says
        # nothing to the service manager yet.
        wait_for(lambda: u.d.logtext().count("reconfiguring done") > done,
                 what="old generation serving")
        ns.quiet()
        os.kill(new, signal.SIGQUIT)
        assert ns.recv() == b"MAINPID=%d" % old
        # The old parent says so too once it reaped the new binary.
        assert ns.recv() == b"MAINPID=%d" % old
        wait_for(lambda: u.d.read_pid() == old, what="pid file back")
        u.logins.more()

        # Then the upgrade.
        new = u.usr2()
        got = ns.recv()
        assert got == b"MAINPID=%d\nREADY=1" % new, (got, old, new)
        os.kill(old, signal.SIGWINCH)
        os.kill(old, signal.SIGQUIT)
        wait_for(lambda: gone(old), what="old parent exit")
        ns.quiet()
        u.logins.more()
        # The new parent is the main pid: its reload is heard.
        os.kill(new, signal.SIGHUP)
        assert ns.recv().startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert ns.recv() == b"READY=1"
        u.logins.more()
        u.logins.stop()
        os.kill(new, signal.SIGQUIT)
        assert ns.recv() == b"STOPPING=1"
    finally:
        ns.close()
        u.stop()


# --------------------------------------------------------------------------

def setup():
    global DC, AS
    os.makedirs(TMP, exist_ok=True)
    DC = Dovecot({"alice": PW}, name="up-dovecot", protocols=("imap",))
    DC.start()
    AS = AuthServer("alice %s imap=127.0.0.1:%d\n" % (PW, DC.imap_port),
                    name="up-as")


def teardown(keep=True):
    if AS is not None:
        AS.stop()
    if DC is not None:
        DC.stop()


def each(fn):
    """A test, then whatever a sanitizer wrote on the daemon's stderr."""
    del STDERR[:]
    fn()
    for err in STDERR:
        for m in SANITIZER:
            if m in err:
                raise AssertionError("sanitizer report: %r" % err[-2000:])


def main():
    global BINARY
    if len(sys.argv) < 2:
        print("usage: test_upgrade.py DAEMON [name...]")
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    return run_tests(TESTS, "upgrades the daemon", setup, teardown, each)



if __name__ == "__main__":
    sys.exit(main())
