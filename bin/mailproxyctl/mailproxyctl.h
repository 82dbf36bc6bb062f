/*
 * mailproxyctl: what its files share.
 */

#ifndef MAILPROXYCTL_H
#define MAILPROXYCTL_H

__dead void	 usage(void);

/* control.c */
extern const char	 ctl_socket_default[];
int		 ctl_control(const char *, int, int, char *[]);

#endif /* MAILPROXYCTL_H */
