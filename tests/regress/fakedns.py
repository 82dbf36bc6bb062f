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

"""A fake DNS server on loopback for the resolver tests of the auth
process.  Python 3 standard library only.

It answers UDP queries from a table the test sets up:

    dns = FakeDNS({("1.0.0.127.in-addr.arpa", "PTR"): ["mail.example"],
                   ("mail.example", "A"): ["127.0.0.1"]})
    dns.start()             # binds 127.0.0.1 on a free port: dns.port
    ...
    dns.stop()

Table keys are (name, type) with the name in text form without the
final dot (compared case-insensitively) and type one of "A", "AAAA",
"PTR"; values are lists of addresses (A, AAAA) or of names (PTR).  A PTR
name is a str split into labels at dots, or a list of labels (str or
bytes) when a label must hold a dot or any other byte: the wire form is
built label by label, so names such as "evil\\r\\nX: y" or "a_b.example"
go out exactly as given.  A name that has no entry for any type is
NXDOMAIN; a name that exists with no record of the asked type is an
empty NOERROR answer.

Answer classes beyond the table, to test how the resolver reads them
(nginx's classification): rcode(name, code) answers every question
for name with that RCODE and no record (FORMERR 1, SERVFAIL 2, NOTIMP 4,
REFUSED 5, or any other up to 15); extra(name, qtype, rtype, value,
owner=None) puts one more record in the answer to (name, qtype): of
type rtype ("A", "AAAA", "PTR", "CNAME", "MX"), owned by owner (the
question's name by default), so that an answer may hold a CNAME chain,
records of another type, or another name's; such a name exists.

mode is "answer" (the default) or "silent": read every query and never
answer.  Names in drop (a set, lower case) are never answered either,
so that one look-up of a chain can time out.  Every query is logged in
dns.queries as (name, type) with the name in lower case.

Run as a program it serves a JSON table until killed:

    python3 fakedns.py [--port N] [--port-file F] [--silent] TABLE.json

where TABLE.json is a list of [name, type, [values]].
"""

import ipaddress
import json
import socket
import struct
import sys
import threading

TYPES = {"A": 1, "PTR": 12, "AAAA": 28}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RR_TYPES = dict(TYPES, CNAME=5, MX=15)
CLASS_IN = 1

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_NXDOMAIN = 3
RCODE_SERVFAIL = 2
RCODE_NOTIMP = 4
RCODE_REFUSED = 5


def reverse_name(address):
    """The in-addr.arpa or ip6.arpa name of an address, without the dot."""
    return ipaddress.ip_address(address).reverse_pointer


def labels_of(name):
    """A name given as text (split at dots) or as a list of labels."""
    if isinstance(name, (list, tuple)):
        return [l.encode("latin-1") if isinstance(l, str) else bytes(l)
                for l in name]
    return [l.encode("latin-1") for l in name.rstrip(".").split(".") if l]


def encode_name(name):
    out = b""
    for label in labels_of(name):
        if not 0 < len(label) < 64:
            raise ValueError("bad label %r" % label)
        out += bytes([len(label)]) + label
    return out + b"\0"


def read_qname(pkt, pos):
    """The question name (no compression in queries) and the next offset."""
    labels = []
    while True:
        if pos >= len(pkt):
            raise ValueError("truncated name")
        n = pkt[pos]
        pos += 1
        if n == 0:
            return labels, pos
        if n >= 64 or pos + n > len(pkt):
            raise ValueError("bad label")
        labels.append(pkt[pos:pos + n])
        pos += n


class FakeDNS:
    """A UDP name server on 127.0.0.1 answering from a table."""

    def __init__(self, table=None, mode="answer", ttl=300, host="127.0.0.1",
                 port=0, drop=()):
        self.table = {}
        self.rcodes = {}
        self.extras = {}
        for (name, rtype), values in (table or {}).items():
            self.add(name, rtype, values)
        self.mode = mode
        self.drop = set(n.rstrip(".").lower() for n in drop)
        self.ttl = ttl
        self.host = host
        self.want_port = port
        self.queries = []
        self.lock = threading.Lock()
        self.sock = None
        self.thread = None
        self.port = None
        self._stop = threading.Event()

    def add(self, name, rtype, values):
        if rtype not in TYPES:
            raise ValueError("type %r" % rtype)
        key = (name.rstrip(".").lower(), rtype)
        self.table.setdefault(key, []).extend(values)

    def rcode(self, name, code):
        """Every question for name gets RCODE code, no record."""
        self.rcodes[name.rstrip(".").lower()] = code

    def extra(self, name, qtype, rtype, value, owner=None):
        """One more record in the answer to (name, qtype)."""
        if qtype not in TYPES or rtype not in RR_TYPES:
            raise ValueError("type %r %r" % (qtype, rtype))
        key = (name.rstrip(".").lower(), qtype)
        self.extras.setdefault(key, []).append((rtype, value, owner))

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.host, self.want_port))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def queries_of(self, rtype=None):
        with self.lock:
            return [q for q in self.queries if rtype is None or q[1] == rtype]

    def _serve(self):
        while not self._stop.is_set():
            try:
                pkt, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.handle(pkt)
            if reply is not None and self.mode != "silent":
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    pass

    def handle(self, pkt):
        """The reply to one query, or None for what is not a query."""
        if len(pkt) < 12:
            return None
        qid, flags, qd, _, _, _ = struct.unpack("!HHHHHH", pkt[:12])
        if flags & 0x8000:
            return None                 # a response, not a query
        rd = flags & 0x0100
        try:
            if qd != 1:
                raise ValueError("qdcount %d" % qd)
            labels, pos = read_qname(pkt, 12)
            if pos + 4 > len(pkt):
                raise ValueError("truncated question")
            qtype, qclass = struct.unpack("!HH", pkt[pos:pos + 4])
        except ValueError:
            return struct.pack("!HHHHHH", qid, 0x8000 | rd | RCODE_FORMERR,
                               0, 0, 0, 0)
        question = pkt[12:pos + 4]
        name = b".".join(labels).decode("latin-1").lower()
        tname = TYPE_NAMES.get(qtype, str(qtype))
        with self.lock:
            self.queries.append((name, tname))
        if name in self.drop:
            return None
        answers = []
        if name in self.rcodes:
            rcode = self.rcodes[name]
        elif qclass != CLASS_IN or qtype not in TYPE_NAMES:
            rcode = RCODE_NOTIMP
        elif not any(k[0] == name for k in list(self.table) +
                     list(self.extras)):
            rcode = RCODE_NXDOMAIN
        else:
            rcode = RCODE_NOERROR
            for value in self.table.get((name, tname), []):
                answers.append(self.record(None, tname, value))
            for rtype, value, owner in self.extras.get((name, tname), []):
                answers.append(self.record(owner, rtype, value))
        head = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 |
                           rcode, 1, len(answers), 0, 0)
        return head + question + b"".join(answers)


    def record(self, owner, rtype, value):
        """One answer record; owner None: a pointer to the question."""
        if rtype == "A":
            rdata = socket.inet_pton(socket.AF_INET, value)
        elif rtype == "AAAA":
            rdata = socket.inet_pton(socket.AF_INET6, value)
        elif rtype == "MX":
            rdata = struct.pack("!H", 10) + encode_name(value)
        else:
            rdata = encode_name(value)
        head = struct.pack("!H", 0xc00c) if owner is None else \
            encode_name(owner)
        return head + struct.pack("!HHIH", RR_TYPES[rtype], CLASS_IN,
                                  self.ttl, len(rdata)) + rdata


def main(argv):
    import argparse
    import os
    import signal
    p = argparse.ArgumentParser(description="fake DNS server for tests")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--silent", action="store_true")
    p.add_argument("table")
    opts = p.parse_args(argv)
    with open(opts.table) as f:
        rows = json.load(f)
    dns = FakeDNS(mode="silent" if opts.silent else "answer",
                  port=opts.port)
    for name, rtype, values in rows:
        dns.add(name, rtype, values)
    dns.start()
    if opts.port_file:
        tmp = opts.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % dns.port)
        os.replace(tmp, opts.port_file)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    while not done.wait(0.5):
        pass
    dns.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
