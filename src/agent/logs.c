#include "agent/logs.h"
#include "agent/agent_state.h"
#include "agent/tasks.h"
#include "net/conn.h"
#include "net/rpc_reply.h"
#include "util/layout.h"
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct rotate_job {
	uv_work_t req;
	char path[700];
};

/* copy then truncate: the container keeps its O_APPEND descriptor (worker thread) */
static void rotate_work(uv_work_t *req)
{
	struct rotate_job *j = req->data;
	char p1[720];
	snprintf(p1, sizeof p1, "%s.1", j->path);
	int in = open(j->path, O_RDONLY | O_CLOEXEC), out = open(p1, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char buf[65536];
	ssize_t n;
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (truncate(j->path, 0))
		log_warn(NULL, "truncate %s: %s", j->path, strerror(errno));
}

static void rotate_done(uv_work_t *req, int status)
{
	(void)status;
	free(req->data);
}

void logs_rotate(struct agent *a)
{
	for (struct atask *t = a->tasks; t; t = t->next) {
		if (t->phase != P_RUNNING)
			continue;
		char p[700];
		layout_task_path(p, sizeof p, t->job.dir, LAYOUT_TASK_LOG);
		struct stat st;
		if (stat(p, &st) || st.st_size < 10 * 1024 * 1024)
			continue;
		struct rotate_job *j = xcalloc(1, sizeof *j);
		j->req.data = j;
		snprintf(j->path, sizeof j->path, "%s", p);
		uv_queue_work(a->h->loop, &j->req, rotate_work, rotate_done);
	}
}

#define LOG_CHUNK 65536

static void send_log(struct conn *c, uint64_t id, const char *data, size_t n, bool more)
{
	struct mpw w;
	rpc_reply_begin(&w, id, 0);
	mpw_key(&w, "data");
	mpw_strn(&w, data, n);
	mpw_kbool(&w, "more", more);
	rpc_reply_send(c, &w);
}

/* Sends from off to the end of the file; returns the new offset. */
static off_t pump(struct conn *c, uint64_t id, const char *path, off_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return off;
	struct stat st;
	fstat(fd, &st);
	if (st.st_size < off)
		off = 0; /* rotated */
	char *buf = xmalloc(LOG_CHUNK);
	ssize_t n;
	while ((n = pread(fd, buf, LOG_CHUNK, off)) > 0) {
		send_log(c, id, buf, (size_t)n, true);
		off += n;
	}
	free(buf);
	close(fd);
	return off;
}

void logs_op(struct agent *a, struct conn *c, const struct req_logs *q)
{
	uint64_t id = q->id, tid = q->task_id;
	int64_t tail = q->tail;
	bool follow = q->follow;
	char path[700];
	layout_task_file(path, sizeof path, a->h->data_dir, tid, LAYOUT_TASK_LOG);
	struct stat st;
	if (!tid || stat(path, &st)) {
		rpc_reply_err(c, id, E_NOTFOUND, "no log for this task on this node");
		return;
	}
	off_t off = 0;
	if (tail >= 0) { /* find the start of the last `tail` lines */
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		off_t pos = st.st_size;
		int64_t lines = 0;
		char buf[4096];
		while (fd >= 0 && pos > 0 && lines <= tail) {
			off_t from = pos > (off_t)sizeof buf ? pos - (off_t)sizeof buf : 0;
			ssize_t n = pread(fd, buf, (size_t)(pos - from), from);
			if (n <= 0)
				break;
			for (ssize_t i = n - 1; i >= 0; i--) {
				if (buf[i] == '\n' && from + i + 1 != st.st_size && ++lines > tail) {
					off = from + i + 1;
					break;
				}
			}
			if (lines > tail)
				break;
			pos = from;
		}
		if (fd >= 0)
			close(fd);
	}
	off = pump(c, id, path, off);
	struct atask *t = tasks_find(a, tid);
	if (follow && t && t->phase != P_DONE) {
		struct follower *f = xcalloc(1, sizeof *f);
		f->conn = c;
		f->req_id = id;
		f->task_id = tid;
		f->off = off;
		f->next = a->followers;
		a->followers = f;
		return;
	}
	send_log(c, id, "", 0, false);
}

void logs_followers_tick(struct agent *a)
{
	for (struct follower **pp = &a->followers; *pp;) {
		struct follower *f = *pp;
		char path[700];
		layout_task_file(path, sizeof path, a->env.data_dir, f->task_id, LAYOUT_TASK_LOG);
		f->off = pump(f->conn, f->req_id, path, f->off);
		struct atask *t = tasks_find(a, f->task_id);
		if (!t || t->phase == P_DONE) {
			send_log(f->conn, f->req_id, "", 0, false);
			*pp = f->next;
			free(f);
		} else
			pp = &f->next;
	}
}

void logs_conn_gone(struct agent *a, struct conn *c)
{
	for (struct follower **pp = &a->followers; *pp;) {
		if ((*pp)->conn == c) {
			struct follower *f = *pp;
			*pp = f->next;
			free(f);
		} else
			pp = &(*pp)->next;
	}
}

void logs_free(struct agent *a)
{
	while (a->followers) {
		struct follower *f = a->followers;
		a->followers = f->next;
		free(f);
	}
}
