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
# Configuration golden tests: for every NAME.conf in this directory,
# "mailproxyd -D -c NAME.conf" must print NAME.dump on stdout and exit
# 0, or print NAME.err on stderr and exit non-zero.  In the expected
# files @DIR@ stands for this directory (file names in messages and in
# the dump are absolute).
#
# -t checks the user and the chroot directory against this system,
# which need not have the defaults (_mailproxyd, /var/empty): a file
# that sets neither directive is tested with "user nobody nogroup;"
# and "chroot /;" given by -g, and its dump shows them.
#
# usage: sh tests/config/run.sh path/to/mailproxyd

if [ $# -ne 1 ]; then
	echo "usage: $0 mailproxyd" >&2
	exit 2
fi
daemon=$1
case $daemon in
/*)	;;
*)	daemon=$(pwd)/$daemon ;;
esac
if [ ! -x "$daemon" ]; then
	echo "$0: $daemon is not executable" >&2
	exit 2
fi

dir=$(cd "$(dirname "$0")" && pwd -P) || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpconf.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# The directory as a sed replacement: escape \, & and the delimiter.
sdir=$(printf '%s\n' "$dir" | sed 's/[\\&|]/\\\\&/g')

pass=0
fail=0
for conf in "$dir"/*.conf; do
	[ -f "$conf" ] || continue
	name=$(basename "$conf" .conf)
	gdir=
	grep -Eq '^[[:space:]]*user([[:space:]]|$)' "$conf" ||
	    gdir="user nobody nogroup;"
	grep -Eq '^[[:space:]]*chroot([[:space:]]|$)' "$conf" ||
	    gdir="$gdir chroot /;"
	if [ -n "$gdir" ]; then
		"$daemon" -D -c "$conf" -g "$gdir" >"$tmp/out" 2>"$tmp/err"
	else
		"$daemon" -D -c "$conf" >"$tmp/out" 2>"$tmp/err"
	fi
	rc=$?
	if [ -f "$dir/$name.dump" ]; then
		want=$dir/$name.dump
		got=$tmp/out
		ok=$([ "$rc" -eq 0 ] && echo 1)
	elif [ -f "$dir/$name.err" ]; then
		want=$dir/$name.err
		got=$tmp/err
		ok=$([ "$rc" -ne 0 ] && echo 1)
	else
		echo "FAIL $name: no $name.dump or $name.err"
		fail=$((fail + 1))
		continue
	fi
	sed "s|@DIR@|$sdir|g" "$want" >"$tmp/want"
	if [ -n "$ok" ] && cmp -s "$tmp/want" "$got"; then
		pass=$((pass + 1))
		continue
	fi
	echo "FAIL $name: exit status $rc"
	diff -u "$tmp/want" "$got" | sed 's/^/	/'
	[ "$got" = "$tmp/out" ] && sed 's/^/	stderr: /' "$tmp/err"
	fail=$((fail + 1))
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
