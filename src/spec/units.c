#include "spec/units.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Reads "123" or "123.456" at *p into an exact fraction num / 10^fdigits so that the
 * caller can scale by a unit without rounding through floating point. */
struct decimal {
	unsigned __int128 num;
	unsigned fdigits;
};

static int read_decimal(const char **p, struct decimal *d)
{
	const char *s = *p;
	size_t ndig = 0;
	d->num = 0;
	d->fdigits = 0;
	for (; isdigit((unsigned char)*s); s++, ndig++) {
		if (ndig >= 20)
			return -1;
		d->num = d->num * 10 + (unsigned)(*s - '0');
	}
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		for (; isdigit((unsigned char)*s); s++, ndig++) {
			if (d->fdigits >= 12 || ndig >= 30)
				return -1;
			d->num = d->num * 10 + (unsigned)(*s - '0');
			d->fdigits++;
		}
	}
	if (ndig == 0)
		return -1;
	*p = s;
	return 0;
}

static unsigned __int128 pow10u(unsigned n)
{
	unsigned __int128 r = 1;
	while (n--)
		r *= 10;
	return r;
}

/* num / 10^fdigits * mult, truncated; -1 past UINT64_MAX. */
static int scale(const struct decimal *d, uint64_t mult, uint64_t *out)
{
	unsigned __int128 v = d->num * mult / pow10u(d->fdigits);
	if (v > UINT64_MAX)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
		{"ns", 1ULL},
		{"us", 1000ULL},
		{"\xc2\xb5s", 1000ULL}, /* µs, as Go accepts */
		{"ms", 1000000ULL},
		{"s", 1000000000ULL},
		{"m", 60000000000ULL},
		{"h", 3600000000000ULL},
	};
	if (!s || !*s)
		return -1;
	if (!strcmp(s, "0")) {
		*ms = 0;
		return 0;
	}
	uint64_t total = 0;
	const char *p = s;
	while (*p) {
		struct decimal d;
		if (read_decimal(&p, &d) < 0)
			return -1;
		size_t best = 0, bestlen = 0;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t n = strlen(units[i].name);
			if (n > bestlen && !strncmp(p, units[i].name, n)) {
				best = i;
				bestlen = n;
			}
		}
		if (!bestlen)
			return -1; /* missing or unknown unit */
		p += bestlen;
		uint64_t ns;
		if (scale(&d, units[best].ns, &ns) < 0 || total > UINT64_MAX - ns)
			return -1;
		total += ns;
	}
	*ms = total / 1000000ULL;
	return 0;
}

int parse_bytes(const char *s, uint64_t *bytes)
{
	if (!s)
		return -1;
	const char *p = s;
	struct decimal d;
	if (read_decimal(&p, &d) < 0)
		return -1;
	if (*p == ' ')
		p++;
	uint64_t mult = 1;
	const char *units = "kmgtp";
	const char *u = *p ? strchr(units, tolower((unsigned char)*p)) : NULL;
	if (u) {
		for (const char *q = units; q <= u; q++)
			mult *= 1024;
		p++;
		if (*p == 'i' || *p == 'I')
			p++;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p)
		return -1;
	return scale(&d, mult, bytes);
}

int parse_cpus_milli(const char *s, uint64_t *milli)
{
	if (!s)
		return -1;
	const char *p = s;
	struct decimal d;
	if (read_decimal(&p, &d) < 0 || *p)
		return -1;
	/* Trailing zeros beyond three decimals are harmless ("0.5000"). */
	while (d.fdigits > 3 && d.num % 10 == 0) {
		d.num /= 10;
		d.fdigits--;
	}
	if (d.fdigits > 3)
		return -1;
	uint64_t v;
	if (scale(&d, 1000, &v) < 0 || v > 1000000000ULL)
		return -1;
	*milli = v;
	return 0;
}

void format_duration_ms(uint64_t ms, char *out, size_t size)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} parts[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
	size_t len = 0;
	if (size)
		out[0] = 0;
	if (ms == 0) {
		snprintf(out, size, "0s");
		return;
	}
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		uint64_t n = ms / parts[i].ms;
		ms %= parts[i].ms;
		if (n && len < size)
			len += (size_t)snprintf(out + len, size - len, "%llu%s", (unsigned long long)n, parts[i].unit);
	}
}

void format_cpus_milli(uint64_t milli, char *out, size_t size)
{
	unsigned long long whole = milli / 1000, frac = milli % 1000;
	if (!frac)
		snprintf(out, size, "%llu", whole);
	else if (frac % 100 == 0)
		snprintf(out, size, "%llu.%llu", whole, frac / 100);
	else if (frac % 10 == 0)
		snprintf(out, size, "%llu.%02llu", whole, frac / 10);
	else
		snprintf(out, size, "%llu.%03llu", whole, frac);
}
