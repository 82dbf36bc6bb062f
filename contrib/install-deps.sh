#!/bin/sh
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
#
# Install what mailproxyd needs to build and to run its tests, using the
# system's own package manager.  Safe to run again: packages already
# present are left alone, and when nothing is missing the script exits
# without touching the network.  It only installs packages; the
# _mailproxyd user and the /var/empty directory are described in INSTALL.
#
# Supported: Debian and Ubuntu (apt-get), FreeBSD (pkg), OpenBSD (pkg_add).

set -eu

prog=install-deps

# Debian and Ubuntu: the compiler and make, the libraries (libseccomp for
# the children's system call filters), the Check unit
# test framework, bmake and mandoc for the portability and lint targets,
# python3, ip(8) and ps(1) used by the end-to-end tests, and Dovecot's
# IMAP and POP3 servers and curl, the real backend and client of the
# IMAP/POP3 tests and of "make demo", Postfix (smtpd, smtp-sink) and
# swaks, the real backend and a client of the SMTP tests, fail2ban,
# whose fail2ban-regex reads the daemon's log with contrib/fail2ban,
# rsyslog, the syslog daemon the logging tests send to, debhelper and
# lintian, which build and check the Debian package,
# python3-prometheus-client, whose parser reads metrics_listen's page,
# strace, which counts the auth process's system calls per request in
# the auth tests, and clang with its sanitizer and libFuzzer runtimes (libclang-rt-dev,
# only recommended by clang) and llvm's symbolizer for "make fuzz".
DEBIAN_PKGS="build-essential pkg-config libssl-dev libevent-dev libbsd-dev \
libcdb-dev libcrypt-dev libseccomp-dev check bmake mandoc python3 iproute2 \
procps dovecot-imapd dovecot-pop3d curl postfix swaks fail2ban rsyslog debhelper \
lintian python3-prometheus-client strace clang libclang-rt-dev llvm"
# FreeBSD: OpenSSL, make and mandoc are in base.
FREEBSD_PKGS="pkgconf libevent tinycdb check python3"
# OpenBSD: LibreSSL, libevent, make and mandoc are in base.
OPENBSD_PKGS="tinycdb check python%3"

msg()
{
	echo "$prog: $*"
}

die()
{
	echo "$prog: $*" >&2
	exit 1
}

# Installing needs root; checking does not.  Use sudo when it is there.
as_root()
{
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "must be run as root (or with sudo installed) to install:" \
		    "$missing"
	fi
}

debian_has()
{
	case "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" in
	*" ok installed")
		return 0 ;;
	esac
	return 1
}

freebsd_has()
{
	pkg info -e "$1" >/dev/null 2>&1
}

# "python%3" is a branch of a package: look for any 3.x.
openbsd_has()
{
	case "$1" in
	*%*)
		pkg_info -q -e "${1%%\%*}->=${1#*%},<$((${1#*%} + 1))" \
		    >/dev/null 2>&1 ;;
	*)
		pkg_info -q -e "$1-*" >/dev/null 2>&1 ;;
	esac
}

# missing_of check-function package...: the packages not yet installed.
missing_of()
{
	has=$1
	shift
	missing=
	for p in "$@"; do
		"$has" "$p" || missing="${missing:+$missing }$p"
	done
}

os=$(uname -s)
case "$os" in
Linux)
	command -v apt-get >/dev/null 2>&1 ||
	    die "only Debian-based Linux (apt-get) is supported; install" \
	    "by hand: $DEBIAN_PKGS"
	command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found"
	# shellcheck disable=SC2086
	missing_of debian_has $DEBIAN_PKGS
	if [ -z "$missing" ]; then
		msg "all build and test dependencies are installed"
		exit 0
	fi
	msg "installing: $missing"
	# Postfix asks how to configure the system's mail; the tests bring
	# their own configuration.
	case " $missing " in
	*" postfix "*)
		echo "postfix postfix/main_mailer_type select No configuration" |
		    as_root debconf-set-selections ||
		    die "debconf-set-selections failed"
		;;
	esac
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update ||
	    die "apt-get update failed"
	# shellcheck disable=SC2086
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    --no-install-recommends $missing || die "apt-get install failed"
	# shellcheck disable=SC2086
	missing_of debian_has $missing
	;;
FreeBSD)
	# shellcheck disable=SC2086
	missing_of freebsd_has $FREEBSD_PKGS
	if [ -z "$missing" ]; then
		msg "all build and test dependencies are installed"
		exit 0
	fi
	msg "installing: $missing"
	# shellcheck disable=SC2086
	as_root env ASSUME_ALWAYS_YES=yes pkg install -y $missing ||
	    die "pkg install failed"
	# shellcheck disable=SC2086
	missing_of freebsd_has $missing
	;;
OpenBSD)
	# shellcheck disable=SC2086
	missing_of openbsd_has $OPENBSD_PKGS
	if [ -z "$missing" ]; then
		msg "all build and test dependencies are installed"
		exit 0
	fi
	msg "installing: $missing"
	# shellcheck disable=SC2086
	as_root pkg_add -I $missing || die "pkg_add failed"
	# shellcheck disable=SC2086
	missing_of openbsd_has $missing
	;;
*)
	die "unsupported system \"$os\"; see INSTALL for the dependencies"
	;;
esac

[ -z "$missing" ] || die "still missing after installation: $missing"
msg "done"
