#include "node/carot.h"
#include "node/creds.h"
#include "node/daemon.h"
#include "pki/pki.h"
#include "util/err.h"
#include "util/log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool carot_progress(const struct store *s, size_t *on_new, size_t *total)
{
	*on_new = *total = 0;
	char fp[PKI_FP_HEX], err[ERR_LEN];
	if (!s->has_cluster || !s->cluster.ca_old || !*s->cluster.ca_old || !s->cluster.ca_certs ||
	    pki_fingerprint(s->cluster.ca_certs, fp, err))
		return false;
	TABLE_FOREACH(&s->nodes, const struct node, n) {
		if (n->state != NS_READY)
			continue; /* a node down now may come back in time, or must rejoin */
		(*total)++;
		*on_new += n->cert_ca && !strcmp(n->cert_ca, fp);
	}
	return true;
}

static void ended(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)data;
	d->renew.carot_inflight = false;
	if (rc)
		log_warn(d->ident.name, d->clock, "ending the CA rotation: %s", res->msg);
	else
		log_info(d->ident.name, d->clock, "CA rotation done: every node holds a certificate of the new CA, the old CA left the bundle");
}

void carot_tick(struct daemon *d)
{
	size_t on, total;
	if (d->renew.carot_inflight || !carot_progress(&d->store, &on, &total) || on < total)
		return;
	/* the bundle's first certificate alone */
	const char *b = d->store.cluster.ca_certs, *end = strstr(b, "-----END CERTIFICATE-----");
	if (!end)
		return;
	size_t len = (size_t)(end - b) + strlen("-----END CERTIFICATE-----");
	char *first = xmalloc(len + 2);
	memcpy(first, b, len);
	memcpy(first + len, "\n", 2);
	struct cmd_cluster_ca c = {.ca_certs = first, .ca_cross = "", .ca_old = "", .ca_gen = d->store.cluster.ca_gen};
	struct mpw w;
	char err[ERR_LEN];
	mpw_init(&w);
	cmd_body(&w, CMD_CLUSTER_CA, &c);
	d->renew.carot_inflight = !daemon_submit(d, CMD_CLUSTER_CA, w.sb.data, w.sb.size, ended, NULL, err);
	mpw_free(&w);
	free(first);
}

/* The new CA's fingerprint is the one made with the command: this node (not the leader)
 * may not have applied the command yet. */
static void started(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	struct pending *p = data;
	if (p->conn) {
		if (rc)
			rpc_reply_err(p->conn, p->req_id, rc, res->msg);
		else {
			struct mpw w;
			rpc_reply_begin(&w, p->req_id, 0);
			mpw_kstr(&w, "fingerprint", p->ctx);
			rpc_reply_send(p->conn, &w);
		}
	}
	if (!rc)
		log_info(d->ident.name, d->clock, "CA rotation started: the nodes renew their certificates from the new CA");
	free(p->ctx);
	pending_free(p);
}

void rpc_ca_rotate(struct daemon *d, struct conn *c, const struct req_ca_rotate *a)
{
	char err[ERR_LEN], fp[PKI_FP_HEX];
	struct cmd_cluster_ca cmd;
	if (!a->cert != !a->key) {
		rpc_reply_err(c, a->id, E_INVAL, "ca.rotate: a CA certificate and its key go together");
		return;
	}
	int rc = creds_ca_rotate(&d->store, d->data_dir, a->cert, a->key, &cmd, fp, err);
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	struct pending *p = pending_new(d, c, a->id);
	p->ctx = xstrdup(fp);
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, CMD_CLUSTER_CA, &cmd);
	if (daemon_submit(d, CMD_CLUSTER_CA, w.sb.data, w.sb.size, started, p, err)) {
		rpc_reply_err(c, a->id, E_NOLEADER, err);
		free(p->ctx);
		pending_free(p);
	}
	mpw_free(&w);
	creds_ca_free(&cmd);
}
