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
"""End-to-end tests of mailproxyctl makemap and mailproxyctl hash: the
binary run as an operator runs it, its table read back with a small cdb
reader, its hashes checked with the system's crypt(3).  Needs no root.
Usage: test_makemap.py MAILPROXYCTL [name...]

Ends with the line "N passed, M failed"."""

import ctypes
import ctypes.util
import os
import pty
import re
import select
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = None
TESTS = []
MARKER = b"\0mailproxyd-cdb"


def test(fn):
    TESTS.append(fn)
    return fn


def ctl(*args, stdin=None):
    """Run mailproxyctl: (exit status, stdout, stderr) as text."""
    p = subprocess.run([BINARY] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def cdb_hash(key):
    h = 5381
    for c in key:
        h = (((h << 5) + h) ^ c) & 0xffffffff
    return h


def cdb_get(path, key):
    """The first value of key in a cdb file, or None."""
    with open(path, "rb") as f:
        data = f.read()
    h = cdb_hash(key)
    pos, slots = struct.unpack_from("<II", data, (h & 255) * 8)
    if slots == 0:
        return None
    start = (h >> 8) % slots
    for i in range(slots):
        hh, rp = struct.unpack_from("<II", data,
                                    pos + ((start + i) % slots) * 8)
        if rp == 0:
            return None
        if hh == h:
            kl, vl = struct.unpack_from("<II", data, rp)
            if data[rp + 8:rp + 8 + kl] == key:
                return data[rp + 8 + kl:rp + 8 + kl + vl]
    return None


def record(path, user):
    """A user's record as a dict, or None."""
    v = cdb_get(path, user.encode())
    if v is None:
        return None
    parts = v.split(b"\0")
    assert parts[0] == b"v1" and parts[-1] == b"", v
    return dict(p.decode().split("=", 1) for p in parts[1:-1])


_libcrypt = None


def crypt(password, setting):
    global _libcrypt
    if _libcrypt is None:
        name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
        _libcrypt = ctypes.CDLL(name)
        _libcrypt.crypt.restype = ctypes.c_char_p
        _libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    r = _libcrypt.crypt(password.encode(), setting.encode())
    return r.decode() if r else None


class Dir:
    """A scratch directory, removed afterwards."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="test_makemap.")
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path)

    def write(self, name, text):
        p = os.path.join(self.path, name)
        with open(p, "w" if isinstance(text, str) else "wb") as f:
            f.write(text)
        return p

    def files(self):
        return sorted(os.listdir(self.path))


def sha512(password="pw"):
    return crypt(password, "$6$abcdefgh")


@test
def makemap_default_output():
    """The table lands next to the source with ".cdb" appended, mode 0640,
    every user's fields in a v1 record, and the marker record."""
    with Dir() as d:
        h = sha512("alicepw")
        src = d.write("users", "# the users\n\n"
                      "alice %s imap=127.0.0.1:143 pop3=[::1]:110\n"
                      "bob\t*\tsmtp=192.0.2.25:25  # disabled\n"
                      "carol %s user=master*carol pass=mpw\n" % (h, h))
        rc, out, err = ctl("makemap", src)
        assert rc == 0, (rc, err)
        assert out == "" and err == "", (out, err)
        assert d.files() == ["users", "users.cdb"], d.files()
        cdb = src + ".cdb"
        assert stat.S_IMODE(os.stat(cdb).st_mode) == 0o640
        assert record(cdb, "alice") == {"secret": h,
                                        "imap": "127.0.0.1:143",
                                        "pop3": "[::1]:110"}
        assert record(cdb, "bob") == {"secret": "*",
                                      "smtp": "192.0.2.25:25"}
        assert record(cdb, "carol") == {"secret": h, "user": "master*carol",
                                        "pass": "mpw"}
        assert record(cdb, "dave") is None
        m = cdb_get(cdb, MARKER)
        assert m is not None and m.startswith(b"v1\0dummy=$6$"), m


@test
def makemap_output_option():
    """-o names the table; nothing else is created."""
    with Dir() as d:
        src = d.write("src.txt", "alice *\n")
        out = os.path.join(d.path, "t.cdb")
        rc, _, err = ctl("makemap", "-o", out, src)
        assert rc == 0, err
        assert d.files() == ["src.txt", "t.cdb"], d.files()
        assert record(out, "alice") == {"secret": "*"}


@test
def makemap_atomic_replace():
    """A good run replaces the table by rename (a new inode); a failing
    source leaves the old table byte for byte, and no temporary file."""
    with Dir() as d:
        src = d.write("users", "alice *\n")
        cdb = src + ".cdb"
        assert ctl("makemap", src)[0] == 0
        old = open(cdb, "rb").read()
        ino = os.stat(cdb).st_ino
        d.write("users", "alice *\nbob $zz$x$y\n")
        rc, _, err = ctl("makemap", src)
        assert rc == 1, rc
        assert "users:2:" in err, err
        assert open(cdb, "rb").read() == old
        assert os.stat(cdb).st_ino == ino
        assert d.files() == ["users", "users.cdb"], d.files()
        d.write("users", "alice *\nbob *\n")
        assert ctl("makemap", src)[0] == 0
        assert os.stat(cdb).st_ino != ino
        assert record(cdb, "bob") == {"secret": "*"}
        assert d.files() == ["users", "users.cdb"], d.files()


@test
def makemap_no_output_on_error():
    """A failing source never creates the table."""
    with Dir() as d:
        src = d.write("users", "alice\n")
        rc, _, err = ctl("makemap", src)
        assert rc == 1 and err == "%s:1: user \"alice\": no secret\n" % src, \
            err
        assert d.files() == ["users"], d.files()


@test
def makemap_errors_with_line_numbers():
    """Every error is reported, as SOURCE:LINE: text, then exit 1."""
    with Dir() as d:
        src = d.write("users", "\n".join([
            "# comment",                                   # 1
            "alice $6$abc$trunc",                          # 2
            "bob {SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",       # 3
            "carol $zz$abc$def",                           # 4
            "dave * mailbox=x",                            # 5
            "erin * imap=1.2.3.4",                         # 6
            "fred * pop3=::1:110",                         # 7
            "gina * smtp=mail.example.org:25",             # 8
            "hal * imap=1.2.3.4:70000",                    # 9
            "ivan",                                        # 10
            "",                                            # 11
            "jo * user=a user=b",                          # 12
            "x" * 4097,                                    # 13
            "kim *",                                       # 14
        ]) + "\n")
        rc, out, err = ctl("makemap", src)
        assert rc == 1 and out == "", (rc, out)
        want = [
            (2, 'user "alice": malformed password hash "$6$"'),
            (3, 'user "bob": unknown or unsupported password hash "{SHA}"'),
            (4, 'user "carol": unknown or unsupported password hash '
                '"$zz$"'),
            (5, 'user "dave": unknown key "mailbox"'),
            (6, 'user "erin": bad imap address "1.2.3.4": missing port'),
            (7, 'user "fred": bad pop3 address "::1:110": an IPv6 address '
                'needs brackets'),
            (8, 'user "gina": bad smtp address "mail.example.org:25": bad '
                'IPv4 address'),
            (9, 'user "hal": bad imap address "1.2.3.4:70000": port out of '
                'range'),
            (10, 'user "ivan": no secret'),
            (12, 'user "jo": "user" given twice'),
            (13, 'line longer than 4096 bytes'),
        ]
        lines = err.splitlines()
        assert len(lines) == len(want), err
        for line, (n, text) in zip(lines, want):
            assert line.startswith("%s:%d: %s" % (src, n, text)), \
                (line, n, text)
        assert d.files() == ["users"], d.files()


@test
def makemap_duplicates():
    """A second entry for a user is refused, naming both lines."""
    with Dir() as d:
        src = d.write("users", "alice *\nbob *\n# again\nalice {PLAIN}x\n")
        rc, _, err = ctl("makemap", src)
        assert rc == 1
        assert ('%s:4: duplicate user "alice" (first at line 1)\n' % src
                in err), err
        assert d.files() == ["users"], d.files()


@test
def makemap_plain_warning():
    """{PLAIN} secrets are accepted with one warning per user."""
    with Dir() as d:
        src = d.write("users", "alice {PLAIN}a\nbob *\ncarol {PLAIN}c\n")
        rc, _, err = ctl("makemap", src)
        assert rc == 0, err
        lines = err.splitlines()
        assert len(lines) == 2, err
        assert lines[0] == ('%s:1: warning: user "alice" has a cleartext '
                            '{PLAIN} secret; only APOP and CRAM-MD5 need '
                            'one' % src), lines[0]
        assert lines[1].startswith('%s:3: warning: user "carol"' % src)
        assert record(src + ".cdb", "carol") == {"secret": "{PLAIN}c"}


@test
def makemap_crlf_and_no_final_newline():
    """CRLF line ends and a last line without a newline are fine."""
    with Dir() as d:
        src = d.write("users", b"alice *\r\nbob * imap=10.0.0.1:143")
        rc, _, err = ctl("makemap", src)
        assert rc == 0, err
        assert record(src + ".cdb", "bob") == {"secret": "*",
                                               "imap": "10.0.0.1:143"}


@test
def makemap_missing_source():
    with Dir() as d:
        rc, _, err = ctl("makemap", os.path.join(d.path, "nope"))
        assert rc == 1 and "nope" in err, err
        assert d.files() == [], d.files()


@test
def hash_schemes_verify():
    """hash prints a crypt(3) string that verifies the password read
    from standard input; makemap takes it; every scheme by name."""
    rc, out, err = ctl("hash", stdin="s3cret pw\n")
    assert rc == 0, err
    h = out.rstrip("\n")
    assert out == h + "\n" and err == "", (out, err)
    assert crypt("s3cret pw", h) == h
    assert crypt("s3cret pX", h) != h
    schemes = {"yescrypt": "$y$", "bcrypt": "$2b$10$", "sha512": "$6$"}
    avail = []
    for name, prefix in schemes.items():
        rc, out, err = ctl("hash", "-s", name, stdin="pw")
        if rc != 0:
            assert "not supported" in err, err
            continue
        avail.append(name)
        h = out.strip()
        assert h.startswith(prefix), h
        assert crypt("pw", h) == h
        with Dir() as d:
            src = d.write("users", "alice %s\n" % h)
            rc, _, err = ctl("makemap", src)
            assert rc == 0, err
            assert record(src + ".cdb", "alice") == {"secret": h}
    print("  schemes: " + " ".join(avail))
    assert avail
    default = ctl("hash", stdin="pw")[1]
    assert default.startswith(schemes[avail[0]][:3]), default


@test
def hash_errors():
    rc, _, err = ctl("hash", "-s", "md5", stdin="pw\n")
    assert rc == 1 and 'unknown scheme "md5"' in err, err
    rc, _, err = ctl("hash", stdin="\n")
    assert rc == 1 and "empty password" in err, err
    rc, _, err = ctl("hash", stdin="")
    assert rc == 1 and "no password" in err, err
    rc, _, err = ctl("hash", stdin="x" * 600 + "\n")
    assert rc == 1 and "longer than 511" in err, err
    rc, _, err = ctl("hash", "extra", stdin="pw\n")
    assert rc == 1 and err.startswith("usage:"), err


def tty_hash(answers):
    """Run hash on a terminal, answering each prompt once it is shown
    (readpassphrase flushes what was typed before); (status, output)."""
    prompts = [b"Password:", b"Retype password:"]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(BINARY, [BINARY, "hash"])
    out = b""
    deadline = time.monotonic() + 60
    for prompt, answer in zip(prompts, answers):
        while prompt not in out:
            assert time.monotonic() < deadline, out
            r, _, _ = select.select([fd], [], [], 1)
            if r:
                out += os.read(fd, 1024)
        os.write(fd, answer.encode() + b"\n")
        out = out.replace(prompt, b"[%s]" % prompt[:-1])
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 1)
        if not r:
            continue
        try:
            b = os.read(fd, 1024)
        except OSError:
            break
        if not b:
            break
        out += b
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


@test
def hash_from_terminal():
    """On a terminal the password is asked twice, without echo."""
    rc, out = tty_hash(["tty pw", "tty pw"])
    assert rc == 0, out
    assert "tty pw" not in out, out
    assert "[Password]" in out and "[Retype password]" in out, out
    h = out.strip().splitlines()[-1].strip()
    assert crypt("tty pw", h) == h, out
    rc, out = tty_hash(["one", "two"])
    assert rc == 1 and "passwords do not match" in out, out


@test
def usage_matches_manual():
    """usage() and the manual's SYNOPSIS say the same."""
    rc, out, err = ctl()
    assert rc == 1 and out == "", rc
    usage = [l.split(None, 1)[1] if i == 0 else l.strip()
             for i, l in enumerate(err.splitlines())]
    assert usage == ["mailproxyctl makemap [-o output] source",
                     "mailproxyctl hash [-s scheme]",
                     "mailproxyctl [-j] [-s socket] command "
                     "[argument ...]"], err
    assert ctl("bogus")[2] == err
    assert ctl("makemap")[2] == err
    assert ctl("makemap", "a", "b")[2] == err
    assert ctl("makemap", "-x", "a")[0] == 1
    if shutil.which("mandoc") is None:
        print("  (mandoc not found: SYNOPSIS not compared)")
        return
    man = subprocess.run(["mandoc", "-T", "ascii",
                          os.path.join(TOP, "man", "mailproxyctl.8")],
                         capture_output=True, text=True).stdout
    man = re.sub(r".\x08", "", man)
    syn = man.split("SYNOPSIS\n", 1)[1].split("\nDESCRIPTION", 1)[0]
    assert [l.strip() for l in syn.splitlines() if l.strip()] == usage, syn


@test
def makemap_man_page_example():
    """The source in mailproxyctl(8) EXAMPLES compiles, with the output
    the page shows."""
    page = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "man", "mailproxyctl.8")
    with open(page) as f:
        text = f.read()
    ex = text.split(".Sh EXAMPLES\n", 1)[1]
    src = ex.split(".Pa /etc/mailproxyd/users :\n.Bd -literal -offset "
                   "indent\n", 1)[1].split(".Ed\n", 1)[0]
    shown = ex.split("# mailproxyctl makemap users\n", 1)[1].split(
        "# mailproxyd -s reload", 1)[0]
    assert "\\" not in src, src
    with Dir() as d:
        d.write("users", src)
        rc, out, err = ctl("makemap", os.path.join(d.path, "users"))
        assert rc == 0, err
        assert err.replace(d.path + "/", "") == shown, (err, shown)
        assert d.files() == ["users", "users.cdb"], d.files()
        for user in ("alice", "bob", "carol", "helper", "erin"):
            assert record(os.path.join(d.path, "users.cdb"), user), user


def main():
    global BINARY
    if len(sys.argv) < 2:
        print("usage: test_makemap.py MAILPROXYCTL [name...]",
              file=sys.stderr)
        sys.exit(2)
    BINARY = os.path.abspath(sys.argv[1])
    names = sys.argv[2:]
    passed = failed = 0
    for fn in TESTS:
        if names and fn.__name__ not in names:
            continue
        try:
            fn()
        except Exception:
            failed += 1
            print("FAIL %s" % fn.__name__)
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print("ok   %s" % fn.__name__)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
