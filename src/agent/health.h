/* Health checks of a running task: the Compose healthcheck (CMD / CMD-SHELL, run inside
 * the container with a hard timeout) and orch's own http / tcp probes (run by the agent
 * against the task's address). Blocking: run on a worker thread, with deadlines on the real
 * clock (they bound real sockets and processes, not node time). */
#ifndef ORCH_HEALTH_H
#define ORCH_HEALTH_H
#include <stdbool.h>
#include <stdint.h>
#include "runtime/runc.h"

enum check_kind { CHECK_CMD, CHECK_HTTP, CHECK_TCP };

struct check_req {
	enum check_kind kind;
	char **argv;          /* CHECK_CMD: NULL-terminated, owned by the request */
	char host[64];        /* http/tcp */
	uint16_t port;
	char path[256];
	int timeout_ms;
	const struct rt *rt;
	char cid[64];
	/* out */
	bool ok;
	char output[256];     /* first line of output or the error */
};

void health_run(struct check_req *c);

#endif
