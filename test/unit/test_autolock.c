/* Autolock's key file (secret/datakey.h, secret/unlock.h): sealed under an unlock key the
 * file holds no key in clear; a fresh process (no key held) is locked and reads nothing;
 * a wrong key is refused and changes nothing; the right one unlocks, and the key stays
 * in memory only; the unlock key's text form parses back and rejects near misses. */
#include "unit.h"
#include "secret/datakey.h"
#include "secret/unlock.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t read_all(const char *dir, char *out, size_t cap)
{
	char path[600];
	snprintf(path, sizeof path, "%s/datakey", dir);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	size_t n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = 0;
	return n;
}

UNIT(unlock_key_text)
{
	struct unlock_key u, back;
	char text[UNLOCK_STR_LEN + 1], err[ERR_LEN];
	unlock_generate(&u);
	unlock_format(&u, text);
	CHECK_EQ_INT(strlen(text), UNLOCK_STR_LEN);
	CHECK(!strncmp(text, "ORCHKEY-1-", 10));
	char padded[UNLOCK_STR_LEN + 8];
	snprintf(padded, sizeof padded, "  %s\n", text);
	CHECK_EQ_INT(unlock_parse(padded, &back, err), 0);
	CHECK(!memcmp(u.k, back.k, sizeof u.k));
	text[UNLOCK_STR_LEN - 1] = 'x'; /* not hex */
	CHECK_EQ_INT(unlock_parse(text, &back, err), E_INVAL);
	CHECK_EQ_INT(unlock_parse("ORCHKEY-1-abc", &back, err), E_INVAL);
	CHECK_EQ_INT(unlock_parse("", &back, err), E_INVAL);
	CHECK(strstr(err, "not an unlock key") != NULL);
}

UNIT(datakey_locked_file_and_unlock)
{
	char dir[] = "/tmp/orch-unit-al-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char err[ERR_LEN], text[600], hex[2 * SEAL_KEY_LEN + 1];
	struct datakey k, got;
	struct unlock_key u, wrong;
	datakey_generate(&k);
	unlock_generate(&u);
	unlock_generate(&wrong);
	hex_encode(k.k, sizeof k.k, hex);
	uint64_t id = 99;
	CHECK_EQ_INT(datakey_save(dir, &k, err), 0);
	CHECK_EQ_INT(datakey_lock_state(dir, &id, err), 0);
	CHECK_EQ_INT(id, 0);
	CHECK(!datakey_locked(dir));

	CHECK_EQ_INT(datakey_save_locked(dir, &k, &u, 7, err), 0);
	read_all(dir, text, sizeof text);
	CHECK(!strncmp(text, "locked1 ", 8));
	CHECK(!strstr(text, hex)); /* no key in clear */
	struct stat st;
	char path[600];
	snprintf(path, sizeof path, "%s/datakey", dir);
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(datakey_lock_state(dir, &id, err), 1);
	CHECK_EQ_INT(id, 7);
	/* the saving process holds the key */
	CHECK(!datakey_locked(dir));
	CHECK_EQ_INT(datakey_load(dir, &got, err), 0);
	CHECK(!memcmp(k.k, got.k, sizeof k.k));

	/* a new process (nothing held): locked, and nothing reads the key */
	datakey_forget(dir);
	CHECK(datakey_locked(dir));
	CHECK_EQ_INT(datakey_load(dir, &got, err), E_AUTH);
	CHECK(strstr(err, "orch unlock") != NULL);
	/* a wrong key: refused, the file unchanged, still locked */
	char before[600];
	read_all(dir, before, sizeof before);
	CHECK_EQ_INT(datakey_unlock(dir, &wrong, err), E_AUTH);
	CHECK(strstr(err, "wrong unlock key") != NULL);
	read_all(dir, text, sizeof text);
	CHECK(!strcmp(text, before));
	CHECK(datakey_locked(dir));
	/* the right key */
	CHECK_EQ_INT(datakey_unlock(dir, &u, err), 0);
	CHECK(!datakey_locked(dir));
	memset(&got, 0, sizeof got);
	CHECK_EQ_INT(datakey_load(dir, &got, err), 0);
	CHECK(!memcmp(k.k, got.k, sizeof k.k));
	/* re-sealed under another key (a rotation): the old one no longer opens */
	CHECK_EQ_INT(datakey_save_locked(dir, &k, &wrong, 8, err), 0);
	datakey_forget(dir);
	CHECK_EQ_INT(datakey_unlock(dir, &u, err), E_AUTH);
	CHECK_EQ_INT(datakey_unlock(dir, &wrong, err), 0);
	/* in clear again (autolock off); unlocking a node that is not locked is refused */
	CHECK_EQ_INT(datakey_save(dir, &k, err), 0);
	datakey_forget(dir);
	CHECK(!datakey_locked(dir));
	CHECK_EQ_INT(datakey_unlock(dir, &u, err), E_STATE);
	/* a damaged sealed file is an error */
	FILE *f = fopen(path, "w");
	fputs("locked1 0000000000000001 zz\n", f);
	fclose(f);
	CHECK_EQ_INT(datakey_lock_state(dir, &id, err), E_INVAL);
	CHECK_EQ_INT(datakey_load(dir, &got, err), E_AUTH);
	datakey_remove(dir);
	rmdir(dir);
}
