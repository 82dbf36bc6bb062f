/*
 * The last step of a child's privilege drop: the operating system's
 * own confinement.  OpenBSD: pledge(2) and unveil(2).  Linux:
 * PR_SET_NO_NEW_PRIVS, so nothing the child executes can gain
 * privileges, and the child stays non-dumpable.  (seccomp and Landlock
 * allow-lists follow once the protocol code's system calls are known.)
 */

#include <sys/types.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <unistd.h>

#include "mailproxyd.h"

int
sandbox_child(enum proc_role role)
{
#ifdef __linux__
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS) failed");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_DUMPABLE) failed");
	(void)role;
#elif defined(__OpenBSD__)
	if (unveil(NULL, NULL) == -1)
		fatal("unveil() failed");
	switch (role) {
	case PROC_WORKER:
		if (pledge("stdio inet recvfd", NULL) == -1)
			fatal("pledge() failed");
		break;
	case PROC_AUTH:
		if (pledge("stdio inet dns recvfd", NULL) == -1)
			fatal("pledge() failed");
		break;
	case PROC_KEY:
		if (pledge("stdio recvfd", NULL) == -1)
			fatal("pledge() failed");
		break;
	default:
		fatalx("sandbox_child: bad role");
	}
#else
	(void)role;
#endif
	return 0;
}
