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
"""The daemon started as the systemd unit starts it
(contrib/systemd/mailproxyd.service.in): the parent already runs as the
unprivileged user, with CAP_NET_BIND_SERVICE and CAP_SYS_CHROOT as its
only capabilities (ambient and bounding set) and no_new_privs, done here
with setpriv(1).  Logins go through to a real Dovecot behind the
reference auth server; the children are chrooted, hold no capability and
run under their seccomp filter, which alone keeps a worker from
signalling the others of the same uid; reload and stop work; a
configuration such a parent cannot run fails at -t and at start with its
file and line.

Run as root.  Python 3 standard library only.
Usage: test_unprivileged.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import ctypes
import imaplib
import os
import pwd
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mpd import (alive, AuthServer, children, Daemon, free_port,  # noqa: E402
                 line_of, proc_status, run_tests, subenv, TMP, wait_for)
from dovecot import Dovecot  # noqa: E402

BINARY = None
TESTS = []
DC = None
AS = None
PW = "unpriv-s3cret"
USER, GROUP = "nobody", "nogroup"
CAPS = "+net_bind_service,+sys_chroot"
# What systemd does for the unit's User=, Group=, AmbientCapabilities=,
# CapabilityBoundingSet= and NoNewPrivileges=.
SETPRIV = ("setpriv", "--reuid=" + USER, "--regid=" + GROUP,
           "--init-groups", "--inh-caps=" + CAPS, "--ambient-caps=" + CAPS,
           "--bounding-set=-all," + CAPS, "--no-new-privs")
# CAP_NET_BIND_SERVICE (10) and CAP_SYS_CHROOT (18).
PARENT_CAPS = (1 << 10) | (1 << 18)
SELFTEST = "env MAILPROXYD_SANDBOX_SELFTEST=yes;"

_libc = ctypes.CDLL(None, use_errno=True)


def test(fn):
    TESTS.append(fn)
    return fn


def sigqueue(pid, sig, value):
    """sigqueue(3), as tests/regress/test_sandbox.py uses it: SIGUSR2
    with a pid makes an armed child call kill(pid, SIGSTOP)."""
    if _libc.sigqueue(pid, sig, value) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Unpriv:
    """A daemon whose directory (log, pid file, control socket) is the
    service user's, as systemd's RuntimeDirectory= and LogsDirectory=
    are; the chroot directory inside stays root's."""

    def __init__(self, name, user_line=None, main_extra=""):
        self.port = free_port()
        body = ("    server {\n"
                "        listen 127.0.0.1:%d;\n"
                "        protocol imap;\n"
                "        auth_http 127.0.0.1:%d/auth;\n"
                "    }\n" % (self.port, AS.port))
        self.d = Daemon(BINARY, "", workers=2, name=name)
        self.d.main_extra = "control_socket %s;\n%s" % (
            os.path.join(self.d.dir, "ctl.sock"), main_extra)
        text = self.d.text(body)
        if user_line is not None:
            text = text.replace("user nobody nogroup;", user_line)
        self.d.write(body, raw=text)
        pw = pwd.getpwnam(USER)
        os.chown(self.d.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.d.conf, 0o644)

    def check(self):
        """mailproxyd -t as the unit's ExecStartPre runs it."""
        return subprocess.run(list(SETPRIV) + [BINARY, "-t", "-c",
                                               self.d.conf],
                              capture_output=True, timeout=30, env=subenv())

    def start(self, wait=True):
        return self.d.start(env=subenv(), wait=wait, wrap=SETPRIV)

    def stop(self):
        self.d.stop()


def login(port):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        typ, _ = m.login("alice", PW)
        assert typ == "OK", typ
    finally:
        try:
            m.logout()
        except Exception:  # noqa
            pass


def caps(st, name):
    return int(st[name], 16)


@test
def serves_confined_as_the_unit_runs_it():
    """Logins through Dovecot work; the parent is the service user with
    its two capabilities; every child is chrooted, has no capability in
    its effective, permitted, inheritable or ambient set, and runs under
    its seccomp filter with no_new_privs; none is dumpable; the log and
    pid file are the service user's."""
    u = Unpriv("unpriv")
    try:
        u.start()
        uid = str(pwd.getpwnam(USER).pw_uid)
        st = proc_status(u.d.pid)
        assert st["Uid"].split() == [uid] * 4, st["Uid"]
        assert caps(st, "CapEff") == PARENT_CAPS, st["CapEff"]
        assert caps(st, "CapBnd") == PARENT_CAPS, st["CapBnd"]
        # Not dumpable (prctl(2)): its /proc/PID/mem is root's, so a
        # process of the same uid can neither ptrace it nor open its
        # memory or descriptors.
        assert os.stat("/proc/%d/mem" % u.d.pid).st_uid == 0
        kids = children(u.d.pid)
        assert len(kids) == 3, kids
        # A child may still be setting itself up when the listeners
        # answer (the sanitizers' build is slow to start): each is
        # checked once it has entered its chroot and loaded its filter.
        wait_for(lambda: all(os.readlink("/proc/%d/root" % k) ==
                             u.d.chroot and
                             proc_status(k)["Seccomp"] == "2"
                             for k in kids),
                 what="every child in the chroot, under its filter")
        for k in kids:
            st = proc_status(k)
            assert st["Uid"].split() == [uid] * 4, (k, st["Uid"])
            assert os.readlink("/proc/%d/root" % k) == u.d.chroot, k
            for c in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
                assert caps(st, c) == 0, (k, c, st[c])
            assert st["Seccomp"] == "2", (k, st["Seccomp"])
            assert st["NoNewPrivs"] == "1", (k, st["NoNewPrivs"])
            assert os.stat("/proc/%d/mem" % k).st_uid == 0, k
        for _ in range(3):
            login(u.port)
        assert os.stat(u.d.log).st_uid == int(uid)
        assert os.stat(u.d.pidfile).st_uid == int(uid)
        assert "not running as root" not in u.d.logtext()
    finally:
        u.stop()


@test
def reload_and_stop_by_pid():
    """SIGHUP, as the unit's ExecReload sends it as the service user,
    starts a new generation that serves; SIGTERM to the parent's pid
    stops every process and removes the pid file."""
    u = Unpriv("unpriv-hup")
    try:
        u.start()
        before = set(children(u.d.pid))
        r = subprocess.run(list(SETPRIV) + ["kill", "-HUP", str(u.d.pid)],
                           capture_output=True, timeout=10)
        assert r.returncode == 0, r.stderr
        u.d.wait_log("reconfiguring done, generation 2 serving")
        wait_for(lambda: not (set(children(u.d.pid)) & before),
                 what="the old generation to end")
        u.d.wait_ready()
        for k in children(u.d.pid):
            assert proc_status(k)["Seccomp"] == "2", k
            assert os.readlink("/proc/%d/root" % k) == u.d.chroot, k
        login(u.port)
        pids = [u.d.pid] + list(children(u.d.pid))
        os.kill(u.d.pid, signal.SIGTERM)
        wait_for(lambda: not any(alive(p) for p in pids),
                 what="every process to stop")
        assert u.d.proc.wait(timeout=5) == 0
        assert not os.path.exists(u.d.pidfile)
    finally:
        u.stop()


@test
def worker_cannot_signal_same_uid_processes():
    """Parent and children share a uid, so only the filter stops a
    worker that calls kill(parent or another worker, SIGSTOP): the
    worker dies of SIGSYS, the target runs on, logins go on."""
    u = Unpriv("unpriv-kill", main_extra=SELFTEST)
    try:
        u.start()
        for target in ("parent", "worker"):
            # Both workers set up: the test switch is armed just before
            # the filter is loaded (a new worker, in the slow sanitizers'
            # build, may not be there yet when the listeners answer).
            wait_for(lambda: len(u.d.workers_now()) == 2 and
                     all((proc_status(k) or {}).get("Seccomp") == "2"
                         for k in u.d.workers_now()),
                     what="two workers under their filter")
            w = u.d.workers_now()
            victim = w[0]
            pid = u.d.pid if target == "parent" else w[1]
            sigqueue(victim, signal.SIGUSR2, pid)
            wait_for(lambda: not alive(victim), what="worker to die")
            u.d.wait_log("worker process %d exited on signal %d (SIGSYS"
                         % (victim, signal.SIGSYS))
            time.sleep(0.2)
            st = proc_status(pid)
            assert st is not None and st["State"][0] in "SR", \
                (target, st and st["State"])
            wait_for(lambda: len(u.d.workers_now()) == 2 and
                     victim not in u.d.workers_now(), what="a new worker")
            login(u.port)
    finally:
        u.stop()


@test
def binary_upgrade_as_the_service_user():
    """SIGUSR2: the new binary, started by a parent that is not root,
    keeps the two capabilities (ambient, across execve) and confines
    its children the same way; the old parent then quits."""
    u = Unpriv("unpriv-upgrade")
    old = None
    try:
        u.start()
        old = u.d.pid
        os.kill(old, signal.SIGUSR2)
        new = wait_for(lambda: u.d.read_pid() not in (None, old) and
                       u.d.read_pid(), what="the new pid file")
        u.d.wait_log("binary upgrade: serving")
        st = proc_status(new)
        assert caps(st, "CapEff") == PARENT_CAPS, st["CapEff"]
        assert st["Uid"].split()[0] == str(pwd.getpwnam(USER).pw_uid)
        os.kill(old, signal.SIGQUIT)
        wait_for(lambda: not alive(old), what="the old parent to quit")
        u.d.pid = new
        u.d.wait_ready()
        for k in children(new):
            st = proc_status(k)
            assert st["Seccomp"] == "2" and caps(st, "CapEff") == 0, k
            assert os.readlink("/proc/%d/root" % k) == u.d.chroot, k
        login(u.port)
    finally:
        if old is not None and alive(old):
            os.kill(old, signal.SIGKILL)
        u.stop()


@test
def another_user_refused():
    """"user" naming another uid than the parent's: -t and the start
    fail with the file, the line and the directive, and nothing keeps
    running."""
    u = Unpriv("unpriv-user", user_line="user daemon;")
    try:
        want = ('user "daemon" group "daemon" (user): uid %d gid %d, but '
                'the parent runs as uid %d' % (
                    pwd.getpwnam("daemon").pw_uid,
                    pwd.getpwnam("daemon").pw_gid,
                    pwd.getpwnam(USER).pw_uid))
        where = "in %s:%d" % (u.d.conf, line_of(u.d.conf, "user daemon;"))
        r = u.check()
        err = r.stderr.decode()
        assert r.returncode == 1, err
        assert want in err and where in err, err
        assert "test failed" in err, err
        p = u.start(wait=False)
        assert p.wait(timeout=15) == 1
        err = p.stderr.read().decode()
        assert want in err and where in err, err
        assert u.d.read_pid() is None
        # Root may run the same file: the children then become "daemon".
        r = subprocess.run([BINARY, "-t", "-c", u.d.conf],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        u.stop()


@test
def root_only_settings_refused():
    """What only root can do fails at -t with file and line: a negative
    worker_priority, a control socket given to a group the user is not
    in, one in a directory the user cannot write."""
    cases = [
        ("worker_priority -5;", "worker_priority -5;",
         "worker_priority -5 (worker_priority): a negative value needs a "
         "parent running as root"),
        ("control_socket /run/mailproxyd-unpriv-test.sock;",
         "control_socket /run/",
         'control socket "/run/mailproxyd-unpriv-test.sock" '
         "(control_socket): the parent runs as uid %d, which cannot "
         "create files in its directory" % pwd.getpwnam(USER).pw_uid),
    ]
    for extra, needle, want in cases:
        u = Unpriv("unpriv-root", main_extra=extra)
        try:
            text = open(u.d.conf).read()
            # The one control_socket line: the case's, if it has one.
            if extra.startswith("control_socket"):
                lines = [ln for ln in text.split("\n")
                         if not ln.startswith("control_socket " +
                                              u.d.dir)]
                u.d.write("", raw="\n".join(lines))
            r = u.check()
            err = r.stderr.decode()
            assert r.returncode == 1, (extra, err)
            assert want in err, (extra, err)
            assert "in %s:%d" % (u.d.conf, line_of(u.d.conf, needle)) \
                in err, (extra, err)
        finally:
            u.stop()
    u = Unpriv("unpriv-group")
    try:
        text = open(u.d.conf).read().replace(
            "ctl.sock;", "ctl.sock adm;")
        u.d.write("", raw=text)
        r = u.check()
        err = r.stderr.decode()
        assert r.returncode == 1, err
        assert 'control socket group "adm" (control_socket): the parent ' \
            'runs as uid %d, which is not a member' % \
            pwd.getpwnam(USER).pw_uid in err, err
        assert "in %s:%d" % (u.d.conf, line_of(u.d.conf, "ctl.sock adm;")) \
            in err, err
    finally:
        u.stop()


# --------------------------------------------------------------------------

def setup():
    global DC, AS
    os.makedirs(TMP, exist_ok=True)
    DC = Dovecot({"alice": PW}, name="unpriv-dovecot", protocols=("imap",))
    DC.start()
    AS = AuthServer("alice %s imap=127.0.0.1:%d\n" % (PW, DC.imap_port),
                    name="unpriv-as")


def teardown(keep=True):
    if AS is not None:
        AS.stop()
    if DC is not None:
        DC.stop()


def main():
    global BINARY
    if len(sys.argv) < 2:
        print("usage: test_unprivileged.py DAEMON [name...]")
        return 2
    BINARY = os.path.abspath(sys.argv[1])
    return run_tests(TESTS, "starts the daemon as another user", setup,
                     teardown)


if __name__ == "__main__":
    sys.exit(main())
