/* Internal: the field list of every spec struct, written once and walked by the YAML
 * parser (spec_yaml.c), the msgpack codec and the defaults (spec_codec.c). */
#ifndef ORCH_SPEC_TABLE_H
#define ORCH_SPEC_TABLE_H
#include "spec/spec.h"

enum sf_kind {
	SF_STR,         /* char *; NULL = unset */
	SF_U64,         /* uint64_t in [lo, hi] (hi 0 = no upper bound) */
	SF_BOOL,        /* bool */
	SF_DUR,         /* uint64_t milliseconds, "1m30s" */
	SF_BYTES,       /* uint64_t bytes, "512m" */
	SF_CPUS,        /* uint64_t millicpus, "0.5" */
	SF_RATIO,       /* double in [0, 1] */
	SF_ENUM,        /* int index into names */
	SF_ARGV,        /* struct strv: shell-split string or list of strings */
	SF_ENV,         /* struct labels: map, or list of K=V; every value required */
	SF_LABELS,      /* struct labels: map, or list of k=v / k */
	SF_PORTS,       /* struct port_list: short "8080:80/tcp" or long (port_table) */
	SF_CONSTRAINTS, /* struct constraint_list: encoded as canonical strings */
	SF_HCTEST,      /* struct healthcheck (kind + test): ["CMD", ...] etc. */
	SF_SUB,         /* nested struct described by sub */
	/* a list {size_t n; T *v;} of sub structs of `size` bytes: */
	SF_LIST,        /* YAML: a list of mappings */
	SF_NAMED,       /* YAML: a list of names, or a mapping name -> mapping (or null); the
			 * sub table's first field is the name (SF_STR, SFF_NOYAML); encoded
			 * sorted by name */
};

enum {
	SFF_REQUIRED = 1, /* must appear in the YAML mapping */
	SFF_NOYAML = 2,   /* encoded, but not a YAML key (set by the parser itself) */
};

struct sf_table;
struct sf {
	const char *key;
	enum sf_kind kind;
	size_t off;
	unsigned flags;
	uint64_t def; /* default of numeric, bool and enum kinds */
	uint64_t lo, hi;
	const char *const *names;       /* SF_ENUM: accepted values */
	const char *const *unsupported; /* SF_ENUM: known values orch rejects */
	const struct sf_table *sub;     /* SF_SUB, SF_LIST, SF_NAMED */
	size_t size;                    /* SF_LIST, SF_NAMED: bytes of one element */
	/* SF_LIST, SF_NAMED: where the parser records each element's position (a struct
	 * spec_pos at pos_off), for errors found across services */
	bool has_pos;
	size_t pos_off;
};

struct sf_table {
	const char *what;
	size_t n;
	const struct sf *f;
	/* Cross-field rules and normalisation after a mapping was parsed from YAML;
	 * 0 or -1 with msg (ERR_LEN) filled. */
	int (*check)(void *obj, char *msg);
};

extern const struct sf_table svc_table;
extern const struct sf_table port_table;
extern const struct sf_table network_table; /* top-level networks: (struct spec_network) */

/* The layout every list field shares (port_list, constraint_list, dep_list, ...). */
struct sf_list {
	size_t n;
	void *v;
};
void sf_table_defaults(const struct sf_table *t, void *obj);
void sf_table_free(const struct sf_table *t, void *obj);

#endif
