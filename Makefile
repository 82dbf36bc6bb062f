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

# mailproxyd: works with GNU make and BSD make (bmake).  No conditionals,
# no pattern rules, no GNU functions: only suffix rules and "!=".

# The release, in one place: VERSION, compiled in and in the tarball's name.
VERSION!=	cat VERSION
DISTNAME=	mailproxyd-${VERSION}

PREFIX?=	/usr/local
SBINDIR?=	${PREFIX}/sbin
MANDIR?=	${PREFIX}/share/man
SYSCONFDIR?=	/etc
PIDFILE?=	/run/mailproxyd.pid
CHROOTDIR?=	/var/empty
# The example configuration's error_log.  Under the systemd unit (Linux)
# the daemon runs as its own user, who may write only in the unit's
# LogsDirectory, /var/log/mailproxyd; the BSD rc.d scripts keep a root
# parent and the traditional /var/log/mailproxyd.log.
LOGFILE_DEFAULT!=	[ "$$(uname -s)" = Linux ] && \
			    echo /var/log/mailproxyd/mailproxyd.log || \
			    echo /var/log/mailproxyd.log
LOGFILE?=	${LOGFILE_DEFAULT}
# "make install-service" (systemd, Linux): the unit, the sysusers.d and
# tmpfiles.d files and the logrotate file.  Packages use /lib/systemd/system
# and /usr/lib; a local installation keeps to /etc.
SYSTEMDUNITDIR?=	/etc/systemd/system
SYSUSERSDIR?=	/etc/sysusers.d
TMPFILESDIR?=	/etc/tmpfiles.d
LOGROTATEDIR?=	/etc/logrotate.d
DESTDIR?=
CC?=		cc
PKG_CONFIG?=	pkg-config
INSTALL?=	install

WARNINGS=	-Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes \
		-Wshadow -Wpointer-arith -Wcast-qual -Wsign-compare
CFLAGS?=	-O2 -g
# SANITIZE=1 in the environment builds with ASan and UBSan (.ci/run).
SAN_FLAGS!=	[ -n "$${SANITIZE:-}" ] && \
		echo "-fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined" || true
PKG_CFLAGS!=	${PKG_CONFIG} --cflags libbsd-overlay libevent \
		libevent_openssl openssl 2>/dev/null || true
PKG_LIBS!=	${PKG_CONFIG} --libs libbsd-overlay libevent libevent_openssl \
		openssl 2>/dev/null || \
		echo "-levent_openssl -levent -lssl -lcrypto"
# libseccomp (Linux): the children's system call filters, unless it is
# missing or NO_SECCOMP=1 is in the environment; "mailproxyd -V" says.
SECCOMP_CFLAGS!=	[ -z "$${NO_SECCOMP:-}" ] && \
		${PKG_CONFIG} --exists libseccomp 2>/dev/null && \
		echo "-DHAVE_SECCOMP `${PKG_CONFIG} --cflags libseccomp`" || true
SECCOMP_LIBS!=	[ -z "$${NO_SECCOMP:-}" ] && \
		${PKG_CONFIG} --libs libseccomp 2>/dev/null || true
# OpenBSD has crypt(3) in libc.
CRYPT_LIBS!=	[ "`uname -s`" = OpenBSD ] || echo "-lcrypt"
CHECK_CFLAGS!=	${PKG_CONFIG} --cflags check 2>/dev/null || true
CHECK_LIBS!=	${PKG_CONFIG} --libs check 2>/dev/null || echo "-lcheck"

MP_CFLAGS=	${WARNINGS} ${SAN_FLAGS} ${PKG_CFLAGS} ${SECCOMP_CFLAGS} \
		-Ilib -Ibin/mailproxyd \
		-DSYSCONFDIR=\"${SYSCONFDIR}\" -DMAILPROXYD_PID=\"${PIDFILE}\" \
		-DMAILPROXYD_CHROOT=\"${CHROOTDIR}\" \
		-DMAILPROXYD_VERSION=\"${VERSION}\" -D_GNU_SOURCE
MP_LDFLAGS=	${SAN_FLAGS}
MP_LIBS=	${PKG_LIBS} ${SECCOMP_LIBS} -lcdb ${CRYPT_LIBS} -lpthread

LIB_OBJS=	lib/imsg.o lib/log.o lib/compat.o lib/cdbtable.o lib/base64.o \
		lib/addr.o
DAEMON_OBJS=	bin/mailproxyd/parse.o bin/mailproxyd/config.o \
		bin/mailproxyd/conf_types.o bin/mailproxyd/conf_check.o \
		bin/mailproxyd/conf_dump.o \
		bin/mailproxyd/parent.o bin/mailproxyd/proc.o \
		bin/mailproxyd/listen.o bin/mailproxyd/worker.o \
		bin/mailproxyd/auth.o bin/mailproxyd/sandbox.o \
		bin/mailproxyd/notify.o bin/mailproxyd/auth_http.o \
		bin/mailproxyd/auth_msg.o \
		bin/mailproxyd/dns.o bin/mailproxyd/resolver.o \
		bin/mailproxyd/auth_http_client.o bin/mailproxyd/auth_cdb.o \
		bin/mailproxyd/session.o bin/mailproxyd/client.o \
		bin/mailproxyd/login.o bin/mailproxyd/backend.o \
		bin/mailproxyd/relay.o bin/mailproxyd/conn.o \
		bin/mailproxyd/imap.o bin/mailproxyd/pop3.o \
		bin/mailproxyd/imap_parse.o bin/mailproxyd/pop3_parse.o \
		bin/mailproxyd/sasl.o bin/mailproxyd/smtp.o \
		bin/mailproxyd/smtp_parse.o bin/mailproxyd/proxyproto.o \
		bin/mailproxyd/ppsession.o bin/mailproxyd/tls.o \
		bin/mailproxyd/tls_cache.o bin/mailproxyd/tls_material.o \
		bin/mailproxyd/tls_recv.o \
		bin/mailproxyd/keyproc.o \
		bin/mailproxyd/keyproxy.o bin/mailproxyd/input.o \
		bin/mailproxyd/upgrade.o bin/mailproxyd/control.o \
		bin/mailproxyd/stats.o bin/mailproxyd/metrics.o
DAEMON_MAIN=	bin/mailproxyd/mailproxyd.o
DAEMON=		bin/mailproxyd/mailproxyd
CTL_OBJS=	bin/mailproxyctl/mailproxyctl.o bin/mailproxyctl/control.o
CTL=		bin/mailproxyctl/mailproxyctl
AUTHDRIVE=	tests/authdrive
KEYDRIVE=	tests/keydrive
LIBMP=		lib/libmailproxy.a
LIBMPD=		bin/mailproxyd/libmailproxyd.a

UNIT_TESTS=	tests/unit/test_imsg tests/unit/test_log tests/unit/test_config \
		tests/unit/test_auth_http tests/unit/test_dns \
		tests/unit/test_resolver tests/unit/test_cdbtable \
		tests/unit/test_sasl tests/unit/test_imap_parse \
		tests/unit/test_pop3_parse tests/unit/test_smtp_parse \
		tests/unit/test_proxyproto tests/unit/test_tls
HEADERS=	lib/imsg.h lib/log.h lib/compat.h lib/addr.h \
		bin/mailproxyd/config.h \
		bin/mailproxyd/mailproxyd.h bin/mailproxyd/auth_http.h \
		bin/mailproxyd/conf_internal.h \
		bin/mailproxyd/dns.h bin/mailproxyd/auth_cdb.h lib/cdbtable.h \
		lib/base64.h bin/mailproxyd/proxyproto.h bin/mailproxyd/tls.h
MANPAGES=	man/mailproxyd.8 man/mailproxyd.conf.5 man/mailproxyctl.8

.SUFFIXES: .c .o

all: ${DAEMON} ${CTL}

.c.o:
	${CC} ${CPPFLAGS} ${MP_CFLAGS} ${CFLAGS} -c $< -o $@

${LIB_OBJS} ${DAEMON_OBJS} ${DAEMON_MAIN} ${CTL_OBJS}: ${HEADERS} VERSION
${CTL_OBJS}: bin/mailproxyctl/mailproxyctl.h

${LIBMP}: ${LIB_OBJS}
	rm -f $@
	ar rcs $@ ${LIB_OBJS}

${LIBMPD}: ${DAEMON_OBJS}
	rm -f $@
	ar rcs $@ ${DAEMON_OBJS}

${DAEMON}: ${DAEMON_MAIN} ${LIBMPD} ${LIBMP}
	${CC} ${MP_LDFLAGS} ${LDFLAGS} -o $@ ${DAEMON_MAIN} ${LIBMPD} \
	    ${LIBMP} ${MP_LIBS}

${CTL}: ${CTL_OBJS} ${LIBMP}
	${CC} ${MP_LDFLAGS} ${LDFLAGS} -o $@ ${CTL_OBJS} ${LIBMP} ${MP_LIBS}

# Plays parent and worker for one auth process in the regress tests.
${AUTHDRIVE}: tests/authdrive.c ${LIBMPD} ${LIBMP} ${HEADERS}
	${CC} ${CPPFLAGS} ${MP_CFLAGS} ${CFLAGS} ${MP_LDFLAGS} ${LDFLAGS} \
	    -o $@ tests/authdrive.c ${LIBMPD} ${LIBMP} ${MP_LIBS}

# Plays parent and worker for one key process in the regress tests.
${KEYDRIVE}: tests/keydrive.c ${LIBMPD} ${LIBMP} ${HEADERS}
	${CC} ${CPPFLAGS} ${MP_CFLAGS} ${CFLAGS} ${MP_LDFLAGS} ${LDFLAGS} \
	    -o $@ tests/keydrive.c ${LIBMPD} ${LIBMP} ${MP_LIBS}

# The unit tests, one Check program per tests/unit/*.c, by the
# single-suffix rule: each links the libraries, which give it what it
# tests.
${UNIT_TESTS}: ${LIBMPD} ${LIBMP} ${HEADERS}

.c:
	${CC} ${CPPFLAGS} ${MP_CFLAGS} ${CHECK_CFLAGS} ${CFLAGS} \
	    ${MP_LDFLAGS} ${LDFLAGS} -o $@ $< ${LIBMPD} ${LIBMP} \
	    ${MP_LIBS} ${CHECK_LIBS}

# libFuzzer targets (clang); not part of "all" or "check".  "make fuzz"
# builds them and runs each for FUZZ_SECONDS on a copy of its corpus,
# failing on any crash (tests/fuzz/README).  Every target links the
# daemon's own sources, built once for fuzzing into FUZZ_LIB.  clang
# counts libseccomp's SCMP_A0() (sandbox.c) as missing an initializer.
FUZZ_CC?=	clang
FUZZ_SECONDS?=	30
FUZZ_CFLAGS=	-g -O1 -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=undefined \
		-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION ${WARNINGS} \
		-Wno-missing-field-initializers \
		${PKG_CFLAGS} ${SECCOMP_CFLAGS} -Ilib -Ibin/mailproxyd \
		-DSYSCONFDIR=\"${SYSCONFDIR}\" -DMAILPROXYD_PID=\"${PIDFILE}\" \
		-D_GNU_SOURCE
FUZZ_SRCS=	${LIB_OBJS:.o=.c} ${DAEMON_OBJS:.o=.c}
FUZZ_LIB=	tests/fuzz/libfuzzmpd.a
FUZZ_LINK=	${FUZZ_CC} ${FUZZ_CFLAGS} -fsanitize=fuzzer
FUZZ_TARGETS=	tests/fuzz/fuzz_imap tests/fuzz/fuzz_pop3 \
		tests/fuzz/fuzz_smtp tests/fuzz/fuzz_ppsession \
		tests/fuzz/fuzz_proxyproto tests/fuzz/fuzz_sasl \
		tests/fuzz/fuzz_backend \
		tests/fuzz/fuzz_auth_http tests/fuzz/fuzz_dns \
		tests/fuzz/fuzz_cdbrecord tests/fuzz/fuzz_conf \
		tests/fuzz/fuzz_imsg

${FUZZ_LIB}: ${FUZZ_SRCS} ${HEADERS}
	rm -rf tests/fuzz/obj
	mkdir tests/fuzz/obj
	for f in ${FUZZ_SRCS}; do \
	    o=tests/fuzz/obj/`basename $$f .c`.o; \
	    ${FUZZ_CC} ${FUZZ_CFLAGS} -fsanitize=fuzzer-no-link -c $$f \
	    -o $$o || exit 1; \
	done
	rm -f $@
	ar rcs $@ tests/fuzz/obj/*.o

tests/fuzz/fuzz_imap: tests/fuzz/fuzz_session.c ${FUZZ_LIB}
	${FUZZ_LINK} -DFUZZ_IMAP -o $@ tests/fuzz/fuzz_session.c \
	    ${FUZZ_LIB} ${MP_LIBS}

tests/fuzz/fuzz_pop3: tests/fuzz/fuzz_session.c ${FUZZ_LIB}
	${FUZZ_LINK} -DFUZZ_POP3 -o $@ tests/fuzz/fuzz_session.c \
	    ${FUZZ_LIB} ${MP_LIBS}

tests/fuzz/fuzz_smtp: tests/fuzz/fuzz_session.c ${FUZZ_LIB}
	${FUZZ_LINK} -DFUZZ_SMTP -o $@ tests/fuzz/fuzz_session.c \
	    ${FUZZ_LIB} ${MP_LIBS}

tests/fuzz/fuzz_ppsession: tests/fuzz/fuzz_session.c ${FUZZ_LIB}
	${FUZZ_LINK} -DFUZZ_PPSESSION -o $@ tests/fuzz/fuzz_session.c \
	    ${FUZZ_LIB} ${MP_LIBS}

tests/fuzz/fuzz_proxyproto: tests/fuzz/fuzz_proxyproto.c ${FUZZ_LIB}
	${FUZZ_LINK} -o $@ tests/fuzz/fuzz_proxyproto.c ${FUZZ_LIB} \
	    ${MP_LIBS}

tests/fuzz/fuzz_sasl: tests/fuzz/fuzz_sasl.c ${FUZZ_LIB}
	${FUZZ_LINK} -o $@ tests/fuzz/fuzz_sasl.c ${FUZZ_LIB} ${MP_LIBS}

tests/fuzz/fuzz_backend: tests/fuzz/fuzz_backend.c ${FUZZ_LIB}
	${FUZZ_LINK} -o $@ tests/fuzz/fuzz_backend.c ${FUZZ_LIB} ${MP_LIBS}

tests/fuzz/fuzz_auth_http: tests/fuzz/fuzz_auth_http.c ${FUZZ_LIB}
	${FUZZ_LINK} -o $@ tests/fuzz/fuzz_auth_http.c ${FUZZ_LIB} \
	    ${MP_LIBS}

tests/fuzz/fuzz_dns: tests/fuzz/fuzz_dns.c ${FUZZ_LIB}
	${FUZZ_LINK} -o $@ tests/fuzz/fuzz_dns.c ${FUZZ_LIB} ${MP_LIBS}

tests/fuzz/fuzz_cdbrecord: tests/fuzz/fuzz_cdbrecord.c ${FUZZ_LIB}
	${FUZZ_LINK} -o $@ tests/fuzz/fuzz_cdbrecord.c ${FUZZ_LIB} \
	    ${MP_LIBS}

tests/fuzz/fuzz_conf: tests/fuzz/fuzz_conf.c ${FUZZ_LIB}
	${FUZZ_LINK} -o $@ tests/fuzz/fuzz_conf.c ${FUZZ_LIB} ${MP_LIBS} \
	    -ldl

tests/fuzz/fuzz_imsg: tests/fuzz/fuzz_imsg.c ${FUZZ_LIB}
	${FUZZ_LINK} -o $@ tests/fuzz/fuzz_imsg.c ${FUZZ_LIB} ${MP_LIBS}

fuzz: ${FUZZ_TARGETS}
	sh tests/fuzz/run ${FUZZ_SECONDS} ${FUZZ_TARGETS}

# Every suite prints its own counts; tests/run-all sums them up and
# ends with the "N passed, N failed" line.
check: all ${UNIT_TESTS} ${AUTHDRIVE} ${KEYDRIVE}
	sh tests/run-all ${UNIT_TESTS}

lint:
	@out=`mandoc -T lint -W warning ${MANPAGES} 2>&1`; \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	echo "mandoc -T lint: clean"

# The example configuration goes in place only when there is none, with
# the chroot directory and pid file of this build.  The ports install it
# elsewhere with SYSCONFDIR and ship it as a sample.
install: all
	${INSTALL} -d ${DESTDIR}${SBINDIR} ${DESTDIR}${MANDIR}/man5 \
	    ${DESTDIR}${MANDIR}/man8
	${INSTALL} -m 0555 ${DAEMON} ${DESTDIR}${SBINDIR}/mailproxyd
	${INSTALL} -m 0555 ${CTL} ${DESTDIR}${SBINDIR}/mailproxyctl
	${INSTALL} -m 0444 man/mailproxyctl.8 ${DESTDIR}${MANDIR}/man8/
	${INSTALL} -m 0444 man/mailproxyd.8 ${DESTDIR}${MANDIR}/man8/
	${INSTALL} -m 0444 man/mailproxyd.conf.5 ${DESTDIR}${MANDIR}/man5/
	[ -f ${DESTDIR}${SYSCONFDIR}/mailproxyd.conf ] || { \
	    ${INSTALL} -d ${DESTDIR}${SYSCONFDIR} && \
	    sed -e 's|/var/empty;|${CHROOTDIR};|' \
	    -e 's|/run/mailproxyd.pid;|${PIDFILE};|' \
	    -e 's|/var/log/mailproxyd.log |${LOGFILE} |' etc/mailproxyd.conf \
	    > ${DESTDIR}${SYSCONFDIR}/mailproxyd.conf.tmp && \
	    chmod 0644 ${DESTDIR}${SYSCONFDIR}/mailproxyd.conf.tmp && \
	    mv ${DESTDIR}${SYSCONFDIR}/mailproxyd.conf.tmp \
	    ${DESTDIR}${SYSCONFDIR}/mailproxyd.conf; }

# systemd's files, with this build's paths filled in (Linux only; the BSD
# ports bring rc.d scripts and create the user themselves).  Creates
# nothing outside DESTDIR: systemd-sysusers and systemd-tmpfiles (or the
# package's scripts) make the user and the directories.
install-service:
	${INSTALL} -d ${DESTDIR}${SYSTEMDUNITDIR} ${DESTDIR}${SYSUSERSDIR} \
	    ${DESTDIR}${TMPFILESDIR} ${DESTDIR}${LOGROTATEDIR}
	sed -e 's|@SBINDIR@|${SBINDIR}|g' -e 's|@PIDFILE@|${PIDFILE}|g' \
	    contrib/systemd/mailproxyd.service.in \
	    > ${DESTDIR}${SYSTEMDUNITDIR}/mailproxyd.service
	sed -e 's|@CHROOTDIR@|${CHROOTDIR}|g' \
	    contrib/systemd/mailproxyd.tmpfiles.in \
	    > ${DESTDIR}${TMPFILESDIR}/mailproxyd.conf
	cp contrib/systemd/mailproxyd.sysusers \
	    ${DESTDIR}${SYSUSERSDIR}/mailproxyd.conf
	sed -e 's|@SBINDIR@|${SBINDIR}|g' -e 's|@PIDFILE@|${PIDFILE}|g' \
	    -e 's|@LOGFILE@|${LOGFILE}|g' contrib/logrotate/mailproxyd.in \
	    > ${DESTDIR}${LOGROTATEDIR}/mailproxyd
	chmod 0644 ${DESTDIR}${SYSTEMDUNITDIR}/mailproxyd.service \
	    ${DESTDIR}${TMPFILESDIR}/mailproxyd.conf \
	    ${DESTDIR}${SYSUSERSDIR}/mailproxyd.conf \
	    ${DESTDIR}${LOGROTATEDIR}/mailproxyd

# The release tarball: every file git tracks, nothing built.  "make
# distcheck" builds it from the extracted tree, runs "make check" there
# (as root, about four minutes), installs it in a scratch DESTDIR and
# checks that "make clean" leaves exactly what the tarball held.
dist:
	@[ -e .git ] || { echo "make dist needs a git checkout" >&2; exit 1; }
	rm -rf ${DISTNAME} ${DISTNAME}.tar.gz ${DISTNAME}.distinfo
	mkdir ${DISTNAME}
	git ls-files | tar -cf - -T - | (cd ${DISTNAME} && tar -xf -)
	tar -cf - ${DISTNAME} | gzip -9n > ${DISTNAME}.tar.gz
	rm -rf ${DISTNAME}
	@# The FreeBSD port's distinfo (OpenBSD's comes from "make makesum").
	{ echo "TIMESTAMP = `date +%s`"; \
	    echo "SHA256 (${DISTNAME}.tar.gz) = `openssl dgst -sha256 -r \
	    ${DISTNAME}.tar.gz | cut -d' ' -f1`"; \
	    echo "SIZE (${DISTNAME}.tar.gz) = `wc -c < ${DISTNAME}.tar.gz | \
	    tr -d ' '`"; } > ${DISTNAME}.distinfo
	@echo "${DISTNAME}.tar.gz ${DISTNAME}.distinfo"

distcheck: dist
	rm -rf distcheck.tmp
	mkdir distcheck.tmp
	cd distcheck.tmp && gzip -dc ../${DISTNAME}.tar.gz | tar -xf - && \
	    cd ${DISTNAME} && find . -type f | sort > ../before && \
	    ${MAKE} && ${MAKE} check && \
	    ${MAKE} install DESTDIR=`pwd`/../stage && \
	    [ -x ../stage/usr/local/sbin/mailproxyd ] && \
	    ${MAKE} install-service DESTDIR=`pwd`/../stage && \
	    ${MAKE} clean && find . -type f | sort > ../after && \
	    diff -u ../before ../after
	rm -rf distcheck.tmp
	@echo "${DISTNAME}.tar.gz is ready for distribution"

# The README's first command: a real IMAP/POP3 session through the proxy.
demo:
	sh contrib/demo/demo.sh

# Side by side with nginx's mail proxy, as root; not part of check.
BENCH_FLAGS?=
bench: all
	python3 bench/run ${BENCH_FLAGS}

clean:
	rm -f ${LIB_OBJS} ${DAEMON_OBJS} ${DAEMON_MAIN} ${DAEMON} ${LIBMP} \
	    ${CTL_OBJS} ${CTL} ${AUTHDRIVE} ${KEYDRIVE} \
	    ${LIBMPD} ${UNIT_TESTS} ${FUZZ_TARGETS} ${FUZZ_LIB}
	rm -rf tests/tmp tests/regress/__pycache__ tests/fuzz/obj

.PHONY: all check lint install install-service dist distcheck demo clean \
	fuzz bench
