#include "node/nodesec.h"
#include "state/store.h"
#include "util/err.h"
#include "util/layout.h"
#include "util/mem.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USERNS_DEFAULT_BASE 100000u
#define USERNS_DEFAULT_COUNT 65536u

/* "BASE:COUNT" with a base above 0 (root of the host never backs a task) and a range
 * that holds at least uid 0-65535 of the task */
static bool range(const char *s, uint32_t *base, uint32_t *count)
{
	char *end;
	errno = 0;
	unsigned long long b = strtoull(s, &end, 10);
	if (end == s || *end != ':' || errno)
		return false;
	const char *c = end + 1;
	unsigned long long n = strtoull(c, &end, 10);
	if (end == c || (*end && *end != '\n') || errno || b == 0 || n < 65536 || b + n > 0xffffffffull)
		return false;
	*base = (uint32_t)b;
	*count = (uint32_t)n;
	return true;
}

char *nodesec_text(const struct nodesec *o)
{
	struct buf b = {0};
	if (o->allow_privileged)
		buf_printf(&b, "%s\n", NODE_ALLOW_PRIVILEGED);
	if (o->userns_count)
		buf_printf(&b, "%s%u:%u\n", NODE_USERNS_REMAP, o->userns_base, o->userns_count);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

int nodesec_load(const char *data_dir, struct nodesec *o, char *err)
{
	char path[LAYOUT_PATH_MAX], line[128];
	memset(o, 0, sizeof *o);
	layout_path(path, sizeof path, data_dir, LAYOUT_NODE_SECURITY);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : errf(err, E_IO, "read %s: %s", path, strerror(errno));
	int rc = 0;
	while (!rc && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strcmp(line, NODE_ALLOW_PRIVILEGED))
			o->allow_privileged = true;
		else if (!strncmp(line, NODE_USERNS_REMAP, strlen(NODE_USERNS_REMAP)) &&
			 range(line + strlen(NODE_USERNS_REMAP), &o->userns_base, &o->userns_count))
			continue;
		else if (*line)
			rc = errf(err, E_INVAL, "%s: unknown line \"%s\"", path, line);
	}
	fclose(f);
	return rc;
}

int nodesec_save(const char *data_dir, const struct nodesec *o, char *err)
{
	char path[LAYOUT_PATH_MAX], tmp[LAYOUT_PATH_MAX + 8];
	layout_path(path, sizeof path, data_dir, LAYOUT_NODE_SECURITY);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	char *text = nodesec_text(o);
	FILE *f = fopen(tmp, "w");
	int rc = 0;
	if (!f || fputs(text, f) < 0 || fflush(f) || fsync(fileno(f)))
		rc = errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	if (f && fclose(f) && !rc)
		rc = errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	if (!rc && rename(tmp, path) < 0)
		rc = errf(err, E_IO, "rename to %s: %s", path, strerror(errno));
	free(text);
	return rc;
}

int nodesec_userns_arg(const char *arg, struct nodesec *o, char *msg)
{
	if (strcmp(arg, "default")) {
		if (!range(arg, &o->userns_base, &o->userns_count))
			return errf(msg, E_INVAL, "--userns-remap %s: expected BASE:COUNT (BASE > 0, COUNT >= 65536) or default", arg);
		return 0;
	}
	o->userns_base = USERNS_DEFAULT_BASE;
	o->userns_count = USERNS_DEFAULT_COUNT;
	FILE *f = fopen("/etc/subuid", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "orch:", 5) && range(line + 5, &o->userns_base, &o->userns_count))
			break;
	if (f)
		fclose(f);
	return 0;
}
