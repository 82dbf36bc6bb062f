#!/bin/sh
echo "make demo: the end-to-end demonstration (real Dovecot behind"
echo "mailproxyd with the embedded cdb auth) arrives with the IMAP/POP3"
echo "proxying issue; this build only runs the daemon foundation."
