#include "node/worker.h"
#include "util/err.h"
#include "util/layout.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

bool worker_mark_load(const char *data_dir)
{
	char p[LAYOUT_PATH_MAX];
	return layout_path(p, sizeof p, data_dir, LAYOUT_WORKER) && access(p, F_OK) == 0;
}

int worker_mark_save(const char *data_dir, char *err)
{
	char p[LAYOUT_PATH_MAX];
	if (!layout_path(p, sizeof p, data_dir, LAYOUT_WORKER))
		return errf(err, E_INVAL, "data directory path too long: %s", data_dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errf(err, E_IO, "write %s: %s", p, strerror(errno));
	static const char text[] = "worker-only node: no raft log, no state replica, no data key\n";
	int rc = write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1) && !fsync(fd) ? 0 : errf(err, E_IO, "write %s: %s", p, strerror(errno));
	close(fd);
	return rc;
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
		return WORKER_HERE;
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
