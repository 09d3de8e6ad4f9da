/* The join tokens (net/token.h, node/creds.h): shown and rotated on the local socket of a
 * node that holds the state and the data key (a manager). A rotation is one command
 * (cluster.tokens) through raft: once it applies, the old secret's hash is gone and every
 * leader refuses it; joined nodes are untouched (they use their certificates). */
#include "node/daemon.h"
#include "node/creds.h"
#include "util/log.h"
#include "util/mem.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "manager" -> 1, "worker" -> 2, absent -> both (3); 0 for anything else. */
static int kinds_of(const char *k)
{
	return !k ? 3 : !strcmp(k, "manager") ? 1 : !strcmp(k, "worker") ? 2 : 0;
}

static int put_tokens(struct daemon *d, struct mpw *w, int kinds, char *err)
{
	for (int worker = 0; worker < 2; worker++) {
		if (!(kinds & (worker ? 2 : 1)))
			continue;
		struct token t;
		char s[TOKEN_STR_LEN + 1];
		int rc = creds_token(&d->store, d->data_dir, worker, &t, err);
		if (rc)
			return rc;
		token_format(&t, s);
		mpw_kstr(w, worker ? "worker" : "manager", s);
		OPENSSL_cleanse(&t, sizeof t);
		OPENSSL_cleanse(s, sizeof s);
	}
	return 0;
}

/* A worker holds no state and no data key: the tokens are on the managers. */
static bool on_worker(struct daemon *d, struct conn *c, uint64_t id)
{
	if (d->worker)
		rpc_reply_err(c, id, E_UNSUPP, "token: a worker holds no tokens; run it on a manager's machine");
	return d->worker;
}

/* The kinds of token a show or rotate asks for; 0 (the request refused with a reply) on a
 * worker or for an unknown kind. */
static int asked_kinds(struct daemon *d, struct conn *c, uint64_t id, const char *kind)
{
	int kinds = kinds_of(kind);
	if (on_worker(d, c, id))
		return 0;
	if (!kinds)
		rpc_reply_err(c, id, E_INVAL, "token: expected manager or worker");
	return kinds;
}

void rpc_token_show(struct daemon *d, struct conn *c, const struct req_token_show *a)
{
	char err[ERR_LEN];
	int kinds = asked_kinds(d, c, a->id, a->kind);
	if (!kinds)
		return;
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	int rc = put_tokens(d, &w, kinds, err);
	if (rc) {
		mpw_free(&w);
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	rpc_reply_send(c, &w);
}

struct rotate {
	struct pending *p;
	int kinds;
	char tok[2][TOKEN_STR_LEN + 1]; /* the new manager and worker tokens */
};

static void rotated(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct rotate *r = data;
	if (r->p->conn) {
		struct mpw w;
		if (rc)
			rpc_reply_err(r->p->conn, r->p->req_id, rc, res->msg);
		else {
			/* from what was generated: this node may apply the entry a moment later */
			rpc_reply_begin(&w, r->p->req_id, 0);
			if (r->kinds & 1)
				mpw_kstr(&w, "manager", r->tok[0]);
			if (r->kinds & 2)
				mpw_kstr(&w, "worker", r->tok[1]);
			rpc_reply_send(r->p->conn, &w);
		}
	}
	OPENSSL_cleanse(r->tok, sizeof r->tok);
	if (!rc)
		log_info(d->ident.name, d->clock, "join token rotated (%s)", r->kinds == 3 ? "manager and worker" : r->kinds == 1 ? "manager" : "worker");
	pending_free(r->p);
	free(r);
}

void rpc_token_rotate(struct daemon *d, struct conn *c, const struct req_token_rotate *a)
{
	char err[ERR_LEN];
	int kinds = asked_kinds(d, c, a->id, a->kind);
	if (!kinds)
		return;
	if (!d->store.has_cluster || !d->store.cluster.ca_key) {
		rpc_reply_err(c, a->id, E_STATE, "token rotate: the cluster state holds no tokens (not caught up, or an older cluster)");
		return;
	}
	char *mh = NULL, *ms = NULL, *wh = NULL, *ws = NULL;
	struct token t[2];
	int rc = 0;
	if (kinds & 1)
		rc = creds_token_new(&d->store, d->data_dir, false, &t[0], &mh, &ms, err);
	if (!rc && (kinds & 2))
		rc = creds_token_new(&d->store, d->data_dir, true, &t[1], &wh, &ws, err);
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
	} else {
		struct cmd_cluster_tokens b = {.secret_hash = mh, .manager_token = ms, .worker_hash = wh, .worker_token = ws};
		struct mpw w;
		mpw_init(&w);
		cmd_body(&w, CMD_CLUSTER_TOKENS, &b);
		struct rotate *r = xcalloc(1, sizeof *r);
		r->p = pending_new(d, c, a->id);
		r->kinds = kinds;
		for (int i = 0; i < 2; i++)
			if (kinds & (1 << i))
				token_format(&t[i], r->tok[i]);
		if (daemon_submit(d, CMD_CLUSTER_TOKENS, w.sb.data, w.sb.size, rotated, r, err)) {
			rpc_reply_err(c, a->id, E_NOLEADER, err);
			pending_free(r->p);
			free(r);
		}
		mpw_free(&w);
	}
	OPENSSL_cleanse(t, sizeof t);
	free(mh);
	free(ms);
	free(wh);
	free(ws);
}
