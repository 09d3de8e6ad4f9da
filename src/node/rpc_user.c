/* Users of the remote API (orch-user(1)): the leader has the cluster CA sign the CSR a
 * client made for its own key (the key never leaves the client), records the user with
 * the certificate's serial, and answers with the certificate and the CA to trust. Removing
 * the user revokes the certificate: every node refuses it once it has applied the removal,
 * the leader at once (node/rpc.c). */
#include "node/daemon.h"
#include "node/creds.h"
#include "pki/pki.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct user_add {
	char *cert, *ca; /* PEM */
	char serial[48];
};

/* The cluster CA signs csr for a user certificate (CN=name, OU=user:<role>): the PEM of
 * the certificate and of the CA bundle to trust, and the certificate's serial (hex). */
static int sign_user(struct daemon *d, const char *name, enum peer_role role, const char *csr, struct user_add *out,
		     char *err)
{
	struct buf cert = {0};
	/* for as long as node certificates (orch init --cert-expiry) */
	int rc = creds_sign_user(&d->store, d->data_dir, csr, name, role, d->store.cluster.cert_days, &cert, err);
	if (!rc)
		rc = pki_serial((const char *)cert.data, out->serial, sizeof out->serial, err);
	if (rc) {
		buf_free(&cert);
		return errwrap(err, rc, "user.add");
	}
	out->cert = (char *)cert.data;
	out->ca = xstrdup(d->store.cluster.ca_certs);
	return 0;
}

static void user_add_free(struct user_add *u)
{
	free(u->cert);
	free(u->ca);
	free(u);
}

/* The answer to user.add (the certificate and the CA) and to user.rm, once committed. */
static void user_done(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct pending *p = data;
	struct user_add *u = p->ctx;
	(void)d;
	if (p->conn) {
		struct mpw w;
		rpc_reply_begin(&w, p->req_id, rc);
		if (rc)
			mpw_kstr(&w, "err", res->msg);
		else if (u) {
			mpw_kstr(&w, "cert", u->cert);
			mpw_kstr(&w, "ca", u->ca);
			mpw_kstr(&w, "serial", u->serial);
		}
		rpc_reply_send(p->conn, &w);
	}
	if (u)
		user_add_free(u);
	pending_free(p);
}

void rpc_user_add(struct daemon *d, struct conn *c, const struct req_user_add *a)
{
	char err[ERR_LEN];
	enum peer_role role = peer_role_parse(a->role);
	if (!pki_user_name_ok(a->name)) {
		rpc_reply_err(c, a->id, E_INVAL, "user.add: a user name is 1-63 of A-Z a-z 0-9 . _ @ -");
		return;
	}
	if (role == PROLE_NONE) {
		rpc_reply_err(c, a->id, E_INVAL, "user.add: role must be viewer, operator or admin");
		return;
	}
	if (table_get_str(&d->store.users, a->name)) {
		snprintf(err, sizeof err, "user %s exists (orch user rm %s first to issue a new certificate)", a->name,
			 a->name);
		rpc_reply_err(c, a->id, E_EXISTS, err);
		return;
	}
	struct user_add *u = xcalloc(1, sizeof *u);
	if (sign_user(d, a->name, role, a->csr, u, err)) {
		rpc_reply_err(c, a->id, E_INVAL, err);
		user_add_free(u);
		return;
	}
	struct cmd_user_put b = {.name = a->name, .role = a->role, .serial = u->serial, .at = clock_wall(d->clock)};
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, CMD_USER_PUT, &b);
	struct pending *p = pending_new(d, c, a->id);
	p->ctx = u;
	if (daemon_submit(d, CMD_USER_PUT, w.sb.data, w.sb.size, user_done, p, err)) {
		rpc_reply_err(c, a->id, E_NOLEADER, err);
		user_add_free(u);
		pending_free(p);
	} else
		log_info(d->ident.name, d->clock, "user %s (%s) added, certificate serial %s", a->name, a->role, u->serial);
	mpw_free(&w);
}

void rpc_users(struct daemon *d, struct conn *c, const struct req_users *a)
{
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_key(&w, "users");
	mpw_arr(&w, (uint32_t)d->store.users.n);
	TABLE_FOREACH(&d->store.users, const struct user, u)
		schema_encode(&user_schema, u, &w);
	rpc_reply_send(c, &w);
}

void rpc_user_rm(struct daemon *d, struct conn *c, const struct req_user_rm *a)
{
	struct cmd_user_rm b = {.name = a->name};
	rpc_submit(d, c, a->id, CMD_USER_RM, &b, user_done);
}
