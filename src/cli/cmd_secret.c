/* orch secret, orch config, orch registry: values go from a file (or standard input) to
 * the local node, which seals them before anything leaves it; everything read back is
 * metadata. Also orch deploy's part (deploy_secrets): the top-level secrets: and configs:
 * of a file. */
#include "cli/cli.h"
#include "spec/spec.h"
#include "util/mem.h"
#include <errno.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define VALUE_MAX (500 * 1024) /* state/apply_secret.c refuses more */

static void wipe(struct buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}

/* The whole of path ("-": standard input), at most VALUE_MAX bytes. */
static int read_value(const char *what, const char *path, struct buf *out)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return cli_fail(E_IO, "%s: open %s: %s", what, path, strerror(errno));
	char chunk[8192];
	size_t n;
	int rc = EXIT_OK;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (out->len + n > VALUE_MAX) {
			rc = cli_fail(E_INVAL, "%s: %s is larger than %d KiB; secrets and configs are for settings, not data",
				      what, path, VALUE_MAX / 1024);
			break;
		}
		buf_append(out, chunk, n);
	}
	OPENSSL_cleanse(chunk, sizeof chunk);
	if (!rc && ferror(f))
		rc = cli_fail(E_IO, "%s: read %s: %s", what, path, strerror(errno));
	if (f != stdin)
		fclose(f);
	return rc;
}

/* Sends a value; prints the node's answer ("secret db version 2", "... unchanged"). */
static int put(struct cli *cli, const char *kind, const char *name, const struct buf *v, bool quiet)
{
	struct req_secret_create q = {.kind = kind, .name = name, .value = {v->data ? v->data : (const uint8_t *)"", v->len}};
	struct mpr r;
	int rc = cli_rpc(cli, OP_SECRET_CREATE, &q, &r);
	if (rc)
		return rc;
	char res[ERR_LEN];
	if (!quiet)
		printf("%s\n", mp_str_or(r.root, "result", res, sizeof res, name));
	mpr_free(&r);
	return EXIT_OK;
}

static int create(struct cli *cli, const char *kind, int argc, char **argv)
{
	if (argc != 4)
		return cli_usage(kind, "%s create NAME FILE|-", kind);
	struct buf v = {0};
	int rc = read_value(kind, argv[3], &v);
	if (!rc)
		rc = put(cli, kind, argv[2], &v, false);
	wipe(&v);
	return rc;
}

static int ls(struct cli *cli, const char *kind, int argc, char **argv)
{
	enum out_fmt fmt = OUT_TABLE;
	for (int i = 2; i < argc; i++) {
		int orc = cli_output_opt(kind, argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 0)
			return cli_usage(kind, "unexpected argument %s", argv[i]);
	}
	struct req_secrets q = {.kind = kind};
	struct mpr r;
	int rc = cli_rpc(cli, OP_SECRETS, &q, &r);
	if (rc)
		return rc;
	const msgpack_object *l = mp_get(r.root, "secrets");
	if (fmt != OUT_TABLE) {
		out_doc(fmt, l ? l : r.root);
		mpr_free(&r);
		return EXIT_OK;
	}
	const char *hdr[] = {"ID", "NAME", "VERSION", "SIZE", "CREATED", "SERVICES"};
	struct out_table t;
	out_table_init(&t, 6, hdr);
	uint64_t now = wall_ms();
	for (uint32_t i = 0; l && l->type == MSGPACK_OBJECT_ARRAY && i < l->via.array.size; i++) {
		const msgpack_object *o = &l->via.array.ptr[i];
		char id[20], name[256], ver[24], size[32], age[32], svcs[512] = "";
		uint64_t v = 0, sz = 0, at = 0;
		mp_get_u64(o, "version", &v);
		mp_get_u64(o, "size", &sz);
		mp_get_u64(o, "created_at", &at);
		snprintf(ver, sizeof ver, "%llu", (unsigned long long)v);
		out_bytes(sz, size, sizeof size);
		out_age(now > at ? now - at : 0, age, sizeof age);
		const msgpack_object *s = mp_get(o, "services");
		for (uint32_t k = 0; s && s->type == MSGPACK_OBJECT_ARRAY && k < s->via.array.size; k++)
			if (mp_is_str(&s->via.array.ptr[k]))
				snprintf(svcs + strlen(svcs), sizeof svcs - strlen(svcs), "%s%.*s", k ? "," : "",
					 (int)s->via.array.ptr[k].via.str.size, s->via.array.ptr[k].via.str.ptr);
		const char *row[] = {mp_str_or(o, "id", id, sizeof id, "-"), mp_str_or(o, "name", name, sizeof name, "-"), ver,
				     size, age, svcs[0] ? svcs : "-"};
		out_table_row(&t, row);
	}
	out_table_print(&t);
	out_table_free(&t);
	mpr_free(&r);
	return EXIT_OK;
}

static int inspect(struct cli *cli, const char *kind, int argc, char **argv)
{
	enum out_fmt fmt = OUT_YAML;
	const char *name = NULL;
	for (int i = 2; i < argc; i++) {
		int orc = cli_output_opt(kind, argc, argv, &i, &fmt);
		if (orc > 1)
			return orc;
		if (orc == 1)
			continue;
		if (name)
			return cli_usage(kind, "unexpected argument %s", argv[i]);
		name = argv[i];
	}
	if (!name)
		return cli_usage(kind, "%s inspect NAME", kind);
	struct req_secret_get q = {.kind = kind, .name = name};
	struct mpr r;
	int rc = cli_rpc(cli, OP_SECRET_GET, &q, &r);
	if (rc)
		return rc;
	const msgpack_object *o = mp_get(r.root, "secret");
	out_doc(fmt == OUT_TABLE ? OUT_YAML : fmt, o ? o : r.root);
	mpr_free(&r);
	return EXIT_OK;
}

static int rm(struct cli *cli, const char *kind, int argc, char **argv)
{
	if (argc < 3)
		return cli_usage(kind, "%s rm NAME [NAME...]", kind);
	int worst = EXIT_OK;
	for (int i = 2; i < argc; i++) {
		struct req_secret_rm q = {.kind = kind, .name = argv[i]};
		struct mpr r;
		int rc = cli_rpc(cli, OP_SECRET_RM, &q, &r);
		if (rc) {
			worst = rc;
			continue;
		}
		mpr_free(&r);
		printf("%s removed\n", argv[i]);
	}
	return worst;
}

static int group(struct cli *cli, const char *kind, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(kind, "which subcommand? create, ls, inspect or rm");
	const char *sub = argv[1];
	if (!strcmp(sub, "create"))
		return create(cli, kind, argc, argv);
	if (!strcmp(sub, "ls"))
		return ls(cli, kind, argc, argv);
	if (!strcmp(sub, "inspect"))
		return inspect(cli, kind, argc, argv);
	if (!strcmp(sub, "rm"))
		return rm(cli, kind, argc, argv);
	return cli_usage(kind, "unknown subcommand %s", sub);
}

int cmd_secret(struct cli *cli, int argc, char **argv)
{
	return group(cli, "secret", argc, argv);
}

int cmd_config(struct cli *cli, int argc, char **argv)
{
	return group(cli, "config", argc, argv);
}

/* ---- registry ---------------------------------------------------------------------------- */

int cli_prompt(const char *label, bool secret, char *out, size_t cap)
{
	if (!isatty(0))
		return -1;
	fprintf(stderr, "%s", label);
	struct termios old, quiet;
	bool echo_off = secret && tcgetattr(0, &old) == 0;
	if (echo_off) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	char *got = fgets(out, (int)cap, stdin);
	if (echo_off) {
		tcsetattr(0, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (!got)
		return -1;
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

static int login(struct cli *cli, int argc, char **argv)
{
	const char *host = NULL, *user = NULL;
	bool from_stdin = false;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "-u") || !strcmp(argv[i], "--username")) {
			if (++i >= argc)
				return cli_usage("registry", "%s needs a user name", argv[i - 1]);
			user = argv[i];
		} else if (!strcmp(argv[i], "--password-stdin"))
			from_stdin = true;
		else if (argv[i][0] == '-')
			return cli_usage("registry", "unknown option %s", argv[i]);
		else if (host)
			return cli_usage("registry", "unexpected argument %s", argv[i]);
		else
			host = argv[i];
	}
	if (!host)
		return cli_usage("registry", "registry login HOST [-u USER] [--password-stdin]");
	if (strstr(host, "://"))
		return cli_usage("registry", "give the registry as HOST or HOST:PORT, without a scheme");
	char ubuf[256], pbuf[1024];
	if (!user) {
		if (from_stdin || cli_prompt("Username: ", false, ubuf, sizeof ubuf))
			return cli_usage("registry", "give the user name with -u USER");
		user = ubuf;
	}
	struct buf v = {0};
	buf_append(&v, user, strlen(user) + 1); /* user, NUL, password (secret/secrets.c reads it) */
	int rc = EXIT_OK;
	if (from_stdin) {
		struct buf p = {0};
		rc = read_value("registry", "-", &p);
		while (!rc && p.len && (p.data[p.len - 1] == '\n' || p.data[p.len - 1] == '\r'))
			p.len--;
		if (!rc && memchr(p.data, 0, p.len))
			rc = cli_fail(E_INVAL, "registry: the password contains a NUL byte");
		if (!rc)
			buf_append(&v, p.data ? p.data : (const uint8_t *)"", p.len);
		wipe(&p);
	} else if (cli_prompt("Password: ", true, pbuf, sizeof pbuf)) {
		rc = cli_usage("registry", "no terminal to ask the password on: use --password-stdin");
	} else
		buf_append(&v, pbuf, strlen(pbuf));
	OPENSSL_cleanse(pbuf, sizeof pbuf);
	if (!rc && v.len == strlen(user) + 1)
		rc = cli_fail(E_INVAL, "registry: empty password");
	if (!rc && !(rc = put(cli, "registry", host, &v, true)))
		printf("login for %s stored in the cluster\n", host);
	wipe(&v);
	return rc;
}

int cmd_registry(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "login"))
		return login(cli, argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "logout")) {
		if (argc != 3)
			return cli_usage("registry", "registry logout HOST");
		struct req_secret_rm q = {.kind = "registry", .name = argv[2]};
		struct mpr r;
		int rc = cli_rpc(cli, OP_SECRET_RM, &q, &r);
		if (rc)
			return rc;
		mpr_free(&r);
		printf("login for %s removed\n", argv[2]);
		return EXIT_OK;
	}
	return cli_usage("registry", "which subcommand? login or logout");
}

/* ---- orch deploy ------------------------------------------------------------------------- */

/* The cluster's name for a top-level entry (spec/spec.h: struct file_def). */
static void cluster_name(const struct file_def *fd, const char *project, char *out, size_t cap)
{
	if (fd->name)
		snprintf(out, cap, "%s", fd->name);
	else if (fd->external || !project || !*project)
		snprintf(out, cap, "%s", fd->key);
	else
		snprintf(out, cap, "%s_%s", project, fd->key);
}

static bool referenced(const struct spec_file *sf, bool config, const char *key)
{
	for (size_t i = 0; i < sf->nsvc; i++) {
		const struct file_ref_list *l = config ? &sf->svc[i].configs : &sf->svc[i].secrets;
		for (size_t k = 0; k < l->n; k++)
			if (!strcmp(l->v[k].source, key))
				return true;
	}
	return false;
}

int deploy_secrets(struct cli *cli, const char *file, const char *project, struct spec_file *sf, bool dry)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", strcmp(file, "-") ? file : "./-");
	const char *dir = dirname(tmp);
	/* pass 0 reads every file and checks every external one before pass 1 stores
	 * anything: a missing file changes nothing in the cluster */
	for (int pass = 0; pass < 2; pass++)
	for (int k = 0; k < 2; k++) {
		const char *kind = k ? "config" : "secret";
		struct file_def_list *defs = k ? &sf->configs : &sf->secrets;
		for (size_t i = 0; i < defs->n; i++) {
			const struct file_def *fd = &defs->v[i];
			if (!referenced(sf, k, fd->key))
				continue; /* as Compose: only what a service uses is created */
			char name[256];
			cluster_name(fd, project, name, sizeof name);
			int rc = EXIT_OK;
			if (!fd->external) {
				char path[4096 + 300];
				if (fd->file[0] == '/')
					snprintf(path, sizeof path, "%s", fd->file);
				else
					snprintf(path, sizeof path, "%s/%s", dir, fd->file);
				struct buf v = {0};
				rc = read_value(file, path, &v);
				if (!rc && !dry && pass)
					rc = put(cli, kind, name, &v, false);
				wipe(&v);
				if (rc)
					return rc;
			}
			/* the version now current: the state machine pins it again when it stores the
			 * spec, this only lets the plan compare like with like */
			uint64_t version = 0;
			struct req_secret_get q = {.kind = kind, .name = name};
			struct mpr r;
			char err[ERR_LEN];
			struct client c;
			if ((rc = client_open(&c, &cli->target, 10000, err)))
				return cli_call_fail(rc, err);
			rc = client_call_req(&c, OP_SECRET_GET, &q, &r, 15000, err);
			client_close(&c);
			if (rc == E_NOTFOUND && fd->external)
				return cli_fail(rc, "%s: %s %s is external but does not exist in the cluster; create it first with orch %s create %s FILE (nothing was deployed)",
						file, kind, name, kind, name);
			if (rc && rc != E_NOTFOUND)
				return cli_call_fail(rc, err);
			if (!pass) {
				if (!rc)
					mpr_free(&r);
				continue;
			}
			if (!rc) {
				mp_get_u64(mp_get(r.root, "secret"), "version", &version);
				mpr_free(&r);
			}
			for (size_t s = 0; s < sf->nsvc; s++) {
				struct file_ref_list *l = k ? &sf->svc[s].configs : &sf->svc[s].secrets;
				for (size_t j = 0; j < l->n; j++)
					if (!strcmp(l->v[j].source, fd->key)) {
						free(l->v[j].source);
						l->v[j].source = xstrdup(name);
						l->v[j].version = version;
					}
			}
		}
	}
	return EXIT_OK;
}
