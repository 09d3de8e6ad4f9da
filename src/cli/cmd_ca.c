/* orch ca show: the cluster CA this node trusts (its <data-dir>/tls/ca.crt), or with
 * --host the one the user's bundle trusts: each certificate's fingerprint (what join tokens
 * pin), expiry and PEM text, read from a file (no node needed); then, when a node answers,
 * each node's certificate expiry and CA and how far a CA rotation is. orch ca rotate:
 * node/carot.h. */
#include "cli/cli.h"
#include "cli/client.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "util/err.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

static void nodes(struct cli *cli);

static int show(struct cli *cli)
{
	char dir[600], path[1100], err[ERR_LEN];
	tls_dir(cli->data_dir, dir, sizeof dir);
	/* from afar (--host): the CA the user's bundle trusts, after its own certificate */
	snprintf(path, sizeof path, "%s%s", cli->target.host ? cli->target.bundle : dir, cli->target.host ? "" : "/ca.crt");
	struct buf b = {0};
	int rc = pki_read_file(path, &b, err);
	if (rc)
		return cli->target.host ? cli_fail(rc, "%s", err)
						 : cli_fail(rc, "%s (is %s a node's data directory?)", err, cli->data_dir);
	/* one certificate after another: each begins with its BEGIN line */
	const char *p = (const char *)b.data, *begin = "-----BEGIN CERTIFICATE-----";
	if (cli->target.host) {
		const char *mine = strstr(p, begin);
		p = mine ? mine + 1 : "";
	}
	int n = 0;
	while ((p = strstr(p, begin))) {
		const char *next = strstr(p + 1, begin);
		size_t len = next ? (size_t)(next - p) : strlen(p);
		char one[8192], fp[PKI_FP_HEX], when[32] = "?";
		int64_t na = 0;
		snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), p);
		if (pki_fingerprint(one, fp, err)) {
			buf_free(&b);
			return cli_fail(E_INVAL, "%s: %s", path, err);
		}
		if (!pki_not_after(one, &na, err)) {
			time_t t = (time_t)na;
			struct tm tm;
			strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		}
		printf("fingerprint: %s\nexpires:     %s\n%s", fp, when, one);
		n++;
		p += len;
	}
	buf_free(&b);
	if (!n)
		return cli_fail(E_INVAL, "%s holds no certificate", path);
	nodes(cli);
	return EXIT_OK;
}

static void stamp(uint64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!t)
		snprintf(out, 32, "-");
	else
		strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

/* What the running node knows of the cluster's certificates (nothing when none runs). */
static void nodes(struct cli *cli)
{
	struct req_nodes q = {0};
	struct mpr r;
	char err[ERR_LEN];
	if (cli_call(&cli->target, OP_NODES, &q, &r, 0, 10000, err))
		return;
	const msgpack_object *rot = mp_get(r.root, "ca_rotation"), *ns = mp_get(r.root, "nodes");
	uint64_t on = 0, total = 0;
	if (rot && !mp_get_u64(rot, "on_new", &on) && !mp_get_u64(rot, "total", &total))
		printf("rotation:    %llu of %llu nodes on the new CA\n", (unsigned long long)on, (unsigned long long)total);
	if (!ns || ns->type != MSGPACK_OBJECT_ARRAY) {
		mpr_free(&r);
		return;
	}
	printf("%-20s %-16s %-21s %s\n", "NODE", "ID", "CERT EXPIRES", "CA");
	for (uint32_t i = 0; i < ns->via.array.size; i++) {
		const msgpack_object *n = &ns->via.array.ptr[i];
		char name[64], id[20], ca[80], when[32];
		uint64_t exp = 0;
		mp_get_u64(n, "cert_expires", &exp);
		stamp(exp, when);
		mp_str_or(n, "cert_ca", ca, sizeof ca, "");
		printf("%-20s %-16s %-21s %.16s\n", mp_str_or(n, "name", name, sizeof name, "?"), mp_str_or(n, "id", id, sizeof id, "?"),
		       when, *ca ? ca : "-");
	}
	mpr_free(&r);
}

static int rotate(struct cli *cli, int argc, char **argv)
{
	const char *certf = NULL, *keyf = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--ca-cert") && i + 1 < argc)
			certf = argv[++i];
		else if (!strcmp(argv[i], "--ca-key") && i + 1 < argc)
			keyf = argv[++i];
		else
			return cli_usage("ca", "unknown argument %s (ca rotate [--ca-cert FILE --ca-key FILE])", argv[i]);
	}
	if (!certf != !keyf)
		return cli_usage("ca", "--ca-cert and --ca-key go together");
	struct buf cert = {0}, key = {0};
	char err[ERR_LEN];
	if (certf && (pki_read_file(certf, &cert, err) || pki_read_file(keyf, &key, err))) {
		buf_free(&cert);
		buf_free(&key);
		return cli_fail(E_INVAL, "%s", err);
	}
	struct req_ca_rotate q = {.cert = (char *)cert.data, .key = (char *)key.data};
	struct mpr r;
	int rc = cli_rpc(cli, OP_CA_ROTATE, &q, &r);
	if (key.data)
		memset(key.data, 0, key.len);
	buf_free(&cert);
	buf_free(&key);
	if (rc)
		return rc;
	char fp[80];
	printf("new CA: %s\nthe nodes now renew their certificates from it; orch ca show says how far; the old CA\n"
	       "leaves once every node moved. The join tokens pin the new CA: see orch token show.\n",
	       mp_str_or(r.root, "fingerprint", fp, sizeof fp, "?"));
	mpr_free(&r);
	return EXIT_OK;
}

int cmd_ca(struct cli *cli, int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "show"))
		return show(cli);
	if (argc >= 2 && !strcmp(argv[1], "rotate"))
		return rotate(cli, argc, argv);
	return cli_usage("ca", "expected: show, or rotate [--ca-cert FILE --ca-key FILE]");
}
