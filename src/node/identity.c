#include "node/identity.h"
#include "node/creds.h"
#include "util/layout.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void path_of(const char *dir, char *out, size_t n)
{
	layout_path(out, n, dir, LAYOUT_IDENTITY);
}

uint64_t identity_new_id(void)
{
	uint64_t v = 0;
	while (!v) {
		random_bytes(&v, sizeof v);
		v &= 0x7fffffffffffffffull;
	}
	return v;
}

int identity_load(const char *dir_, struct identity *id, char *err)
{
	char path[600], line[512];
	path_of(dir_, path, sizeof path);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? errf(err, E_NOTFOUND, "%s: no identity", path) : errf(err, E_IO, "open %s: %s", path, strerror(errno));
	memset(id, 0, sizeof *id);
	int have = 0, rc = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		char *eq = strchr(line, '=');
		if (!eq || line[0] == '#')
			continue;
		*eq = 0;
		const char *k = line, *v = eq + 1;
		if (!strcmp(k, "id")) {
			id->id = strtoull(v, NULL, 16);
			have |= 1;
		} else if (!strcmp(k, "name")) {
			snprintf(id->name, sizeof id->name, "%s", v);
			have |= 2;
		} else if (!strcmp(k, "listen")) {
			snprintf(id->listen, sizeof id->listen, "%s", v);
			have |= 4;
		} else if (!strcmp(k, "advertise")) {
			snprintf(id->advertise, sizeof id->advertise, "%s", v);
			have |= 8;
		} else if (!strcmp(k, "cluster")) {
			if (strlen(v) != 16 || hex_decode(v, id->cluster_id, CLUSTER_ID_LEN)) {
				rc = errf(err, E_INVAL, "%s: bad cluster id", path);
				break;
			}
			have |= 16;
		}
	}
	fclose(f);
	if (!rc && (have != 31 || !id->id))
		rc = errf(err, E_INVAL, "%s: incomplete identity file of an older orch, or damaged (remove the data directory to start afresh)", path);
	if (rc)
		return rc;
	char dir[600];
	tls_dir(dir_, dir, sizeof dir);
	creds_recover(dir_); /* a renewal a crash cut short (node/creds.h) */
	if ((rc = tls_load(&id->tls, dir, err)))
		return errwrap(err, rc == E_NOTFOUND ? E_INVAL : rc, "node credentials");
	if (id->tls.node_id != id->id)
		return errf(err, E_INVAL, "%s/node.crt is not this node's certificate", dir);
	return 0;
}

int identity_save(const char *dir, const struct identity *id, char *err)
{
	char path[600], tmp[610], cid[17];
	path_of(dir, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	token_cluster_hex(id->cluster_id, cid);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return errf(err, E_IO, "create %s: %s", tmp, strerror(errno));
	char body[1024];
	int n = snprintf(body, sizeof body, "# orch node identity (its credentials are in tls/)\nid=%016llx\nname=%s\nlisten=%s\nadvertise=%s\ncluster=%s\n",
			 (unsigned long long)id->id, id->name, id->listen, id->advertise, cid);
	if (write(fd, body, (size_t)n) != n || fsync(fd)) {
		close(fd);
		return errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	}
	close(fd);
	if (rename(tmp, path))
		return errf(err, E_IO, "rename %s: %s", path, strerror(errno));
	return 0;
}

void identity_remove(const char *dir)
{
	char path[600];
	path_of(dir, path, sizeof path);
	unlink(path);
}
