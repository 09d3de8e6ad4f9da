#include "util/log.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The time of day (UTC) of a wall clock reading in ms. */
static void stamp(char *buf, size_t n, uint64_t wall)
{
	struct tm tm;
	time_t secs = (time_t)(wall / 1000);
	gmtime_r(&secs, &tm);
	snprintf(buf, n, "%02d:%02d:%02d.%03u", tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(wall % 1000));
}

void log_msg(const char *who, const struct clock *clock, const char *level, const char *fmt, ...)
{
	char ts[32], line[2048];
	va_list ap;
	stamp(ts, sizeof ts, clock_wall(clock ? clock : &clock_system));
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s %s%s%s %s\n", ts, who && *who ? who : "", who && *who ? " " : "", level, line);
}

bool trace_on(const char *area)
{
	/* read each time (a scan of a few dozen variables) rather than cached in a static */
	const char *spec = getenv("ORCH_TRACE");
	if (!spec || !*spec || !strcmp(spec, "0"))
		return false;
	if (!strcmp(spec, "1") || !strcmp(spec, "all"))
		return true;
	size_t n = strlen(area);
	for (const char *p = spec; (p = strstr(p, area)); p += n)
		if ((p == spec || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return true;
	return false;
}

void trace_msg(const char *area, const char *obj, const char *fmt, ...)
{
	char ts[32], line[2048];
	va_list ap;
	stamp(ts, sizeof ts, clock_wall(&clock_system));
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s TRACE %s %s %s\n", ts, area, obj ? obj : "-", line);
}
