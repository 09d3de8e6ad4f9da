/* orch user add | ls | rm: users of the remote API (node/rpc_user.c). add makes the user's
 * key here, sends only a certificate signing request, and writes the key, the certificate
 * the cluster CA signed and that CA into one bundle file (mode 0600) for --cert-bundle. */
#include "cli/cli.h"
#include "net/peer.h"
#include "state/store.h"
#include "util/mem.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A new P-256 key and a CSR for CN=name signed by it, both PEM (free() them). */
static int make_key_csr(const char *name, char **key_pem, char **csr_pem, char *err)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	BIO *kb = BIO_new(BIO_s_mem()), *rb = BIO_new(BIO_s_mem());
	X509_NAME *subj = req ? X509_REQ_get_subject_name(req) : NULL;
	int rc = 0;
	if (!key || !req || !kb || !rb || !subj ||
	    !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0) ||
	    !X509_REQ_set_pubkey(req, key) || !X509_REQ_sign(req, key, EVP_sha256()) ||
	    !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) || !PEM_write_bio_X509_REQ(rb, req))
		rc = errf(err, E_FAIL, "user add: cannot make a key and a certificate request (OpenSSL)");
	BIO *bios[2] = {kb, rb};
	char **outs[2] = {key_pem, csr_pem};
	for (int i = 0; i < 2; i++) {
		*outs[i] = NULL;
		if (rc)
			continue;
		char *p;
		long n = BIO_get_mem_data(bios[i], &p);
		*outs[i] = malloc((size_t)n + 1);
		memcpy(*outs[i], p, (size_t)n);
		(*outs[i])[n] = 0;
	}
	/* the key's bytes in the memory BIO are cleared when it is freed only if asked */
	char *kp;
	long kn = BIO_get_mem_data(kb, &kp);
	if (kn > 0)
		OPENSSL_cleanse(kp, (size_t)kn);
	BIO_free(kb);
	BIO_free(rb);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

static int write_all(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

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
	if (!store_user_name_valid(name))
		return cli_usage("user", "bad user name %s: 1-63 of A-Z a-z 0-9 . _ - (not first . or -)", name);
	if (peer_role_parse(role) == PROLE_NONE)
		return cli_usage("user", "bad role %s: admin, operator or viewer", role);
	char deflt[128];
	if (!out) {
		snprintf(deflt, sizeof deflt, "%s.pem", name);
		out = deflt;
	}
	/* the bundle's file first: nothing is asked of the cluster if it cannot be written */
	int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cli_fail(E_IO, "user add: %s: %s%s", out, strerror(errno),
				errno == EEXIST ? " (choose another file with -o)" : "");
	char err[ERR_LEN], *key = NULL, *csr = NULL;
	int rc = make_key_csr(name, &key, &csr, err);
	if (rc) {
		close(fd);
		unlink(out);
		return cli_fail(rc, "%s", err);
	}
	struct req_user_add q = {.name = name, .role = role, .csr = csr};
	struct mpr r;
	rc = cli_rpc(cli, OP_USER_ADD, &q, &r);
	free(csr);
	char cert[16384], ca[16384], serial[48] = "";
	if (!rc && (mp_get_strbuf(r.root, "cert", cert, sizeof cert) || mp_get_strbuf(r.root, "ca", ca, sizeof ca))) {
		mpr_free(&r);
		rc = cli_fail(E_IO, "user add: the node's reply has no certificate");
	}
	if (!rc) {
		mp_get_strbuf(r.root, "serial", serial, sizeof serial);
		mpr_free(&r);
		if (write_all(fd, key) || write_all(fd, cert) || write_all(fd, ca) || fsync(fd))
			rc = cli_fail(E_IO, "user add: writing %s: %s (the user exists: orch user rm %s, then add again)", out,
				      strerror(errno), name);
	}
	OPENSSL_cleanse(key, strlen(key));
	free(key);
	close(fd);
	if (rc) {
		unlink(out);
		return rc;
	}
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
