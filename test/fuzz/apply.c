/* Raft entries as every node's state machine applies them (state/store.h store_apply): a
 * member node builds an entry and the leader puts it in the log after checking only its
 * origin, so a malformed or hostile entry reaches every node of the cluster. The input is
 * a sequence of commands (2-byte length, then the msgpack command {t, v, o, n, s, b}), each
 * framed as cmd_frame does and applied in order to two stores; then both must have the
 * same state hash (apply is deterministic), and a snapshot of the state must restore to
 * the same hash on a third. */
#include "common.h"
#include "state/store.h"
#include "util/err.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store a, b, c;
	store_init(&a);
	store_init(&b);
	store_init(&c);
	for (size_t pos = 0; pos + 2 <= size;) {
		size_t n = (size_t)data[pos] << 8 | data[pos + 1];
		pos += 2;
		if (n > size - pos)
			n = size - pos;
		size_t len;
		void *e = cmd_frame(data + pos, n, &len);
		pos += n;
		struct apply_res r = {0};
		char err[ERR_LEN];
		cmd_check_origin(e, len, 1, false, err);
		store_apply(&a, e, len, &r);
		struct apply_res r2 = {0};
		store_apply(&b, e, len, &r2);
		if (r.rc != r2.rc) {
			fprintf(stderr, "the same entry applied with rc %d, then %d\n", r.rc, r2.rc);
			abort();
		}
		free(e);
	}
	char ha[65], hb[65], hc[65];
	store_hash(&a, ha);
	store_hash(&b, hb);
	if (strcmp(ha, hb)) {
		fprintf(stderr, "two stores applied the same entries to different states\n");
		abort();
	}
	struct mpw w;
	mpw_init(&w);
	store_snapshot(&a, &w);
	char err[ERR_LEN];
	if (store_restore(&c, w.sb.data, w.sb.size, err)) {
		fprintf(stderr, "a snapshot does not restore: %s\n", err);
		abort();
	}
	store_hash(&c, hc);
	if (strcmp(ha, hc)) {
		fprintf(stderr, "a snapshot restored to another state\n");
		abort();
	}
	mpw_free(&w);
	store_free(&a);
	store_free(&b);
	store_free(&c);
	return 0;
}
