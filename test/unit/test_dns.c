#include "unit.h"
#include "traffic/dns.h"
#include <arpa/inet.h>

static uint32_t fake(const char *name, void *arg)
{
	(void)arg;
	struct in_addr a;
	if (!strcmp(name, "web") || !strcmp(name, "web.shop")) {
		inet_pton(AF_INET, "10.70.251.1", &a);
		return a.s_addr;
	}
	return 0;
}

static size_t query(uint8_t *q, const char *name, uint16_t type)
{
	memset(q, 0, 12);
	q[0] = 0x12;
	q[1] = 0x34;
	q[2] = 0x01; /* RD */
	q[5] = 1;
	size_t pos = 12;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		q[pos++] = (uint8_t)len;
		memcpy(q + pos, p, len);
		pos += len;
		p += len + (dot ? 1 : 0);
	}
	q[pos++] = 0;
	q[pos++] = (uint8_t)(type >> 8);
	q[pos++] = (uint8_t)type;
	q[pos++] = 0;
	q[pos++] = 1;
	return pos;
}

UNIT(dns_answers_service_names)
{
	uint8_t q[512], a[600];
	size_t n = query(q, "web", 1);
	size_t m = dns_answer(q, n, a, sizeof a, fake, NULL);
	CHECK_EQ_INT(m, n + 16);
	CHECK(a[0] == 0x12 && a[1] == 0x34);
	CHECK((a[2] & 0x80) && (a[3] & 0x0f) == 0);
	CHECK_EQ_INT(a[7], 1);
	CHECK(a[m - 4] == 10 && a[m - 3] == 70 && a[m - 2] == 251 && a[m - 1] == 1);
	n = query(q, "WEB.Shop", 1);
	m = dns_answer(q, n, a, sizeof a, fake, NULL);
	CHECK_EQ_INT(a[7], 1);
	/* unknown short name: NXDOMAIN; unknown FQDN: REFUSED; AAAA: no answer */
	n = query(q, "nope", 1);
	m = dns_answer(q, n, a, sizeof a, fake, NULL);
	CHECK_EQ_INT(a[3] & 0x0f, 3);
	n = query(q, "example.org", 1);
	m = dns_answer(q, n, a, sizeof a, fake, NULL);
	CHECK_EQ_INT(a[3] & 0x0f, 5);
	n = query(q, "web", 28);
	m = dns_answer(q, n, a, sizeof a, fake, NULL);
	CHECK_EQ_INT(m, n);
	CHECK_EQ_INT(a[7], 0);
}

UNIT(dns_drops_malformed)
{
	uint8_t q[512], a[600];
	size_t n = query(q, "web", 1);
	for (size_t cut = 0; cut < n; cut++)
		CHECK_EQ_INT(dns_answer(q, cut, a, sizeof a, fake, NULL), 0);
	q[12] = 0xc0; /* compression pointer in a question: refused */
	CHECK_EQ_INT(dns_answer(q, n, a, sizeof a, fake, NULL), 0);
	n = query(q, "web", 1);
	q[2] |= 0x80; /* a response */
	CHECK_EQ_INT(dns_answer(q, n, a, sizeof a, fake, NULL), 0);
	for (int i = 0; i < 5000; i++) { /* random bytes never crash it */
		size_t len = (size_t)(rand() % 300);
		for (size_t k = 0; k < len; k++)
			q[k] = (uint8_t)rand();
		dns_answer(q, len, a, sizeof a, fake, NULL);
	}
}
