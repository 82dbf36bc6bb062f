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

"""Helpers for the end-to-end tests: a mailproxyd instance started on
loopback ports picked here, inspected from outside through /proc, and
stopped by PID.  Python standard library only."""

import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = os.path.join(TOP, "tests", "tmp")
AUTHSERVER = os.path.join(TOP, "contrib", "auth-server",
                          "mailproxyd-auth-server")


_GIVEN_PORTS = set()


def line_of(path, needle):
    """The number of the first line of file path containing needle."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if needle in line:
                return n
    raise AssertionError("%r not in %s" % (needle, path))


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A TCP port nobody listens on right now, and not one this process
    was given before: the kernel may hand out a port just released, so
    that a configuration of many listens picked in a row would name one
    twice."""
    for _ in range(100):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port
    raise AssertionError("no fresh free port")


def wait_for(pred, timeout=10.0, step=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(step)


def proc_status(pid):
    """/proc/PID/status as a dict, or None when the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            out = {}
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
            return out
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid):
    st = proc_status(pid)
    return st is not None and not st.get("State", "").startswith("Z")


def children(ppid):
    """Live children of ppid: {pid: cmdline}."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_status(int(d))
        if st is None or st.get("PPid") != str(ppid):
            continue
        if st.get("State", "").startswith("Z"):
            continue
        out[int(d)] = proc_cmdline(int(d)) or ""
    return out


_libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_open = 434
SYS_pidfd_getfd = 438


def steal_fd(pid, fd):
    """A duplicate of another process's descriptor (pidfd_getfd(2))."""
    pidfd = _libc.syscall(SYS_pidfd_open, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    try:
        nfd = _libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
        if nfd < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return nfd
    finally:
        os.close(pidfd)


def socket_inodes(pid):
    """{inode: fd} of the sockets a process holds."""
    out = {}
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            out[int(t[8:-1])] = int(fd)
    return out


def listening_inodes(port, pid="self"):
    """Inodes of TCP sockets listening on port (v4 and v6) in the network
    namespace of pid."""
    inodes = []
    for path in ("/proc/%s/net/tcp" % pid, "/proc/%s/net/tcp6" % pid):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    lport = int(p[1].rsplit(":", 1)[1], 16)
                    if lport == port and p[3] == "0A":
                        inodes.append(int(p[9]))
        except FileNotFoundError:
            pass
    return inodes


def listener_sockets(pid, port):
    """socket objects duplicated from pid's listening sockets on port."""
    held = socket_inodes(pid)
    out = []
    for ino in listening_inodes(port, pid):
        if ino in held:
            out.append(socket.socket(fileno=steal_fd(pid, held[ino])))
    return out


class Daemon:
    """One mailproxyd with its own directory, config, log and pid file."""

    def __init__(self, binary, body, workers=2, main_extra="", name="t"):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="mpd-" + name + "-",
                                    dir=os.path.join(TOP, "tests", "tmp"))
        os.chmod(self.dir, 0o755)
        self.chroot = os.path.join(self.dir, "empty")
        os.mkdir(self.chroot, 0o755)
        self.conf = os.path.join(self.dir, "mailproxyd.conf")
        self.log = os.path.join(self.dir, "error.log")
        self.pidfile = os.path.join(self.dir, "mailproxyd.pid")
        self.workers = workers
        self.main_extra = main_extra
        self.write(body)
        self.proc = None
        self.pid = None

    def text(self, body):
        return ("user nobody nogroup;\n"
                "worker_processes %d;\n"
                "error_log %s info;\n"
                "pid %s;\n"
                "chroot %s;\n"
                "daemon off;\n%s\n"
                "mail {\n    server_name mx.test;\n"
                "    auth_http 127.0.0.1:9/auth;\n%s\n}\n"
                % (self.workers, self.log, self.pidfile, self.chroot,
                   self.main_extra, body))

    def write(self, body, raw=None):
        with open(self.conf, "w") as f:
            f.write(raw if raw is not None else self.text(body))

    def start(self, args=(), env=None, wait=True, wrap=()):
        e = dict(os.environ)
        # LeakSanitizer cannot stop the world in a non-dumpable,
        # chrooted child; leaks are checked by the unit suites.
        # A signal sent by a test must kill as it does in a plain build.
        e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + \
            ":detect_leaks=0:handle_segv=0"
        if env:
            e.update(env)
        self.proc = subprocess.Popen(
            list(wrap) + [self.binary, "-c", self.conf] + list(args), env=e,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if wait:
            self.wait_ready()
        return self.proc

    def wait_ready(self, n=None):
        n = self.workers if n is None else n
        self.pid = wait_for(self.read_pid, what="pid file")
        wait_for(lambda: len(self.workers_now()) == n and
                 len(self.auth_now()) == 1, what="children")
        # READY is announced once every child dropped privileges.
        wait_for(lambda: all(self.dropped(p) for p in children(self.pid)),
                 what="privilege drop")
        return self.pid

    def dropped(self, pid):
        st = proc_status(pid)
        return st is not None and st["Uid"].split()[0] != "0"

    def read_pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def workers_now(self):
        return sorted(p for p, c in children(self.pid).items()
                      if "worker process" in c)

    def auth_now(self):
        return sorted(p for p, c in children(self.pid).items()
                      if "auth process" in c)

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=10.0):
        return wait_for(lambda: needle in self.logtext(), timeout=timeout,
                        what="log line %r" % needle)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self):
        """Stop by PID, whatever state the test left it in."""
        pids = []
        if self.pid:
            pids = [self.pid] + list(children(self.pid))
        if self.pid and alive(self.pid):
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc.stderr.close()
        for p in pids:
            if alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# Run a command in a network namespace of its own with only "lo" up, so
# that wildcard addresses stay on this machine.
NETNS_WRAP = ("unshare", "--net", "sh", "-c",
              'ip link set lo up && exec "$0" "$@"')
CLONE_NEWNET = 0x40000000


def netns_socket(pid, family):
    """A socket created inside the network namespace of pid."""
    out = {}

    def run():
        # setns changes only this thread, which then ends.
        fd = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                out["err"] = OSError(ctypes.get_errno(), "setns")
                return
            out["sock"] = socket.socket(family, socket.SOCK_STREAM)
        finally:
            os.close(fd)
    import threading
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "err" in out:
        raise out["err"]
    return out["sock"]


def connect_and_read(port, host="127.0.0.1", family=socket.AF_INET,
                     timeout=5.0):
    """Connect, read until the proxy closes; returns the bytes."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk


def subenv():
    """The environment for the daemons the suites start: LeakSanitizer
    cannot stop the world in the confined children, and a small
    quarantine keeps the memory checks of a sanitized build
    meaningful."""
    e = dict(os.environ)
    e["ASAN_OPTIONS"] = e.get("ASAN_OPTIONS", "") + \
        ":detect_leaks=0:handle_segv=0:quarantine_size_mb=1"
    return e


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s\n  got:  %r\n  want: %r"
                             % (what or "mismatch", got, want))


class Conn:
    """A raw client socket with a line reader; every wait is bounded.
    host and family, or unix (a path), say where to connect; source
    binds the client's address; nodelay sets TCP_NODELAY; tls is a
    client context for implicit TLS (the handshake on connect)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, nodelay=False,
                 family=None, unix=None, source=None, tls=None,
                 server_hostname="mx.test"):
        if unix is not None:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect(unix)
        else:
            fam = family or (socket.AF_INET6 if ":" in host
                             else socket.AF_INET)
            self.s = socket.socket(fam, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            if source is not None:
                self.s.bind((source, 0))
            self.s.connect((host, port))
            if nodelay:
                self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.closed = False
        if tls is not None:
            self.s = tls.wrap_socket(self.s, server_hostname=server_hostname)

    @classmethod
    def wrap(cls, sock, timeout=10.0):
        """A Conn on a socket connected elsewhere."""
        c = cls.__new__(cls)
        c.s, c.timeout, c.buf, c.closed = sock, timeout, b"", False
        return c

    def local_port(self):
        return self.s.getsockname()[1]

    def starttls(self, ctx, server_hostname="mx.test"):
        """The handshake on this connection.  Nothing the server sent
        before it may be left unread: that would be plaintext injected
        ahead of TLS."""
        if self.buf:
            raise AssertionError("bytes before the TLS handshake: %r"
                                 % self.buf[:200])
        self.s.settimeout(self.timeout)
        self.s = ctx.wrap_socket(self.s, server_hostname=server_hostname)
        return self.s

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.s.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.s.settimeout(left)
        try:
            chunk = self.s.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError,
                ssl.SSLZeroReturnError):
            chunk = b""
        if not chunk:
            self.closed = True
        self.buf += chunk
        return chunk

    def line(self, timeout=None):
        """One line, CRLF or LF included."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            try:
                if not self._fill(deadline):
                    raise AssertionError("connection closed; partial %r"
                                         % self.buf[:200])
            except socket.timeout:
                raise AssertionError("no complete line in time; have %r"
                                     % self.buf[:200])
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            try:
                if not self._fill(deadline):
                    raise AssertionError("closed after %d of %d bytes"
                                         % (len(self.buf), n))
            except socket.timeout:
                raise AssertionError("%d of %d bytes in time"
                                     % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect(self, want, what="reply"):
        """Read as many lines as want has and compare the bytes."""
        got = b""
        try:
            for _ in range(want.count(b"\n")):
                got += self.line()
        except AssertionError as e:
            raise AssertionError("%s: %s\n  got:  %r\n  want: %r"
                                 % (what, e, got, want))
        eq(got, want, what)

    def cmd(self, data, want, what=None):
        """Send a line, expect the reply."""
        self.send(data + b"\r\n")
        self.expect(want, what or data[:60].decode(errors="replace"))

    def until_tagged(self, tag):
        """IMAP: the lines up to the one tagged tag, as a list."""
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln.startswith(tag + b" "):
                return out

    def reply(self, timeout=None):
        """One SMTP reply, multi-line replies to their last line."""
        out = b""
        while True:
            ln = self.line(timeout)
            out += ln
            if ln[3:4] != b"-":
                return out

    def eof(self, timeout=None):
        """Wait for the peer to close; return what came before EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.closed:
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError("connection not closed in time; "
                                     "have %r" % self.buf[:200])
            except (ssl.SSLError, OSError):
                self.closed = True
        out, self.buf = self.buf, b""
        return out

    def expect_eof(self, timeout=None, what="nothing more, then close"):
        eq(self.eof(timeout), b"", what)

    def quiet_for(self, seconds):
        """Assert nothing arrives (and no close) for seconds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._fill(deadline)
            except socket.timeout:
                break
            if self.buf or self.closed:
                raise AssertionError("unexpected %r (closed=%s) within %.1fs"
                                     % (self.buf[:200], self.closed, seconds))


class AuthServer:
    """The reference auth server (contrib/auth-server) on a loopback port
    of its own, with a users file and a record of every request it got
    (--record, one JSON object a line); flags go to its command line."""

    def __init__(self, users, *flags, name="as", directory=None):
        os.makedirs(TMP, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="as-" + name + "-",
                                    dir=directory or TMP)
        self.users = os.path.join(self.dir, "users")
        with open(self.users, "w") as f:
            f.write(users)
        os.chmod(self.users, 0o600)
        self.record = os.path.join(self.dir, "record")
        self.log = os.path.join(self.dir, "log")
        portfile = os.path.join(self.dir, "port")
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, AUTHSERVER, "-u", self.users, "-q",
                 "--listen", "127.0.0.1:0", "--port-file", portfile,
                 "--record", self.record] + [str(f) for f in flags],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err)

        def port():
            if self.proc.poll() is not None:
                raise AssertionError("auth server exited: " +
                                     open(self.log).read()[-1000:])
            try:
                with open(portfile) as f:
                    return int(f.read().strip())
            except (FileNotFoundError, ValueError):
                return None
        self.port = wait_for(port, timeout=15, what="auth server port")

    def records(self):
        try:
            with open(self.record, encoding="utf-8") as f:
                return [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            return []

    def mark(self):
        return len(self.records())

    def since(self, mark):
        return self.records()[mark:]

    def one_since(self, mark):
        """The one request recorded after mark (waited for)."""
        recs = wait_for(lambda: self.since(mark), timeout=10,
                        what="an auth request")
        eq(len(recs), 1, "auth requests since the mark")
        return recs[0]

    def url(self):
        return "127.0.0.1:%d/auth" % self.port

    def stop(self):
        if self.proc.poll() is None:
            kill_pid(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_pid(self.proc.pid)
                self.proc.wait(timeout=5)


def run_tests(tests, needs, setup=None, teardown=None, each=None):
    """The runner of every end-to-end suite: sys.argv[2:] names the tests
    to run (all of them by default).  setup() starts what the suite
    needs, teardown(keep) stops it (keep: leave the files of a failed
    run); each(fn) runs one test, with whatever checks the suite adds
    around it (by default it just calls fn).  Prints one line per test
    and "N passed, M failed"; returns the exit status."""
    only = sys.argv[2:]
    passed = failed = 0
    if os.geteuid() != 0:
        print("FAIL: this suite %s and must run as root" % needs)
        print("0 passed, 1 failed")
        return 1
    selected = [fn for fn in tests if not only or fn.__name__ in only]
    t_all = time.monotonic()
    try:
        if setup is not None:
            setup()
    except Exception:  # noqa
        print("FAIL setup")
        traceback.print_exc(file=sys.stdout)
        if teardown is not None:
            teardown()
        for fn in selected:
            print("FAIL %s (setup failed)" % fn.__name__)
        print("%d passed, %d failed" % (0, len(selected) + 1))
        return 1
    try:
        for fn in selected:
            t0 = time.monotonic()
            try:
                if each is not None:
                    each(fn)
                else:
                    fn()
            except Exception:  # noqa
                failed += 1
                print("FAIL %s (%.1fs)" % (fn.__name__,
                                           time.monotonic() - t0))
                traceback.print_exc(file=sys.stdout)
            else:
                passed += 1
                print("ok   %s (%.1fs)" % (fn.__name__,
                                           time.monotonic() - t0))
            sys.stdout.flush()
    finally:
        if teardown is not None:
            teardown(keep=failed > 0)
    print("(%.0fs in all)" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def run_suite(tests, setup, teardown, needs, ensure_daemon, daemon):
    """run_tests for the suites that share one daemon: ensure_daemon()
    restarts it if a test killed it, daemon() returns it, and a test
    during which a child process was replaced fails: a crash."""
    def each(fn):
        ensure_daemon()
        d = daemon()
        before = d.workers_now() + d.auth_now()
        fn()
        d = daemon()
        after = d.workers_now() + d.auth_now()
        if alive(d.pid) and sorted(after) != sorted(before):
            raise AssertionError(
                "a child process was replaced during the test "
                "(crash?): %s -> %s" % (before, after))
    return run_tests(tests, "starts %s" % needs, setup, teardown, each)
