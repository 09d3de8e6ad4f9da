#include "node/worker.h"
#include "util/err.h"
#include "util/layout.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool worker_mark_load(const char *data_dir)
{
	char p[LAYOUT_PATH_MAX];
	return layout_path(p, sizeof p, data_dir, LAYOUT_WORKER) && access(p, F_OK) == 0;
}

int worker_mark_save(const char *data_dir, const char *const *peers, size_t n, char *err)
{
	char p[LAYOUT_PATH_MAX], tmp[LAYOUT_PATH_MAX + 8];
	if (!layout_path(p, sizeof p, data_dir, LAYOUT_WORKER))
		return errf(err, E_INVAL, "data directory path too long: %s", data_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", p);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return errf(err, E_IO, "write %s: %s", tmp, strerror(errno));
	fprintf(f, "# worker-only node: no raft log, no state replica, no data key; whom to ask who leads:\n");
	for (size_t i = 0; i < n && i < WORKER_PEERS_MAX; i++)
		if (peers[i] && peers[i][0] && strlen(peers[i]) < 64 && !strchr(peers[i], '\n'))
			fprintf(f, "%s\n", peers[i]);
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, p)) {
		unlink(tmp);
		return errf(err, E_IO, "write %s: %s", p, strerror(errno));
	}
	return 0;
}

size_t worker_peers_load(const char *data_dir, char peers[][64])
{
	char p[LAYOUT_PATH_MAX], line[128];
	size_t n = 0;
	FILE *f = layout_path(p, sizeof p, data_dir, LAYOUT_WORKER) ? fopen(p, "re") : NULL;
	while (f && n < WORKER_PEERS_MAX && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (line[0] && line[0] != '#' && strlen(line) < 64)
			snprintf(peers[n++], 64, "%s", line);
	}
	if (f)
		fclose(f);
	return n;
}

void worker_mark_remove(const char *data_dir)
{
	char p[LAYOUT_PATH_MAX];
	if (layout_path(p, sizeof p, data_dir, LAYOUT_WORKER))
		unlink(p);
}

enum worker_route worker_route(enum op op)
{
	switch (op) {
	/* this node's own: its identity and raft view, its tasks' logs and its blobs */
	case OP_PING:
	case OP_STATUS:
	case OP_LEAVE:
	case OP_LOGS:
	case OP_BLOB_GET:
	/* an archive on this machine: blobs land here, the record is a command (forwarded) */
	case OP_IMAGE_LOAD:
	/* streams from the nodes that ran the tasks, which the leader names (node/logfan.c) */
	case OP_LOGS_CLUSTER:
	/* the same: the task's node runs it (node/execfan.c) */
	case OP_EXEC:
	case OP_EXEC_INPUT:
		return WORKER_HERE;
	/* fan out over the cluster from the state this node lacks (the local-socket ops below;
	 * these are open to remote users too, net/access.h) */
	case OP_IMAGE_PULL:
	case OP_IMAGE_PRUNE:
	case OP_IMAGE_DISK:
	/* the tokens are opened with the data key, which only managers hold */
	case OP_TOKEN_SHOW:
	case OP_TOKEN_ROTATE:
		return WORKER_REFUSE;
	default:
		break;
	}
	const struct proto_op *po = &proto_ops[op];
	if (po->via == VIA_PEER)
		return WORKER_HERE; /* between nodes: what a peer asks of this node */
	if (po->via == VIA_LOCAL)
		return WORKER_REFUSE; /* fans out over the cluster from the state this node lacks */
	return WORKER_LEADER;
}
