/* When a node renews its certificate (node/renew.h): after most of its lifetime, before its
 * end, with a per-node jitter that spreads a cluster's renewals, the same for a node every
 * time it asks; and how it writes the new pair (node/creds.h). */
#include "unit.h"
#include "node/creds.h"
#include "node/renew.h"
#include "pki/pki.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

UNIT(renew_due_after_two_thirds_less_jitter)
{
	const int64_t issued = 1800000000, nb = issued - PKI_BACKDATE_S;
	const int64_t days90 = 90 * 86400, na = issued + days90;
	int64_t lo = na, hi = 0;
	int distinct = 0;
	int64_t prev = -1;
	for (uint64_t id = 1; id < 2000; id += 7) {
		uint64_t node = id * 0x2545f4914f6cdd1dull;
		int64_t due = renew_due(nb, na, node);
		CHECK(due == renew_due(nb, na, node)); /* no clock, no state: the same answer */
		/* between 2/3 of the lifetime less a tenth, and 2/3 */
		CHECK(due <= issued + days90 * 2 / 3);
		CHECK(due > issued + days90 * 2 / 3 - days90 / 10);
		if (due < lo)
			lo = due;
		if (due > hi)
			hi = due;
		distinct += due != prev;
		prev = due;
	}
	/* spread: the cluster does not renew in one second */
	CHECK(hi - lo > days90 / 20);
	CHECK(distinct > 200);
	/* the shortest validity allowed (60 s): due at 34 to 40 s, with time to ask the leader */
	int64_t d = renew_due(issued - PKI_BACKDATE_S, issued + 60, 0x1234);
	CHECK(d >= issued + 34 && d <= issued + 40);
	/* a certificate not backdated (a CA given from outside) still falls within its life */
	d = renew_due(issued, issued + 3600, 99);
	CHECK(d > issued && d < issued + 3600);
	/* nonsense validity: due at once */
	CHECK(renew_due(issued, issued, 5) <= issued);
}

/* A renewal written by creds_renew_save and cut short at any step leaves, after
 * creds_recover (which the node runs before it loads tls/), a key and a certificate that
 * belong together: the new pair when the new certificate is whole, else the old one. */
static void pair(const char *ca_cert, const char *ca_key, uint64_t id, struct buf *key, struct buf *cert)
{
	char err[ERR_LEN] = "";
	struct buf csr = {0};
	struct pki_subject s = {.kind = PKI_NODE, .node_id = id, .manager = true, .cluster_hex = "0123456789abcdef"};
	memset(key, 0, sizeof *key);
	memset(cert, 0, sizeof *cert);
	CHECK_EQ_INT(creds_csr(key, &csr, err), 0);
	CHECK_EQ_INT(pki_sign(ca_cert, ca_key, (char *)csr.data, &s, 3600, cert, err), 0);
	buf_free(&csr);
}

static void put(const char *dir, const char *name, const struct buf *b)
{
	char p[300], err[ERR_LEN];
	snprintf(p, sizeof p, "%s/tls/%s", dir, name);
	CHECK_EQ_INT(pki_write_file(p, b->data, b->len, 0600, err), 0);
}

static bool holds(const char *dir, const char *name, const struct buf *b)
{
	char p[300], err[ERR_LEN];
	struct buf got = {0};
	snprintf(p, sizeof p, "%s/tls/%s", dir, name);
	bool same = !pki_read_file(p, &got, err) && got.len == b->len && !memcmp(got.data, b->data, b->len);
	buf_free(&got);
	return same;
}

static bool exists(const char *dir, const char *name)
{
	char p[300];
	snprintf(p, sizeof p, "%s/tls/%s", dir, name);
	return access(p, F_OK) == 0;
}

UNIT(renew_recover_leaves_a_whole_pair)
{
	char dir[] = "/tmp/orch-renew-XXXXXX", tls[300], err[ERR_LEN] = "";
	CHECK(mkdtemp(dir) != NULL);
	snprintf(tls, sizeof tls, "%s/tls", dir);
	CHECK(mkdir(tls, 0700) == 0);
	struct buf cakey = {0}, cacert = {0}, ok, oc, nk, nc;
	CHECK_EQ_INT(pki_key_new(&cakey, err), 0);
	CHECK_EQ_INT(pki_ca_new((char *)cakey.data, "0123456789abcdef", 365, &cacert, err), 0);
	pair((char *)cacert.data, (char *)cakey.data, 7, &ok, &oc);
	pair((char *)cacert.data, (char *)cakey.data, 7, &nk, &nc);
	put(dir, "ca.crt", &cacert);

	/* stopped before any rename: the new pair is whole, and taken */
	put(dir, "node.key", &ok);
	put(dir, "node.crt", &oc);
	put(dir, "next.key", &nk);
	put(dir, "next.crt", &nc);
	creds_recover(dir);
	CHECK(holds(dir, "node.key", &nk) && holds(dir, "node.crt", &nc));
	CHECK(!exists(dir, "next.key") && !exists(dir, "next.crt"));

	/* stopped between the renames: the certificate follows its key */
	put(dir, "node.key", &nk);
	put(dir, "node.crt", &oc);
	put(dir, "next.crt", &nc);
	creds_recover(dir);
	CHECK(holds(dir, "node.key", &nk) && holds(dir, "node.crt", &nc));
	CHECK(!exists(dir, "next.crt"));

	/* stopped before the certificate was written: the old pair stays */
	put(dir, "node.key", &ok);
	put(dir, "node.crt", &oc);
	put(dir, "next.key", &nk);
	creds_recover(dir);
	CHECK(holds(dir, "node.key", &ok) && holds(dir, "node.crt", &oc));
	CHECK(!exists(dir, "next.key"));

	/* a stray certificate of another key changes nothing */
	put(dir, "next.crt", &nc);
	creds_recover(dir);
	CHECK(holds(dir, "node.key", &ok) && holds(dir, "node.crt", &oc));
	CHECK(!exists(dir, "next.crt"));

	/* a whole renewal */
	CHECK_EQ_INT(creds_renew_save(dir, (char *)nk.data, (char *)nc.data, (char *)cacert.data, err), 0);
	CHECK(holds(dir, "node.key", &nk) && holds(dir, "node.crt", &nc) && !exists(dir, "next.key"));
	struct stat st;
	char p[300];
	snprintf(p, sizeof p, "%s/node.key", tls);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);

	creds_remove(dir);
	rmdir(tls);
	rmdir(dir);
	buf_free(&cakey);
	buf_free(&cacert);
	buf_free(&ok);
	buf_free(&oc);
	buf_free(&nk);
	buf_free(&nc);
}
