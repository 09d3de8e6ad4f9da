/* orch snapshot save FILE | inspect FILE (state/snapfile.h), and the reading of a backup
 * that orch init --restore does before it writes anything. */
#include "cli/cli.h"
#include "state/snapfile.h"
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SNAPSHOT_FILE_MAX (1ull << 32) /* the header's lengths are 32-bit */

int cli_read_passphrase(const char *file, char *out, size_t cap)
{
	FILE *f = !strcmp(file, "-") ? stdin : fopen(file, "r");
	if (!f)
		return cli_fail(E_IO, "open %s: %s", file, strerror(errno));
	bool got = fgets(out, (int)cap, f) != NULL;
	if (f != stdin)
		fclose(f);
	out[strcspn(out, "\r\n")] = 0;
	if (!got || !out[0])
		return cli_fail(E_INVAL, "%s: no passphrase in it (its first line is the passphrase)", file);
	return -1;
}

static int read_all(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return cli_fail(E_IO, "open %s: %s", path, strerror(errno));
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
		if (out->len + n > SNAPSHOT_FILE_MAX) {
			fclose(f);
			return cli_fail(E_INVAL, "%s: too large for a snapshot", path);
		}
		buf_append(out, tmp, n);
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad)
		return cli_fail(E_IO, "read %s: %s", path, strerror(errno));
	return -1;
}

int cli_snapshot_load(const char *path, const char *pass_file, struct buf *file, struct snapfile_meta *m,
		      const uint8_t **body, size_t *body_len, uint8_t key[SEAL_KEY_LEN], bool *has_key)
{
	int rc = read_all(path, file);
	if (rc >= 0)
		return rc;
	char err[ERR_LEN];
	if ((rc = snapfile_parse(file->data, file->len, m, body, body_len, err)))
		return cli_fail(rc, "%s: %s", path, err);
	*has_key = m->key != SNAPKEY_NONE;
	if (!*has_key)
		return -1;
	char pass[1024] = "";
	if (m->key == SNAPKEY_PASSPHRASE) {
		if (!pass_file)
			return cli_fail(E_INVAL, "%s: its data key is sealed under a passphrase: give --passphrase-file FILE", path);
		if ((rc = cli_read_passphrase(pass_file, pass, sizeof pass)) >= 0)
			return rc;
	}
	rc = snapfile_key(file->data, file->len, pass[0] ? pass : NULL, key, err);
	OPENSSL_cleanse(pass, sizeof pass);
	if (rc)
		return cli_fail(rc, "%s: %s", path, err);
	return -1;
}

static int save(struct cli *cli, int argc, char **argv)
{
	const char *file = NULL, *pass_file = NULL;
	bool with_key = false;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--passphrase-file") && i + 1 < argc)
			pass_file = argv[++i];
		else if (!strcmp(argv[i], "--with-data-key"))
			with_key = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return cli_usage("snapshot", "unknown option %s", argv[i]);
		else if (!file)
			file = argv[i];
		else
			return cli_usage("snapshot", "unexpected argument %s", argv[i]);
	}
	if (!file)
		return cli_usage("snapshot", "missing the file to write");
	if (pass_file && with_key)
		return cli_usage("snapshot", "--passphrase-file and --with-data-key exclude each other");
	/* the node writes it: an absolute path on this machine */
	char abs[PATH_MAX + 1], dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", file);
	char *slash = strrchr(dir, '/');
	const char *base = slash ? slash + 1 : file;
	if (slash == dir)
		snprintf(dir, sizeof dir, "/");
	else if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof dir, ".");
	char real[PATH_MAX];
	if (!*base || !realpath(dir, real))
		return cli_fail(E_INVAL, "snapshot: %s: not a file in an existing directory", file);
	if (snprintf(abs, sizeof abs, "%s/%s", strcmp(real, "/") ? real : "", base) >= (int)sizeof abs)
		return cli_fail(E_INVAL, "snapshot: path too long");
	char pass[1024] = "", err[ERR_LEN];
	int rc;
	struct snapfile_kek kek;
	struct req_snapshot_save q = {.path = abs, .with_key = with_key};
	if (pass_file) {
		if ((rc = cli_read_passphrase(pass_file, pass, sizeof pass)) >= 0)
			return rc;
		rc = snapfile_kek_derive(pass, &kek, err);
		OPENSSL_cleanse(pass, sizeof pass);
		if (rc)
			return cli_fail(rc, "%s", err);
		q.kek = (struct fl_bin){kek.k, sizeof kek.k};
		q.salt = (struct fl_bin){kek.salt, sizeof kek.salt};
	}
	struct mpr r;
	rc = cli_rpc(cli, OP_SNAPSHOT_SAVE, &q, &r);
	OPENSSL_cleanse(&kek, sizeof kek);
	if (rc)
		return rc;
	uint64_t bytes = 0, index = 0, term = 0, sv = 0, se = 0, im = 0, ms = 0;
	char key[16] = "";
	mp_get_u64(r.root, "bytes", &bytes);
	mp_get_u64(r.root, "index", &index);
	mp_get_u64(r.root, "term", &term);
	mp_get_u64(r.root, "services", &sv);
	mp_get_u64(r.root, "secrets", &se);
	mp_get_u64(r.root, "images", &im);
	mp_get_u64(r.root, "ms", &ms);
	mp_get_strbuf(r.root, "key", key, sizeof key);
	printf("%s: %llu bytes, raft index %llu term %llu: %llu services, %llu secrets, %llu images; data key: %s (%llu ms)\n",
	       abs, (unsigned long long)bytes, (unsigned long long)index, (unsigned long long)term, (unsigned long long)sv,
	       (unsigned long long)se, (unsigned long long)im, key, (unsigned long long)ms);
	mpr_free(&r);
	return EXIT_OK;
}

static int inspect(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage("snapshot", "inspect takes one FILE");
	struct buf f = {0};
	int rc = read_all(argv[2], &f);
	if (rc >= 0)
		return rc;
	struct snapfile_meta m;
	const uint8_t *body;
	size_t blen;
	char err[ERR_LEN];
	rc = snapfile_parse(f.data, f.len, &m, &body, &blen, err);
	if (rc) {
		buf_free(&f);
		return cli_fail(rc, "%s: %s", argv[2], err);
	}
	static const char *const keys[] = {"none", "sealed under a passphrase", "in clear"};
	time_t at = (time_t)(m.created_at / 1000);
	char when[64];
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&at));
	printf("format:    %llu\norch:      %s\ncluster:   %s\nindex:     %llu\nterm:      %llu\ncreated:   %s\n"
	       "services:  %llu\nsecrets:   %llu\nimages:    %llu\nsettings:  %llu\ndata key:  %s\nbytes:     %zu\n"
	       "checksum:  ok\n",
	       (unsigned long long)m.format, m.version, m.cluster, (unsigned long long)m.index, (unsigned long long)m.term,
	       when, (unsigned long long)m.services, (unsigned long long)m.secrets, (unsigned long long)m.images,
	       (unsigned long long)m.kv, keys[m.key], f.len);
	buf_free(&f);
	return EXIT_OK;
}

int cmd_snapshot(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("snapshot", "expected save or inspect");
	if (!strcmp(argv[1], "save"))
		return save(cli, argc, argv);
	if (!strcmp(argv[1], "inspect"))
		return inspect(argc, argv);
	return cli_usage("snapshot", "unknown subcommand %s", argv[1]);
}
