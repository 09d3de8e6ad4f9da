#include "agent/exec.h"
#include "agent/tasks.h"
#include "net/conn.h"
#include "net/rpc_reply.h"
#include "runtime/runproc.h"
#include "util/layout.h"
#include "util/log.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define CHUNK 32768                 /* bytes read from the process at a time */
#define BACKLOG_HIGH (1u << 20)     /* output queued on the conn above which reading waits */
#define INPUT_MAX (8u << 20)        /* input the command has not read yet */
#define DRAIN_MS 500                /* after the exit: output still held open by a child */
#define RECHECK_MS 20

/* the process's descriptors on our side: stdin, stdout, stderr; with a terminal only
 * the first, its master, read and written */
enum { CH_IN, CH_OUT, CH_ERR, CH_N };

struct exec_sess {
	struct agent *a;
	struct conn *conn; /* NULL once it has gone */
	uint64_t req_id, task_id;
	struct exec_sess *next;
	/* the start, on a worker thread */
	uv_work_t work;
	struct rt rt;
	struct rt_exec_req rq;
	char cid[64], bundle[700];
	char **argv;
	int child[3]; /* the process's ends of the pipes, closed once it has them */
	int rc;
	char err[ERR_LEN];
	/* then, on the loop */
	bool starting, started, ending;
	int pid, status;
	bool exited;
	uint64_t exit_at;
	int fd[CH_N];
	uv_poll_t poll[CH_N];
	bool polling[CH_N];
	uv_timer_t timer;
	int handles;
	struct buf inq;
	bool in_eof, rows_pending;
	unsigned rows, cols;
};

char **exec_argv(const msgpack_object *cmd, char *err)
{
	if (!cmd || cmd->type != MSGPACK_OBJECT_ARRAY || !cmd->via.array.size) {
		errf(err, E_INVAL, "exec: no command given");
		return NULL;
	}
	uint32_t n = cmd->via.array.size;
	if (n > PROTO_EXEC_ARGS_MAX) {
		errf(err, E_INVAL, "exec: %u arguments; at most %u", n, PROTO_EXEC_ARGS_MAX);
		return NULL;
	}
	size_t bytes = 0;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *o = &cmd->via.array.ptr[i];
		if (!mp_is_str(o) || memchr(o->via.str.ptr, 0, o->via.str.size)) {
			errf(err, E_INVAL, "exec: argument %u is not a string without NUL bytes", i + 1);
			return NULL;
		}
		bytes += o->via.str.size + 1;
	}
	if (bytes > PROTO_EXEC_ARGS_BYTES) {
		errf(err, E_INVAL, "exec: the command's arguments take %zu bytes; at most %u", bytes, PROTO_EXEC_ARGS_BYTES);
		return NULL;
	}
	char **v = xmalloc((n + 1) * sizeof *v + bytes);
	char *p = (char *)(v + n + 1);
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *o = &cmd->via.array.ptr[i];
		memcpy(p, o->via.str.ptr, o->via.str.size);
		p[o->via.str.size] = 0;
		v[i] = p;
		p += o->via.str.size + 1;
	}
	v[n] = NULL;
	return v;
}

/* ---- ending ---------------------------------------------------------------------------------- */

static void sess_handle_closed(uv_handle_t *h)
{
	struct exec_sess *s = h->data;
	if (--s->handles)
		return;
	struct agent *a = s->a;
	for (struct exec_sess **pp = &a->execs; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	for (int i = 0; i < CH_N; i++)
		if (s->fd[i] >= 0)
			close(s->fd[i]);
	buf_free(&s->inq);
	free(s->argv);
	free(s);
	agent_job_done(a);
}

static void close_handles(struct exec_sess *s)
{
	s->handles++; /* held while they are asked to close */
	for (int i = 0; i < CH_N; i++)
		if (s->polling[i]) {
			s->polling[i] = false;
			s->handles++;
			uv_close((uv_handle_t *)&s->poll[i], sess_handle_closed);
		}
	s->handles++;
	uv_close((uv_handle_t *)&s->timer, sess_handle_closed);
	sess_handle_closed((uv_handle_t *)&s->timer);
}

/* The last frame (the exit code, or the reason it never ran), then the handles go. */
static void sess_end(struct exec_sess *s, const char *why)
{
	if (s->ending)
		return;
	s->ending = true;
	if (s->conn && why)
		rpc_reply_err(s->conn, s->req_id, s->rc ? s->rc : E_FAIL, why);
	else if (s->conn) {
		int code = WIFEXITED(s->status) ? WEXITSTATUS(s->status) : 128 + WTERMSIG(s->status);
		struct mpw w;
		rpc_reply_begin(&w, s->req_id, 0);
		mpw_kbool(&w, "more", false);
		mpw_ki64(&w, "exit_code", code);
		rpc_reply_send(s->conn, &w);
	}
	char tid[32];
	snprintf(tid, sizeof tid, "task:%llu", (unsigned long long)s->task_id);
	TRACE("exec", tid, "exec pid %d ended (%s)", s->pid, why ? why : "exited");
	if (s->started && !s->exited && s->pid > 0)
		kill(s->pid, SIGKILL); /* its exit stays with the reaper, unclaimed */
	if (!s->starting)
		close_handles(s);
}

/* ---- streaming --------------------------------------------------------------------------------- */

static void chan_update(struct exec_sess *s);

static void chan_close(struct exec_sess *s, int ch)
{
	if (s->fd[ch] < 0)
		return;
	if (s->polling[ch]) {
		uv_poll_stop(&s->poll[ch]);
		s->polling[ch] = false;
		s->handles++;
		uv_close((uv_handle_t *)&s->poll[ch], sess_handle_closed);
	}
	close(s->fd[ch]);
	s->fd[ch] = -1;
}

static bool outputs_done(const struct exec_sess *s)
{
	if (s->rq.tty)
		return s->fd[CH_IN] < 0;
	return s->fd[CH_OUT] < 0 && s->fd[CH_ERR] < 0;
}

static void maybe_done(struct exec_sess *s)
{
	if (!s->ending && s->exited && (outputs_done(s) || uv_now(s->a->h->loop) >= s->exit_at + DRAIN_MS))
		sess_end(s, NULL);
}

/* Reads what the process wrote on ch and sends it; false at its end. */
static bool pump_out(struct exec_sess *s, int ch)
{
	char buf[CHUNK];
	ssize_t n = read(s->fd[ch], buf, sizeof buf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) /* EOF, or EIO: a terminal whose every other end has closed */
		return false;
	if (s->conn) {
		struct mpw w;
		rpc_reply_begin(&w, s->req_id, 0);
		mpw_kbool(&w, "more", true);
		mpw_key(&w, ch == CH_ERR ? "err" : "out");
		mpw_bin(&w, buf, (size_t)n);
		rpc_reply_send(s->conn, &w);
	}
	return true;
}

static void flush_in(struct exec_sess *s)
{
	while (s->inq.len && s->fd[CH_IN] >= 0) {
		ssize_t n = write(s->fd[CH_IN], s->inq.data, s->inq.len);
		if (n > 0) {
			buf_consume(&s->inq, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* the command closed its input: what is left is dropped, as a pipe would */
		s->inq.len = 0;
		if (!s->rq.tty)
			chan_close(s, CH_IN);
	}
	if (!s->inq.len && s->in_eof && !s->rq.tty)
		chan_close(s, CH_IN);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct exec_sess *s = h->data;
	int ch = (int)(h - s->poll);
	if (s->ending)
		return;
	if (status < 0)
		events = UV_READABLE; /* the read says what went wrong */
	if ((events & UV_WRITABLE) && ch == CH_IN)
		flush_in(s);
	if ((events & (UV_READABLE | UV_DISCONNECT)) && (ch != CH_IN || s->rq.tty) && s->fd[ch] >= 0 &&
	    !pump_out(s, ch))
		chan_close(s, ch);
	if (!s->ending)
		chan_update(s);
	maybe_done(s);
}

/* What each descriptor waits for now: output while the conn keeps up, input while some is
 * queued. */
static void chan_update(struct exec_sess *s)
{
	bool slow = s->conn && conn_backlog(s->conn) > BACKLOG_HIGH;
	for (int ch = 0; ch < CH_N; ch++) {
		if (s->fd[ch] < 0 || !s->polling[ch])
			continue;
		int ev = 0;
		bool reads = ch != CH_IN || s->rq.tty;
		if (reads && !slow)
			ev |= UV_READABLE;
		if (ch == CH_IN && s->inq.len)
			ev |= UV_WRITABLE;
		if (ev)
			uv_poll_start(&s->poll[ch], ev, on_poll);
		else
			uv_poll_stop(&s->poll[ch]);
	}
	if (slow || s->exited)
		uv_timer_again(&s->timer);
}

static void on_timer(uv_timer_t *t)
{
	struct exec_sess *s = t->data;
	if (s->ending)
		return;
	chan_update(s);
	maybe_done(s);
}

static void set_size(struct exec_sess *s)
{
	if (s->rq.tty && s->fd[CH_IN] >= 0 && s->rows && s->cols) {
		struct winsize ws = {.ws_row = (unsigned short)s->rows, .ws_col = (unsigned short)s->cols};
		ioctl(s->fd[CH_IN], TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH to its foreground */
	}
	s->rows_pending = false;
}

/* ---- the start --------------------------------------------------------------------------------- */

static void start_work(uv_work_t *req)
{
	struct exec_sess *s = req->data;
	int master = -1;
	s->rc = rt_exec_start(&s->rt, &s->rq, &s->pid, &master, s->err);
	if (!s->rc && s->rq.tty)
		s->fd[CH_IN] = master;
}

static void start_done(uv_work_t *req, int status)
{
	struct exec_sess *s = req->data;
	(void)status;
	s->starting = false;
	for (int i = 0; i < 3; i++)
		if (s->child[i] >= 0)
			close(s->child[i]);
	if (s->rc || s->ending) {
		if (!s->rc && s->pid > 0)
			kill(s->pid, SIGKILL);
		if (!s->ending)
			sess_end(s, s->err);
		else
			close_handles(s);
		return;
	}
	s->started = true;
	char tid[32];
	snprintf(tid, sizeof tid, "task:%llu", (unsigned long long)s->task_id);
	TRACE("exec", tid, "exec pid %d started (tty %d)", s->pid, s->rq.tty);
	if (s->rq.tty)
		s->fd[CH_OUT] = s->fd[CH_ERR] = -1;
	for (int ch = 0; ch < CH_N; ch++) {
		if (s->fd[ch] < 0)
			continue;
		fcntl(s->fd[ch], F_SETFL, fcntl(s->fd[ch], F_GETFL) | O_NONBLOCK);
		if (uv_poll_init(s->a->h->loop, &s->poll[ch], s->fd[ch]) == 0) {
			s->poll[ch].data = s;
			s->polling[ch] = true;
		}
	}
	if (s->rows_pending)
		set_size(s);
	flush_in(s);
	chan_update(s);
	exec_claim_exits(s->a); /* a command that ended at once */
}

static struct exec_sess *sess_find(struct agent *a, struct conn *c, uint64_t id)
{
	for (struct exec_sess *s = a->execs; s; s = s->next)
		if (s->conn == c && s->req_id == id && !s->ending)
			return s;
	return NULL;
}

void exec_task(struct agent *a, struct conn *c, const struct req_exec_task *q)
{
	char err[ERR_LEN];
	struct atask *t = tasks_find(a, q->task_id);
	if (a->be->synthetic) {
		rpc_reply_err(c, q->id, E_UNSUPP, "exec: this node's tasks are hollow (nothing runs)");
		return;
	}
	if (!t || t->gone) {
		snprintf(err, sizeof err, "exec: task %llu does not run on this node", (unsigned long long)q->task_id);
		rpc_reply_err(c, q->id, E_NOTFOUND, err);
		return;
	}
	if (t->phase != P_RUNNING || t->exited || t->want_stop) {
		snprintf(err, sizeof err, "exec: task %llu is not running", (unsigned long long)q->task_id);
		rpc_reply_err(c, q->id, E_STATE, err);
		return;
	}
	if (sess_find(a, c, q->id)) {
		rpc_reply_err(c, q->id, E_EXISTS, "exec: a session with this id runs on this connection");
		return;
	}
	if (q->rows > 0xffff || q->cols > 0xffff) {
		rpc_reply_err(c, q->id, E_INVAL, "exec: terminal size over 65535");
		return;
	}
	char **argv = exec_argv(q->cmd.obj, err);
	if (!argv) {
		rpc_reply_err(c, q->id, E_INVAL, err);
		return;
	}
	struct exec_sess *s = xcalloc(1, sizeof *s);
	s->a = a;
	s->conn = c;
	s->req_id = q->id;
	s->task_id = t->id;
	s->argv = argv;
	s->rt = (struct rt){.runtime = a->env.runtime, .state_dir = a->env.state_dir};
	snprintf(s->cid, sizeof s->cid, "%s", t->job.cid);
	layout_task_path(s->bundle, sizeof s->bundle, t->job.dir, LAYOUT_TASK_BUNDLE);
	s->rq = (struct rt_exec_req){.id = s->cid, .bundle = s->bundle, .argv = (const char *const *)argv, .tty = q->tty,
				     .rows = (unsigned)q->rows, .cols = (unsigned)q->cols, .stdio = s->child};
	s->rows = (unsigned)q->rows;
	s->cols = (unsigned)q->cols;
	for (int i = 0; i < 3; i++)
		s->child[i] = s->fd[i] = -1;
	/* without a terminal: a pipe each way (stdin only when it is streamed) */
	int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	bool ok = true;
	if (!q->tty) {
		ok = (q->stdin ? pipe2(p[0], O_CLOEXEC) == 0 : (p[0][0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) &&
		     pipe2(p[1], O_CLOEXEC) == 0 && pipe2(p[2], O_CLOEXEC) == 0;
		s->child[0] = p[0][0], s->fd[CH_IN] = p[0][1];
		s->child[1] = p[1][1], s->fd[CH_OUT] = p[1][0];
		s->child[2] = p[2][1], s->fd[CH_ERR] = p[2][0];
	}
	uv_timer_init(a->h->loop, &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, on_timer, RECHECK_MS, RECHECK_MS);
	uv_timer_stop(&s->timer); /* kept with its repeat, for uv_timer_again */
	s->handles = 1;           /* the timer */
	s->next = a->execs;
	a->execs = s;
	a->jobs++; /* agent_stop waits for it (agent_job_done when freed) */
	if (!ok) {
		snprintf(s->err, sizeof s->err, "exec: pipe: %s", strerror(errno));
		s->rc = E_IO;
		sess_end(s, s->err);
		return;
	}
	s->starting = true;
	s->work.data = s;
	uv_queue_work(a->h->loop, &s->work, start_work, start_done);
}

bool exec_input(struct agent *a, struct conn *c, const struct req_exec_input *q)
{
	struct exec_sess *s = a ? sess_find(a, c, q->session) : NULL;
	if (!s)
		return false;
	/* before the start a terminal's input waits for it; without one, input goes to the
	 * pipe (none when the request did not ask for input) */
	if (q->data.n && !s->in_eof && (s->rq.tty || s->fd[CH_IN] >= 0)) {
		if (s->inq.len + q->data.n > INPUT_MAX) {
			s->rc = E_BUSY;
			sess_end(s, "exec: the command does not read its input (over 8 MiB waiting)");
			return true;
		}
		buf_append(&s->inq, q->data.p, q->data.n);
	}
	if (q->eof)
		s->in_eof = true;
	if (q->rows && q->cols && q->rows <= 0xffff && q->cols <= 0xffff) {
		s->rows = (unsigned)q->rows;
		s->cols = (unsigned)q->cols;
		s->rows_pending = true;
	}
	if (s->started) {
		if (s->rows_pending)
			set_size(s);
		flush_in(s);
		chan_update(s);
	}
	return true;
}

void exec_claim_exits(struct agent *a)
{
	for (struct exec_sess *s = a->execs; s; s = s->next) {
		if (!s->started || s->exited || s->ending || !runproc_claim(s->pid, &s->status))
			continue;
		s->exited = true;
		s->exit_at = uv_now(a->h->loop);
		chan_update(s);
		maybe_done(s);
	}
}

void exec_conn_gone(struct agent *a, struct conn *c)
{
	for (struct exec_sess *s = a->execs, *next; s; s = next) {
		next = s->next;
		if (s->conn == c) {
			s->conn = NULL;
			sess_end(s, "the client went away");
		}
	}
}

void exec_stop_all(struct agent *a)
{
	for (struct exec_sess *s = a->execs, *next; s; s = next) {
		next = s->next;
		if (s->conn)
			rpc_reply_err(s->conn, s->req_id, E_BUSY, "exec: the node is stopping");
		s->conn = NULL;
		sess_end(s, NULL);
	}
}
