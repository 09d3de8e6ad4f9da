/* Capability names in the kernel's numbering (linux/capability.h), up to CAP_CHECKPOINT_RESTORE
 * (40, Linux 5.9); a newer kernel's extra ones are never granted. */
#include "runtime/caps.h"
#include "util/mem.h"
#include <ctype.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <string.h>

static const char *const all[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE", NULL,
};
#define NCAPS (sizeof all / sizeof all[0] - 1)

const char *const caps_default[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
	"CAP_AUDIT_WRITE", NULL,
};

int caps_name(const char *in, char *out)
{
	char up[CAPS_NAME_MAX];
	size_t n = strlen(in);
	if (n + 4 >= CAPS_NAME_MAX)
		return -1;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)in[i]);
	if (!strcmp(up, "ALL")) {
		strcpy(out, "ALL");
		return 0;
	}
	snprintf(out, CAPS_NAME_MAX, "%s%s", strncmp(up, "CAP_", 4) ? "CAP_" : "", up);
	for (size_t i = 0; i < NCAPS; i++)
		if (!strcmp(all[i], out))
			return 0;
	return -1;
}

static int index_of(const char *name)
{
	char c[CAPS_NAME_MAX];
	if (caps_name(name, c) < 0 || !strcmp(c, "ALL"))
		return -1;
	for (size_t i = 0; i < NCAPS; i++)
		if (!strcmp(all[i], c))
			return (int)i;
	return -1;
}

static bool has_all(char *const *v, size_t n)
{
	char c[CAPS_NAME_MAX];
	for (size_t i = 0; i < n; i++)
		if (caps_name(v[i], c) == 0 && !strcmp(c, "ALL"))
			return true;
	return false;
}

const char **caps_resolve(char *const *add, size_t nadd, char *const *drop, size_t ndrop, bool privileged)
{
	bool on[NCAPS] = {false};
	if (privileged || has_all(add, nadd)) {
		for (size_t i = 0; i < NCAPS; i++)
			on[i] = true;
	} else if (!has_all(drop, ndrop)) {
		for (size_t i = 0; caps_default[i]; i++)
			on[index_of(caps_default[i])] = true;
	}
	/* the explicit names win over ALL on the other side, as in Docker */
	for (size_t i = 0; !privileged && i < nadd; i++)
		if (index_of(add[i]) >= 0)
			on[index_of(add[i])] = true;
	for (size_t i = 0; !privileged && i < ndrop; i++)
		if (index_of(drop[i]) >= 0)
			on[index_of(drop[i])] = false;
	const char **out = xcalloc(NCAPS + 1, sizeof *out);
	size_t k = 0;
	for (size_t i = 0; i < NCAPS; i++)
		if (on[i])
			out[k++] = all[i];
	return out;
}

void caps_held_only(const char **caps)
{
	size_t k = 0;
	for (size_t i = 0; caps[i]; i++) {
		int c = index_of(caps[i]);
		if (c >= 0 && prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) == 1)
			caps[k++] = caps[i];
	}
	caps[k] = NULL;
}
