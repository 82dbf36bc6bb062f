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
# make demo: real IMAP, POP3 and SMTP sessions through mailproxyd.
#
# Installs what is missing (contrib/install-deps.sh: build dependencies,
# Dovecot, Postfix, curl and swaks), builds, then in a fresh work
# directory under ${TMPDIR:-/tmp}:
#
#   - a users file for two demo users, with password hashes made by
#     "mailproxyctl hash", compiled by "mailproxyctl makemap" into the
#     cdb table that mailproxyd's auth_cdb directive reads;
#   - a Dovecot of its own (own configuration, ports, base and state
#     directories, log) that knows the same users and passwords and has
#     a few messages in their maildirs;
#   - a Postfix of its own (own main.cf and master.cf, queue, log) whose
#     smtpd takes XCLIENT from the proxy and delivers mail for the demo
#     users into the maildirs Dovecot serves;
#   - mailproxyd in front of both, on three loopback ports, with
#     auth_cdb;
#
# and runs curl and swaks through the proxy: IMAP (list, search, fetch),
# POP3 (list, retrieve), SMTP (a message sent as alice, then fetched
# back over IMAP) and wrong passwords refused.  It then prints how to
# point a mail client at the proxy and waits for Ctrl-C (or SIGTERM or
# SIGHUP): everything it started is stopped by PID, the work directory
# removed, and the script exits 0.  Its output may be piped ("make demo
# | tee log"): a reader that went away with the Ctrl-C does not stop the
# cleanup.
#
# Environment:
#   MAILPROXYD_DEMO_EXIT=1   exit right after the scripted sessions,
#                            status 0 only if every one succeeded
#                            (for automated runs)
#   MAILPROXYD_DEMO_KEEP=1   keep the work directory on exit (it is kept
#                            anyway when a step failed)
#   TMPDIR                   where the work directory is made
#
# Needs root: mailproxyd's parent and the masters of Dovecot and Postfix
# start as root and drop privileges for everything that touches the
# network.

# (SC2317: cleanup, wait_gone and on_signal are called from traps.)
# shellcheck disable=SC2317

set -u

# A reader of our output that has gone (the "cat" of "make demo | cat"
# gets the terminal's SIGINT too) must not kill the script before it has
# stopped what it started: writes then fail with EPIPE instead.
trap '' PIPE

prog=demo
top=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
cd "$top" || exit 1

DAEMON=$top/bin/mailproxyd/mailproxyd
CTL=$top/bin/mailproxyctl/mailproxyctl

# The demo users and their passwords (demo values: do not reuse them).
ALICE_PW=wonderland
BOB_PW=builder

# say text, msg text: a line on standard output, or on standard error
# when standard output has gone; never fatal.
say()
{
	printf '%s\n' "$*" 2>/dev/null ||
	    printf '%s\n' "$*" >&2 2>/dev/null
}

msg()
{
	say "$prog: $*"
}

failed=0

die()
{
	echo "$prog: $*" >&2
	failed=1
	exit 1
}

step()
{
	say ""
	say "=== $*"
}

[ "$(id -u)" -eq 0 ] ||
    die "must run as root (mailproxyd and Dovecot start as root and" \
    "drop privileges): sudo make demo"

# --- dependencies and build ---------------------------------------------

step "Dependencies and build"
sh contrib/install-deps.sh || die "installing the dependencies failed"
DOVECOT=$(command -v dovecot 2>/dev/null ||
    { [ -x /usr/sbin/dovecot ] && echo /usr/sbin/dovecot; }) ||
    die "dovecot not found; install Dovecot's IMAP and POP3 servers"
POSTFIX=$(command -v postfix 2>/dev/null ||
    { [ -x /usr/sbin/postfix ] && echo /usr/sbin/postfix; }) ||
    die "postfix not found; install Postfix"
command -v curl >/dev/null 2>&1 || die "curl not found"
command -v swaks >/dev/null 2>&1 || die "swaks not found"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
make || die "the build failed"
if [ ! -x "$DAEMON" ] || [ ! -x "$CTL" ]; then
	die "the build did not produce the programs"
fi

# --- work directory, ports ------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailproxyd-demo.XXXXXX") ||
    die "cannot create a work directory"
chmod 0755 "$WORK"

MPD_PID=
DOVECOT_PID=
POSTFIX_PID=
steps=0

# stop name pid: SIGTERM, then wait_gone.
stop()
{
	if [ -n "$2" ] && kill -0 "$2" 2>/dev/null; then
		msg "stopping $1 (pid $2)"
		kill -TERM "$2" 2>/dev/null
		wait_gone "$2"
	fi
}

# Runs once, on every way out (exit, INT, TERM, HUP); further signals
# are ignored meanwhile so that a second Ctrl-C does not leave half of
# it undone.
cleanup()
{
	trap '' INT TERM HUP
	trap - EXIT
	say ""
	stop mailproxyd "$MPD_PID"
	# postfix start-fg waits for its master, which stops its own
	# children; the master's pid is in the pid file it wrote.
	if [ -n "$POSTFIX_PID" ]; then
		stop "Postfix's master" "$(postfix_master_pid)"
		stop "postfix start-fg" "$POSTFIX_PID"
	fi
	stop Dovecot "$DOVECOT_PID"
	if [ "$failed" -eq 0 ] && [ "${MAILPROXYD_DEMO_KEEP:-0}" != 1 ]; then
		rm -rf "$WORK"
		msg "removed $WORK"
	else
		msg "work directory kept: $WORK"
	fi
}

# The pid of Postfix's master, from the file it writes in its queue.
postfix_master_pid()
{
	tr -d ' ' <"$WORK/postfix/queue/pid/master.pid" 2>/dev/null
}

# wait_gone pid: up to 10 seconds for it to exit, then SIGKILL.
wait_gone()
{
	i=0
	while kill -0 "$1" 2>/dev/null && [ "$i" -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
}

# A stop the user asked for (Ctrl-C, kill, a closed terminal) is a
# normal end of the demo: status 0, unless a scripted session failed.
on_signal()
{
	msg "$1: stopping"
	cleanup
	[ "$failed" -eq 0 ] && exit 0
	exit 1
}

trap cleanup EXIT
trap 'on_signal SIGINT' INT
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGHUP' HUP

msg "work directory: $WORK"

# Six free loopback ports, held together so that they differ.
# shellcheck disable=SC2046
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
')
[ $# -eq 6 ] || die "cannot find free ports"
DC_IMAP=$1 DC_POP3=$2 PF_SMTP=$3 IMAP_PORT=$4 POP3_PORT=$5 SMTP_PORT=$6

# wait_port port prefix seconds: until a connection to the port succeeds
# and, if prefix is not empty, the server greets with it.
wait_port()
{
	python3 - "$@" <<'EOF'
import socket, sys, time
port, prefix, limit = int(sys.argv[1]), sys.argv[2].encode(), float(sys.argv[3])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            if not prefix or s.recv(256).startswith(prefix):
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
}

# --- users: the cdb table for mailproxyd ----------------------------------

step "Users: $WORK/users -> users.cdb (mailproxyctl hash, makemap)"
ALICE_HASH=$(printf '%s\n' "$ALICE_PW" | "$CTL" hash) ||
    die "mailproxyctl hash failed"
BOB_HASH=$(printf '%s\n' "$BOB_PW" | "$CTL" hash) ||
    die "mailproxyctl hash failed"
cat >"$WORK/users" <<EOF
# mailproxyd demo users: user  password-hash  backends
alice  $ALICE_HASH  imap=127.0.0.1:$DC_IMAP pop3=127.0.0.1:$DC_POP3 smtp=127.0.0.1:$PF_SMTP
bob    $BOB_HASH  imap=127.0.0.1:$DC_IMAP pop3=127.0.0.1:$DC_POP3 smtp=127.0.0.1:$PF_SMTP
EOF
chmod 0600 "$WORK/users"
"$CTL" makemap "$WORK/users" || die "mailproxyctl makemap failed"
sed 's/^/    /' "$WORK/users"

# --- Dovecot --------------------------------------------------------------

step "Dovecot on 127.0.0.1:$DC_IMAP (IMAP) and 127.0.0.1:$DC_POP3 (POP3)"
MAIL_USER=nobody
MAIL_GROUP=$(id -gn nobody 2>/dev/null) || die "no user nobody"
MAIL_UID=$(id -u "$MAIL_USER")
MAIL_GID=$(getent group "$MAIL_GROUP" | cut -d: -f3)
mkdir -p "$WORK/dovecot/run" "$WORK/dovecot/state" "$WORK/mail"
chmod 0755 "$WORK/dovecot" "$WORK/dovecot/run" "$WORK/dovecot/state" \
    "$WORK/mail"

# The same users and the same hashes: Dovecot checks them with crypt(3).
cat >"$WORK/dovecot/passwd" <<EOF
alice:{CRYPT}$ALICE_HASH:$MAIL_UID:$MAIL_GID::$WORK/mail/alice::
bob:{CRYPT}$BOB_HASH:$MAIL_UID:$MAIL_GID::$WORK/mail/bob::
EOF
chmod 0644 "$WORK/dovecot/passwd"

# deliver user n subject body: write a message into the user's maildir.
deliver()
{
	md=$WORK/mail/$1/Maildir
	mkdir -p "$md/cur" "$md/new" "$md/tmp"
	f="$((1700000000 + $2)).M$2P$$.mailproxyd-demo:2,"
	{
		printf 'From: mailproxyd demo <demo@mailproxyd.test>\r\n'
		printf 'To: %s <%s@mailproxyd.test>\r\n' "$1" "$1"
		printf 'Subject: %s\r\n' "$3"
		printf 'Date: Mon, 23 Nov 2026 12:0%d:00 +0000\r\n' "$2"
		printf 'Message-ID: <demo-%s-%d@mailproxyd.test>\r\n' "$1" "$2"
		printf '\r\n'
		printf '%s\r\n' "$4"
		printf '\r\n-- \r\nmailproxyd demo\r\n'
	} >"$md/tmp/$f"
	mv "$md/tmp/$f" "$md/cur/$f"
}
deliver alice 1 "Welcome to the mailproxyd demo" \
    "Hello alice, this message came from Dovecot through mailproxyd."
deliver alice 2 "A second message" \
    "mailproxyd only saw your login; everything after it was relayed."
deliver bob 3 "Hello bob" "Hello bob, your mailbox is behind mailproxyd too."
chown -R "$MAIL_UID:$MAIL_GID" "$WORK/mail/alice" "$WORK/mail/bob"

cat >"$WORK/dovecot/dovecot.conf" <<EOF
# Dovecot for the mailproxyd demo: nothing of /etc/dovecot is used.
protocols = imap pop3
listen = 127.0.0.1
instance_name = mailproxyd-demo-$(basename "$WORK")
base_dir = $WORK/dovecot/run
state_dir = $WORK/dovecot/state
log_path = $WORK/dovecot/dovecot.log
info_log_path = $WORK/dovecot/dovecot.log
auth_verbose = yes
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_uid = $MAIL_UID
mail_gid = $MAIL_GID
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = $WORK/dovecot/passwd
}
userdb {
  driver = passwd-file
  args = $WORK/dovecot/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DC_IMAP
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DC_POP3
  }
  inet_listener pop3s {
    port = 0
  }
}
protocol imap {
  mail_max_userip_connections = 100
}
protocol pop3 {
  mail_max_userip_connections = 100
}
EOF

"$DOVECOT" -F -c "$WORK/dovecot/dovecot.conf" \
    >"$WORK/dovecot/stdout.log" 2>&1 </dev/null &
DOVECOT_PID=$!
if ! wait_port "$DC_IMAP" "* OK" 20 || ! wait_port "$DC_POP3" "+OK" 20
then
	cat "$WORK/dovecot/stdout.log" "$WORK/dovecot/dovecot.log" 2>/dev/null
	die "Dovecot did not start (logs above)"
fi
msg "Dovecot is up (pid $DOVECOT_PID), log $WORK/dovecot/dovecot.log"

# Dovecot alone: a failure below is then mailproxyd's, not Dovecot's.
if curl -s --max-time 10 "imap://127.0.0.1:$DC_IMAP/INBOX?ALL" \
    -u "alice:$ALICE_PW" | grep -q '^\* SEARCH 1 2'; then
	msg "Dovecot serves alice directly"
else
	die "Dovecot does not serve alice directly; see" \
	    "$WORK/dovecot/dovecot.log"
fi

# --- Postfix --------------------------------------------------------------

step "Postfix on 127.0.0.1:$PF_SMTP (SMTP), delivering into the maildirs"
PF=$WORK/postfix
mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
chmod 0755 "$PF" "$PF/etc" "$PF/queue"
chown postfix "$PF/data" || die "no user postfix"
chmod 0700 "$PF/data"

# A Postfix of its own: nothing of /etc/postfix's configuration is used.
# smtpd takes XCLIENT from mailproxyd (the client's address, HELO and
# login name, which its Received header shows) and hands mail for mailproxyd.test to virtual(8), which writes
# it into the maildirs Dovecot serves, as the same user.
cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $PF/etc
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
myhostname = smtp.mailproxyd.test
mydomain = mailproxyd.test
myorigin = mailproxyd.test
mydestination =
local_recipient_maps =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_authorized_xclient_hosts = 127.0.0.1
smtpd_sasl_authenticated_header = yes
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP Postfix (mailproxyd demo)
smtpd_tls_security_level = none
smtputf8_enable = no
virtual_mailbox_domains = mailproxyd.test
virtual_mailbox_base = $WORK/mail
virtual_mailbox_maps = texthash:$PF/etc/vmailbox
virtual_minimum_uid = 1
virtual_uid_maps = static:$MAIL_UID
virtual_gid_maps = static:$MAIL_GID
relayhost =
default_transport = error:the mailproxyd demo sends no mail out
biff = no
EOF
cat >"$PF/etc/master.cf" <<EOF
127.0.0.1:$PF_SMTP inet n - n - 10 smtpd
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
EOF
cat >"$PF/etc/vmailbox" <<EOF
alice@mailproxyd.test  alice/Maildir/
bob@mailproxyd.test    bob/Maildir/
EOF

# "start-fg" stays in the foreground, so that it is stopped by its pid
# (and its master's); it creates the queue's directories first.
unset MAIL_CONFIG
"$POSTFIX" -c "$PF/etc" start-fg \
    >"$PF/master.out" 2>&1 </dev/null &
POSTFIX_PID=$!
if ! wait_port "$PF_SMTP" "220" 30; then
	cat "$PF/master.out" "$PF/maillog" 2>/dev/null
	die "Postfix did not start (logs above)"
fi
msg "Postfix is up (pid $POSTFIX_PID, master $(postfix_master_pid))," \
    "log $PF/maillog"

# --- mailproxyd -------------------------------------------------------------

step "mailproxyd on 127.0.0.1: $IMAP_PORT (IMAP), $POP3_PORT (POP3)," \
    "$SMTP_PORT (SMTP submission)"
if getent passwd _mailproxyd >/dev/null 2>&1 &&
    getent group _mailproxyd >/dev/null 2>&1; then
	MPD_USER="_mailproxyd _mailproxyd"
else
	MPD_USER="nobody $(id -gn nobody)"
fi
mkdir "$WORK/empty"
chmod 0755 "$WORK/empty"
cat >"$WORK/mailproxyd.conf" <<EOF
# mailproxyd for the demo: users from a cdb table, mail on Dovecot,
# submission to Postfix.
user $MPD_USER;
worker_processes 1;
error_log $WORK/mailproxyd.log info;
pid $WORK/mailproxyd.pid;
chroot $WORK/empty;
daemon off;

mail {
    server_name localhost;
    auth_cdb $WORK/users.cdb;

    imap_capabilities IMAP4rev1 LITERAL+ SASL-IR IDLE;
    imap_auth plain login;

    smtp_capabilities "SIZE 10240000" 8BITMIME PIPELINING;
    smtp_auth plain login;

    server {
        listen 127.0.0.1:$IMAP_PORT;
        protocol imap;
    }
    server {
        listen 127.0.0.1:$POP3_PORT;
        protocol pop3;
    }
    server {
        listen 127.0.0.1:$SMTP_PORT;
        protocol smtp;
        # Postfix learns the client's address and login name with
        # XCLIENT (its smtpd_authorized_xclient_hosts names us).
        xclient on;
    }
}
EOF
sed 's/^/    /' "$WORK/mailproxyd.conf"
"$DAEMON" -t -c "$WORK/mailproxyd.conf" ||
    die "mailproxyd -t rejected the demo configuration"
"$DAEMON" -c "$WORK/mailproxyd.conf" \
    >"$WORK/mailproxyd.stdout.log" 2>&1 </dev/null &
MPD_PID=$!
if ! wait_port "$IMAP_PORT" "" 20 || ! wait_port "$POP3_PORT" "" 20 ||
    ! wait_port "$SMTP_PORT" "" 20; then
	cat "$WORK/mailproxyd.stdout.log" "$WORK/mailproxyd.log" 2>/dev/null
	die "mailproxyd did not start (logs above)"
fi
msg "mailproxyd is up (pid $MPD_PID), log $WORK/mailproxyd.log"

# --- client sessions through the proxy --------------------------------------

# client "what" status expected-text program arguments...: run curl or
# swaks, show what it printed, check its exit status and that it
# printed the text.
client()
{
	what=$1
	want_rc=$2
	want=$3
	shift 3
	steps=$((steps + 1))
	out=$WORK/client-$steps.log
	step "$what"
	line='$'
	for a in "$@"; do
		case $a in
		*[!A-Za-z0-9_./:=@-]*)
			line="$line '$a'" ;;
		*)
			line="$line $a" ;;
		esac
	done
	say "$line"
	prog_=$1
	shift
	case $prog_ in
	curl)
		curl -sS --connect-timeout 5 --max-time 20 "$@" ;;
	*)
		"$prog_" "$@" ;;
	esac >"$out" 2>&1 </dev/null
	rc=$?
	sed 's/^/    /' "$out"
	if [ $rc -eq "$want_rc" ] && grep -q -- "$want" "$out"; then
		say "--> ok"
	else
		say "--> FAILED ($prog_ exit $rc, expected $want_rc and" \
		    "\"$want\" in the output)"
		failed=$((failed + 1))
	fi
}

client "IMAP through the proxy: log in as alice, look at the INBOX" \
    0 '^\* LIST .*INBOX' \
    curl -v "imap://127.0.0.1:$IMAP_PORT/INBOX" -u "alice:$ALICE_PW"
client "IMAP: list the messages in the INBOX (SEARCH ALL)" \
    0 '^\* SEARCH 1 2' \
    curl "imap://127.0.0.1:$IMAP_PORT/INBOX?ALL" -u "alice:$ALICE_PW"
client "IMAP: fetch message UID 1" \
    0 '^Subject: Welcome to the mailproxyd demo' \
    curl "imap://127.0.0.1:$IMAP_PORT/INBOX;UID=1" -u "alice:$ALICE_PW"
client "POP3 through the proxy: log in as alice, list the messages" \
    0 '^2 [0-9]' \
    curl -v "pop3://127.0.0.1:$POP3_PORT/" -u "alice:$ALICE_PW"
client "POP3: retrieve message 1" \
    0 '^Subject: Welcome to the mailproxyd demo' \
    curl "pop3://127.0.0.1:$POP3_PORT/1" -u "alice:$ALICE_PW"
# curl exits 67 when the server refuses the login.
client "IMAP: a wrong password is refused by the proxy" \
    67 'NO Authentication failed' \
    curl -v "imap://127.0.0.1:$IMAP_PORT/INBOX" -u "alice:not-the-password"

# The reply to the end of DATA is Postfix's, relayed by the proxy.
SUBJECT="Sent through mailproxyd"
client "SMTP submission through the proxy: alice logs in and sends bob a message" \
    0 '^<-  250 2.0.0 Ok: queued as' \
    swaks --server "127.0.0.1:$SMTP_PORT" --timeout 20 \
    --auth PLAIN --auth-user alice --auth-password "$ALICE_PW" \
    --from alice@mailproxyd.test --to bob@mailproxyd.test \
    --header "Subject: $SUBJECT" \
    --body "Hello bob, alice logged in to mailproxyd, Postfix delivered this."
# swaks exits 28 when the server refuses the login.
client "SMTP: a wrong password is refused by the proxy" \
    28 '^<\*\* 535 5.7.0 Authentication failed' \
    swaks --server "127.0.0.1:$SMTP_PORT" --timeout 20 \
    --auth PLAIN --auth-user alice --auth-password not-the-password \
    --from alice@mailproxyd.test --to bob@mailproxyd.test

# Postfix delivers into bob's maildir in the background: wait for it,
# then read the message back through the proxy.
i=0
while [ "$i" -lt 300 ] &&
    [ -z "$(ls "$WORK/mail/bob/Maildir/new" 2>/dev/null)" ]; do
	sleep 0.1
	i=$((i + 1))
done
client "IMAP: bob finds alice's message in his INBOX, delivered by Postfix" \
    0 "(Authenticated sender: alice)" \
    curl "imap://127.0.0.1:$IMAP_PORT/INBOX;UID=2" -u "bob:$BOB_PW"

say ""
if [ "$failed" -eq 0 ]; then
	msg "all $steps client sessions through mailproxyd succeeded"
else
	msg "$failed of $steps client sessions FAILED; mailproxyd's log:"
	tail -n 30 "$WORK/mailproxyd.log" 2>/dev/null | sed 's/^/    /'
fi

if [ "${MAILPROXYD_DEMO_EXIT:-0}" = 1 ]; then
	[ "$failed" -eq 0 ]
	exit
fi

{ cat <<EOF

------------------------------------------------------------------------
 mailproxyd is running in front of Dovecot and Postfix.  Point a mail
 client at it:

   IMAP server   127.0.0.1  port $IMAP_PORT   no TLS, normal password
   POP3 server   127.0.0.1  port $POP3_PORT   no TLS, normal password
   SMTP server   127.0.0.1  port $SMTP_PORT   no TLS, normal password
   users         alice / $ALICE_PW     bob / $BOB_PW
   addresses     alice@mailproxyd.test  bob@mailproxyd.test

 for example:
   curl 'imap://127.0.0.1:$IMAP_PORT/INBOX;UID=1' -u bob:$BOB_PW
   curl pop3://127.0.0.1:$POP3_PORT/1 -u bob:$BOB_PW
   swaks --server 127.0.0.1:$SMTP_PORT --auth-user bob --auth-password $BOB_PW \\
       --from bob@mailproxyd.test --to alice@mailproxyd.test
   python3 -c 'import imaplib; m = imaplib.IMAP4("127.0.0.1", $IMAP_PORT); print(m.login("alice", "$ALICE_PW"))'

 logs:     $WORK/mailproxyd.log
           $WORK/dovecot/dovecot.log
           $WORK/postfix/maillog
 configs:  $WORK/mailproxyd.conf
           $WORK/dovecot/dovecot.conf
           $WORK/postfix/etc/main.cf, master.cf
           $WORK/users  (mailproxyctl makemap -> users.cdb)
 pids:     mailproxyd $MPD_PID, Dovecot $DOVECOT_PID, Postfix $POSTFIX_PID

 Press Ctrl-C to stop mailproxyd, Dovecot and Postfix.
------------------------------------------------------------------------
EOF
} 2>/dev/null

while kill -0 "$MPD_PID" 2>/dev/null && kill -0 "$DOVECOT_PID" 2>/dev/null &&
    kill -0 "$POSTFIX_PID" 2>/dev/null
do
	sleep 1
done
kill -0 "$MPD_PID" 2>/dev/null || msg "mailproxyd exited"
kill -0 "$DOVECOT_PID" 2>/dev/null || msg "Dovecot exited"
kill -0 "$POSTFIX_PID" 2>/dev/null || msg "Postfix exited"
failed=1
exit 1
