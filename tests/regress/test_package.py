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
"""The Debian package, as a packager and an operator meet it: built with
dpkg-buildpackage from the "make dist" tarball, lintian without errors,
installed with dpkg -i, started with the unit's own ExecStart command
line as the unit's User= and Group= with only its AmbientCapabilities=
and CapabilityBoundingSet= and no_new_privs (setpriv(1) does what
systemd would; systemd need not be PID 1), reloaded with the unit's
ExecReload lines, stopped, and purged, after which the machine is as it
was.

Needs root and a Debian system with the build dependencies of debian/
(contrib/install-deps.sh); .ci/run runs it once after the plain build.
It refuses to run if mailproxyd is already installed as a package.

usage: python3 tests/regress/test_package.py [TOP]
"""

import grp
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mpd import free_port, wait_for, proc_status, children  # noqa: E402

TOP = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(os.path.dirname(__file__), "..", ".."))
USER = "_mailproxyd"
UNIT = "/lib/systemd/system/mailproxyd.service"
CONF = "/etc/mailproxyd.conf"
CHROOT = "/var/lib/mailproxyd/empty"
PIDFILE = "/run/mailproxyd/mailproxyd.pid"
LOGFILE = "/var/log/mailproxyd/mailproxyd.log"
# Everything the package brings or makes, gone again after the purge.
ADDED = ["/usr/sbin/mailproxyd", "/usr/sbin/mailproxyctl",
         "/usr/share/man/man8/mailproxyd.8.gz",
         "/usr/share/man/man8/mailproxyctl.8.gz",
         "/usr/share/man/man5/mailproxyd.conf.5.gz",
         UNIT, "/usr/lib/sysusers.d/mailproxyd.conf",
         "/usr/lib/tmpfiles.d/mailproxyd.conf",
         "/etc/logrotate.d/mailproxyd", CONF, CHROOT, "/var/lib/mailproxyd",
         "/run/mailproxyd", "/var/log/mailproxyd",
         "/var/log/mailproxyd.log",
         "/usr/share/doc/mailproxyd",
         "/etc/systemd/system/multi-user.target.wants/mailproxyd.service"]

results = []
STEPS = 7


def step(name):
    def wrap(fn):
        t0 = time.monotonic()
        try:
            fn()
        except Exception:  # noqa
            results.append(False)
            print("FAIL %s (%.1fs)" % (name, time.monotonic() - t0))
            traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            raise
        results.append(True)
        print("ok   %s (%.1fs)" % (name, time.monotonic() - t0))
        sys.stdout.flush()
    return wrap


def run(cmd, timeout=600, ok=True, **kw):
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    if ok and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (
            " ".join(cmd), r.returncode, r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace")))
    return r


def installed():
    r = run(["dpkg-query", "-W", "-f", "${Status}", "mailproxyd"], ok=False)
    return r.returncode == 0 and r.stdout.endswith(b" installed")


def has_user():
    try:
        pwd.getpwnam(USER)
        return True
    except KeyError:
        return False


def has_group():
    try:
        grp.getgrnam(USER)
        return True
    except KeyError:
        return False


def unit_lines(key):
    """The unit's KEY= values, each split as systemd splits a command
    line (quotes kept together)."""
    out = []
    with open(UNIT) as f:
        for ln in f:
            if ln.startswith(key + "="):
                out.append(shlex.split(ln.split("=", 1)[1]))
    return out


def unit_value(key):
    """The unit's last KEY= value, or None."""
    vals = [ln.split("=", 1)[1].strip() for ln in open(UNIT)
            if ln.startswith(key + "=")]
    return vals[-1] if vals else None


def unit_wrap():
    """What systemd does before it runs an Exec line of the unit: the
    RuntimeDirectory= and LogsDirectory= made the service user's, and
    a setpriv(1) prefix for User=, Group=, AmbientCapabilities=,
    CapabilityBoundingSet= and NoNewPrivileges=."""
    user, group = unit_value("User"), unit_value("Group")
    pw = pwd.getpwnam(user)
    gid = grp.getgrnam(group).gr_gid
    for d in ("/run/" + unit_value("RuntimeDirectory"),
              "/var/log/" + unit_value("LogsDirectory")):
        os.makedirs(d, mode=0o755, exist_ok=True)
        os.chown(d, pw.pw_uid, gid)
    caps = ",".join("+" + c[4:].lower()
                    for c in unit_value("AmbientCapabilities").split())
    bound = ",".join("+" + c[4:].lower()
                     for c in unit_value("CapabilityBoundingSet").split())
    assert unit_value("NoNewPrivileges") == "yes"
    return ["setpriv", "--reuid=" + user, "--regid=" + group,
            "--init-groups", "--inh-caps=" + caps,
            "--ambient-caps=" + caps, "--bounding-set=-all," + bound,
            "--no-new-privs"]


def greeting(port):
    """The first line the server sends, or None if nothing listens."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionRefusedError:
        return None
    with s:
        buf = b""
        while not buf.endswith(b"\r\n"):
            b = s.recv(512)
            if not b:
                break
            buf += b
        return buf


def main():
    if os.geteuid() != 0:
        print("FAIL: this test installs a package and must run as root")
        print("0 passed, 1 failed")
        return 1
    if installed():
        print("FAIL: mailproxyd is installed as a package already; "
              "this test would remove it")
        print("0 passed, 1 failed")
        return 1
    before_user, before_group = has_user(), has_group()
    before = {p for p in ADDED if os.path.lexists(p)}
    tmp = tempfile.mkdtemp(prefix="mailproxyd-pkg.")
    version = open(os.path.join(TOP, "VERSION")).read().strip()
    deb = os.path.join(tmp, "mailproxyd_%s_%s.deb" % (
        version, run(["dpkg", "--print-architecture"]).stdout.decode()
        .strip()))
    daemon = None
    try:
        @step("build the .deb from the make dist tarball")
        def _():
            run(["make", "-s", "dist"], cwd=TOP)
            tarball = "mailproxyd-%s.tar.gz" % version
            shutil.move(os.path.join(TOP, tarball), tmp)
            shutil.move(os.path.join(TOP, "mailproxyd-%s.distinfo" %
                                     version), tmp)
            run(["tar", "-xzf", tarball], cwd=tmp)
            src = os.path.join(tmp, "mailproxyd-%s" % version)
            # The package's version is the release's.
            r = run(["dpkg-parsechangelog", "-S", "Version"], cwd=src)
            assert r.stdout.decode().strip() == version, r.stdout
            # The package is a release build, whatever this shell's.
            env = {k: v for k, v in os.environ.items()
                   if k not in ("SANITIZE", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
            run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src,
                env=env, timeout=900)
            assert os.path.exists(deb), os.listdir(tmp)

        @step("lintian reports no errors or warnings")
        def _():
            changes = deb[:-4] + ".changes"
            r = run(["lintian", "--fail-on", "error,warning", changes],
                    ok=False, timeout=300)
            out = r.stdout.decode() + r.stderr.decode()
            print(out.replace("running with root privileges is not "
                              "recommended!\n", ""), end="")
            assert r.returncode == 0, out

        @step("dpkg -i makes the user, the directories and the conffiles")
        def _():
            run(["dpkg", "-i", deb])
            assert installed()
            pw = pwd.getpwnam(USER)
            assert pw.pw_uid != 0 and pw.pw_uid < 1000, pw
            assert pw.pw_gid == grp.getgrnam(USER).gr_gid, pw
            assert pw.pw_shell.endswith("nologin"), pw
            for p in ADDED[:10]:
                assert os.path.exists(p), p
            conff = run(["dpkg-query", "-W", "-f", "${Conffiles}",
                         "mailproxyd"]).stdout.decode()
            assert " %s " % CONF in conff, conff
            assert " /etc/logrotate.d/mailproxyd " in conff, conff
            # The chroot passes the daemon's own check: root's, 0755.
            st = os.stat(CHROOT)
            assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755
            assert os.listdir(CHROOT) == []
            assert os.path.isdir("/run/mailproxyd")
            # The unit runs the installed binary, the pid file in the
            # runtime directory.
            (start,) = unit_lines("ExecStart")
            assert start[0] == "/usr/sbin/mailproxyd", start
            assert "RuntimeDirectory=mailproxyd\n" in open(UNIT).read()
            assert "ReadWritePaths=/run" not in open(UNIT).read()
            # The shipped configuration passes -t as it is.
            r = run(["/usr/sbin/mailproxyd", "-t"], ok=False)
            assert r.returncode == 0, r.stderr
            # And as the unit's ExecStartPre runs it, as the service
            # user: the log and control socket directories are its own.
            assert "error_log           %s notice;" % LOGFILE in \
                open(CONF).read()
            for pre in unit_lines("ExecStartPre"):
                r = run(unit_wrap() + pre, ok=False)
                assert r.returncode == 0, r.stderr
            r = run(["/usr/sbin/mailproxyd", "-V"], ok=False)
            assert ("mailproxyd/%s" % version).encode() in r.stderr, r.stderr

        port = free_port()

        @step("the unit's ExecStart serves, with the user and chroot")
        def _():
            nonlocal daemon
            # A test configuration on a loopback port in the conffile's
            # place; the purge removes it.
            with open(CONF, "w") as f:
                f.write("user %s;\nworker_processes 1;\n"
                        "error_log %s info;\n"
                        "mail {\n  auth_http http://127.0.0.1:%d/auth;\n"
                        "  server { listen 127.0.0.1:%d; protocol imap; }\n"
                        "}\n" % (USER, LOGFILE, free_port(), port))
            assert unit_value("User") == USER, unit_value("User")
            wrap = unit_wrap()
            for pre in unit_lines("ExecStartPre"):
                run(wrap + pre)
            (cmd,) = unit_lines("ExecStart")
            env = {k: v for k, v in os.environ.items()
                   if k != "NOTIFY_SOCKET"}
            daemon = subprocess.Popen(wrap + cmd, env=env,
                                      stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
            wait_for(lambda: os.path.exists(PIDFILE) and
                     open(PIDFILE).read().strip() == str(daemon.pid),
                     timeout=15, what="the pid file")
            g = wait_for(lambda: greeting(port), timeout=15,
                         what="a greeting")
            assert g.startswith(b"* OK "), g
            kids = children(daemon.pid)
            assert kids, "no children"
            uid = pwd.getpwnam(USER).pw_uid
            st = proc_status(daemon.pid)
            assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
            for k in kids:
                st = proc_status(k)
                assert st["Uid"].split() == [str(uid)] * 4, (k, st["Uid"])
                assert os.readlink("/proc/%d/root" % k) == CHROOT, k
                for c in ("CapEff", "CapPrm", "CapAmb", "CapInh"):
                    assert int(st[c], 16) == 0, (k, c, st[c])
                assert st["Seccomp"] == "2", (k, st["Seccomp"])
            # The log is the service user's, in the LogsDirectory.
            assert os.stat(LOGFILE).st_uid == uid
            assert "started" in open(LOGFILE).read()

        @step("the unit's ExecReload keeps serving")
        def _():
            def reloaded(n):
                wait_for(lambda: open(LOGFILE).read().count(
                    "reconfiguring done") >= n or daemon.poll() is not
                    None, timeout=15, what="reload %d" % n)
                assert daemon.poll() is None, daemon.stderr.read()

            wrap = unit_wrap()
            for cmd in unit_lines("ExecReload"):
                run(wrap + [a.replace("$MAINPID", str(daemon.pid))
                            for a in cmd])
            reloaded(1)
            # "mailproxyd -s" finds the pid file the package built in.
            run(["/usr/sbin/mailproxyd", "-s", "reload"])
            reloaded(2)
            assert greeting(port).startswith(b"* OK ")

        @step("SIGTERM stops it and removes the pid file")
        def _():
            nonlocal daemon
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
            daemon.stderr.close()
            daemon = None
            assert not os.path.exists(PIDFILE)

        @step("dpkg --purge removes everything it added")
        def _():
            run(["dpkg", "--purge", "mailproxyd"])
            assert not installed()
            left = [p for p in ADDED
                    if os.path.lexists(p) and p not in before]
            assert not left, left
            assert has_user() == before_user, "user %s" % USER
            assert has_group() == before_group, "group %s" % USER
    except Exception:  # noqa
        pass
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        if installed():
            subprocess.run(["dpkg", "--purge", "mailproxyd"],
                           capture_output=True, timeout=300)
        shutil.rmtree(tmp, ignore_errors=True)
    npass = sum(results)
    # A failed step ends the run: the ones after it count as failed.
    nfail = STEPS - npass
    print("%d passed, %d failed" % (npass, nfail))
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
