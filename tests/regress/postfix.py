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

"""A real Postfix smtpd for the SMTP end-to-end tests, and smtp-sink for
dialogue-only cases.  Python 3 standard library only; run as root
(Postfix's master runs its daemons as the postfix user, and the virtual
delivery agent writes maildirs as nobody).

    pf = Postfix(["alice@example.test", "bob@example.test"])
    pf.start()                       # smtpd on 127.0.0.1:pf.port
    ... send mail to pf.port ...
    msgs = pf.wait_messages("alice@example.test", 1)   # maildir files
    pf.stop()

Each instance has its own configuration directory (main.cf and
master.cf generated here), queue, data and mail directories under
tests/tmp, and its own log file (maillog_file through postlogd).  The
master daemon runs in the foreground ("postfix -c DIR start-fg") and is
stopped by its PID.  Mail for the domain example.test is delivered by
the virtual(8) agent into maildirs, one per address listed, under
DIR/mail; other recipients are refused by smtpd (550 5.1.1).  smtpd
trusts XCLIENT from 127.0.0.0/8 and relays for mynetworks 127.0.0.0/8.

Delivered files are what virtual(8) wrote: Postfix's Return-Path,
X-Original-To, Delivered-To and Received headers, then the message as it was received,
with LF line ends.  stored_message() strips the three prepended headers.

    sink = SmtpSink()                # smtp-sink on 127.0.0.1:sink.port
    sink.stop()
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = os.path.join(TOP, "tests", "tmp")
DOMAIN = "example.test"
POSTFIX_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def find(prog):
    p = shutil.which(prog)
    if p:
        return p
    for d in POSTFIX_DIRS:
        if os.access(os.path.join(d, prog), os.X_OK):
            return os.path.join(d, prog)
    return None


def free_port(host="127.0.0.1"):
    """mpd.free_port: never a port this process was given already."""
    import mpd
    return mpd.free_port(host=host)


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def _greets(port, prefix=b"220"):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            data = b""
            while b"\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    break
                data += chunk
            try:
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
            return data.startswith(prefix)
    except OSError:
        return False


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class Postfix:
    MAIN_CF = """\
compatibility_level = 3.6
config_directory = {dir}/etc
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
myhostname = postfix.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
local_recipient_maps =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_banner = $myhostname ESMTP Postfix-test
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_relay_restrictions =
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_junk_command_limit = 1000
smtpd_timeout = 60s
smtpd_tls_security_level = none
smtputf8_enable = no
message_size_limit = 0
mailbox_size_limit = 0
virtual_mailbox_limit = 0
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = texthash:{dir}/etc/vmailbox
virtual_minimum_uid = 1
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_destination_concurrency_limit = 50
default_process_limit = 300
always_add_missing_headers = no
local_header_rewrite_clients =
biff = no
relayhost =
default_transport = error:no relaying in tests
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
meta_directory = /etc/postfix
"""

    MASTER_CF = """\
127.0.0.1:{port} inet n - n - 300 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

    def __init__(self, addresses, name="pf", port=None, extra_main="",
                 extra_smtpd=()):
        """extra_main: main.cf lines, replacing the defaults they set.  extra_smtpd: more smtpd services, each a list
        of "name=value" overrides (master.cf -o, values without blanks);
        their ports are in self.extra_ports, in the same order."""
        self.postfix = find("postfix")
        if self.postfix is None:
            raise RuntimeError("postfix not installed (contrib/install-deps.sh)")
        os.makedirs(TMP, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=TMP)
        os.chmod(self.dir, 0o755)
        self.etc = os.path.join(self.dir, "etc")
        self.maildir_base = os.path.join(self.dir, "mail")
        self.log = os.path.join(self.dir, "maillog")
        os.mkdir(self.etc, 0o755)
        os.mkdir(self.maildir_base, 0o755)
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        os.chown(self.maildir_base, self.uid, self.gid)
        pf = pwd.getpwnam("postfix")
        os.mkdir(os.path.join(self.dir, "queue"), 0o755)
        os.mkdir(os.path.join(self.dir, "data"), 0o700)
        os.chown(os.path.join(self.dir, "data"), pf.pw_uid, pf.pw_gid)
        self.port = port or free_port()
        self.extra_ports = [free_port() for _ in extra_smtpd]
        self.addresses = [a.lower() for a in addresses]
        self.proc = None
        main = self.MAIN_CF.format(dir=self.dir, domain=DOMAIN,
                                   uid=self.uid, gid=self.gid)
        # A setting of extra_main replaces the default in place (Postfix
        # would warn about each overriding entry, from every command).
        for ln in extra_main.splitlines():
            m = re.match(r"^(\w+)\s*=", ln)
            if m:
                main, n = re.subn(r"(?m)^%s\s*=.*$" % m.group(1),
                                  lambda _: ln, main)
                if n:
                    continue
            main += ln + "\n"
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(self.MASTER_CF.format(port=self.port))
            for p, opts in zip(self.extra_ports, extra_smtpd):
                f.write("127.0.0.1:%d inet n - n - 300 smtpd\n" % p)
                for o in opts:
                    f.write("  -o %s\n" % o)
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            for a in self.addresses:
                f.write("%s %s/\n" % (a, self.box_name(a)))

    @staticmethod
    def box_name(address):
        return re.sub(r"[^a-z0-9._-]", "_", address.lower())

    def maildir(self, address):
        return os.path.join(self.maildir_base, self.box_name(address))

    def start(self, timeout=30.0):
        env = dict(os.environ)
        env.pop("MAIL_CONFIG", None)
        # Creates the queue and data directories with their owners.
        r = subprocess.run([self.postfix, "-c", self.etc,
                            "set-permissions", "create-missing"],
                           capture_output=True, text=True, timeout=60,
                           env=env)
        if r.returncode != 0:
            raise RuntimeError("postfix check: " + r.stdout + r.stderr)
        self.out = open(os.path.join(self.dir, "master.out"), "ab")
        self.proc = subprocess.Popen(
            [self.postfix, "-c", self.etc, "start-fg"],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out,
            env=env, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("postfix exited %s: %s" % (
                    self.proc.returncode, self.output()[-2000:]))
            return all(_greets(p) for p in [self.port] + self.extra_ports)
        _wait(up, timeout, "Postfix smtpd on port %d" % self.port)
        return self

    def output(self):
        out = ""
        for p in (os.path.join(self.dir, "master.out"), self.log):
            try:
                with open(p, errors="replace") as f:
                    out += f.read()
            except FileNotFoundError:
                pass
        return out

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def master_pid(self):
        try:
            with open(os.path.join(self.dir, "queue", "pid",
                                   "master.pid")) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def messages(self, address):
        """The delivered files of address (bytes), oldest first."""
        new = os.path.join(self.maildir(address), "new")
        try:
            names = os.listdir(new)
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            p = os.path.join(new, n)
            try:
                st = os.stat(p)
                with open(p, "rb") as f:
                    out.append((st.st_mtime, n, f.read()))
            except FileNotFoundError:
                continue
        out.sort()
        return [d for _, _, d in out]

    def wait_messages(self, address, n, timeout=60.0):
        return _wait(lambda: len(self.messages(address)) >= n and
                     self.messages(address), timeout,
                     "%d message(s) for %s" % (n, address))

    def clear(self, address=None):
        for a in ([address] if address else self.addresses):
            new = os.path.join(self.maildir(a), "new")
            try:
                for n in os.listdir(new):
                    os.unlink(os.path.join(new, n))
            except FileNotFoundError:
                pass

    @staticmethod
    def split_delivered(data):
        """(prepended header lines, rest) of a delivered file: the
        Return-Path, Delivered-To and Received headers Postfix adds."""
        lines = data.split(b"\n")
        assert lines[0].startswith(b"Return-Path:"), data[:200]
        i = 1
        while lines[i].startswith((b"X-Original-To:", b"Delivered-To:")):
            i += 1
        assert lines[i].startswith(b"Received:"), data[:300]
        i += 1
        while lines[i][:1] in (b" ", b"\t"):
            i += 1
        return lines[:i], b"\n".join(lines[i:])

    @classmethod
    def stored_message(cls, data):
        return cls.split_delivered(data)[1]

    @classmethod
    def received(cls, data):
        """Postfix's own Received header, unfolded."""
        head = cls.split_delivered(data)[0]
        rec = [ln for ln in head if not ln.startswith(
            (b"Return-Path:", b"X-Original-To:", b"Delivered-To:"))]
        return b" ".join(x.strip() for x in rec)

    def stop(self):
        pids = []
        m = self.master_pid()
        if m:
            pids.append(m)
        if self.proc is not None:
            pids.append(self.proc.pid)
        for p in pids:
            _kill(p, signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # The session was started for it: its group is its own.
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
            self.proc = None
            self.out.close()
        # master's children end when master does; wait for the ports.
        try:
            _wait(lambda: not any(_greets(p) for p in
                                  [self.port] + self.extra_ports),
                  10, "smtpd to stop")
        except AssertionError:
            pass

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SmtpSink:
    """smtp-sink(1) on a loopback port: answers every command, keeps
    nothing (or, with dump=True, appends each transaction to
    DIR/dump).  Stopped by PID."""

    def __init__(self, args=(), name="sink", dump=False):
        self.bin = find("smtp-sink")
        if self.bin is None:
            raise RuntimeError("smtp-sink not installed (postfix package)")
        os.makedirs(TMP, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=TMP)
        self.port = free_port()
        self.dump = os.path.join(self.dir, "dump") if dump else None
        cmd = [self.bin, "-c", "-u", "nobody", "-h", "sink." + DOMAIN]
        if self.dump:
            cmd += ["-D", self.dump]
        cmd += list(args) + ["127.0.0.1:%d" % self.port, "100"]
        self.err = open(os.path.join(self.dir, "out"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("smtp-sink exited %s" %
                                   self.proc.returncode)
            return _greets(self.port)
        _wait(up, 15, "smtp-sink on port %d" % self.port)

    def dumped(self):
        try:
            with open(self.dump, "rb") as f:
                return f.read()
        except (TypeError, FileNotFoundError):
            return b""

    def stop(self):
        if self.proc.poll() is None:
            _kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.err.close()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":
    # Self-check without the proxy: one message through Postfix with
    # XCLIENT, one dialogue with smtp-sink.
    import smtplib
    pf = Postfix(["alice@example.test"], name="pf-selftest")
    try:
        pf.start()
        msg = (b"From: a@example.org\r\nTo: alice@example.test\r\n"
               b"Subject: t\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\n"
               b"Message-ID: <x@example.org>\r\n\r\nhello\r\n.dot\r\n")
        s = smtplib.SMTP("127.0.0.1", pf.port, timeout=10)
        s.ehlo("proxy.test")
        code, _ = s.docmd("XCLIENT", "ADDR=192.0.2.7 NAME=client.example.org")
        assert code == 220, code
        s.ehlo("client-helo")
        s.sendmail("a@example.org", ["alice@example.test"], msg)
        s.quit()
        got = pf.wait_messages("alice@example.test", 1)[0]
        print(Postfix.received(got).decode())
        assert Postfix.stored_message(got) == msg.replace(b"\r\n", b"\n")
        assert b"client.example.org [192.0.2.7]" in Postfix.received(got)
        print("postfix ok")
        pf.stop()
        pf.remove()
    finally:
        pf.stop()
    sk = SmtpSink(name="sink-selftest")
    try:
        s = smtplib.SMTP("127.0.0.1", sk.port, timeout=10)
        s.ehlo("x")
        s.sendmail("a@example.org", ["b@example.test"], b"Subject: x\r\n\r\nx\r\n")
        s.quit()
        print("smtp-sink ok")
    finally:
        sk.stop()
        sk.remove()
