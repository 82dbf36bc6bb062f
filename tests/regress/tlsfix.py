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

"""Certificates for the TLS tests, made with the openssl command line in a
directory of their own under tests/tmp.  Python standard library only.

    certs = Certs()
    certs.crt("rsa"), certs.key("rsa")   # paths of a certificate and key
    certs.info("client")                 # subject, issuer, serial, ...
    certs.remove()

What is made (every name below is a key for crt(), key(), pem() and
info()):

  ca            the server CA ("mailproxyd test CA"); clients trust it
  rsa           server certificate, RSA 2048, signed by ca, for mx.test,
                localhost and 127.0.0.1 (SAN)
  ec            the same names with an ECDSA P-256 key
  other         server certificate for other.test (SNI tests), RSA,
                signed by ca
  client_ca     the CA of client certificates
  client        a good client certificate (CN=alice), signed by client_ca
  expired       CN=alice, signed by client_ca, expired in 2020
  client_int_ca an intermediate CA below client_ca
  chained       CN=alice, signed by client_int_ca; chained.crt holds the
                leaf then the intermediate (a chain of depth 2)
  rogue_ca      an unrelated CA
  wrongca       CN=alice, signed by rogue_ca (not client_ca)
  backend_ca    the CA of backend certificates (proxy_ssl_trusted_...)
  backend       backend certificate for backend.test, localhost and
                127.0.0.1, signed by backend_ca
  backend_wrong the same names, signed by rogue_ca
  backend_wrongname
                signed by backend_ca, but for wrong.test only

info(name) gives the values nginx sends to the auth server for a client
certificate: "subject" and "issuer" as RFC 2253 strings, "serial" in
upper-case hex, "fingerprint" (lower-case hex SHA-1 of the DER), and
"pem"."""

import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = os.path.join(TOP, "tests", "tmp")

SERVER_NAMES = ("mx.test", "localhost")
OTHER_NAME = "other.test"
BACKEND_NAMES = ("backend.test", "localhost")

CA_CONF = """\
[ ca ]
default_ca = ca_default

[ ca_default ]
database = %(db)s
new_certs_dir = %(dir)s
serial = %(serial)s
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
emailAddress = optional
"""


def run(*args, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=60, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (
            " ".join(args), r.returncode, r.stdout, r.stderr))
    return r.stdout


class Certs:
    """A set of CAs, keys and certificates made for one test run."""

    def __init__(self, parent=None):
        if parent is None:
            parent = TMP
        os.makedirs(parent, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="certs-", dir=parent)
        # Readable by the unprivileged users of the daemons under test
        # (Dovecot reads its files as root, but keep it simple).
        os.chmod(self.dir, 0o755)
        self.serial = 0x1000
        self._info = {}

        self._ca("ca", "/O=mailproxyd test/CN=mailproxyd test CA")
        self._leaf("rsa", "ca", "/O=mailproxyd test/CN=mx.test",
                   san=SERVER_NAMES, ip=True, server=True)
        self._leaf("ec", "ca", "/O=mailproxyd test/CN=mx.test",
                   san=SERVER_NAMES, ip=True, server=True, ec=True)
        self._leaf("other", "ca", "/O=mailproxyd test/CN=" + OTHER_NAME,
                   san=(OTHER_NAME,), server=True)

        self._ca("client_ca", "/O=mailproxyd test/CN=mailproxyd client CA")
        self._leaf("client", "client_ca",
                   "/O=mailproxyd test/OU=users/CN=alice")
        self._leaf("expired", "client_ca",
                   "/O=mailproxyd test/OU=users/CN=alice",
                   start="20200101000000Z", end="20200201000000Z")

        self._subca("client_int_ca", "client_ca",
                    "/O=mailproxyd test/CN=mailproxyd client sub-CA")
        self._leaf("chained", "client_int_ca",
                   "/O=mailproxyd test/OU=chained/CN=alice")
        with open(self.crt("chained"), "a") as f:
            f.write(self.pem("client_int_ca"))

        self._ca("rogue_ca", "/O=somebody else/CN=rogue CA")
        self._leaf("wrongca", "rogue_ca",
                   "/O=mailproxyd test/OU=users/CN=alice")

        self._ca("backend_ca", "/O=mailproxyd test/CN=backend CA")
        self._leaf("backend", "backend_ca", "/O=backend/CN=backend.test",
                   san=BACKEND_NAMES, ip=True, server=True)
        self._leaf("backend_wrong", "rogue_ca", "/O=backend/CN=backend.test",
                   san=BACKEND_NAMES, ip=True, server=True)
        self._leaf("backend_wrongname", "backend_ca",
                   "/O=backend/CN=wrong.test", san=("wrong.test",),
                   server=True)

    # -- paths and facts -------------------------------------------------

    def crt(self, name):
        return os.path.join(self.dir, name + ".crt")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def pem(self, name):
        with open(self.crt(name)) as f:
            return f.read()

    def info(self, name):
        if name not in self._info:
            path = self.crt(name)
            out = run("openssl", "x509", "-in", path, "-noout",
                      "-nameopt", "RFC2253", "-subject", "-issuer",
                      "-serial")
            d = {}
            for line in out.splitlines():
                k, _, v = line.partition("=")
                d[k.strip()] = v.strip()
            # The leaf: the first certificate of the file.
            pem = self.pem(name)
            end = "-----END CERTIFICATE-----\n"
            pem = pem[:pem.index(end) + len(end)]
            der = ssl.PEM_cert_to_DER_cert(pem)
            self._info[name] = {
                "subject": d["subject"],
                "issuer": d["issuer"],
                "serial": d["serial"].upper(),
                "fingerprint": hashlib.sha1(der).hexdigest(),
                "pem": pem,
            }
        return self._info[name]

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- making them -----------------------------------------------------

    def _newkey(self, name, ec):
        if ec:
            run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out", self.key(name))
        else:
            run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                "rsa_keygen_bits:2048", "-out", self.key(name))
        os.chmod(self.key(name), 0o600)

    def _ca(self, name, subj):
        self._newkey(name, False)
        self.serial += 1
        run("openssl", "req", "-x509", "-new", "-key", self.key(name),
            "-out", self.crt(name), "-subj", subj, "-days", "3650",
            "-set_serial", "0x%X" % self.serial, "-sha256",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._ca_files(name)
        os.makedirs(os.path.join(self.dir, "issued"), exist_ok=True)

    def _ca_files(self, name):
        db = os.path.join(self.dir, name + ".index")
        open(db, "w").close()
        with open(os.path.join(self.dir, name + ".cnf"), "w") as f:
            f.write(CA_CONF % {"db": db,
                               "dir": os.path.join(self.dir, "issued"),
                               "serial": os.path.join(self.dir,
                                                      name + ".serial")})

    def _subca(self, name, parent, subj):
        self._leaf(name, parent, subj, ca_ext=True)
        self._ca_files(name)

    def _leaf(self, name, ca, subj, san=(), ip=False, server=False,
              ec=False, start=None, end=None, ca_ext=False):
        self._newkey(name, ec)
        csr = os.path.join(self.dir, name + ".csr")
        run("openssl", "req", "-new", "-key", self.key(name), "-out", csr,
            "-subj", subj)
        ext = ["basicConstraints = CA:FALSE"]
        if ca_ext:
            ext = ["basicConstraints = critical, CA:TRUE",
                   "keyUsage = critical, keyCertSign, cRLSign"]
        elif server:
            ext.append("keyUsage = critical, digitalSignature" +
                       ("" if ec else ", keyEncipherment"))
            ext.append("extendedKeyUsage = serverAuth")
        else:
            ext.append("keyUsage = critical, digitalSignature")
            ext.append("extendedKeyUsage = clientAuth")
        alt = ["DNS:" + n for n in san]
        if ip:
            alt.append("IP:127.0.0.1")
        if alt:
            ext.append("subjectAltName = " + ", ".join(alt))
        extfile = os.path.join(self.dir, name + ".ext")
        with open(extfile, "w") as f:
            f.write("[ leaf ]\n" + "\n".join(ext) + "\n")
        self.serial += 1
        with open(os.path.join(self.dir, ca + ".serial"), "w") as f:
            f.write("%X\n" % self.serial if self.serial > 0xFFF else
                    "%04X\n" % self.serial)
        dates = (["-startdate", start, "-enddate", end] if start else
                 ["-days", "3650"])
        run("openssl", "ca", "-batch", "-notext", "-config",
            os.path.join(self.dir, ca + ".cnf"), "-cert", self.crt(ca),
            "-keyfile", self.key(ca), "-in", csr, "-out", self.crt(name),
            "-extfile", extfile, "-extensions", "leaf", "-preserveDN",
            *dates)
