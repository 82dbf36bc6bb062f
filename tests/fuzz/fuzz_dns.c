/*
 * Copyright (c) 2026 The mailproxyd authors
 *
 * Permission to use, copy, modify, and distribute this software for any
 * purpose with or without fee is hereby granted, provided that the above
 * copyright notice and this permission notice appear in all copies.
 *
 * THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
 * WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
 * MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR
 * ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
 * WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN
 * ACTION OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF
 * OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
 */

/*
 * libFuzzer target F6: the DNS answer parser and the host name checks
 * of bin/mailproxyd/dns.c.
 *
 * The first byte picks the question (PTR of an IPv4 or IPv6 address, A
 * or AAAA of a name); the rest is the answer.  The query id is taken
 * from the answer so that the parser's later stages are reached.
 * Besides not crashing, whatever dns_name_host() accepts must be a host
 * name by dns_host_valid() too, and contain nothing else than
 * letters, digits, '-' and '.'.  An answer is at most what resolver.c
 * hands the parser: DNS_MSG_MAX bytes (over TCP; 4096 over UDP).
 *
 *	make tests/fuzz/fuzz_dns
 *	tests/fuzz/fuzz_dns -max_total_time=60 CORPUS_DIR
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	 fuzz_host(const char *);

static const struct {
	const char	*name;
	uint16_t	 type;
} questions[] = {
	{ "1.2.0.192.in-addr.arpa", DNS_T_PTR },
	{ "mail.example.org", DNS_T_A },
	{ "mail.example.org", DNS_T_AAAA },
	{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	  "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", DNS_T_PTR },
};

/* A host name we would pass on: check it really is one. */
static void
fuzz_host(const char *host)
{
	char	 again[DNS_HOSTBUF];
	size_t	 i, len = strlen(host);

	if (len == 0 || len > DNS_HOST_MAX)
		abort();
	for (i = 0; i < len; i++)
		if (!((host[i] >= 'a' && host[i] <= 'z') ||
		    (host[i] >= 'A' && host[i] <= 'Z') ||
		    (host[i] >= '0' && host[i] <= '9') ||
		    host[i] == '-' || host[i] == '.'))
			abort();
	if (dns_host_valid(host, len, again, sizeof(again)) == -1 ||
	    strcmp(host, again) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query	 q;
	struct dns_answer	 a;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	enum dns_result		 res;
	char			 host[DNS_HOSTBUF], text[DNS_NAME_MAX];
	char			*str;
	uint8_t			 wire[DNS_NAME_MAX];
	uint16_t		 id;
	size_t			 i, sel;

	if (size < 1)
		return (0);
	sel = data[0] % (sizeof(questions) / sizeof(questions[0]));
	data++;
	size--;
	if (size > DNS_MSG_MAX)
		size = DNS_MSG_MAX;
	id = size >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : 0;
	if (dns_query_init(&q, id, questions[sel].name,
	    questions[sel].type) == -1)
		abort();

	res = dns_response_parse(&q, data, size, &a);
	if (a.da_count > DNS_ANSWER_MAX || a.da_ncname > DNS_CNAME_MAX)
		abort();
	if (res == DNS_R_OK && q.dq_type == DNS_T_PTR) {
		for (i = 0; i < a.da_count; i++) {
			if (dns_name_len(a.da_name[i]) > DNS_NAME_MAX)
				abort();
			(void)dns_name_print(a.da_name[i], text, sizeof(text));
			if (dns_name_host(a.da_name[i], host,
			    sizeof(host)) == 0)
				fuzz_host(host);
		}
	}
	if (res != DNS_R_OK && res != DNS_R_NXDOMAIN && a.da_count != 0)
		abort();
	/* The chain's end, which the resolver may ask for next. */
	if (res == DNS_R_OK && dns_answer_content(&a) == DNS_C_CNAME) {
		if (a.da_ncname == 0 || dns_name_len(a.da_cname) >
		    DNS_NAME_MAX)
			abort();
		if (dns_name_host(a.da_cname, host, sizeof(host)) == 0)
			fuzz_host(host);
	}

	/* The same bytes as text: host names and server addresses. */
	if (dns_host_valid((const char *)data, size, host,
	    sizeof(host)) == 0) {
		fuzz_host(host);
		if (dns_name_from_text(host, wire, sizeof(wire)) == -1)
			abort();
	}
	if ((str = malloc(size + 1)) == NULL)
		abort();
	memcpy(str, data, size);
	str[size] = '\0';
	(void)dns_server_parse(str, &ss, &sslen);
	if (dns_name_from_text(str, wire, sizeof(wire)) > 0 &&
	    dns_name_len(wire) > DNS_NAME_MAX)
		abort();
	free(str);
	return (0);
}
