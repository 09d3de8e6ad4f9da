/* orch user add | ls | rm: users of the remote API (node/rpc_user.c). add makes the user's
 * key here, sends only a certificate signing request, and writes the key, the certificate
 * the cluster CA signed and that CA into one bundle file (mode 0600) for --cert-bundle. */
#include "cli/cli.h"
#include "net/peer.h"
#include "state/store.h"
#include "util/mem.h"
#include "pki/pki.h"
#include "secret/secrets.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int user_add(struct cli *cli, int argc, char **argv)
{
	const char *name = NULL, *role = NULL, *out = NULL;
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "--role") || !strcmp(argv[i], "-r")) && i + 1 < argc)
			role = argv[++i];
		else if (!strncmp(argv[i], "--role=", 7))
			role = argv[i] + 7;
		else if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) && i + 1 < argc)
			out = argv[++i];
		else if (argv[i][0] != '-' && !name)
			name = argv[i];
		else
			return cli_usage("user", "add: unexpected argument %s", argv[i]);
	}
	if (!name || !role)
		return cli_usage("user", "add needs NAME and --role admin|operator|viewer");
	if (!pki_user_name_ok(name))
		return cli_usage("user", "bad user name %s: 1-63 of A-Z a-z 0-9 . _ @ -", name);
	if (peer_role_parse(role) == PROLE_NONE)
		return cli_usage("user", "bad role %s: admin, operator or viewer", role);
	char deflt[128];
	if (!out) {
		snprintf(deflt, sizeof deflt, "%s.pem", name);
		out = deflt;
	}
	/* nothing is asked of the cluster when the bundle could not be written */
	if (!access(out, F_OK))
		return cli_fail(E_EXISTS, "user add: %s exists (choose another file with -o)", out);
	char err[ERR_LEN];
	struct buf key = {0}, csr = {0};
	int rc = pki_key_new(&key, err);
	if (!rc)
		rc = pki_csr_new((const char *)key.data, &csr, err);
	if (rc) {
		secrets_wipe(&key);
		buf_free(&csr);
		return cli_fail(rc, "user add: %s", err);
	}
	struct req_user_add q = {.name = name, .role = role, .csr = (const char *)csr.data};
	struct mpr r = {0};
	rc = cli_rpc(cli, OP_USER_ADD, &q, &r);
	buf_free(&csr);
	char serial[48] = "";
	const msgpack_object *cert = rc ? NULL : mp_get(r.root, "cert"), *ca = rc ? NULL : mp_get(r.root, "ca");
	if (!rc && (!mp_is_str(cert) || !mp_is_str(ca)))
		rc = cli_fail(E_IO, "user add: the node's reply has no certificate");
	else if (!rc) {
		/* the bundle: the key, then the user's certificate, then the CA (orch-user(1)) */
		mp_get_strbuf(r.root, "serial", serial, sizeof serial);
		buf_append(&key, cert->via.str.ptr, cert->via.str.size);
		buf_append(&key, ca->via.str.ptr, ca->via.str.size);
		if (pki_write_file(out, key.data, key.len, 0600, err))
			rc = cli_fail(E_IO, "user add: %s (the user exists: orch user rm %s, then add again)", err, name);
	}
	if (r.root)
		mpr_free(&r);
	secrets_wipe(&key);
	if (rc)
		return rc;
	printf("user %s (%s) added, certificate serial %s\nbundle: %s (key, certificate and cluster CA; keep it secret)\n"
	       "use it: orch --host IP:PORT --cert-bundle %s COMMAND, or orch context add NAME --host IP:PORT "
	       "--cert-bundle %s\n",
	       name, role, serial, out, out, out);
	return EXIT_OK;
}

static int user_ls(struct cli *cli, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	for (int i = 1; i < argc; i++) {
		int orc = cli_output_opt("user", argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 0)
			return cli_usage("user", "ls: unexpected argument %s", argv[i]);
	}
	struct mpr r;
	int rc = cli_rpc_retry(cli, OP_USERS, NULL, &r, 0);
	if (rc)
		return rc;
	const msgpack_object *ul = mp_get(r.root, "users");
	if (fmt != OUT_TABLE) {
		out_doc(fmt, ul);
		mpr_free(&r);
		return EXIT_OK;
	}
	const char *hdr[] = {"NAME", "ROLE", "SERIAL", "AGE"};
	struct out_table t;
	out_table_init(&t, 4, hdr);
	uint64_t now = wall_ms();
	for (uint32_t i = 0; ul && ul->type == MSGPACK_OBJECT_ARRAY && i < ul->via.array.size; i++) {
		const msgpack_object *o = &ul->via.array.ptr[i];
		char name[80], role[16], serial[48], age[24];
		uint64_t at = 0;
		mp_get_u64(o, "created_at", &at);
		out_age(now > at ? now - at : 0, age, sizeof age);
		const char *row[] = {mp_str_or(o, "name", name, sizeof name, "-"), mp_str_or(o, "role", role, sizeof role, "-"),
				     mp_str_or(o, "serial", serial, sizeof serial, "-"), age};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
	mpr_free(&r);
	return EXIT_OK;
}

static int user_rm(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("user", "rm: which user?");
	int worst = EXIT_OK;
	for (int i = 1; i < argc; i++) {
		struct req_user_rm q = {.name = argv[i]};
		struct mpr r;
		int rc = cli_rpc(cli, OP_USER_RM, &q, &r);
		if (rc) {
			worst = rc;
			continue;
		}
		mpr_free(&r);
		printf("user %s removed; its certificate is refused from now on\n", argv[i]);
	}
	return worst;
}

int cmd_user(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("user", "which subcommand? add, ls or rm");
	if (!strcmp(argv[1], "add"))
		return user_add(cli, argc - 1, argv + 1);
	if (!strcmp(argv[1], "ls"))
		return user_ls(cli, argc - 1, argv + 1);
	if (!strcmp(argv[1], "rm"))
		return user_rm(cli, argc - 1, argv + 1);
	return cli_usage("user", "unknown subcommand %s", argv[1]);
}
