#include "cli/install.h"
#include "runtime/runproc.h"
#include "util/err.h"
#include "util/layout.h"
#include "util/mem.h"
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARK "# Written by orch --install"
#define DEFAULT_DATA_DIR "/var/lib/orch"

enum initsys { INIT_SYSTEMD, INIT_OPENRC };

static const char *root(void)
{
	const char *r = getenv("ORCH_INSTALL_ROOT");
	return r && *r ? r : "";
}

static bool exists(const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof p, "%s%s", root(), rel);
	return stat(p, &st) == 0;
}

/* systemd where it runs or is installed; else OpenRC where it is; else systemd (the unit
 * waits for a systemd to read it). */
static enum initsys detect(void)
{
	if (exists("/run/systemd/system") || exists("/lib/systemd/systemd") || exists("/usr/lib/systemd/systemd"))
		return INIT_SYSTEMD;
	if (exists("/sbin/openrc-run") || exists("/usr/sbin/openrc-run"))
		return INIT_OPENRC;
	return INIT_SYSTEMD;
}

/* Only characters that need no quoting in a unit's command line nor in sh: what goes in is
 * a path and options (no specifiers, no spaces, nothing a shell expands). */
static bool plain(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("_./:=,@+-", *s)))
			return false;
	return true;
}

static void service_name(const struct install_req *q, char *out, size_t cap)
{
	if (!strcmp(q->data_dir, DEFAULT_DATA_DIR)) {
		snprintf(out, cap, "orch");
		return;
	}
	size_t n = (size_t)snprintf(out, cap, "orch-%s", q->name);
	for (size_t i = 5; i < n && i < cap; i++)
		if (!((out[i] >= 'a' && out[i] <= 'z') || (out[i] >= 'A' && out[i] <= 'Z') || (out[i] >= '0' && out[i] <= '9') ||
		      out[i] == '_' || out[i] == '-'))
			out[i] = '-';
}

static int mkdirs(const char *path, char *err)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return errf(err, E_IO, "create %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return errf(err, E_IO, "create %s: %s", tmp, strerror(errno));
	return 0;
}

static int write_file(const char *path, const struct buf *b, mode_t mode, char *err)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.new", path);
	FILE *f = fopen(tmp, "we");
	bool ok = f && fwrite(b->data, 1, b->len, f) == b->len;
	if (f && fclose(f))
		ok = false;
	if (!ok || chmod(tmp, mode) || rename(tmp, path)) {
		int e = errno;
		unlink(tmp);
		return errf(err, E_IO, "write %s: %s", path, strerror(e));
	}
	return 0;
}

/* The link that enables it (what systemctl enable and rc-update add make): to the file's
 * path as the booted system sees it. */
static int link_to(const char *link, const char *target, char *err)
{
	if (unlink(link) && errno != ENOENT)
		return errf(err, E_IO, "replace %s: %s", link, strerror(errno));
	if (symlink(target, link))
		return errf(err, E_IO, "link %s: %s", link, strerror(errno));
	return 0;
}

static void command_line(struct buf *b, const char *exe, const struct install_req *q)
{
	buf_printf(b, "%s start --data-dir %s", exe, q->data_dir);
	for (size_t i = 0; i < q->nargs; i++)
		buf_printf(b, " %s", q->args[i]);
}

/* A running systemd reads new and removed units after a reload (not under a test root). */
static void systemd_reload(void)
{
	if (*root() || access("/run/systemd/system", F_OK))
		return;
	const char *argv[] = {"systemctl", "daemon-reload", NULL};
	struct runproc rp = {.argv = argv, .out_fd = -1};
	int status;
	char err[ERR_LEN];
	runproc_run(&rp, &status, err);
}

int install_service(const struct install_req *q, char *msg, size_t cap, char *err)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return errf(err, E_IO, "--install: where is this orch binary? %s", strerror(errno));
	exe[n] = 0;
	if (!plain(exe) || !plain(q->data_dir))
		return errf(err, E_INVAL, "--install: %s or %s has characters a service's command line cannot hold plainly",
			    exe, q->data_dir);
	for (size_t i = 0; i < q->nargs; i++)
		if (!plain(q->args[i]))
			return errf(err, E_INVAL, "--install: option %s has characters a service's command line cannot hold plainly",
				    q->args[i]);
	char name[96], dir[PATH_MAX], file[PATH_MAX], wants[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
	service_name(q, name, sizeof name);
	enum initsys is = detect();
	/* where each init system reads its services, and the directory of the links that
	 * enable them */
	static const struct {
		const char *dir, *suffix, *enabled;
	} where[] = {
		[INIT_SYSTEMD] = {"/etc/systemd/system", ".service", "/etc/systemd/system/multi-user.target.wants"},
		[INIT_OPENRC] = {"/etc/init.d", "", "/etc/runlevels/default"},
	};
	snprintf(dir, sizeof dir, "%s%s", root(), where[is].dir);
	snprintf(target, sizeof target, "%s/%s%s", where[is].dir, name, where[is].suffix);
	snprintf(file, sizeof file, "%s%s", root(), target);
	snprintf(wants, sizeof wants, "%s%s", root(), where[is].enabled);
	snprintf(link, sizeof link, "%s/%s%s", wants, name, where[is].suffix);
	struct buf b = {0};
	int rc;
	if (is == INIT_SYSTEMD) {
		buf_printf(&b, "%s (orch uninstall removes it). No secret in here: the node resumes from\n"
			       "# its data directory, which holds its certificate and keys.\n"
			       "[Unit]\n"
			       "Description=orch node %s (data in %s)\n"
			       "Documentation=man:orch(8)\n"
			       "Wants=network-online.target\n"
			       "After=network-online.target\n\n"
			       "[Service]\n"
			       "Type=simple\n"
			       "ExecStart=",
			   MARK, q->name, q->data_dir);
		command_line(&b, exe, q);
		/* the containers outlive the node process (a restarted node finds them again):
		 * stopping the service stops the node, not its tasks */
		buf_printf(&b, "\nKillMode=process\n"
			       "Restart=on-failure\n"
			       "RestartSec=2\n"
			       "TimeoutStopSec=30\n"
			       "LimitNOFILE=1048576\n\n"
			       "[Install]\n"
			       "WantedBy=multi-user.target\n");
	} else {
		buf_printf(&b, "#!/sbin/openrc-run\n"
			       "%s (orch uninstall removes it). No secret in here: the node resumes from\n"
			       "# its data directory, which holds its certificate and keys.\n"
			       "description=\"orch node %s (data in %s)\"\n"
			       "command=\"%s\"\n"
			       "command_args=\"",
			   MARK, q->name, q->data_dir, exe);
		struct buf cl = {0};
		command_line(&cl, exe, q);
		buf_printf(&b, "%.*s\"\n", (int)(cl.len - strlen(exe) - 1), (const char *)cl.data + strlen(exe) + 1);
		buf_free(&cl);
		buf_printf(&b, "command_background=true\n"
			       "pidfile=\"/run/%s.pid\"\n"
			       "output_log=\"%s/orch.log\"\n"
			       "error_log=\"%s/orch.log\"\n"
			       "retry=\"TERM/30/KILL/5\"\n\n"
			       "depend() {\n"
			       "\tneed net\n"
			       "\tafter firewall\n"
			       "}\n",
			   name, q->data_dir, q->data_dir);
	}
	if (!(rc = mkdirs(dir, err)) && !(rc = mkdirs(wants, err)) &&
	    !(rc = write_file(file, &b, is == INIT_SYSTEMD ? 0644 : 0755, err)) && !(rc = link_to(link, target, err))) {
		char rec[2 * PATH_MAX + 4];
		snprintf(rec, sizeof rec, "%s\n%s\n", file, link);
		rc = layout_write_text(q->data_dir, LAYOUT_INSTALLED, rec, err);
	}
	buf_free(&b);
	if (rc)
		return rc;
	if (is == INIT_SYSTEMD)
		systemd_reload();
	snprintf(msg, cap, "installed %s %s (enabled: %s); the node starts on boot\n",
		 is == INIT_SYSTEMD ? "systemd unit" : "OpenRC service", file, link);
	return 0;
}

int install_remove(const char *data_dir, char *msg, size_t cap, char *err)
{
	char rec[2 * PATH_MAX + 4];
	int rc = layout_read_text(data_dir, LAYOUT_INSTALLED, rec, sizeof rec, err);
	if (rc)
		return rc;
	if (!rec[0])
		return errf(err, E_NOTFOUND, "nothing installed for the node of %s (orch init|join --install)", data_dir);
	size_t len = 0;
	msg[0] = 0;
	bool systemd = false;
	for (char *line = strtok(rec, "\n"); line; line = strtok(NULL, "\n")) {
		struct stat st;
		if (lstat(line, &st)) {
			if (errno != ENOENT)
				return errf(err, E_IO, "%s: %s", line, strerror(errno));
			continue;
		}
		/* only what orch wrote: a link, or a file that carries the mark */
		if (S_ISREG(st.st_mode)) {
			char head[256] = "";
			FILE *f = fopen(line, "re");
			size_t n = f ? fread(head, 1, sizeof head - 1, f) : 0;
			if (f)
				fclose(f);
			head[n] = 0;
			if (!strstr(head, MARK))
				return errf(err, E_STATE, "%s was not written by orch --install (left alone)", line);
			systemd = systemd || strstr(line, ".service");
		} else if (!S_ISLNK(st.st_mode))
			return errf(err, E_STATE, "%s is neither a file orch wrote nor a link (left alone)", line);
		if (unlink(line))
			return errf(err, E_IO, "remove %s: %s", line, strerror(errno));
		if (len < cap)
			len += (size_t)snprintf(msg + len, cap - len, "removed %s\n", line);
	}
	if (systemd)
		systemd_reload();
	return layout_write_text(data_dir, LAYOUT_INSTALLED, NULL, err);
}
