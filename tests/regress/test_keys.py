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
"""End-to-end tests of how mailproxyd handles TLS certificates and private
keys: the parent reads them (root-only files too, encrypted ones with
ssl_password_file, data: values), configuration errors name the
directive, the file and the line, and the private keys live in the key
process only: no worker's memory holds them, and the workers' handshakes
are signed by the key process (RSA PKCS#1 and PSS, ECDSA; TLS 1.2 and
1.3), which signs digests only: it refuses a raw RSA operation, so a
worker cannot decrypt with it.  A dead or stuck key process fails handshakes quickly without
harming the worker, and comes back.

Handshakes go through the daemon (IMAP on "listen ... ssl", openssl
s_client as the client) and through tests/keydrive, which loads the
material as the parent does, starts a real key process from the daemon
binary and serves TLS with the worker-side keys that forward to it: it
can show a dead key process without a respawn, print what a worker
received, play a hostile worker and act as proxy_ssl client.  Keys and
certificates are made here with the openssl command line.

Run as root.  Python 3 standard library only.
Usage: test_keys.py DAEMON [name...]

Ends with the line "N passed, M failed"."""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mpd import Daemon, TOP, alive, children, free_port, line_of, \
    listening_inodes, wait_for  # noqa: E402

KEYDRIVE = os.path.join(TOP, "tests", "keydrive")
TMP = os.path.join(TOP, "tests", "tmp")

BINARY = None
TESTS = []
K = None        # the key directory


def test(fn):
    TESTS.append(fn)
    return fn


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60, **kw)


class Keys:
    """RSA and ECDSA keys with self-signed certificates in a directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="keys-", dir=TMP)
        os.chmod(self.dir, 0o755)
        for name in ("rsa", "rsa2"):
            self.make(name, ["-newkey", "rsa:2048"])
        self.make("ec", ["-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:P-256"])
        # An encrypted copy of the RSA key; the passphrase file has a
        # wrong line first.
        self.check(["openssl", "pkey", "-in", self.key("rsa"), "-aes256",
                    "-passout", "pass:right horse", "-out",
                    self.path("rsa_enc.key")])
        self.write("pw_good", "wrong battery\nright horse\n")
        self.write("pw_bad", "wrong battery\nstaple\n")
        self.write("ticket48", os.urandom(48), mode=0o600)
        self.write("ticket50", os.urandom(50), mode=0o600)
        for name in os.listdir(self.dir):
            if name.endswith(".key"):
                os.chmod(self.path(name), 0o600)

    def check(self, args):
        p = run(args)
        if p.returncode != 0:
            raise AssertionError("%s: %s" % (args, p.stderr.decode()))
        return p.stdout.decode()

    def make(self, name, keyargs):
        self.check(["openssl", "req", "-x509", "-nodes", "-days", "30",
                    "-subj", "/CN=%s.test" % name] + keyargs +
                   ["-keyout", self.key(name), "-out", self.crt(name)])

    def path(self, name):
        return os.path.join(self.dir, name)

    def key(self, name):
        return self.path(name + ".key")

    def crt(self, name):
        return self.path(name + ".crt")

    def write(self, name, data, mode=0o644):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chmod(p, mode)
        return p

    def secrets(self, name):
        """The private numbers of a key (RSA d, p, q; EC scalar) as
        big-endian bytes, from openssl pkey -text."""
        text = self.check(["openssl", "pkey", "-in", self.key(name),
                           "-text", "-noout"])
        out = {}
        for field in ("privateExponent", "prime1", "prime2", "priv"):
            m = re.search(r"^%s:\s*\n((?:\s+[0-9a-f:]+\n)+)" % field, text,
                          re.M)
            if m:
                b = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
                out[field] = b.lstrip(b"\0")
        assert out, "no private numbers in %s" % name
        return out

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def server_block(port, certs, extra="", params=""):
    """A server with implicit TLS and the given (cert, key) pairs."""
    lines = ["    server {",
             "        listen 127.0.0.1:%d ssl%s;" % (port, params),
             "        protocol imap;"]
    for crt, key in certs:
        lines.append("        ssl_certificate %s;" % crt)
        lines.append("        ssl_certificate_key %s;" % key)
    if extra:
        lines.append(extra)
    lines.append("    }")
    return "\n".join(lines)


def check_conf(body, workers=1):
    """mailproxyd -t on a configuration; (returncode, stderr, conf)."""
    d = Daemon(BINARY, body, workers=workers, name="keys")
    p = run([BINARY, "-t", "-c", d.conf])
    return p.returncode, p.stderr.decode(errors="replace"), d


def expect_error(body, needle, directive, what):
    """-t fails naming the directive, the file and its line (as nginx,
    the line where the directive ends)."""
    rc, err, d = check_conf(body)
    try:
        assert rc == 1, "exit %d: %s" % (rc, err)
        line = line_of(d.conf, needle)
        want = '(%s): ' % directive
        assert want in err, err
        assert what in err, err
        assert " in %s:%d\n" % (d.conf, line) in err, (line, err)
        assert "test failed" in err, err
    finally:
        shutil.rmtree(d.dir, ignore_errors=True)
    return err


# ==========================================================================
# Configuration errors (-t)

@test
def missing_key_named():
    err = expect_error(server_block(free_port(), [
        (K.crt("rsa"), K.path("nonexistent.key"))]),
        "nonexistent.key", "ssl_certificate_key",
        'cannot load certificate key "%s"' % K.path("nonexistent.key"))
    assert "No such file or directory" in err, err


@test
def missing_certificate_named():
    err = expect_error(server_block(free_port(), [
        (K.path("nonexistent.crt"), K.key("rsa"))]),
        "nonexistent.crt", "ssl_certificate",
        'cannot load certificate "%s"' % K.path("nonexistent.crt"))
    assert "No such file or directory" in err, err


@test
def unreadable_key_named():
    # Root reads everything: the parent's check is shown by a key
    # that is a directory, and by -t run as an unprivileged user.
    os.makedirs(K.path("dir.key"), exist_ok=True)
    expect_error(server_block(free_port(), [
        (K.crt("rsa"), K.path("dir.key"))]),
        "dir.key", "ssl_certificate_key", "not a regular file")
    # No control socket: its directory, /run/mailproxyd by default, is
    # not nobody's, which -t run by nobody would report first.
    d = Daemon(BINARY, server_block(free_port(), [
        (K.crt("rsa"), K.key("rsa"))]), main_extra="control_socket off;",
        name="keys")
    try:
        os.chmod(d.conf, 0o644)
        p = run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                 "--clear-groups", BINARY, "-t", "-c", d.conf])
        err = p.stderr.decode()
        assert p.returncode == 1, err
        assert 'cannot load certificate key "%s" (ssl_certificate_key): ' \
            'open() failed (13: Permission denied) in %s:%d' % (
                K.key("rsa"), d.conf, line_of(d.conf, "rsa.key")) in err, err
    finally:
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def engine_key_refused():
    expect_error(server_block(free_port(), [
        (K.crt("rsa"), "engine:pkcs11:id_45")]),
        "engine:pkcs11", "ssl_certificate_key",
        "the key process must hold the key")


@test
def mismatched_key_named():
    err = expect_error(server_block(free_port(), [
        (K.crt("rsa"), K.key("rsa")), (K.crt("ec"), K.key("rsa2"))]),
        "rsa2.key", "ssl_certificate_key",
        'cannot load certificate key "%s"' % K.key("rsa2"))
    assert 'does not match the certificate "%s"' % K.crt("ec") in err, err


@test
def encrypted_key_without_password_named():
    err = expect_error(server_block(free_port(), [
        (K.crt("rsa"), K.path("rsa_enc.key"))]),
        "rsa_enc.key", "ssl_certificate_key",
        'cannot load certificate key "%s"' % K.path("rsa_enc.key"))
    assert "encrypted and no ssl_password_file" in err, err


@test
def password_file_no_line_fits():
    err = expect_error(server_block(free_port(), [
        (K.crt("rsa"), K.path("rsa_enc.key"))],
        "        ssl_password_file %s;" % K.path("pw_bad")),
        "rsa_enc.key", "ssl_certificate_key", "no passphrase fits")


@test
def password_file_second_line_fits():
    rc, err, d = check_conf(server_block(free_port(), [
        (K.crt("rsa"), K.path("rsa_enc.key"))],
        "        ssl_password_file %s;" % K.path("pw_good")))
    shutil.rmtree(d.dir, ignore_errors=True)
    assert rc == 0 and "test is successful" in err, err


@test
def missing_password_file_named():
    expect_error(server_block(free_port(), [
        (K.crt("rsa"), K.path("rsa_enc.key"))],
        "        ssl_password_file %s;" % K.path("nonexistent.pw")),
        "nonexistent.pw", "ssl_password_file", "No such file")


@test
def ticket_key_size_named():
    expect_error(server_block(free_port(), [
        (K.crt("rsa"), K.key("rsa"))],
        "        ssl_session_ticket_key %s;" % K.path("ticket50")),
        "ticket50", "ssl_session_ticket_key", "must be 48 or 80 bytes")
    rc, err, d = check_conf(server_block(free_port(), [
        (K.crt("rsa"), K.key("rsa"))],
        "        ssl_session_ticket_key %s;" % K.path("ticket48")))
    shutil.rmtree(d.dir, ignore_errors=True)
    assert rc == 0, err


@test
def other_files_named():
    for directive in ("ssl_dhparam", "ssl_client_certificate",
                      "ssl_trusted_certificate", "ssl_crl"):
        expect_error(server_block(free_port(), [
            (K.crt("rsa"), K.key("rsa"))],
            "        %s %s;" % (directive, K.path("nothere.pem"))),
            "nothere.pem", directive, "No such file")


@test
def data_values_accepted():
    def data(path):
        with open(path) as f:
            return '"data:%s"' % f.read()
    rc, err, d = check_conf(server_block(free_port(), [
        (data(K.crt("ec")), data(K.key("ec")))]))
    shutil.rmtree(d.dir, ignore_errors=True)
    assert rc == 0 and "test is successful" in err, err
    # A broken data: key is named without printing its contents.
    err = expect_error(server_block(free_port(), [
        (data(K.crt("ec")), '"data:-----BEGIN PRIVATE KEY-----\nAAAA"')]),
        'AAAA"', "ssl_certificate_key",
        'cannot load certificate key "data:..."')
    assert "AAAA" not in err, err


# ==========================================================================
# The running daemon: who holds the keys

SCAN_CHUNK = 4 << 20
SCAN_SKIP = 1 << 30     # sanitizer shadow memory: terabytes of zeros


def scan_memory(pid, needles):
    """Which needles occur in the readable memory of pid (read as root
    through /proc/PID/mem, in chunks that overlap by a needle's length).
    Mappings of a gigabyte or more are the sanitizers' shadow memory
    and are skipped; the key process check shows the keys are found."""
    found = set()
    overlap = max(len(n) for n in needles.values())
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            addr, perm = line.split()[:2]
            if perm[0] != "r":
                continue
            start, end = (int(x, 16) for x in addr.split("-"))
            if end - start >= SCAN_SKIP:
                continue
            tail = b""
            off = start
            while off < end:
                n = min(SCAN_CHUNK, end - off)
                try:
                    mem.seek(off)
                    data = tail + mem.read(n)
                except (OSError, ValueError, OverflowError):
                    break
                for name, nd in needles.items():
                    if nd in data:
                        found.add(name)
                tail = data[-overlap:]
                off += n
    return found


def needles_of(names):
    """32-byte windows of each private number, big- and little-endian
    (OpenSSL's BIGNUMs are little-endian words in memory)."""
    out = {}
    for name in names:
        for field, b in K.secrets(name).items():
            w = b[-32:]
            out["%s.%s.be" % (name, field)] = w
            out["%s.%s.le" % (name, field)] = b[::-1][:32]
    return out


def key_procs(d):
    return sorted(p for p, c in children(d.pid).items()
                  if "key process" in c)


def start_daemon(certs, extra="", workers=2, params=""):
    port = free_port()
    d = Daemon(BINARY, server_block(port, certs, extra, params),
               workers=workers, name="keys")
    d.start()
    wait_for(lambda: len(key_procs(d)) == 1, what="key process")
    return d


@test
def root_only_keys_work():
    for name in ("rsa", "ec", "rsa_enc"):
        st = os.stat(K.key(name) if name != "rsa_enc" else
                     K.path("rsa_enc.key"))
        assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600
    d = start_daemon([(K.crt("rsa"), K.path("rsa_enc.key")),
                      (K.crt("ec"), K.key("ec"))],
                     "        ssl_password_file %s;" % K.path("pw_good"))
    try:
        (kp,) = key_procs(d)
        assert d.dropped(kp), "the key process kept root"
        with open("/proc/%d/status" % kp) as f:
            st = f.read()
        assert re.search(r"^NoNewPrivs:\s+1$", st, re.M), st
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def keys_in_no_worker_memory():
    d = start_daemon([(K.crt("rsa"), K.key("rsa")),
                      (K.crt("ec"), K.key("ec"))])
    try:
        needles = needles_of(["rsa", "ec"])
        (kp,) = key_procs(d)
        in_key = scan_memory(kp, needles)
        # The search works: the key process holds each number.
        for name in ("rsa.privateExponent", "rsa.prime1", "rsa.prime2",
                     "ec.priv"):
            assert name + ".le" in in_key or name + ".be" in in_key, \
                (name, in_key)
        workers = d.workers_now()
        assert len(workers) == 2
        for w in workers + d.auth_now():
            found = scan_memory(w, needles)
            assert not found, "process %d holds %s" % (w, found)
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@test
def key_process_respawned_and_relinked():
    d = start_daemon([(K.crt("rsa"), K.key("rsa"))])
    try:
        workers = d.workers_now()
        fds = {w: fd_count(w) for w in workers}
        for i in range(3):
            (kp,) = key_procs(d)
            os.kill(kp, signal.SIGKILL)
            wait_for(lambda: [p for p in key_procs(d) if p != kp],
                     what="respawned key process")
            (nkp,) = [p for p in key_procs(d) if p != kp]
            wait_for(lambda: d.dropped(nkp), what="privilege drop")
            wait_for(lambda: not alive(kp), what="old key process gone")
            # Linked again: one channel per worker and the parent's.
            wait_for(lambda: socket_count(nkp) == len(workers) + 1,
                     what="key process channels")
        assert d.workers_now() == workers, "workers were replaced"
        # The old channels were closed as the new ones came.
        for w in workers:
            wait_for(lambda: fd_count(w) <= fds[w],
                     what="worker %d descriptors back to %d" % (w, fds[w]))
        assert "key process %d exited on signal 9" % kp in d.logtext()
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


def socket_count(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(
                    "socket:"):
                n += 1
        except OSError:
            pass
    return n


@test
def respawned_worker_relinked_to_key_process():
    d = start_daemon([(K.crt("rsa"), K.key("rsa"))])
    try:
        (kp,) = key_procs(d)
        fds = fd_count(kp)
        assert socket_count(kp) == 3, socket_count(kp)
        for i in range(3):
            old = d.workers_now()
            os.kill(old[0], signal.SIGKILL)
            wait_for(lambda: len(d.workers_now()) == 2 and
                     old[0] not in d.workers_now(), what="new worker")
            wait_for(lambda: all(d.dropped(w) for w in d.workers_now()),
                     what="privilege drop")
            # The dead worker's channel is replaced, not added to.
            wait_for(lambda: socket_count(kp) == 3 and fd_count(kp) == fds,
                     what="key process channels back to 3")
        assert key_procs(d) == [kp]
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def hup_new_key_served_by_new_key_process():
    d = start_daemon([(K.crt("rsa"), K.key("rsa"))])
    try:
        (old,) = key_procs(d)
        port = free_port()
        # A broken key keeps the old configuration.
        d.write(server_block(port, [(K.crt("rsa2"), K.key("rsa"))]))
        d.signal(signal.SIGHUP)
        d.wait_log("reconfiguring failed")
        assert key_procs(d) == [old]
        d.write(server_block(port, [(K.crt("rsa2"), K.key("rsa2"))]))
        d.signal(signal.SIGHUP)
        try:
            d.wait_log("generation 2 serving", timeout=30)
        except AssertionError:
            raise AssertionError(d.logtext()[-3000:])
        wait_for(lambda: old not in key_procs(d) and
                 len(key_procs(d)) == 1, what="old key process gone")
        (new,) = key_procs(d)
        found = scan_memory(new, needles_of(["rsa2"]))
        assert any(n.startswith("rsa2.prime1") for n in found), found
        found = scan_memory(new, needles_of(["rsa"]))
        assert not found, found
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def reload_during_start():
    # A HUP as soon as the pid file exists, while the first generation
    # is still starting: the newest generation ends up serving and the
    # older one goes.  (The pid file used to appear before the signal
    # handlers, so such a HUP killed the daemon; an older generation
    # ready late drained the newer one; and a child could miss a
    # message the parent sent right after its configuration.)
    for _ in range(3):
        d = Daemon(BINARY, server_block(free_port(), [
            (K.crt("rsa"), K.key("rsa")), (K.crt("ec"), K.key("ec"))]),
            name="keys")
        try:
            d.start(wait=False)
            d.pid = wait_for(d.read_pid, what="pid file")
            d.signal(signal.SIGHUP)
            d.wait_log("generation 2 serving", timeout=30)
            wait_for(lambda: "generation 1 has ended" in d.logtext(),
                     timeout=30, what="generation 1 gone")
            d.wait_ready()
            assert len(key_procs(d)) == 1
            assert "generation 2 has ended" not in d.logtext()
        finally:
            d.stop()
            shutil.rmtree(d.dir, ignore_errors=True)


@test
def no_key_process_without_tls():
    d = Daemon(BINARY, "    server {\n        listen 127.0.0.1:%d;\n"
               "        protocol imap;\n    }" % free_port(), name="keys")
    try:
        d.start()
        assert key_procs(d) == []
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


def s_client(port, *args, data=b"a1 LOGOUT\r\n"):
    """openssl s_client against the daemon; (output, seconds)."""
    t0 = time.monotonic()
    c = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-ign_eof"] + list(args),
                       input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return c.stdout.decode(errors="replace"), time.monotonic() - t0


def daemon_port(d):
    with open(d.conf) as f:
        return int(re.search(r"listen 127\.0\.0\.1:(\d+) ssl",
                             f.read()).group(1))


def imap_over_tls(port, version, sigalg, name, peer_type):
    """An implicit TLS IMAP session: the greeting after a handshake
    signed as asked."""
    out, _ = s_client(port, "-" + version, "-sigalgs", sigalg,
                      "-servername", name)
    assert "* OK IMAP4 ready" in out, out
    want = {"tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}[version]
    assert re.search(r"Protocol *: %s\n" % want, out) or \
        "New, %s," % want in out, out
    assert "Peer signature type: %s\n" % peer_type in out, out
    assert "subject=CN = %s" % name in out, out


@test
def daemon_handshakes_through_key_process():
    d = start_daemon([(K.crt("rsa"), K.path("rsa_enc.key")),
                      (K.crt("ec"), K.key("ec"))],
                     "        ssl_password_file %s;" % K.path("pw_good"))
    try:
        port = daemon_port(d)
        workers = d.workers_now()
        for version in ("tls1_2", "tls1_3"):
            imap_over_tls(port, version, "RSA-PSS+SHA256", "rsa.test",
                          "RSA-PSS")
            imap_over_tls(port, version, "ECDSA+SHA256", "ec.test",
                          "ECDSA")
        imap_over_tls(port, "tls1_2", "RSA+SHA256", "rsa.test", "RSA")
        # After serving, still no key in any worker.
        needles = needles_of(["rsa", "ec"])
        for w in d.workers_now():
            assert not scan_memory(w, needles), w
        assert d.workers_now() == workers
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def daemon_stuck_or_killed_key_process():
    d = start_daemon([(K.crt("rsa"), K.key("rsa"))], workers=1)
    try:
        port = daemon_port(d)
        (w,) = d.workers_now()
        imap_over_tls(port, "tls1_3", "RSA-PSS+SHA256", "rsa.test",
                      "RSA-PSS")
        fds = fd_count(w)
        (kp,) = key_procs(d)
        # Stuck: each handshake fails after about a second, the worker
        # goes on.
        os.kill(kp, signal.SIGSTOP)
        try:
            for _ in range(2):
                out, secs = s_client(port, "-tls1_3")
                assert "* OK" not in out, out
                assert secs < 8, secs
        finally:
            os.kill(kp, signal.SIGKILL)
        d.wait_log("key process did not answer within 1000 ms")
        # Killed: the parent starts another and links the worker to it.
        wait_for(lambda: [p for p in key_procs(d) if p != kp],
                 what="respawned key process")
        (nkp,) = [p for p in key_procs(d) if p != kp]
        wait_for(lambda: d.dropped(nkp), what="privilege drop")
        ok = wait_for(lambda: "* OK" in s_client(port, "-tls1_3")[0],
                      timeout=10, what="handshakes again")
        assert ok
        imap_over_tls(port, "tls1_2", "RSA+SHA256", "rsa.test", "RSA")
        assert d.workers_now() == [w], "the worker was replaced"
        wait_for(lambda: fd_count(w) <= fds, what="worker descriptors")
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def daemon_ticket_key_shared_by_workers():
    # No ssl_session_ticket_key: the parent makes one random key for the
    # generation, so a ticket from one worker resumes on the other.
    # reuseport: the kernel spreads the connections over both workers.
    d = start_daemon([(K.crt("rsa"), K.key("rsa"))], workers=2,
                     params=" reuseport")
    try:
        port = daemon_port(d)
        sess = os.path.join(d.dir, "sess.pem")
        out, _ = s_client(port, "-tls1_2", "-sess_out", sess)
        assert "* OK" in out and os.path.getsize(sess) > 0, out
        for i in range(12):
            out, _ = s_client(port, "-tls1_2", "-sess_in", sess)
            assert "Reused, TLSv1.2" in out, (i, out)
        # Both workers served some of them.
        pids = set(re.findall(r"\] (\d+)#0: \*\d+ session done",
                              d.logtext()))
        assert pids == set(str(w) for w in d.workers_now()), pids
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def daemon_hup_serves_new_key():
    d = start_daemon([(K.crt("rsa"), K.key("rsa"))])
    try:
        port = daemon_port(d)
        imap_over_tls(port, "tls1_3", "RSA-PSS+SHA256", "rsa.test",
                      "RSA-PSS")
        old = d.workers_now() + key_procs(d)
        d.write(server_block(port, [(K.crt("rsa2"), K.key("rsa2"))]))
        d.signal(signal.SIGHUP)
        d.wait_log("generation 2 serving", timeout=30)
        # The old workers and their key process leave once idle.
        wait_for(lambda: not set(old) & set(d.workers_now() +
                                             key_procs(d)),
                 what="the old generation gone")
        imap_over_tls(port, "tls1_3", "RSA-PSS+SHA256", "rsa2.test",
                      "RSA-PSS")
        imap_over_tls(port, "tls1_2", "RSA+SHA256", "rsa2.test", "RSA")
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


# ==========================================================================
# Handshakes through the key process (tests/keydrive)

class Drive:
    def __init__(self, certs, extra=""):
        self.port = free_port()
        self.d = Daemon(BINARY, server_block(free_port(), certs, extra),
                        name="keys")
        self.p = subprocess.Popen(
            [KEYDRIVE, BINARY, self.d.conf, str(self.port)], bufsize=0,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.blobs = {}
        while True:
            line = self.readline()
            if not line.startswith("blob "):
                break
            _, server, name, index, length, digest = line.split()
            self.blobs[(name, int(index))] = (int(length), digest)
        assert line.startswith("ready "), line
        self.keypid = int(line.split()[1])

    def readline(self, timeout=15):
        import select
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert r, "keydrive said nothing"
        return self.p.stdout.readline().decode().strip()

    def respawn(self):
        self.command("respawn")
        line = self.readline()
        assert line.startswith("respawned "), line
        self.keypid = int(line.split()[1])

    def command(self, cmd):
        self.p.stdin.write(cmd.encode() + b"\n")
        self.p.stdin.flush()

    def client(self, *args):
        """openssl s_client; returns (its output, keydrive's verdict,
        seconds)."""
        t0 = time.monotonic()
        c = subprocess.run(["openssl", "s_client", "-connect",
                            "127.0.0.1:%d" % self.port, "-ign_eof"] +
                           list(args), input=b"", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        verdict = self.readline()
        return c.stdout.decode(errors="replace"), verdict, \
            time.monotonic() - t0

    def stop(self):
        try:
            self.command("quit")
            self.p.wait(timeout=5)
        except Exception:  # noqa
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            f.close()
        shutil.rmtree(self.d.dir, ignore_errors=True)


def expect_handshake(drv, version, sigalg, peer_type):
    # The certificate is chosen by the SNI name (CN=rsa.test, ec.test).
    name = "ec.test" if peer_type == "ECDSA" else "rsa.test"
    out, verdict, _ = drv.client("-" + version, "-sigalgs", sigalg,
                                 "-servername", name)
    assert verdict.startswith("handshake ok "), (verdict, out)
    want = {"tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}[version]
    assert verdict.split()[2] == want, verdict
    assert "Peer signature type: %s\n" % peer_type in out, out
    assert "hello" in out, out


@test
def handshakes_rsa_ecdsa_tls12_tls13():
    drv = Drive([(K.crt("rsa"), K.path("rsa_enc.key")),
                 (K.crt("ec"), K.key("ec"))],
                "        ssl_password_file %s;" % K.path("pw_good"))
    try:
        expect_handshake(drv, "tls1_2", "RSA+SHA256", "RSA")
        expect_handshake(drv, "tls1_2", "RSA-PSS+SHA256", "RSA-PSS")
        expect_handshake(drv, "tls1_3", "RSA-PSS+SHA256", "RSA-PSS")
        expect_handshake(drv, "tls1_2", "ECDSA+SHA256", "ECDSA")
        expect_handshake(drv, "tls1_3", "ECDSA+SHA256", "ECDSA")
        # The worker side holds no private key: the key process signed.
        assert alive(drv.keypid)
    finally:
        drv.stop()


@test
def dead_or_stuck_key_process_fails_cleanly():
    drv = Drive([(K.crt("rsa"), K.key("rsa"))])
    try:
        expect_handshake(drv, "tls1_3", "RSA-PSS+SHA256", "RSA-PSS")
        fds = fd_count(drv.p.pid)
        # Stuck: the handshake fails after about a second.
        os.kill(drv.keypid, signal.SIGSTOP)
        out, verdict, secs = drv.client("-tls1_3")
        assert verdict == "handshake fail", verdict
        assert secs < 8, secs
        # Dead: fails at once; the server side lives on.
        os.kill(drv.keypid, signal.SIGKILL)
        for _ in range(2):
            out, verdict, secs = drv.client("-tls1_2")
            assert verdict == "handshake fail", verdict
            assert secs < 8, secs
        assert drv.p.poll() is None, "keydrive died"
        assert fd_count(drv.p.pid) <= fds, "descriptors grew"
        drv.respawn()
        expect_handshake(drv, "tls1_3", "RSA-PSS+SHA256", "RSA-PSS")
        expect_handshake(drv, "tls1_2", "RSA+SHA256", "RSA")
        err = drv.p.stderr
        assert err is not None
    finally:
        drv.stop()


def big_crl(n):
    """A CRL of the rsa "CA" revoking n serials, made with openssl ca:
    large enough to need many imsg chunks."""
    d = K.path("ca-%d" % n)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "index.txt"), "w") as f:
        for i in range(n):
            f.write("R\t300101000000Z\t240101000000Z\t%06X\tunknown\t"
                    "/CN=revoked%d\n" % (i + 16, i))
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("01\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\n"
                "crlnumber = %s/crlnumber\ndefault_md = sha256\n"
                "default_crl_days = 30\n" % (d, d))
    out = os.path.join(d, "crl.pem")
    K.check(["openssl", "ca", "-batch", "-gencrl", "-config",
             os.path.join(d, "ca.cnf"), "-keyfile", K.key("rsa"), "-cert",
             K.crt("rsa"), "-out", out])
    return out


def digest(path):
    with open(path, "rb") as f:
        data = f.read()
    return len(data), hashlib.sha256(data).hexdigest()


@test
def material_reaches_worker_intact():
    # A CRL of several hundred kilobytes (imsg payloads are under 64 KiB)
    # and the other public files arrive byte for byte; the ticket keys
    # too, and none is made up when a file is given.
    crl = big_crl(12000)
    assert os.path.getsize(crl) > 300000
    extra = "\n".join("        " + x for x in (
        "ssl_verify_client on;",
        "ssl_client_certificate %s;" % K.crt("ec"),
        "ssl_trusted_certificate %s;" % K.crt("rsa2"),
        "ssl_crl %s;" % crl,
        "ssl_session_ticket_key %s;" % K.path("ticket48")))
    drv = Drive([(K.crt("rsa"), K.key("rsa")), (K.crt("ec"), K.key("ec"))],
                extra)
    try:
        want = {("cert", 0): digest(K.crt("rsa")),
                ("cert", 1): digest(K.crt("ec")),
                ("client_ca", 0): digest(K.crt("ec")),
                ("trusted_ca", 0): digest(K.crt("rsa2")),
                ("crl", 0): digest(crl),
                ("ticket", 0): digest(K.path("ticket48"))}
        assert drv.blobs == want, (drv.blobs, want)
        expect_handshake(drv, "tls1_3", "ECDSA+SHA256", "ECDSA")
    finally:
        drv.stop()


@test
def random_ticket_key_without_files():
    drv = Drive([(K.crt("rsa"), K.key("rsa"))])
    try:
        assert set(drv.blobs) == {("cert", 0), ("ticket", 0)}, drv.blobs
        assert drv.blobs[("ticket", 0)][0] == 80
    finally:
        drv.stop()
    drv = Drive([(K.crt("rsa"), K.key("rsa"))],
                "        ssl_session_tickets off;")
    try:
        assert set(drv.blobs) == {("cert", 0)}, drv.blobs
    finally:
        drv.stop()


def memfd_inodes(pid):
    """Inodes of the session cache zones mapped by pid."""
    out = set()
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            if "mailproxyd-ssl-session-cache" in line:
                out.add(int(line.split()[4]))
    return out


@test
def shared_session_cache_one_zone_for_all_workers():
    port2 = free_port()
    d = start_daemon([(K.crt("rsa"), K.key("rsa"))],
                     "        ssl_session_cache shared:ZONE:1m;")
    try:
        # A second server naming the same zone shares it.
        d.write(server_block(free_port(), [(K.crt("rsa"), K.key("rsa"))],
                             "        ssl_session_cache shared:ZONE:1m;") +
                "\n" + server_block(port2, [(K.crt("ec"), K.key("ec"))],
                                     "        ssl_session_cache "
                                     "shared:ZONE:1m;"))
        d.signal(signal.SIGHUP)
        d.wait_log("generation 2 serving", timeout=30)
        wait_for(lambda: len(d.workers_now()) == 2 and all(
            memfd_inodes(w) for w in d.workers_now()), what="new workers")
        zones = [memfd_inodes(w) for w in d.workers_now()]
        assert len(zones[0]) == 1 and zones[0] == zones[1], zones
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def backend_client_certificate_signed_by_key_process():
    # proxy_ssl_certificate_key: the worker's TLS client towards the
    # backend proves the certificate with the key process's signature;
    # the backend (openssl s_server) requires and verifies it.
    for key, versions in (("ec", ("-tls1_2", "-tls1_3")),
                          ("rsa2", ("-tls1_2", "-tls1_3"))):
        drv = Drive([(K.crt("rsa"), K.key("rsa"))], "\n".join(
            "        " + x for x in (
                "proxy_ssl on;",
                "proxy_ssl_certificate %s;" % K.crt(key),
                "proxy_ssl_certificate_key %s;" % K.key(key))))
        try:
            for v in versions:
                # A port picked free may be taken before s_server binds
                # it on a busy machine: then it exits, and another one
                # is tried.
                for _ in range(3):
                    port = free_port()
                    srv = subprocess.Popen(
                        ["openssl", "s_server", "-accept", str(port),
                         "-naccept", "1", "-rev", v, "-cert",
                         K.crt("rsa"), "-key", K.key("rsa"), "-Verify",
                         "1", "-CAfile", K.crt(key),
                         "-verify_return_error"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
                    wait_for(lambda: listening_inodes(port) or
                             srv.poll() is not None, timeout=30,
                             what="s_server")
                    if srv.poll() is None:
                        break
                    srv.stdout.close()
                try:
                    assert srv.poll() is None, "s_server did not start"
                    drv.command("backend %d" % port)
                    line = drv.readline()
                    want = {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[v]
                    assert line == "backend ok " + want, (key, v, line)
                finally:
                    srv.kill()
                    out = srv.communicate()[0].decode(errors="replace")
                assert "verify return:1" in out, out
        finally:
            drv.stop()


# Wire values of IMSG_KEY_OP (bin/mailproxyd/mailproxyd.h).
PKCS1, PSS, ECDSA = 1, 2, 3
SHA1, SHA224, SHA256, SHA384, SHA512, MD5_SHA1 = 1, 2, 3, 4, 5, 6
HASHES = {SHA1: "sha1", SHA224: "sha224", SHA256: "sha256",
          SHA384: "sha384", SHA512: "sha512"}


def ask(drv, cmd):
    drv.command(cmd)
    return drv.readline()


def key_log(drv, needle, timeout=5):
    """Wait for needle in what the key process logged (keydrive's
    standard error, which it inherits); the text so far."""
    fd = drv.p.stderr.fileno()
    os.set_blocking(fd, False)
    drv.errtext = getattr(drv, "errtext", "")
    deadline = time.monotonic() + timeout
    while needle not in drv.errtext and time.monotonic() < deadline:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            data = None
        if data:
            drv.errtext += data.decode(errors="replace")
        else:
            time.sleep(0.05)
    assert needle in drv.errtext, (needle, drv.errtext)
    return drv.errtext


def verify(crt, digest_bytes, sig, hashname, pss=False):
    """openssl pkeyutl checks a signature of a digest with the
    certificate's public key."""
    d = tempfile.mkdtemp(prefix="sig-", dir=TMP)
    try:
        with open(os.path.join(d, "dgst"), "wb") as f:
            f.write(digest_bytes)
        with open(os.path.join(d, "sig"), "wb") as f:
            f.write(sig)
        args = ["openssl", "pkeyutl", "-verify", "-certin", "-inkey", crt,
                "-in", os.path.join(d, "dgst"), "-sigfile",
                os.path.join(d, "sig"), "-pkeyopt", "digest:" + hashname]
        if pss:
            args += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt",
                     "rsa_pss_saltlen:digest"]
        p = run(args)
        return p.returncode == 0 and b"Verified Successfully" in p.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


def signed(line):
    """The signature of a "result 0 LEN HEX" line."""
    parts = line.split()
    assert parts[:2] == ["result", "0"] and len(parts) == 4, line
    sig = bytes.fromhex(parts[3])
    assert len(sig) == int(parts[2]), line
    return sig


@test
def key_process_signs_digests_only():
    # Key ids 0 (RSA 2048, rsa.test) and 1 (ECDSA P-256, ec.test).
    drv = Drive([(K.crt("rsa"), K.key("rsa")), (K.crt("ec"), K.key("ec"))])
    try:
        # Each digest is padded and signed by the key process: the
        # signatures verify with the certificates' public keys.
        for md, name in sorted(HASHES.items()):
            dg = hashlib.new(name, b"mailproxyd %d" % md).digest()
            sig = signed(ask(drv, "sign 0 %d %d 0 0 %d %s" % (
                PKCS1, md, len(dg), dg.hex())))
            assert len(sig) == 256
            assert verify(K.crt("rsa"), dg, sig, name), ("PKCS#1", name)
            sig = signed(ask(drv, "sign 1 %d %d 0 0 %d %s" % (
                ECDSA, md, len(dg), dg.hex())))
            assert verify(K.crt("ec"), dg, sig, name), ("ECDSA", name)
            if md == SHA1:
                continue
            sig = signed(ask(drv, "sign 0 %d %d %d %d %d %s" % (
                PSS, md, md, len(dg), len(dg), dg.hex())))
            assert verify(K.crt("rsa"), dg, sig, name, pss=True), \
                ("PSS", name)
        # Anything else is refused, with a reply and a log line naming
        # the worker (slot 1), and the key process goes on.
        for bad, why in (
                ("sign 9 1 3 0 0 32", "unknown key id"),
                ("sign 0 7 3 0 0 32", "unknown algorithm"),
                ("sign 0 0 3 0 0 32", "unknown algorithm"),
                ("sign 0 1 0 0 0 32", "hash not accepted"),
                ("sign 0 1 9 0 0 32", "hash not accepted"),
                ("sign 0 1 6 0 0 36", "hash not accepted"),  # no TLS 1.0
                ("sign 0 1 3 0 0 31", "not a digest of its hash's length"),
                ("sign 0 1 3 0 0 33", "not a digest of its hash's length"),
                ("sign 0 1 3 0 0 0", "not a digest of its hash's length"),
                ("sign 0 1 3 0 0 256", "not a digest of its hash's length"),
                ("sign 0 1 5 0 0 5000", "not a digest of its hash's length"),
                ("sign 1 3 3 0 0 19", "not a digest of its hash's length"),
                ("sign 0 3 3 0 0 32", "ECDSA signature with a non-EC key"),
                ("sign 1 1 3 0 0 32", "RSA signature with a non-RSA key"),
                ("sign 1 2 3 3 32 32", "RSA signature with a non-RSA key"),
                ("sign 0 1 3 3 32 32", "PSS parameters on PKCS#1 v1.5"),
                ("sign 1 3 3 3 0 32", "PSS parameters on ECDSA"),
                ("sign 0 2 3 3 0 32", "PSS parameters not those of TLS"),
                ("sign 0 2 3 3 -1 32", "PSS parameters not those of TLS"),
                ("sign 0 2 3 3 222 32", "PSS parameters not those of TLS"),
                ("sign 0 2 3 5 32 32", "PSS parameters not those of TLS"),
                ("sign 0 2 3 0 32 32", "PSS parameters not those of TLS")):
            assert ask(drv, bad) == "result -1 0", bad
            key_log(drv, "worker 1: request refused: %s (key id %s, "
                    "algorithm %s, hash %s, length %s)" % ((why,) + tuple(
                        bad.split()[i] for i in (1, 2, 3, 6))))
        assert alive(drv.keypid)
        assert signed(ask(drv, "sign 1 3 3 0 0 32 " + "ab" * 32))
        # A flood of requests whose answers are left unread costs the
        # channel.
        drv.command("flood 3000")
        assert drv.readline(timeout=30) == "flood closed"
        assert alive(drv.keypid)
        expect_handshake(drv, "tls1_2", "ECDSA+SHA256", "ECDSA")
        # So does a malformed message (a truncated request, an unknown
        # type); not the others' channels.
        for bad in ("size 10", "size 87", "size 89", "type 9999"):
            drv.command("rejoin")
            assert drv.readline() == "rejoined"
            assert ask(drv, bad) == "closed", bad
            assert alive(drv.keypid)
            expect_handshake(drv, "tls1_3", "ECDSA+SHA256", "ECDSA")
        drv.command("rejoin")
        assert drv.readline() == "rejoined"
        assert signed(ask(drv, "sign 0 1 3 0 0 32 " + "cd" * 32))
    finally:
        drv.stop()


@test
def raw_rsa_decryption_refused():
    # A compromised worker submits a PKCS#1 v1.5 ciphertext made with
    # the certificate's public key, in the request layout that asked
    # for a raw RSA operation: the plaintext must not come back.
    drv = Drive([(K.crt("rsa"), K.key("rsa")), (K.crt("ec"), K.key("ec"))])
    d = tempfile.mkdtemp(prefix="ct-", dir=TMP)
    try:
        secret = os.urandom(32)
        with open(os.path.join(d, "secret"), "wb") as f:
            f.write(secret)
        ct = subprocess.run(
            ["openssl", "pkeyutl", "-encrypt", "-certin", "-inkey",
             K.crt("rsa"), "-pkeyopt", "rsa_padding_mode:pkcs1", "-in",
             os.path.join(d, "secret")], stdout=subprocess.PIPE,
            check=True, timeout=30).stdout
        assert len(ct) == 256
        # op 1 (private encrypt), paddings 3 (none) and 1 (PKCS#1).
        for cmd in ("legacy 0 1 3 " + ct.hex(),
                    "legacy 0 1 1 " + ct[:245].hex(),
                    "legacy 0 1 3 " + ct[:64].hex()):
            line = ask(drv, cmd)
            assert secret.hex() not in line, "decrypted: " + line
            assert line == "closed", line
            assert alive(drv.keypid)
            expect_handshake(drv, "tls1_2", "RSA+SHA256", "RSA")
            drv.command("rejoin")
            assert drv.readline() == "rejoined"
        # Nor through any spelling of the current request: it carries a
        # digest of a known hash, of that hash's length.
        for cmd in ("sign 0 1 0 0 0 256 " + ct[:64].hex(),
                    "sign 0 1 3 0 0 256 " + ct[:64].hex(),
                    "sign 0 1 5 0 0 256 " + ct[:64].hex(),
                    "sign 0 4 5 0 0 64 " + ct[:64].hex(),
                    "sign 0 2 5 5 0 64 " + ct[:64].hex()):
            line = ask(drv, cmd)
            assert secret.hex() not in line, "decrypted: " + line
            assert line == "result -1 0", (cmd, line)
        key_log(drv, "worker 1: request refused: unknown algorithm "
                "(key id 0, algorithm 4, hash 5, length 64)")
        # The key process still signs, for this worker and the others.
        dg = hashlib.sha256(b"after").digest()
        sig = signed(ask(drv, "sign 0 1 3 0 0 32 " + dg.hex()))
        assert verify(K.crt("rsa"), dg, sig, "sha256")
        for version in ("tls1_2", "tls1_3"):
            expect_handshake(drv, version, "RSA-PSS+SHA256", "RSA-PSS")
        assert alive(drv.keypid)
    finally:
        drv.stop()
        shutil.rmtree(d, ignore_errors=True)


@test
def daemon_signature_algorithms():
    # Through the daemon: TLS 1.2 and 1.3, RSA and ECDSA keys, each
    # signature scheme the key process makes (PKCS#1 v1.5 and PSS,
    # RSA-PSS in TLS 1.2 too, several hashes).
    d = start_daemon([(K.crt("rsa"), K.key("rsa")),
                      (K.crt("ec"), K.key("ec"))])
    try:
        port = daemon_port(d)
        for version, sigalg, name, peer in (
                ("tls1_2", "RSA+SHA256", "rsa.test", "RSA"),
                ("tls1_2", "RSA+SHA512", "rsa.test", "RSA"),
                ("tls1_2", "rsa_pss_rsae_sha256", "rsa.test", "RSA-PSS"),
                ("tls1_2", "rsa_pss_rsae_sha384", "rsa.test", "RSA-PSS"),
                ("tls1_3", "rsa_pss_rsae_sha256", "rsa.test", "RSA-PSS"),
                ("tls1_3", "rsa_pss_rsae_sha512", "rsa.test", "RSA-PSS"),
                ("tls1_2", "ECDSA+SHA256", "ec.test", "ECDSA"),
                ("tls1_2", "ECDSA+SHA384", "ec.test", "ECDSA"),
                ("tls1_3", "ecdsa_secp256r1_sha256", "ec.test", "ECDSA")):
            imap_over_tls(port, version, sigalg, name, peer)
        assert len(key_procs(d)) == 1
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


@test
def md5_sha1_only_with_tls1():
    # TLS 1.0 signs an MD5-SHA1 digest with RSA (no DigestInfo): the key
    # process accepts it when ssl_protocols enables TLSv1, and a TLS 1.0
    # handshake goes through the daemon.
    extra = "\n".join("        " + x for x in (
        "ssl_protocols TLSv1 TLSv1.2;",
        "ssl_ciphers ECDHE-RSA-AES128-SHA:ECDHE+AESGCM:@SECLEVEL=0;"))
    drv = Drive([(K.crt("rsa"), K.key("rsa"))], extra)
    try:
        dg = hashlib.md5(b"x").digest() + hashlib.sha1(b"x").digest()
        assert signed(ask(drv, "sign 0 1 6 0 0 36 " + dg.hex()))
        assert ask(drv, "sign 0 2 6 6 36 36") == "result -1 0"
        key_log(drv, "worker 1: request refused: PSS with MD5-SHA1")
    finally:
        drv.stop()
    d = start_daemon([(K.crt("rsa"), K.key("rsa"))], extra)
    try:
        out, _ = s_client(daemon_port(d), "-tls1", "-cipher",
                          "ECDHE-RSA-AES128-SHA:@SECLEVEL=0")
        assert "* OK IMAP4 ready" in out, out
        assert "New, TLSv1.0, Cipher is ECDHE-RSA-AES128-SHA" in out, out
        assert "Peer signing digest: MD5-SHA1" in out, out
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


# ==========================================================================

def main():
    global BINARY, K
    BINARY = os.path.abspath(sys.argv[1])
    only = sys.argv[2:]
    passed = failed = 0
    if os.geteuid() != 0:
        print("FAIL: this suite reads other processes' memory and root-"
              "only keys and must run as root")
        print("0 passed, 1 failed")
        return 1
    os.makedirs(TMP, exist_ok=True)
    selected = [fn for fn in TESTS if not only or fn.__name__ in only]
    t_all = time.monotonic()
    try:
        K = Keys()
    except Exception:  # noqa
        print("FAIL setup")
        traceback.print_exc(file=sys.stdout)
        print("%d passed, %d failed" % (0, len(selected) + 1))
        return 1
    try:
        for fn in selected:
            t0 = time.monotonic()
            try:
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
        if failed == 0:
            K.remove()
    print("(%.0fs in all)" % (time.monotonic() - t_all))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
