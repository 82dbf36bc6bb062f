#!/bin/sh
#
# make demo: a real IMAP/POP3 session through mailproxyd.
#
# Installs what is missing (contrib/install-deps.sh: build dependencies,
# Dovecot and curl), builds, then in a fresh work directory under
# ${TMPDIR:-/tmp}:
#
#   - a users file for two demo users, with password hashes made by
#     "mailproxyctl hash", compiled by "mailproxyctl makemap" into the
#     cdb table that mailproxyd's auth_cdb directive reads;
#   - a Dovecot of its own (own configuration, ports, base and state
#     directories, log) that knows the same users and passwords and has
#     a few messages in their maildirs;
#   - mailproxyd in front of it, on two loopback ports, with auth_cdb;
#
# and runs curl through the proxy: IMAP (list, search, fetch) and POP3
# (list, retrieve).  It then prints how to point a mail client at the
# proxy and waits for Ctrl-C; everything it started is stopped by PID on
# exit.
#
# Environment:
#   MAILPROXYD_DEMO_EXIT=1   exit right after the scripted sessions,
#                            status 0 only if every one succeeded
#                            (for automated runs)
#   MAILPROXYD_DEMO_KEEP=1   keep the work directory on exit (it is kept
#                            anyway when a step failed)
#   TMPDIR                   where the work directory is made
#
# Needs root: mailproxyd's parent and Dovecot's master start as root and
# drop privileges for everything that touches the network.

# (SC2317: cleanup, wait_gone and on_signal are called from traps.)
# shellcheck disable=SC2317

set -u

prog=demo
top=$(cd "$(dirname "$0")/../.." && pwd) || exit 1
cd "$top" || exit 1

DAEMON=$top/bin/mailproxyd/mailproxyd
CTL=$top/bin/mailproxyctl/mailproxyctl

# The demo users and their passwords (demo values: do not reuse them).
ALICE_PW=wonderland
BOB_PW=builder

msg()
{
	echo "$prog: $*"
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
	echo
	echo "=== $*"
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
command -v curl >/dev/null 2>&1 || die "curl not found"
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
steps=0

cleanup()
{
	trap - EXIT INT TERM HUP
	echo
	if [ -n "$MPD_PID" ] && kill -0 "$MPD_PID" 2>/dev/null; then
		msg "stopping mailproxyd (pid $MPD_PID)"
		kill -TERM "$MPD_PID" 2>/dev/null
		wait_gone "$MPD_PID"
	fi
	if [ -n "$DOVECOT_PID" ] && kill -0 "$DOVECOT_PID" 2>/dev/null; then
		msg "stopping Dovecot (pid $DOVECOT_PID)"
		kill -TERM "$DOVECOT_PID" 2>/dev/null
		wait_gone "$DOVECOT_PID"
	fi
	if [ "$failed" -eq 0 ] && [ "${MAILPROXYD_DEMO_KEEP:-0}" != 1 ]; then
		rm -rf "$WORK"
	else
		msg "work directory kept: $WORK"
	fi
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

on_signal()
{
	cleanup
	exit 130
}

trap cleanup EXIT
trap on_signal INT TERM HUP

# Four free loopback ports, held together so that they differ.
# shellcheck disable=SC2046
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
')
[ $# -eq 4 ] || die "cannot find free ports"
DC_IMAP=$1 DC_POP3=$2 IMAP_PORT=$3 POP3_PORT=$4

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
alice  $ALICE_HASH  imap=127.0.0.1:$DC_IMAP pop3=127.0.0.1:$DC_POP3
bob    $BOB_HASH  imap=127.0.0.1:$DC_IMAP pop3=127.0.0.1:$DC_POP3
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

# --- mailproxyd -------------------------------------------------------------

step "mailproxyd on 127.0.0.1:$IMAP_PORT (IMAP) and 127.0.0.1:$POP3_PORT (POP3)"
if getent passwd _mailproxyd >/dev/null 2>&1 &&
    getent group _mailproxyd >/dev/null 2>&1; then
	MPD_USER="_mailproxyd _mailproxyd"
else
	MPD_USER="nobody $(id -gn nobody)"
fi
mkdir "$WORK/empty"
chmod 0755 "$WORK/empty"
cat >"$WORK/mailproxyd.conf" <<EOF
# mailproxyd for the demo: users from a cdb table, mail on Dovecot.
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

    server {
        listen 127.0.0.1:$IMAP_PORT;
        protocol imap;
    }
    server {
        listen 127.0.0.1:$POP3_PORT;
        protocol pop3;
    }
}
EOF
sed 's/^/    /' "$WORK/mailproxyd.conf"
"$DAEMON" -t -c "$WORK/mailproxyd.conf" ||
    die "mailproxyd -t rejected the demo configuration"
"$DAEMON" -c "$WORK/mailproxyd.conf" \
    >"$WORK/mailproxyd.stdout.log" 2>&1 </dev/null &
MPD_PID=$!
if ! wait_port "$IMAP_PORT" "" 20 || ! wait_port "$POP3_PORT" "" 20; then
	cat "$WORK/mailproxyd.stdout.log" "$WORK/mailproxyd.log" 2>/dev/null
	die "mailproxyd did not start (logs above)"
fi
msg "mailproxyd is up (pid $MPD_PID), log $WORK/mailproxyd.log"

# --- client sessions through the proxy --------------------------------------

# client "what" status expected-text curl-arguments...: run curl, show
# what it printed, check its exit status and that it printed the text.
client()
{
	what=$1
	want_rc=$2
	want=$3
	shift 3
	steps=$((steps + 1))
	out=$WORK/client-$steps.log
	step "$what"
	line='$ curl'
	for a in "$@"; do
		case $a in
		*[!A-Za-z0-9_./:=@-]*)
			line="$line '$a'" ;;
		*)
			line="$line $a" ;;
		esac
	done
	echo "$line"
	curl -sS --connect-timeout 5 --max-time 20 "$@" >"$out" 2>&1
	rc=$?
	sed 's/^/    /' "$out"
	if [ $rc -eq "$want_rc" ] && grep -q -- "$want" "$out"; then
		echo "--> ok"
	else
		echo "--> FAILED (curl exit $rc, expected $want_rc and" \
		    "\"$want\" in the output)"
		failed=$((failed + 1))
	fi
}

client "IMAP through the proxy: log in as alice, look at the INBOX" \
    0 '^\* LIST .*INBOX' \
    -v "imap://127.0.0.1:$IMAP_PORT/INBOX" -u "alice:$ALICE_PW"
client "IMAP: list the messages in the INBOX (SEARCH ALL)" \
    0 '^\* SEARCH 1 2' \
    "imap://127.0.0.1:$IMAP_PORT/INBOX?ALL" -u "alice:$ALICE_PW"
client "IMAP: fetch message UID 1" \
    0 '^Subject: Welcome to the mailproxyd demo' \
    "imap://127.0.0.1:$IMAP_PORT/INBOX;UID=1" -u "alice:$ALICE_PW"
client "POP3 through the proxy: log in as alice, list the messages" \
    0 '^2 [0-9]' \
    -v "pop3://127.0.0.1:$POP3_PORT/" -u "alice:$ALICE_PW"
client "POP3: retrieve message 1" \
    0 '^Subject: Welcome to the mailproxyd demo' \
    "pop3://127.0.0.1:$POP3_PORT/1" -u "alice:$ALICE_PW"
# curl exits 67 when the server refuses the login.
client "IMAP: a wrong password is refused by the proxy" \
    67 'NO Authentication failed' \
    -v "imap://127.0.0.1:$IMAP_PORT/INBOX" -u "alice:not-the-password"

echo
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

cat <<EOF

------------------------------------------------------------------------
 mailproxyd is running in front of Dovecot.  Point a mail client at it:

   IMAP server   127.0.0.1  port $IMAP_PORT   no TLS, normal password
   POP3 server   127.0.0.1  port $POP3_PORT   no TLS, normal password
   users         alice / $ALICE_PW     bob / $BOB_PW

 for example:
   curl 'imap://127.0.0.1:$IMAP_PORT/INBOX;UID=1' -u bob:$BOB_PW
   curl pop3://127.0.0.1:$POP3_PORT/1 -u bob:$BOB_PW
   python3 -c 'import imaplib; m = imaplib.IMAP4("127.0.0.1", $IMAP_PORT); print(m.login("alice", "$ALICE_PW"))'

 logs:     $WORK/mailproxyd.log
           $WORK/dovecot/dovecot.log
 configs:  $WORK/mailproxyd.conf
           $WORK/dovecot/dovecot.conf
           $WORK/users  (mailproxyctl makemap -> users.cdb)

 Press Ctrl-C to stop mailproxyd and Dovecot.
------------------------------------------------------------------------
EOF

while kill -0 "$MPD_PID" 2>/dev/null && kill -0 "$DOVECOT_PID" 2>/dev/null
do
	sleep 1
done
kill -0 "$MPD_PID" 2>/dev/null || msg "mailproxyd exited"
kill -0 "$DOVECOT_PID" 2>/dev/null || msg "Dovecot exited"
failed=1
exit 1
