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

"""A real Dovecot IMAP and POP3 server for the end-to-end tests: its own
configuration, base and state directories, loopback ports picked here,
users with passwords in a passwd-file, maildirs filled by writing message
files, and stopped by PID.  Python standard library only; must run as
root (Dovecot's master drops to the mail user for the sessions).

    dc = Dovecot({"alice": "s3cret", "bob": "hunter2"})
    dc.add_message("alice", make_message("hello", ["line one"]))
    dc.start()
    ... imaplib.IMAP4("127.0.0.1", dc.imap_port) ...
    dc.stop()

Messages are written with CRLF line ends, so that IMAP FETCH BODY[] and
POP3 RETR give back exactly the bytes written (after POP3 dot-unstuffing),
and are numbered (UID and POP3 message number) in the order they were
added."""

import grp
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port(host="127.0.0.1"):
    """mpd.free_port: never a port this process was given already."""
    import mpd
    return mpd.free_port(host=host)


def find_dovecot():
    """Path of the dovecot binary, or None."""
    p = shutil.which("dovecot")
    if p:
        return p
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        if os.access(os.path.join(d, "dovecot"), os.X_OK):
            return os.path.join(d, "dovecot")
    return None


def make_message(subject, body_lines=(), sender="demo@example.org",
                 to="user@example.org", date="Mon, 23 Nov 2026 12:00:00 +0000",
                 extra_headers=()):
    """An RFC 5322 message as bytes with CRLF line ends."""
    lines = ["From: " + sender, "To: " + to, "Subject: " + subject,
             "Date: " + date,
             "Message-ID: <%s.%d@mailproxyd.test>" % (
                 "".join(c for c in subject if c.isalnum())[:32] or "m",
                 abs(hash((subject, tuple(body_lines)))) % 10 ** 9)]
    lines += list(extra_headers)
    lines += [""] + list(body_lines)
    return ("\r\n".join(lines) + "\r\n").encode()


def big_message(size=10 * 1024 * 1024, subject="big"):
    """A message of exactly size bytes: headers then lines of 76 printable
    characters (varying, so that a shifted or dropped chunk shows), CRLF
    ends, no line starting with a dot."""
    head = make_message(subject)            # ends with the empty line
    out = bytearray(head)
    i = 0
    alphabet = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                b"abcdefghijklmnopqrstuvwxyz0123456789+/")
    while len(out) < size:
        n = i % len(alphabet)
        line = (b"%08d " % i) + (alphabet[n:] + alphabet[:n]) + b"=-"
        line = line[:76]
        out += line + b"\r\n"
        i += 1
    del out[size:]
    # Keep it a well-formed text message: end on CRLF.
    if not out.endswith(b"\r\n"):
        out[-2:] = b"\r\n"
    return bytes(out)


class Dovecot:
    """One Dovecot master with its own files; stop() by PID."""

    def __init__(self, users, name="dc", parent=None, mail_user="nobody",
                 mail_group="nogroup", protocols=("imap", "pop3"),
                 extra_conf="", tls=None, auth_socket=False):
        """users: {name: cleartext password}.  tls: None (the default,
        no TLS at all), or {"cert": path, "key": path} and optionally
        "required": True: "ssl = yes" (or "required") with that
        certificate, STARTTLS/STLS on imap_port and pop3_port, and
        implicit TLS on imaps_port and pop3s_port.  auth_socket=True
        adds a client socket of the auth service, self.auth_socket (mode
        0666, no auth penalty), for an SMTP server's SASL (Postfix
        smtpd_sasl_type = dovecot); protocols=() then gives an auth-only
        instance."""
        self.binary = find_dovecot()
        if self.binary is None:
            raise RuntimeError("dovecot is not installed "
                               "(sh contrib/install-deps.sh)")
        if parent is None:
            parent = os.path.join(TOP, "tests", "tmp")
        os.makedirs(parent, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=parent)
        os.chmod(self.dir, 0o755)
        # Unix socket paths are limited to 108 bytes: keep the run
        # directory short, whatever the depth of the tree.
        self.base_dir = tempfile.mkdtemp(prefix="mpd-dc-", dir="/tmp")
        os.chmod(self.base_dir, 0o755)
        self.state_dir = os.path.join(self.dir, "state")
        self.mail_dir = os.path.join(self.dir, "mail")
        os.mkdir(self.state_dir, 0o755)
        os.mkdir(self.mail_dir, 0o755)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.passwd = os.path.join(self.dir, "passwd")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.uid = pwd.getpwnam(mail_user).pw_uid
        self.gid = grp.getgrnam(mail_group).gr_gid
        self.protocols = tuple(protocols)
        self.extra_conf = extra_conf
        self.tls = tls
        self.imaps_port = free_port() if tls and "imap" in protocols else 0
        self.pop3s_port = free_port() if tls and "pop3" in protocols else 0
        self.auth_socket = (os.path.join(self.base_dir, "auth-client")
                            if auth_socket else None)
        self.imap_port = free_port() if "imap" in protocols else 0
        self.pop3_port = free_port() if "pop3" in protocols else 0
        self.users = {}
        self.messages = {}
        self.seq = 0
        self.proc = None
        self.pid = None
        for u, p in users.items():
            self.add_user(u, p)

    # -- users and mail ----------------------------------------------

    def home(self, user):
        return os.path.join(self.mail_dir, user)

    def add_user(self, user, password):
        if ":" in user or ":" in password or "\n" in user + password:
            raise ValueError("passwd-file fields cannot hold ':' or newline")
        self.users[user] = password
        self.messages.setdefault(user, [])
        md = os.path.join(self.home(user), "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        self._chown_tree(self.home(user))
        self._write_passwd()

    def _write_passwd(self):
        with open(self.passwd + ".tmp", "w") as f:
            for u, p in self.users.items():
                f.write("%s:{PLAIN}%s:%d:%d::%s::\n"
                        % (u, p, self.uid, self.gid, self.home(u)))
        os.chmod(self.passwd + ".tmp", 0o644)
        os.rename(self.passwd + ".tmp", self.passwd)

    def _chown_tree(self, top):
        os.chown(top, self.uid, self.gid)
        for root, dirs, files in os.walk(top):
            for n in dirs + files:
                os.chown(os.path.join(root, n), self.uid, self.gid)

    def add_message(self, user, data, flags="S"):
        """Deliver data (bytes) to user's INBOX by writing a maildir file.
        Messages get UIDs and POP3 numbers in the order added (the file
        names sort that way).  Returns the message's number, from 1."""
        self.seq += 1
        md = os.path.join(self.home(user), "Maildir", "cur")
        # Dovecot orders new files by the time stamp in their name.
        base = 1700000000 + self.seq
        name = "%d.M%06dP%d.mailproxyd-test,S=%d,W=%d:2,%s" % (
            base, self.seq, os.getpid(), len(data), len(data), flags)
        tmp = os.path.join(self.home(user), "Maildir", "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.utime(tmp, (base, base))
        os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, os.path.join(md, name))
        self.messages[user].append(data)
        return len(self.messages[user])

    def add_big_message(self, user, size=10 * 1024 * 1024):
        """A message of size bytes (default 10 MB); returns (number,
        bytes)."""
        data = big_message(size)
        return self.add_message(user, data), data

    # -- configuration -----------------------------------------------

    def text(self):
        listeners = ""
        if "imap" in self.protocols:
            listeners += """
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %d
  }
  inet_listener imaps {
%s
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
}
service imap {
  process_limit = 1000
}
protocol imap {
  mail_max_userip_connections = 1000
}
""" % (self.imap_port, self._tls_listener(self.imaps_port))
        if "pop3" in self.protocols:
            listeners += """
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %d
  }
  inet_listener pop3s {
%s
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
}
service pop3 {
  process_limit = 1000
}
protocol pop3 {
  mail_max_userip_connections = 1000
  pop3_uidl_format = %%08Xu%%08Xv
}
""" % (self.pop3_port, self._tls_listener(self.pop3s_port))
        if self.auth_socket:
            # No auth penalty (a delay growing with each failure from an
            # address): tests fail logins on purpose, all from loopback.
            listeners += """
service auth {
  unix_listener %s {
    mode = 0666
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
""" % os.path.basename(self.auth_socket)
        return """# Generated by tests/regress/dovecot.py
protocols = %(protocols)s
listen = 127.0.0.1
instance_name = %(instance)s
base_dir = %(base_dir)s
state_dir = %(state_dir)s
log_path = %(log)s
info_log_path = %(log)s
%(ssl)s
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
default_process_limit = 1000
default_client_limit = 4000
default_vsz_limit = 512M
first_valid_uid = 1
first_valid_gid = 1
mail_uid = %(uid)d
mail_gid = %(gid)d
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = %(passwd)s
}
userdb {
  driver = passwd-file
  args = %(passwd)s
}
%(listeners)s
%(extra)s
""" % {"protocols": " ".join(self.protocols) or "none",
       "instance": "mpd-" + os.path.basename(self.dir),
       "base_dir": self.base_dir, "state_dir": self.state_dir,
       "log": self.log, "uid": self.uid, "gid": self.gid,
       "passwd": self.passwd, "listeners": listeners,
       "extra": self.extra_conf, "ssl": self._tls_settings()}

    def _tls_listener(self, port):
        if not port:
            return "    port = 0"
        return ("    address = 127.0.0.1\n    port = %d\n    ssl = yes"
                % port)

    def _tls_settings(self):
        if not self.tls:
            return "ssl = no"
        return ("ssl = %s\nssl_cert = <%s\nssl_key = <%s\n"
                "ssl_min_protocol = TLSv1.2"
                % ("required" if self.tls.get("required") else "yes",
                   self.tls["cert"], self.tls["key"]))

    # -- running -----------------------------------------------------

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _greets(self, port, prefix):
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=2) as s:
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(512)
                    if not chunk:
                        break
                    data += chunk
                return data.startswith(prefix)
        except OSError:
            return False

    @staticmethod
    def _unix_up(path):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(path)
                return True
        except OSError:
            return False

    def _greets_tls(self, port, prefix):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=2) as raw:
                with ctx.wrap_socket(raw) as s:
                    data = b""
                    while b"\n" not in data:
                        chunk = s.recv(512)
                        if not chunk:
                            break
                        data += chunk
                    return data.startswith(prefix)
        except OSError:
            return False

    def start(self, timeout=30.0):
        with open(self.conf, "w") as f:
            f.write(self.text())
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        want = []
        if self.imap_port:
            want.append((self.imap_port, b"* OK"))
        if self.pop3_port:
            want.append((self.pop3_port, b"+OK"))
        if self.imaps_port:
            want.append((self.imaps_port, b"* OK", True))
        if self.pop3s_port:
            want.append((self.pop3s_port, b"+OK", True))
        if self.auth_socket:
            want.append(("unix", self.auth_socket))
        while want:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace")
                self.proc.stdout.close()
                self.proc = None
                raise RuntimeError("dovecot exited with %s:\n%s\n%s" % (
                    self.pid and "status", out, self.logtext()[-2000:]))
            w = want[0]
            if w[0] == "unix":
                up = self._unix_up(w[1])
            elif len(w) > 2:
                up = self._greets_tls(w[0], w[1])
            else:
                up = self._greets(w[0], w[1])
            if up:
                want.pop(0)
                continue
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dovecot did not come up:\n" +
                                   self.logtext()[-2000:])
            time.sleep(0.05)
        return self

    def children(self):
        """PIDs of the processes below the master (all generations)."""
        if not self.pid:
            return []
        kids = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                ppid = int(st.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            for c in kids.get(p, []):
                out.append(c)
                todo.append(c)
        return out

    def stop(self):
        """Stop the master by PID (it stops its children); kill whatever
        is left after 10 seconds."""
        if self.proc is None:
            return
        kids = self.children()
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for p in kids:
            # Only leftovers of this instance (a PID may have been reused).
            try:
                with open("/proc/%d/cmdline" % p, "rb") as f:
                    cmd = f.read()
                if b"dovecot" in cmd:
                    os.kill(p, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass
        self.proc.stdout.close()
        self.proc = None
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
