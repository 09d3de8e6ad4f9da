#include "creds_fixture.h"
#include "unit.h"
#include "cli/client.h"
#include "node/creds.h"
#include "secret/datakey.h"
#include "state/store.h"
#include "util/err.h"
#include "util/mem.h"
#include <errno.h>
#include <sys/stat.h>

void fixture_init(const char *data_dir, struct identity *id, struct token *mgr, struct token *wrk)
{
	char err[ERR_LEN] = "", tdir[600];
	struct datakey k;
	random_bytes(id->cluster_id, CLUSTER_ID_LEN);
	datakey_generate(&k);
	CHECK_EQ_INT(datakey_save(data_dir, &k, err), 0);
	tls_dir(data_dir, tdir, sizeof tdir);
	CHECK(mkdir(tdir, 0700) == 0 || errno == EEXIST);
	struct creds_init ci = {0};
	int rc = creds_init(data_dir, id->cluster_id, id->id, &ci, mgr, wrk, err);
	if (rc)
		fprintf(stderr, "  creds_init: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(tls_load(&id->tls, tdir, err), 0);
}

int fixture_join(const char *addr, const struct token *t, struct identity *self, const char *data_dir, char *err)
{
	struct client c;
	struct buf key = {0}, csr = {0};
	CHECK_EQ_INT(creds_csr(&key, &csr, err), 0);
	int rc = client_open_join(&c, addr, t->ca_fp, 5000, err);
	if (rc)
		return rc;
	struct node n = {.id = self->id, .cpus_milli = 1000, .memory = 1ull << 30};
	n.name = self->name;
	n.addr = self->advertise;
	n.version = ORCH_VERSION;
	struct mpw w;
	mpw_init(&w);
	schema_encode(&node_schema, &n, &w);
	char secret[2 * SECRET_LEN + 1];
	hex_encode(t->secret, SECRET_LEN, secret);
	struct req_join q = {.proto = PROTO_VERSION, .node = {.raw = w.sb.data, .len = w.sb.size}, .secret = secret, .csr = (const char *)csr.data};
	struct mpr resp;
	rc = client_call_req(&c, OP_JOIN, &q, &resp, 15000, err);
	mpw_free(&w);
	client_close(&c);
	if (!rc) {
		char *cert = mp_get_strdup(resp.root, "cert"), *ca = mp_get_strdup(resp.root, "ca"), tdir[600];
		memcpy(self->cluster_id, t->cluster_id, CLUSTER_ID_LEN);
		rc = !cert || !ca ? errf(err, E_FAIL, "no certificate in the reply")
				  : creds_save(data_dir, (char *)key.data, cert, ca, err);
		tls_dir(data_dir, tdir, sizeof tdir);
		if (!rc)
			rc = tls_load(&self->tls, tdir, err);
		free(cert);
		free(ca);
	}
	mpr_free(&resp);
	buf_free(&key);
	buf_free(&csr);
	return rc;
}
