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
"""End-to-end tests of "make demo" (contrib/demo/demo.sh): the script
run as a user runs it, with its real Dovecot, Postfix and mailproxyd.

- With MAILPROXYD_DEMO_EXIT=1 it runs its scripted IMAP, POP3 and SMTP
  sessions, exits 0 with every one of them ok, and leaves nothing
  behind.
- Left running, a Ctrl-C stops it as a terminal would: SIGINT to its
  whole process group, its output piped through a "cat" in the same
  group that dies of the same SIGINT ("make demo | cat").  The script
  must not die of the closed pipe: it stops everything it started,
  removes its work directory and exits 0.
- SIGTERM to the script alone ("kill PID") does the same.

The processes the demo started are those below it in the process tree
when it prints its "Press Ctrl-C" banner (each identified by pid and
start time), and any process whose working or root directory lies in
its work directory (Postfix's daemons run in its queue, mailproxyd's
children are chrooted to its empty/ directory).

The build is expected to be done (the demo's "make" is then a no-op)
and the dependencies installed.  Run as root.  Python 3 standard
library only.  Usage: test_demo.py DAEMON [name...] (DAEMON is unused:
the demo runs the programs of this tree).

Ends with the line "N passed, M failed"."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from mpd import TMP, TOP, run_tests, subenv

DEMO = os.path.join(TOP, "contrib", "demo", "demo.sh")
TESTS = []
# Up to the banner: install-deps (a no-op), make (a no-op), then
# Dovecot, Postfix and mailproxyd start and the sessions run.
BANNER_TIMEOUT = 120
STOP_TIMEOUT = 45
SESSIONS = 9


def test(fn):
    TESTS.append(fn)
    return fn


def starttime(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None
    when the process is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = s[s.rindex(")") + 2:].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def descendants(root):
    """{pid: start time} of every live process below root."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out = {}
    todo = [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            st = starttime(c)
            if st is not None:
                out[c] = st
                todo.append(c)
    return out


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return "?"


def in_workdir(work):
    """{pid: cmdline} of live processes whose cwd or root is in work."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        for link in ("cwd", "root"):
            try:
                t = os.readlink("/proc/%s/%s" % (d, link))
            except OSError:
                continue
            if t == work or t.startswith(work + "/"):
                if starttime(int(d)) is not None:
                    out[int(d)] = cmdline(int(d))
    return out


def demo_env(exit_after):
    env = subenv()
    # Not the jobserver of a "make check" around us.
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(k, None)
    env.pop("MAILPROXYD_DEMO_KEEP", None)
    env["MAILPROXYD_DEMO_EXIT"] = "1" if exit_after else "0"
    return env


class Demo:
    """demo.sh in a process group of its own; with cat=True its
    standard output goes through a cat in the same group, as in
    "make demo | cat" on a terminal.  Its output is collected by a
    thread; its standard error goes to a file."""

    def __init__(self, exit_after=False, cat=False):
        os.makedirs(TMP, exist_ok=True)
        self.errpath = os.path.join(TMP, "demo-stderr.%d" % os.getpid())
        self.err = open(self.errpath, "wb")
        self.cat = None
        self.lines = []
        self.lock = threading.Lock()
        env = demo_env(exit_after)
        if cat:
            # A group of its own in our session, which the demo joins.
            self.cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE,
                                        process_group=0)
            self.proc = subprocess.Popen(
                ["sh", DEMO], cwd=TOP, env=env, stdin=subprocess.DEVNULL,
                stdout=self.cat.stdin, stderr=self.err,
                process_group=self.cat.pid)
            # The demo holds the only write end: cat's death closes it.
            self.cat.stdin.close()
            src = self.cat.stdout
        else:
            self.proc = subprocess.Popen(
                ["sh", DEMO], cwd=TOP, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=self.err,
                start_new_session=True)
            src = self.proc.stdout
        self.pgid = self.proc.pid if self.cat is None else self.cat.pid
        self.reader = threading.Thread(target=self._read, args=(src,),
                                       daemon=True)
        self.reader.start()

    def _read(self, src):
        for ln in iter(src.readline, b""):
            with self.lock:
                self.lines.append(ln.decode(errors="replace"))
        src.close()

    def text(self):
        with self.lock:
            return "".join(self.lines)

    def errtext(self):
        with open(self.errpath, errors="replace") as f:
            return f.read()

    def output(self):
        return self.text() + "\n--- stderr:\n" + self.errtext()

    def wait_text(self, needle, timeout):
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None:
                self.reader.join(5)
                if needle in self.text():
                    break
                raise AssertionError("demo exited %d before %r:\n%s" % (
                    self.proc.returncode, needle, self.output()[-4000:]))
            if time.monotonic() > deadline:
                raise AssertionError("no %r after %ds:\n%s" % (
                    needle, timeout, self.output()[-4000:]))
            time.sleep(0.1)

    def workdir(self):
        m = re.search(r"^demo: work directory: (\S+)$", self.text(), re.M)
        assert m, self.output()[-3000:]
        return m.group(1)

    def wait(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("demo still running %ds after the "
                                 "signal:\n%s" % (timeout,
                                                  self.output()[-4000:]))
        self.reader.join(10)
        return self.proc.returncode

    def kill(self):
        """The last resort of a failed test: the group, by its id."""
        for p in (self.proc, self.cat):
            if p is not None and p.poll() is None:
                try:
                    os.killpg(self.pgid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.pgid, signal.SIGKILL)
                    p.wait(timeout=5)
        self.err.close()
        try:
            os.unlink(self.errpath)
        except FileNotFoundError:
            pass


def reap_leftovers(procs, work):
    """After a failure: stop by pid what the demo left, remove its
    directory, so that the next test starts clean."""
    for pid, st in procs.items():
        if starttime(pid) == st:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if work:
        for pid in in_workdir(work):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(work, ignore_errors=True)


def check_sessions(text):
    assert "demo: all %d client sessions through mailproxyd succeeded" % \
        SESSIONS in text, text[-4000:]
    assert text.count("\n--> ok\n") == SESSIONS, text[-4000:]
    assert "FAILED" not in text, text[-4000:]
    # SMTP through the proxy to Postfix, fetched back over IMAP.
    assert re.search(r"^    <-  250 2\.0\.0 Ok: queued as", text, re.M), \
        text[-4000:]
    assert "(Authenticated sender: alice)" in text, text[-4000:]
    assert re.search(r"^    <\*\* 535 5\.7\.0 Authentication failed",
                     text, re.M), text[-4000:]


def check_all_gone(procs, work, text):
    left = {p: cmdline(p) for p, st in procs.items() if starttime(p) == st}
    assert not left, "the demo left processes running: %s\n%s" % (
        left, text[-3000:])
    left = in_workdir(work)
    assert not left, "processes still in %s: %s" % (work, left)
    assert not os.path.exists(work), "%s was not removed:\n%s" % (
        work, text[-3000:])


def interrupted(sig, cat):
    """Run the demo to its banner, send sig (to the whole group when
    cat, as a terminal's Ctrl-C does, to the script alone otherwise),
    and check it ends with 0 and leaves nothing."""
    d = Demo(cat=cat)
    procs = {}
    work = None
    ok = False
    try:
        d.wait_text("Press Ctrl-C to stop", BANNER_TIMEOUT)
        work = d.workdir()
        check_sessions(d.text())
        procs = descendants(d.proc.pid)
        m = re.search(r"pids: +mailproxyd (\d+), Dovecot (\d+), "
                      r"Postfix (\d+)", d.text())
        assert m, d.text()[-2000:]
        m2 = re.search(r"Postfix is up \(pid \d+, master (\d+)\)",
                       d.text())
        assert m2, d.text()[-2000:]
        started = [int(x) for x in m.groups()] + [int(m2.group(1))]
        for p in started:
            assert p in procs, "pid %d (%s) not below the demo: %s" % (
                p, cmdline(p), procs)
        # mailproxyd's parent has its children (auth, worker, keys).
        assert len(descendants(started[0])) >= 2, descendants(started[0])
        if cat:
            os.killpg(d.pgid, sig)
        else:
            os.kill(d.proc.pid, sig)
        rc = d.wait(STOP_TIMEOUT)
        if cat:
            d.cat.wait(timeout=10)
            assert d.cat.returncode == -sig, d.cat.returncode
        assert rc == 0, "demo exited %d after %s:\n%s" % (
            rc, signal.Signals(sig).name, d.output()[-4000:])
        check_all_gone(procs, work, d.output())
        ok = True
    finally:
        d.kill()
        if not ok:
            reap_leftovers(procs, work)


@test
def exit_after_sessions():
    """MAILPROXYD_DEMO_EXIT=1: every scripted session succeeds, status
    0, nothing left behind."""
    d = Demo(exit_after=True)
    work = None
    ok = False
    try:
        rc = d.wait(BANNER_TIMEOUT)
        text = d.output()
        assert rc == 0, "demo exited %d:\n%s" % (rc, text[-4000:])
        work = d.workdir()
        check_sessions(text)
        assert "Press Ctrl-C" not in text
        pids = {int(x) for x in re.findall(
            r"(?:is up \(pid|master) (\d+)", text)}
        assert len(pids) == 4, text[-3000:]
        left = {p: cmdline(p) for p in pids if starttime(p) is not None}
        assert not left, "left running: %s" % left
        check_all_gone({}, work, text)
        ok = True
    finally:
        d.kill()
        if not ok:
            reap_leftovers({}, work)


@test
def ctrl_c_piped_through_cat():
    """"make demo | cat" and Ctrl-C: SIGINT to the group, cat dies
    too; the demo survives the closed pipe, stops everything, exits
    0."""
    interrupted(signal.SIGINT, cat=True)


@test
def sigterm_to_the_script():
    """kill PID: the same clean stop, status 0."""
    interrupted(signal.SIGTERM, cat=False)


def main():
    return run_tests(TESTS, "starts Dovecot, Postfix and mailproxyd")



if __name__ == "__main__":
    sys.exit(main())
