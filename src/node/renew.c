#include "node/renew.h"
#include "node/creds.h"
#include "node/daemon.h"
#include "node/feed.h"
#include "net/conn.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "util/err.h"
#include "util/log.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENEW_RETRY_MS 10000  /* an unanswered request is sent again after this */
#define RENEW_WARN_MS 60000   /* an expired certificate is reported this often */

int64_t renew_due(int64_t not_before, int64_t not_after, uint64_t node_id)
{
	int64_t issued = not_before + PKI_BACKDATE_S;
	if (issued >= not_after)
		issued = not_before;
	int64_t life = not_after - issued;
	if (life <= 0)
		return not_after;
	/* a node's share of the jitter comes from its id, which is random: no clock and no
	 * state needed to spread a cluster's renewals over a tenth of the lifetime */
	uint64_t h = node_id * 0x9e3779b97f4a7c15ull;
	int64_t spread = life / 10;
	int64_t jitter = spread > 0 ? (int64_t)((h >> 11) % (uint64_t)spread) : 0;
	return issued + life * 2 / 3 - jitter;
}

static void tls_path(struct daemon *d, char *out, size_t n)
{
	tls_dir(d->data_dir, out, n);
}

/* Reads tls/node.crt: its expiry and when to renew it. */
static int read_cert(struct daemon *d, char *err)
{
	char dir[600], p[700];
	tls_path(d, dir, sizeof dir);
	snprintf(p, sizeof p, "%s/node.crt", dir);
	struct buf c = {0};
	int64_t nb = 0, na = 0;
	int rc = pki_read_file(p, &c, err);
	if (!rc && !(rc = pki_not_before((char *)c.data, &nb, err)) && !(rc = pki_not_after((char *)c.data, &na, err))) {
		d->renew.not_after = na;
		d->renew.due = renew_due(nb, na, d->ident.id);
	}
	buf_free(&c);
	snprintf(p, sizeof p, "%s/ca.crt", dir);
	if (!rc && !pki_read_file(p, &c, err))
		d->renew.ca_tag = feed_ca_tag((char *)c.data);
	buf_free(&c);
	return rc;
}

static int64_t now_s(struct daemon *d)
{
	return (int64_t)(clock_wall(d->clock) / 1000);
}

static int expired_msg(struct daemon *d, char *err)
{
	char when[32];
	time_t t = (time_t)d->renew.not_after;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* ERR_LEN: the data directory is the operator's to name (orch-ca(1) says it) */
	return errf(err, E_AUTH,
		    "certificate expired at %s (off longer than it lives): no peer accepts it. To come back: orch node "
		    "rm %s on a manager, empty the data directory, join again",
		    when, d->ident.name);
}

static void say_expired(struct daemon *d)
{
	uint64_t now = clock_now(d->clock);
	if (d->renew.warned_ms && now - d->renew.warned_ms < RENEW_WARN_MS)
		return;
	d->renew.warned_ms = now ? now : 1;
	char err[ERR_LEN];
	expired_msg(d, err);
	log_error(d->ident.name, d->clock, "%s", err);
}

int renew_start(struct daemon *d, char *err)
{
	if (read_cert(d, err)) {
		log_warn(d->ident.name, d->clock, "certificate renewal: %s", err);
		return 0;
	}
	if (d->renew.not_after > now_s(d))
		return 0;
	/* a manager may be the sole voter, which signs its own once it leads */
	if (d->worker)
		return expired_msg(d, err);
	say_expired(d);
	return 0;
}

/* Checks what came back and puts it in place. */
static int install(struct daemon *d, const char *key, const char *cert, const char *bundle, char *err)
{
	struct peer p;
	char cid[17], dir[600];
	int rc = pki_peer_of_pem(cert, &p, cid, err);
	if (rc)
		return rc;
	if (p.kind != PEER_NODE || p.node_id != d->ident.id || strcmp(cid, d->ident.tls.cluster_hex))
		return errf(err, E_AUTH, "the new certificate is not this node's");
	if (!pki_key_matches(cert, key))
		return errf(err, E_AUTH, "the new certificate is not of the key sent");
	if ((rc = pki_verify(bundle, cert, err)))
		return errwrap(err, rc, "the new certificate");
	if ((rc = creds_renew_save(d->data_dir, key, cert, bundle, err)))
		return rc;
	tls_path(d, dir, sizeof dir);
	if ((rc = tls_reload(&d->ident.tls, dir, err)))
		return rc;
	char serial[80] = "?";
	char e2[ERR_LEN];
	pki_serial(cert, serial, sizeof serial, e2);
	int64_t na = 0;
	pki_not_after(cert, &na, e2);
	log_info(d->ident.name, d->clock, "certificate renewed: serial %s, valid until %lld", serial, (long long)na);
	read_cert(d, e2);
	d->renew.warned_ms = 0;
	return 0;
}

struct renew_req {
	struct buf key;
	unsigned generation;
};

static void req_free(struct renew_req *r)
{
	if (r->key.data)
		OPENSSL_cleanse(r->key.data, r->key.cap);
	buf_free(&r->key);
	free(r);
}

static void replied(struct pending *p, const msgpack_object *resp)
{
	struct daemon *d = p->d;
	struct renew_req *r = p->ctx;
	p->ctx = NULL;
	char err[ERR_LEN];
	int64_t rc = -1;
	if (r->generation != d->renew.generation || d->stopping) {
		req_free(r);
		return;
	}
	if (!resp) { /* the link went: the next tick may ask the next leader */
		d->renew.sent_ms = 0;
		req_free(r);
		return;
	}
	/* a refusal is asked again after RENEW_RETRY_MS (sent_ms stays), not on every tick */
	mp_get_i64(resp, "rc", &rc);
	char *cert = rc ? NULL : mp_get_strdup(resp, "cert"), *ca = rc ? NULL : mp_get_strdup(resp, "ca");
	if (rc) {
		char msg[ERR_LEN] = "";
		mp_get_strbuf(resp, "err", msg, sizeof msg);
		log_warn(d->ident.name, d->clock, "certificate renewal refused by the leader: %s", msg);
	} else if (!cert || !ca)
		log_warn(d->ident.name, d->clock, "certificate renewal: the leader's reply holds no certificate");
	else if (install(d, (char *)r->key.data, cert, ca, err))
		log_warn(d->ident.name, d->clock, "certificate renewal: %s", err);
	else {
		d->renew.generation++;
		d->renew.sent_ms = 0;
	}
	free(cert);
	free(ca);
	req_free(r);
}

/* The leader's own: signed here, with the role its record says. */
static void renew_self(struct daemon *d, struct renew_req *r, const char *csr)
{
	char err[ERR_LEN];
	struct buf cert = {0};
	const struct node *n = table_get_u64(&d->store.nodes, d->ident.id);
	int rc = !n ? errf(err, E_STATE, "this node has no record yet")
		    : creds_sign_node(&d->store, d->data_dir, csr, d->ident.id, !n->worker, &cert, err);
	char *chain = rc ? NULL : creds_chain(&d->store, (char *)cert.data);
	if (!rc && !(rc = install(d, (char *)r->key.data, chain, d->store.cluster.ca_certs, err))) {
		d->renew.generation++;
		renew_record(d, d->ident.id, (char *)cert.data);
	}
	free(chain);
	if (rc)
		log_warn(d->ident.name, d->clock, "certificate renewal: %s", err);
	buf_free(&cert);
	req_free(r);
}

void renew_tick(struct daemon *d)
{
	if (d->stopping || d->locked)
		return;
	char err[ERR_LEN];
	if (!d->renew.due && read_cert(d, err))
		return;
	int64_t now = now_s(d);
	bool leader = cons_is_leader(&d->cons);
	if (leader && !d->renew.recorded) {
		/* the first node's certificate came from orch init, not from a leader's signing */
		const struct node *me = table_get_u64(&d->store.nodes, d->ident.id);
		if (me && me->cert_expires != (uint64_t)d->renew.not_after) {
			char dir[600], p[700];
			struct buf c = {0};
			tls_path(d, dir, sizeof dir);
			snprintf(p, sizeof p, "%s/node.crt", dir);
			if (!pki_read_file(p, &c, err))
				renew_record(d, d->ident.id, (char *)c.data);
			buf_free(&c);
		}
		d->renew.recorded = me != NULL;
	}
	/* the cluster's bundle is not ours: a CA rotation started or ended (node/carot.h) */
	uint64_t want = d->store.has_cluster ? feed_ca_tag(d->store.cluster.ca_certs) : d->renew.want_tag;
	bool moved = want && d->renew.ca_tag && want != d->renew.ca_tag;
	if (now < d->renew.due && !moved)
		return;
	if (d->renew.not_after <= now && !leader) {
		say_expired(d); /* a sole manager that leads may still sign its own */
		return;
	}
	uint64_t mono = clock_now(d->clock);
	if (d->renew.sent_ms && mono - d->renew.sent_ms < RENEW_RETRY_MS)
		return;
	struct renew_req *r = xcalloc(1, sizeof *r);
	r->generation = d->renew.generation;
	struct buf csr = {0};
	if (creds_csr(&r->key, &csr, err)) {
		log_warn(d->ident.name, d->clock, "certificate renewal: %s", err);
		req_free(r);
		buf_free(&csr);
		return;
	}
	if (leader) {
		renew_self(d, r, (char *)csr.data);
		buf_free(&csr);
		return;
	}
	struct req_cert_renew q = {.csr = (char *)csr.data};
	struct mpw w;
	mpw_init(&w);
	proto_encode(&w, OP_CERT_RENEW, 1, &q);
	struct pending *p = pending_new(d, NULL, 0);
	p->ctx = r;
	p->on_reply = replied;
	if (link_forward_raw(d, p, w.sb.data, w.sb.size, err)) {
		TRACE("renew", d->ident.name, "not sent: %s", err);
		pending_free(p);
		req_free(r);
	} else
		d->renew.sent_ms = mono ? mono : 1;
	mpw_free(&w);
	buf_free(&csr);
}

/* ---- the leader ---------------------------------------------------------------------- */

void renew_record(struct daemon *d, uint64_t node_id, const char *cert)
{
	char err[ERR_LEN], fp[PKI_FP_HEX];
	int64_t na = 0;
	if (pki_not_after(cert, &na, err) || pki_fingerprint(d->store.cluster.ca_certs, fp, err))
		return;
	struct cmd_node_update b = {.id = node_id, .cert_expires = (uint64_t)na, .cert_ca = fp};
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, CMD_NODE_UPDATE, &b);
	if (daemon_submit(d, CMD_NODE_UPDATE, w.sb.data, w.sb.size, NULL, NULL, err))
		TRACE("renew", d->ident.name, "recording the certificate of %016llx: %s", (unsigned long long)node_id, err);
	mpw_free(&w);
}

void rpc_cert_renew(struct daemon *d, struct conn *c, const struct req_cert_renew *a)
{
	char err[ERR_LEN];
	struct peer who;
	conn_peer(c, &who);
	const struct node *n = who.kind == PEER_NODE ? table_get_u64(&d->store.nodes, who.node_id) : NULL;
	if (who.kind != PEER_NODE) {
		rpc_reply_err(c, a->id, E_AUTH, "cert.renew: only a node renews its own certificate");
		return;
	}
	if (!n) {
		rpc_reply_err(c, a->id, E_AUTH, "cert.renew: this node is not a member of the cluster");
		return;
	}
	struct buf cert = {0};
	int rc = creds_sign_node(&d->store, d->data_dir, a->csr, n->id, !n->worker, &cert, err);
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
		buf_free(&cert);
		return;
	}
	struct mpw w;
	char *chain = creds_chain(&d->store, (char *)cert.data);
	rpc_reply_begin(&w, a->id, 0);
	mpw_kstr(&w, "cert", chain);
	free(chain);
	mpw_kstr(&w, "ca", d->store.cluster.ca_certs);
	rpc_reply_send(c, &w);
	log_info(d->ident.name, d->clock, "renewed the certificate of node %016llx (%s)", (unsigned long long)n->id,
		 n->name ? n->name : "?");
	renew_record(d, n->id, (char *)cert.data);
	buf_free(&cert);
}
