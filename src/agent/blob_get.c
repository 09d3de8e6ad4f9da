#include "agent/blob_get.h"
#include "agent/agent_state.h"
#include "net/conn.h"
#include "net/rpc_reply.h"
#include "image/blobstore.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* opening and reading the chunk: a worker thread, not the loop */
static void blob_work(uv_work_t *req)
{
	struct blob_job *j = req->data;
	struct blobstore bs;
	if ((j->rc = blob_init(&bs, j->data_dir, j->err)))
		return;
	int fd = blob_open(&bs, j->digest, j->err);
	blob_fini(&bs);
	if (fd < 0) {
		j->rc = E_NOTFOUND;
		return;
	}
	struct stat st;
	fstat(fd, &st);
	j->size = (uint64_t)st.st_size;
	j->buf = xmalloc(j->len ? j->len : 1);
	j->n = j->off < j->size ? pread(fd, j->buf, j->len, (off_t)j->off) : 0;
	close(fd);
}

static void blob_done(uv_work_t *req, int status)
{
	struct blob_job *j = req->data;
	(void)status;
	struct conn *c = j->conn;
	for (struct blob_job **pp = &j->a->blob_jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (c && j->rc == E_NOTFOUND)
		rpc_reply_err(c, j->req_id, E_NOTFOUND, "blob not on this node");
	else if (c && j->rc)
		rpc_reply_err(c, j->req_id, E_IO, j->err);
	else if (c) {
		struct mpw w;
		rpc_reply_begin(&w, j->req_id, 0);
		mpw_ku64(&w, "size", j->size);
		mpw_key(&w, "data");
		mpw_bin(&w, j->buf, j->n > 0 ? (size_t)j->n : 0);
		rpc_reply_send(c, &w);
	}
	struct agent *a = j->a;
	free(j->buf);
	free(j);
	agent_job_done(a);
}

void blob_get_op(struct agent *a, struct conn *c, const struct req_blob_get *q)
{
	if (!digest_valid(q->digest)) {
		rpc_reply_err(c, q->id, E_INVAL, "blob.get: a sha256 digest is required");
		return;
	}
	struct blob_job *j = xcalloc(1, sizeof *j);
	snprintf(j->digest, sizeof j->digest, "%s", q->digest);
	j->off = q->offset;
	j->len = q->len ? q->len : 1 << 20;
	if (j->len > (4u << 20))
		j->len = 4u << 20;
	snprintf(j->data_dir, sizeof j->data_dir, "%s", a->h->data_dir);
	j->a = a;
	j->conn = c; /* the conn may go away meanwhile: agent_conn_gone */
	j->req_id = q->id;
	j->next = a->blob_jobs;
	a->blob_jobs = j;
	j->req.data = j;
	a->jobs++;
	uv_queue_work(a->h->loop, &j->req, blob_work, blob_done);
}

void blob_get_conn_gone(struct agent *a, struct conn *c)
{
	for (struct blob_job *j = a->blob_jobs; j; j = j->next)
		if (j->conn == c)
			j->conn = NULL;
}
