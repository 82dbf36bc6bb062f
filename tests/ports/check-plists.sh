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
# The ports' packing lists against what "make install" really installs,
# so that they cannot drift: each port's install is done into a scratch
# DESTDIR with the variables its Makefile passes, and the file list must
# equal the plist.  The ports' rc.d scripts must be the ones in
# contrib/rc.d.  Prints one line per check and "N passed, M failed".
#
# usage: sh tests/ports/check-plists.sh (from anywhere; needs a build)

top=$(cd "$(dirname "$0")/../.." && pwd -P) || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailproxyd-plist.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok()
{
	echo "ok   $1"
	passed=$((passed + 1))
}

fail()
{
	echo "FAIL $1"
	failed=$((failed + 1))
}

# installed DIR: the files under DIR, relative to it, sorted.
installed()
{
	(cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
}

# compare NAME WANT-FILE GOT-FILE
compare()
{
	if diff -u "$2" "$3" > "$tmp/diff"; then
		ok "$1"
	else
		fail "$1 (- plist, + make install):"
		cat "$tmp/diff"
	fi
}

# FreeBSD: MAKE_ARGS and post-install of contrib/ports/freebsd/Makefile;
# the ports framework compresses the manual pages.
fb=$tmp/freebsd
if make -s -C "$top" install DESTDIR="$fb" PREFIX=/usr/local \
    MANDIR=/usr/local/share/man SYSCONFDIR=/usr/local/etc \
    PIDFILE=/var/run/mailproxyd.pid > "$tmp/out" 2>&1; then
	mv "$fb/usr/local/etc/mailproxyd.conf" \
	    "$fb/usr/local/etc/mailproxyd.conf.sample"
	installed "$fb/usr/local" > "$tmp/fb.got"
	sed -e 's|^@sample ||' -e 's|^\(share/man/.*\)\.gz$|\1|' \
	    "$top/contrib/ports/freebsd/pkg-plist" | LC_ALL=C sort \
	    > "$tmp/fb.want"
	compare "freebsd pkg-plist" "$tmp/fb.want" "$tmp/fb.got"
	if grep -q '^#pid  *\/var\/run\/mailproxyd.pid;' \
	    "$fb/usr/local/etc/mailproxyd.conf.sample"; then
		ok "freebsd sample names /var/run/mailproxyd.pid"
	else
		fail "freebsd sample names /var/run/mailproxyd.pid"
	fi
else
	fail "freebsd make install"
	cat "$tmp/out"
fi
if cmp -s "$top/contrib/rc.d/freebsd/mailproxyd.in" \
    "$top/contrib/ports/freebsd/files/mailproxyd.in"; then
	ok "freebsd files/mailproxyd.in is contrib/rc.d/freebsd/mailproxyd.in"
else
	fail "freebsd files/mailproxyd.in is contrib/rc.d/freebsd/mailproxyd.in"
fi

# OpenBSD: MAKE_FLAGS and FAKE_FLAGS of contrib/ports/openbsd/Makefile.
# @bin and @man name files; a trailing / a directory; @sample, @rcscript,
# @newuser and @newgroup name what pkg_add makes, not make install.
ob=$tmp/openbsd
if make -s -C "$top" install DESTDIR="$ob" PREFIX=/usr/local \
    MANDIR=/usr/local/man \
    SYSCONFDIR=/usr/local/share/examples/mailproxyd \
    PIDFILE=/var/run/mailproxyd.pid > "$tmp/out" 2>&1; then
	installed "$ob/usr/local" > "$tmp/ob.got"
	sed -e '/^@sample /d' -e '/^@rcscript /d' -e '/^@newuser /d' \
	    -e '/^@newgroup /d' -e '/\/$/d' \
	    -e 's|^@bin ||' -e 's|^@man ||' \
	    "$top/contrib/ports/openbsd/pkg/PLIST" | LC_ALL=C sort \
	    > "$tmp/ob.want"
	compare "openbsd PLIST" "$tmp/ob.want" "$tmp/ob.got"
else
	fail "openbsd make install"
	cat "$tmp/out"
fi
if grep -q '^@rcscript ${RCDIR}/mailproxyd$' \
    "$top/contrib/ports/openbsd/pkg/PLIST" &&
    sed 's|^daemon="/usr/local/sbin/|daemon="${TRUEPREFIX}/sbin/|' \
    "$top/contrib/rc.d/openbsd/mailproxyd" |
    cmp -s - "$top/contrib/ports/openbsd/pkg/mailproxyd.rc"; then
	ok "openbsd pkg/mailproxyd.rc is contrib/rc.d/openbsd/mailproxyd"
else
	fail "openbsd pkg/mailproxyd.rc is contrib/rc.d/openbsd/mailproxyd"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
