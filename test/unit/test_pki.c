/* The cluster PKI and the TLS engine: a CA signs node and user certificates whose
 * subjects say what their holders are; a CSR that does not verify, a subject this module
 * does not issue and a certificate of another CA are refused; serials are random; the
 * join token's format and its errors; two memory-BIO TLS sessions shake hands and know
 * each other only with certificates of one CA. */
#include "unit.h"
#include "net/tls.h"
#include "net/token.h"
#include "pki/pki.h"
#include "util/err.h"
#include "util/mem.h"
#include <time.h>

struct ca {
	struct buf key, cert;
};

static void ca_make(struct ca *c, const char *cid)
{
	char err[ERR_LEN] = "";
	memset(c, 0, sizeof *c);
	CHECK_EQ_INT(pki_key_new(&c->key, err), 0);
	CHECK_EQ_INT(pki_ca_new((char *)c->key.data, cid, 365, &c->cert, err), 0);
}

/* A key and a certificate for subj from ca. */
static void issue(const struct ca *ca, const struct pki_subject *subj, struct buf *key, struct buf *cert)
{
	char err[ERR_LEN] = "";
	struct buf csr = {0};
	memset(key, 0, sizeof *key);
	memset(cert, 0, sizeof *cert);
	CHECK_EQ_INT(pki_key_new(key, err), 0);
	CHECK_EQ_INT(pki_csr_new((char *)key->data, &csr, err), 0);
	int rc = pki_sign((char *)ca->cert.data, (char *)ca->key.data, (char *)csr.data, subj, 86400, cert, err);
	if (rc)
		fprintf(stderr, "  sign: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	buf_free(&csr);
}

UNIT(pki_node_and_user_certificates_say_who)
{
	const char *cid = "0123456789abcdef";
	struct ca ca, other;
	ca_make(&ca, cid);
	ca_make(&other, cid);
	char err[ERR_LEN] = "", cl[17];
	struct pki_subject node = {.kind = PKI_NODE, .node_id = 0x1234abcd5678ull, .manager = true, .cluster_hex = cid};
	struct buf k, c;
	issue(&ca, &node, &k, &c);
	struct peer p;
	CHECK_EQ_INT(pki_peer_of_pem((char *)c.data, &p, cl, err), 0);
	CHECK_EQ_INT(p.kind, PEER_NODE);
	CHECK(p.node_id == 0x1234abcd5678ull && p.manager);
	CHECK_STR(cl, cid);
	CHECK_EQ_INT(pki_verify((char *)ca.cert.data, (char *)c.data, err), 0);
	CHECK_EQ_INT(pki_verify((char *)other.cert.data, (char *)c.data, err), E_AUTH);
	CHECK(pki_key_matches((char *)c.data, (char *)k.data));
	CHECK(!pki_key_matches((char *)c.data, (char *)ca.key.data));
	/* a worker */
	struct buf k2, c2;
	node.manager = false;
	issue(&ca, &node, &k2, &c2);
	CHECK_EQ_INT(pki_peer_of_pem((char *)c2.data, &p, cl, err), 0);
	CHECK(p.kind == PEER_NODE && !p.manager);
	/* random serials: two certificates of one subject differ */
	char s1[80], s2[80];
	CHECK_EQ_INT(pki_serial((char *)c.data, s1, sizeof s1, err), 0);
	CHECK_EQ_INT(pki_serial((char *)c2.data, s2, sizeof s2, err), 0);
	CHECK(strlen(s1) >= 16 && strcmp(s1, s2));
	/* a user */
	struct pki_subject user = {.kind = PKI_USER, .user = "alice", .role = PROLE_OPERATOR, .cluster_hex = cid};
	struct buf k3, c3;
	issue(&ca, &user, &k3, &c3);
	CHECK_EQ_INT(pki_peer_of_pem((char *)c3.data, &p, cl, err), 0);
	CHECK(p.kind == PEER_USER && p.role == PROLE_OPERATOR);
	CHECK_STR(p.user, "alice");
	/* validity */
	int64_t na = 0;
	CHECK_EQ_INT(pki_not_after((char *)c.data, &na, err), 0);
	CHECK(na > (int64_t)time(NULL) + 86000 && na < (int64_t)time(NULL) + 86800);
	/* the CA's own certificate is not a node's or a user's */
	CHECK_EQ_INT(pki_peer_of_pem((char *)ca.cert.data, &p, cl, err), E_AUTH);
	/* fingerprints: 64 hex, found in a bundle of both CAs, not in the other alone */
	char fp[PKI_FP_HEX];
	CHECK_EQ_INT(pki_fingerprint((char *)ca.cert.data, fp, err), 0);
	CHECK_EQ_INT(strlen(fp), 64);
	struct buf bundle = {0};
	buf_append(&bundle, other.cert.data, other.cert.len);
	buf_append(&bundle, ca.cert.data, ca.cert.len + 1);
	CHECK(pki_bundle_has((char *)bundle.data, fp));
	CHECK(!pki_bundle_has((char *)other.cert.data, fp));
	CHECK_EQ_INT(pki_verify((char *)bundle.data, (char *)c.data, err), 0);
}

UNIT(pki_sign_refuses_bad_input)
{
	const char *cid = "0123456789abcdef";
	struct ca ca, other;
	ca_make(&ca, cid);
	ca_make(&other, cid);
	char err[ERR_LEN] = "";
	struct buf key = {0}, csr = {0}, cert = {0};
	CHECK_EQ_INT(pki_key_new(&key, err), 0);
	CHECK_EQ_INT(pki_csr_new((char *)key.data, &csr, err), 0);
	struct pki_subject s = {.kind = PKI_NODE, .node_id = 7, .manager = true, .cluster_hex = cid};
	/* a CSR whose signature does not verify (one byte of its body changed) */
	struct buf bad = {0};
	buf_append(&bad, csr.data, csr.len + 1);
	char *mid = (char *)bad.data + 100;
	*mid = *mid == 'A' ? 'B' : 'A';
	CHECK(pki_sign((char *)ca.cert.data, (char *)ca.key.data, (char *)bad.data, &s, 3600, &cert, err) != 0);
	CHECK_EQ_INT(cert.len, 0);
	/* not a CSR at all, the key of another CA, bad subjects, bad validity */
	CHECK_EQ_INT(pki_sign((char *)ca.cert.data, (char *)ca.key.data, "garbage", &s, 3600, &cert, err), E_INVAL);
	CHECK_EQ_INT(pki_sign((char *)ca.cert.data, (char *)other.key.data, (char *)csr.data, &s, 3600, &cert, err), E_INVAL);
	struct pki_subject z = s;
	z.node_id = 0;
	CHECK_EQ_INT(pki_sign((char *)ca.cert.data, (char *)ca.key.data, (char *)csr.data, &z, 3600, &cert, err), E_INVAL);
	z = s;
	z.cluster_hex = "xyz";
	CHECK_EQ_INT(pki_sign((char *)ca.cert.data, (char *)ca.key.data, (char *)csr.data, &z, 3600, &cert, err), E_INVAL);
	struct pki_subject u = {.kind = PKI_USER, .user = "a,CN=evil", .role = PROLE_ADMIN, .cluster_hex = cid};
	CHECK_EQ_INT(pki_sign((char *)ca.cert.data, (char *)ca.key.data, (char *)csr.data, &u, 3600, &cert, err), E_INVAL);
	u.user = "bob";
	u.role = PROLE_NONE;
	CHECK_EQ_INT(pki_sign((char *)ca.cert.data, (char *)ca.key.data, (char *)csr.data, &u, 3600, &cert, err), E_INVAL);
	CHECK_EQ_INT(pki_sign((char *)ca.cert.data, (char *)ca.key.data, (char *)csr.data, &s, 0, &cert, err), E_INVAL);
	CHECK_EQ_INT(cert.len, 0);
	/* and the good one signs */
	CHECK_EQ_INT(pki_sign((char *)ca.cert.data, (char *)ca.key.data, (char *)csr.data, &s, 3600, &cert, err), 0);
}

UNIT(token_format_and_parse_errors)
{
	struct token t = {0}, back;
	char err[ERR_LEN] = "", s[TOKEN_STR_LEN + 1];
	for (int i = 0; i < CLUSTER_ID_LEN; i++)
		t.cluster_id[i] = (uint8_t)(0xa0 + i);
	memset(t.ca_fp, 'c', 64);
	token_generate_secret(&t);
	token_format(&t, s);
	CHECK_EQ_INT(strlen(s), TOKEN_STR_LEN);
	CHECK(!strncmp(s, "ORCH2-a0a1a2a3a4a5a6a7-cccc", 27));
	CHECK_EQ_INT(token_parse(s, &back, err), 0);
	CHECK(!memcmp(back.cluster_id, t.cluster_id, CLUSTER_ID_LEN) && !memcmp(back.secret, t.secret, SECRET_LEN));
	CHECK_STR(back.ca_fp, t.ca_fp);
	struct {
		const char *mangle, *want;
	} cases[] = {
		{"", "empty"},
		{"ORCH1-0011223344556677-00", "older orch"},
		{"TOKEN", "expected ORCH2-"},
		{"ORCH2-0011-aa-bb", "cluster id is not 16"},
		{"ORCH2-0011223344556677-aa-bb", "fingerprint is not 64"},
		{"ORCH2-0011223344556677", "four parts"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = 0;
		CHECK_EQ_INT(token_parse(cases[i].mangle, &back, err), E_INVAL);
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "  %s: %s\n", cases[i].mangle, err);
		CHECK(strstr(err, cases[i].want) != NULL);
	}
	char m[TOKEN_STR_LEN + 2];
	snprintf(m, sizeof m, "%s", s);
	m[TOKEN_STR_LEN - 1] = 0; /* secret one digit short */
	CHECK_EQ_INT(token_parse(m, &back, err), E_INVAL);
	CHECK(strstr(err, "secret") != NULL);
	snprintf(m, sizeof m, "%s", s);
	m[30] = 'G'; /* the fingerprint not hex */
	CHECK_EQ_INT(token_parse(m, &back, err), E_INVAL);
	CHECK(strstr(err, "fingerprint") != NULL);
	snprintf(m, sizeof m, "%s", s);
	m[7] = 'A'; /* uppercase in the cluster id */
	CHECK_EQ_INT(token_parse(m, &back, err), E_INVAL);
	CHECK(strstr(err, "cluster id") != NULL);
}

/* Moves the bytes each session has for the other until neither has any. */
static void pump(struct tls_sess *a, struct tls_sess *b)
{
	for (int i = 0; i < 20; i++) {
		char err[ERR_LEN];
		struct buf sink = {0};
		/* handshake steps, or (once done) reads that process what arrived */
		if (!a->done)
			tls_handshake(a, err);
		else
			tls_read(a, &sink, err);
		if (!b->done)
			tls_handshake(b, err);
		buf_free(&sink);
		size_t n1, n2;
		char *p1 = tls_take(a, &n1), *p2 = tls_take(b, &n2);
		if (p1)
			tls_feed(b, p1, n1);
		if (p2)
			tls_feed(a, p2, n2);
		free(p1);
		free(p2);
		if (!p1 && !p2 && i > 2)
			return;
	}
}

static void node_creds(const struct ca *ca, const char *cid, uint64_t id, struct tlsctx *t)
{
	struct pki_subject s = {.kind = PKI_NODE, .node_id = id, .manager = true, .cluster_hex = cid};
	struct buf k, c;
	char err[ERR_LEN] = "";
	issue(ca, &s, &k, &c);
	int rc = tls_load_pem(t, (char *)k.data, (char *)c.data, (char *)ca->cert.data, err);
	if (rc)
		fprintf(stderr, "  tls_load_pem: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK(t->node_id == id);
	buf_free(&k);
	buf_free(&c);
}

UNIT(tls_sessions_know_each_other_by_certificate)
{
	const char *cid = "00000000000000aa";
	struct ca ca, other;
	ca_make(&ca, cid);
	ca_make(&other, cid);
	struct tlsctx n1, n2, stranger;
	node_creds(&ca, cid, 11, &n1);
	node_creds(&ca, cid, 22, &n2);
	node_creds(&other, cid, 22, &stranger);
	char err[ERR_LEN] = "";
	struct tls_sess srv, cli;
	CHECK_EQ_INT(tls_sess_init(&srv, n1.srv, true, err), 0);
	CHECK_EQ_INT(tls_sess_init(&cli, n2.cli, false, err), 0);
	pump(&cli, &srv);
	CHECK(srv.done && cli.done);
	struct peer p;
	CHECK_EQ_INT(tls_peer(&srv, cid, &p, err), 0);
	CHECK(p.kind == PEER_NODE && p.node_id == 22);
	CHECK_EQ_INT(tls_peer(&cli, cid, &p, err), 0);
	CHECK(p.kind == PEER_NODE && p.node_id == 11);
	CHECK_EQ_INT(tls_peer(&srv, "00000000000000bb", &p, err), E_AUTH); /* of another cluster id */
	/* data both ways */
	CHECK_EQ_INT(tls_write(&cli, "hello", 5), 0);
	pump(&cli, &srv);
	struct buf got = {0};
	CHECK_EQ_INT(tls_read(&srv, &got, err), 5);
	CHECK(!memcmp(got.data, "hello", 5));
	buf_free(&got);
	tls_sess_free(&srv);
	tls_sess_free(&cli);
	/* a node of another CA: the server refuses its certificate */
	CHECK_EQ_INT(tls_sess_init(&srv, n1.srv, true, err), 0);
	CHECK_EQ_INT(tls_sess_init(&cli, stranger.cli, false, err), 0);
	pump(&cli, &srv);
	CHECK(!srv.done);
	err[0] = 0;
	CHECK_EQ_INT(tls_handshake(&srv, err), E_AUTH);
	tls_sess_free(&srv);
	tls_sess_free(&cli);
	/* no certificate (a joiner): the handshake completes, the peer is anonymous */
	void *jc = tls_join_ctx(err);
	CHECK(jc != NULL);
	CHECK_EQ_INT(tls_sess_init(&srv, n1.srv, true, err), 0);
	CHECK_EQ_INT(tls_sess_init(&cli, jc, false, err), 0);
	pump(&cli, &srv);
	CHECK(srv.done && cli.done);
	CHECK_EQ_INT(tls_peer(&srv, cid, &p, err), 0);
	CHECK_EQ_INT(p.kind, PEER_ANON);
	char fp[PKI_FP_HEX], wrong[PKI_FP_HEX];
	CHECK_EQ_INT(pki_fingerprint((char *)ca.cert.data, fp, err), 0);
	CHECK_EQ_INT(pki_fingerprint((char *)other.cert.data, wrong, err), 0);
	CHECK_EQ_INT(tls_pin_check(&cli, fp, err), 0);
	CHECK_EQ_INT(tls_pin_check(&cli, wrong, err), E_AUTH);
	CHECK(strstr(err, "pins") != NULL);
	tls_sess_free(&srv);
	tls_sess_free(&cli);
	tls_ctx_free(jc);
	tls_free(&n1);
	tls_free(&n2);
	tls_free(&stranger);
}

/* A CA rotation's cross-signature (node/carot.h): a certificate of the new CA verifies
 * against the old CA alone only through it; the new CA must be named apart; the old key
 * must be the old certificate's. */
UNIT(pki_cross_signature_bridges_old_and_new_ca)
{
	const char *cid = "0123456789abcdef";
	char err[ERR_LEN] = "";
	struct ca old, neu;
	ca_make(&old, cid);
	memset(&neu, 0, sizeof neu);
	CHECK_EQ_INT(pki_key_new(&neu.key, err), 0);
	CHECK_EQ_INT(pki_ca_next((char *)neu.key.data, cid, 1, 365, &neu.cert, err), 0);
	struct buf cross = {0}, k, c, chain = {0}, both = {0};
	CHECK_EQ_INT(pki_cross_sign((char *)old.cert.data, (char *)old.key.data, (char *)neu.cert.data, &cross, err), 0);
	struct pki_subject node = {.kind = PKI_NODE, .node_id = 42, .cluster_hex = cid};
	issue(&neu, &node, &k, &c);
	buf_printf(&chain, "%s%s", (char *)c.data, (char *)cross.data);
	CHECK_EQ_INT(pki_verify((char *)old.cert.data, (char *)c.data, err), E_AUTH);
	CHECK_EQ_INT(pki_verify((char *)old.cert.data, (char *)chain.data, err), 0);
	CHECK_EQ_INT(pki_verify((char *)neu.cert.data, (char *)c.data, err), 0);
	CHECK_EQ_INT(pki_verify((char *)neu.cert.data, (char *)chain.data, err), 0);
	/* the transition bundle (new, then old) takes both kinds of node certificates */
	struct buf ok = {0}, oc = {0};
	issue(&old, &node, &ok, &oc);
	buf_printf(&both, "%s%s", (char *)neu.cert.data, (char *)old.cert.data);
	CHECK_EQ_INT(pki_verify((char *)both.data, (char *)oc.data, err), 0);
	CHECK_EQ_INT(pki_verify((char *)both.data, (char *)chain.data, err), 0);
	/* once the old CA left, its certificates are refused */
	CHECK_EQ_INT(pki_verify((char *)neu.cert.data, (char *)oc.data, err), E_AUTH);
	/* the cross-signature is not the new CA itself: another fingerprint, the same name */
	char f1[PKI_FP_HEX], f2[PKI_FP_HEX];
	CHECK_EQ_INT(pki_fingerprint((char *)neu.cert.data, f1, err), 0);
	CHECK_EQ_INT(pki_fingerprint((char *)cross.data, f2, err), 0);
	CHECK(strcmp(f1, f2) != 0);
	/* refused: a new CA named like the old, an old key that is not the old CA's */
	struct ca same;
	ca_make(&same, cid);
	struct buf bad = {0};
	CHECK_EQ_INT(pki_cross_sign((char *)old.cert.data, (char *)old.key.data, (char *)same.cert.data, &bad, err), E_INVAL);
	CHECK(strstr(err, "another name") != NULL);
	CHECK_EQ_INT(pki_cross_sign((char *)old.cert.data, (char *)neu.key.data, (char *)neu.cert.data, &bad, err), E_INVAL);
	/* a node certificate is no CA to cross-sign */
	CHECK_EQ_INT(pki_cross_sign((char *)old.cert.data, (char *)old.key.data, (char *)c.data, &bad, err), E_INVAL);
	buf_free(&bad);
	buf_free(&cross);
	buf_free(&chain);
	buf_free(&both);
	buf_free(&k);
	buf_free(&c);
	buf_free(&ok);
	buf_free(&oc);
	buf_free(&old.key);
	buf_free(&old.cert);
	buf_free(&neu.key);
	buf_free(&neu.cert);
	buf_free(&same.key);
	buf_free(&same.cert);
}
