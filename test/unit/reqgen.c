#include "reqgen.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

uint64_t prng_next(struct prng *g)
{
	/* xorshift64* */
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545f4914f6cdd1dull;
}

uint64_t prng_below(struct prng *g, uint64_t n)
{
	return n ? prng_next(g) % n : 0;
}

static void good_value(struct mpw *w, enum fl_kind k)
{
	switch (k) {
	case FL_STR: mpw_str(w, "x"); break;
	case FL_U64: mpw_u64(w, 1); break;
	case FL_I64: mpw_i64(w, -1); break;
	case FL_BOOL: mpw_bool(w, true); break;
	case FL_MAP:
		mpw_map_begin(w);
		mpw_map_end(w);
		break;
	case FL_ARR: mpw_arr(w, 0); break;
	case FL_BIN: mpw_bin(w, "12345678", 8); break;
	case FL_ANY: mpw_nil(w); break;
	}
}

void reqgen_request(struct mpw *w, enum op op, uint64_t id, size_t bad, bool wrong, bool too_long)
{
	const struct proto_op *d = &proto_ops[op];
	mpw_map_begin(w);
	mpw_kstr(w, "op", d->name);
	mpw_ku64(w, "id", id);
	reqgen_fields(w, d->fields, d->nfields, bad, wrong, too_long);
	mpw_map_end(w);
}

void reqgen_fields(struct mpw *w, const struct fl_field *fields, size_t n, size_t bad, bool wrong, bool too_long)
{
	for (size_t i = 0; i < n; i++) {
		const struct fl_field *f = &fields[i];
		if (i != bad) {
			mpw_key(w, f->name);
			good_value(w, f->kind);
		} else if (too_long) {
			char *s = xmalloc((size_t)f->arg + 2);
			memset(s, 'a', (size_t)f->arg + 1);
			s[f->arg + 1] = 0;
			mpw_kstr(w, f->name, s);
			free(s);
		} else if (wrong) {
			mpw_key(w, f->name);
			if (f->kind == FL_STR)
				mpw_u64(w, 7);
			else
				mpw_str(w, "seven");
		}
	}
}

/* Strings that mean something somewhere, and some that mean nothing. */
static const char *const words[] = {
	"", "x", "n1", "web", "running", "drain", "active", "pause", "resume", "undo", "/", "/nonexistent/archive.tar",
	"relative", "sha256:00", "0", "ffffffffffffffff", "\xc3\xa9\xe4\xb8\xad", "spec", "name", "image", "deploy",
	"replicas", "key", "value", "labels", "node", "id", "op", "kv.set", "status",
};
#define NWORDS (sizeof words / sizeof words[0])

static void random_value(struct prng *g, struct mpw *w, int depth);

static void random_str(struct prng *g, struct mpw *w)
{
	if (prng_below(g, 4)) {
		mpw_str(w, words[prng_below(g, NWORDS)]);
		return;
	}
	char s[300];
	size_t n = (size_t)prng_below(g, prng_below(g, 2) ? 20 : sizeof s);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)prng_next(g);
	mpw_strn(w, s, n);
}

static void random_map(struct prng *g, struct mpw *w, int depth)
{
	unsigned n = (unsigned)prng_below(g, 5);
	mpw_map_begin(w);
	for (unsigned i = 0; i < n; i++) {
		if (prng_below(g, 8)) {
			mpw_key(w, words[prng_below(g, NWORDS)]);
		} else { /* a key that is not a string */
			mpw_key_obj(w, &(msgpack_object){.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = i});
		}
		random_value(g, w, depth + 1);
	}
	mpw_map_end(w);
}

static void random_value(struct prng *g, struct mpw *w, int depth)
{
	static const uint64_t ints[] = {0, 1, 2, 7, 255, 65536, 1ull << 32, INT64_MAX, UINT64_MAX};
	switch (prng_below(g, depth < 3 ? 10 : 7)) {
	case 0: mpw_nil(w); break;
	case 1: mpw_bool(w, prng_below(g, 2)); break;
	case 2: mpw_u64(w, prng_below(g, 2) ? ints[prng_below(g, 9)] : prng_next(g)); break;
	case 3: mpw_i64(w, -(int64_t)prng_below(g, 1000) - 1); break;
	case 4: random_str(g, w); break;
	case 5: {
		uint8_t b[64];
		size_t n = (size_t)prng_below(g, 5) * 8 + prng_below(g, 2) * 3;
		for (size_t i = 0; i < n && i < sizeof b; i++)
			b[i] = (uint8_t)prng_next(g);
		mpw_bin(w, b, n < sizeof b ? n : sizeof b);
		break;
	}
	case 6: msgpack_pack_double(&w->pk, (double)prng_next(g) / 1e9); break;
	case 7: {
		unsigned n = (unsigned)prng_below(g, 4);
		mpw_arr(w, n);
		for (unsigned i = 0; i < n; i++)
			random_value(g, w, depth + 1);
		break;
	}
	default: random_map(g, w, depth); break;
	}
}

void reqgen_random(struct prng *g, struct mpw *w, enum op op, uint64_t id)
{
	const struct proto_op *d = &proto_ops[op];
	mpw_map_begin(w);
	mpw_key(w, "op");
	if (prng_below(g, 10))
		mpw_str(w, d->name);
	else
		random_value(g, w, 2);
	mpw_ku64(w, "id", id);
	reqgen_random_fields(g, w, d->fields, d->nfields);
	mpw_map_end(w);
}

void reqgen_random_fields(struct prng *g, struct mpw *w, const struct fl_field *fields, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		const struct fl_field *f = &fields[i];
		unsigned pick = (unsigned)prng_below(g, 4);
		if (pick == 0)
			continue;
		mpw_key(w, f->name);
		if (pick == 1)
			random_value(g, w, 1);
		else if (pick == 3 && f->kind == FL_STR)
			random_str(g, w);
		else if (pick == 3 && f->kind == FL_U64)
			mpw_u64(w, prng_below(g, 3) ? prng_below(g, 100) : prng_next(g));
		else if (pick == 3 && f->kind == FL_MAP)
			random_map(g, w, 1);
		else
			good_value(w, f->kind);
	}
	for (unsigned n = (unsigned)prng_below(g, 3); n; n--) { /* others, ignored */
		mpw_key(w, words[prng_below(g, NWORDS)][0] ? "extra" : "");
		random_value(g, w, 1);
	}
}
