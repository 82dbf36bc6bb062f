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
"""End-to-end tests of the children's sandbox on Linux (sandbox.c): the
seccomp filter, the capability sets, the resource limits and Landlock,
seen from outside through /proc and the error log of a real daemon
with workers, an auth process and a key process; and what happens when
a child breaks its sandbox.  Run as root.  Usage: test_sandbox.py
DAEMON [name...]

Breaking the sandbox on purpose uses the daemon's test-only switch:
with MAILPROXYD_SANDBOX_SELFTEST=yes in a child's environment, SIGUSR2
from root makes the child call execve(2), or kill(PID, SIGSTOP) when
the signal is sent with sigqueue(3) and PID as its value.  Only an
"env" directive in the configuration puts the variable into a child's
environment (the parent passes its own environment on to no child), so
no production configuration arms it by accident; unarmed, SIGUSR2 just
ends the child as it always did.  unarmed_switch_does_nothing checks
exactly that.

Ends with the line "N passed, M failed"."""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpd import (Daemon, TMP, alive, children, free_port,  # noqa
                 proc_status, run_tests, subenv, wait_for)

BINARY = None
TESTS = []
KEYDIR = None

_libc = ctypes.CDLL(None, use_errno=True)
_libc.sigqueue.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
SYS_landlock_create_ruleset = 444
LANDLOCK_CREATE_RULESET_VERSION = 1
SELFTEST = "env MAILPROXYD_SANDBOX_SELFTEST=yes;"


def test(fn):
    TESTS.append(fn)
    return fn


def sigqueue(pid, sig, value):
    """sigqueue(3): a signal with an integer value (SI_QUEUE)."""
    if _libc.sigqueue(pid, sig, value) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def landlock_abi():
    """The kernel's Landlock ABI version, or None."""
    r = _libc.syscall(SYS_landlock_create_ruleset, None, 0,
                      LANDLOCK_CREATE_RULESET_VERSION)
    return r if r > 0 else None


def greeting(port, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=timeout) as s:
        data = b""
        while b"\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def make_key():
    """A self-signed certificate and key, so the daemon has a key
    process."""
    global KEYDIR
    if KEYDIR is None:
        os.makedirs(TMP, exist_ok=True)
        import tempfile
        KEYDIR = tempfile.mkdtemp(prefix="sandbox-key-", dir=TMP)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-subj", "/CN=mx.test", "-days", "2",
                        "-keyout", os.path.join(KEYDIR, "k.pem"),
                        "-out", os.path.join(KEYDIR, "c.pem")],
                       check=True, capture_output=True, timeout=60)
        os.chmod(os.path.join(KEYDIR, "k.pem"), 0o600)
    return os.path.join(KEYDIR, "c.pem"), os.path.join(KEYDIR, "k.pem")


class Sandboxed:
    """A daemon with a plain IMAP server and one with implicit TLS (so a
    key process runs); armed: the self-test switch is on."""

    def __init__(self, name, armed=True, workers=2):
        crt, key = make_key()
        self.port = free_port()
        self.tls_port = free_port()
        body = ("    server {\n        listen 127.0.0.1:%d;\n"
                "        protocol imap;\n    }\n"
                "    server {\n        listen 127.0.0.1:%d ssl;\n"
                "        protocol imap;\n"
                "        ssl_certificate %s;\n"
                "        ssl_certificate_key %s;\n    }\n"
                % (self.port, self.tls_port, crt, key))
        self.d = Daemon(BINARY, body, workers=workers,
                        main_extra=SELFTEST if armed else "", name=name)

    def start(self, env=None):
        e = subenv()
        if env:
            e.update(env)
        self.d.start(env=e)
        wait_for(lambda: len(self.keys()) == 1, what="key process")
        wait_for(lambda: all(self.d.dropped(p)
                             for p in children(self.d.pid)),
                 what="privilege drop")
        return self

    def keys(self):
        return sorted(p for p, c in children(self.d.pid).items()
                      if "key process" in c)

    def stop(self):
        self.d.stop()


def limits(pid):
    """/proc/PID/limits: {name: (soft, hard)}."""
    out = {}
    with open("/proc/%d/limits" % pid) as f:
        next(f)
        for line in f:
            m = re.match(r"^(.*?)\s{2,}(\S+)\s+(\S+)", line)
            if m:
                out[m.group(1).strip()] = (m.group(2), m.group(3))
    return out


def assert_worker_killed(s, pid):
    """pid, a worker, died of SIGSYS, the parent said so, and a new
    worker took its place."""
    d = s.d
    wait_for(lambda: not alive(pid), what="worker %d to die" % pid)
    d.wait_log("worker process %d exited on signal %d (SIGSYS" %
               (pid, signal.SIGSYS))
    wait_for(lambda: len(d.workers_now()) == d.workers and
             pid not in d.workers_now(), what="a new worker")
    wait_for(lambda: all(d.dropped(p) for p in children(d.pid)),
             what="privilege drop")


@test
def every_child_confined():
    """Workers, auth and key process: a seccomp filter, no new
    privileges, no capability in any set, no core file, no new process,
    and for workers no file growth; the parent says what it
    enforces."""
    s = Sandboxed("conf", armed=False).start()
    try:
        kids = children(s.d.pid)
        roles = sorted(c.split(":", 1)[1].strip() for c in kids.values())
        assert roles == ["auth process", "key process", "worker process",
                         "worker process"], roles
        for pid in kids:
            st = proc_status(pid)
            assert st["Seccomp"] == "2", (pid, st["Seccomp"])
            assert st["NoNewPrivs"] == "1", (pid, st["NoNewPrivs"])
            for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                assert int(st[cap], 16) == 0, (pid, cap, st[cap])
            lim = limits(pid)
            assert lim["Max core file size"] == ("0", "0"), lim
            assert lim["Max processes"] == ("0", "0"), lim
            # Workers write no file; their log lines go to the parent.
            if "worker process" in kids[pid]:
                assert lim["Max file size"] == ("0", "0"), lim
        # The parent stays unconfined.
        st = proc_status(s.d.pid)
        assert st["Seccomp"] == "0" and int(st["CapEff"], 16) != 0, st
        log = s.d.logtext()
        assert "seccomp: system call filter per process enforced" in log, \
            log
        abi = landlock_abi()
        if abi is not None:
            assert "landlock: ABI %d, enforced" % abi in log, log
        else:
            assert "landlock: not available" in log, log
        assert "self-test armed" not in log, log
        # The confined children still do their work.
        assert greeting(s.port).startswith(b"* OK"), "no greeting"
        r = subprocess.run([BINARY, "-V"], capture_output=True, timeout=10)
        assert re.search(rb"^sandbox: seccomp \(libseccomp [0-9.]+\)",
                         r.stderr, re.M), r.stderr
    finally:
        s.stop()
        print(s.d.logtext()) if os.environ.get("SB_SHOWLOG") else None


@test
def forbidden_call_kills_worker():
    """A worker that calls execve is killed by SIGSYS; the parent logs
    the role and the signal, starts another worker, and the daemon goes
    on serving."""
    s = Sandboxed("execve").start()
    try:
        d = s.d
        assert "self-test armed" in d.logtext()
        others = [p for p in children(d.pid)]
        victim = d.workers_now()[0]
        os.kill(victim, signal.SIGUSR2)
        assert_worker_killed(s, victim)
        # Nobody else was touched.
        for p in others:
            if p != victim:
                assert alive(p), p
        for _ in range(4):
            assert greeting(s.port).startswith(b"* OK IMAP4 ready"), \
                "no greeting"
    finally:
        s.stop()
        print(s.d.logtext()) if os.environ.get("SB_SHOWLOG") else None


@test
def worker_cannot_stop_auth_or_key():
    """Workers share their uid with the auth and key processes; a worker
    that tries kill(auth, SIGSTOP) or kill(key, SIGSTOP) is killed by
    the filter, and both go on running."""
    s = Sandboxed("kill").start()
    try:
        d = s.d
        auth = d.auth_now()[0]
        key = s.keys()[0]
        for target in (auth, key):
            victim = d.workers_now()[0]
            sigqueue(victim, signal.SIGUSR2, target)
            assert_worker_killed(s, victim)
            # Still there, still the same process, not stopped.
            time.sleep(0.2)
            st = proc_status(target)
            assert st is not None and st["State"][0] in "SR", \
                (target, st and st["State"])
        assert d.auth_now() == [auth] and s.keys() == [key]
        assert greeting(s.port).startswith(b"* OK"), "no greeting"
    finally:
        s.stop()
        print(s.d.logtext()) if os.environ.get("SB_SHOWLOG") else None


@test
def unarmed_switch_does_nothing():
    """The switch in the daemon's own environment, without an "env"
    directive, does not reach the children: SIGUSR2 ends a worker with
    its default action, not with a forbidden call."""
    s = Sandboxed("unarmed", armed=False).start(
        env={"MAILPROXYD_SANDBOX_SELFTEST": "yes"})
    try:
        d = s.d
        assert "self-test armed" not in d.logtext()
        victim = d.workers_now()[0]
        sigqueue(victim, signal.SIGUSR2, d.auth_now()[0])
        wait_for(lambda: not alive(victim), what="worker to end")
        d.wait_log("worker process %d exited on signal %d" %
                   (victim, signal.SIGUSR2))
        assert "SIGSYS" not in d.logtext()
        assert proc_status(d.auth_now()[0])["State"][0] in "SR"
    finally:
        s.stop()
        print(s.d.logtext()) if os.environ.get("SB_SHOWLOG") else None


def teardown(keep=True):
    if KEYDIR is not None and not keep:
        shutil.rmtree(KEYDIR, ignore_errors=True)


def main():
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    os.makedirs(TMP, exist_ok=True)
    return run_tests(TESTS, "starts the daemon", teardown=teardown)


if __name__ == "__main__":
    sys.exit(main())
