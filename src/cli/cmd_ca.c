/* orch ca show: the cluster CA this node trusts (its <data-dir>/tls/ca.crt), or with
 * --host the one the user's bundle trusts: each certificate's fingerprint (what join tokens
 * pin), expiry and PEM text. Read from a file, no node needed. */
#include "cli/cli.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "util/err.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

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
	return n ? EXIT_OK : cli_fail(E_INVAL, "%s holds no certificate", path);
}

int cmd_ca(struct cli *cli, int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[1], "show"))
		return cli_usage("ca", "expected: show");
	return show(cli);
}
