/* Internal: the field list of every spec struct, written once and walked by the YAML
 * parser (spec_yaml.c), the msgpack codec and the defaults (spec_codec.c). */
#ifndef ORCH_SPEC_TABLE_H
#define ORCH_SPEC_TABLE_H
#include "spec/spec.h"
#include <yaml.h>

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
	SF_MOUNTS,      /* struct mount_list: short "src:/dst:ro" or long (mount_table) */
	SF_SUB,         /* nested struct described by sub */
	SF_MODE,        /* uint64_t file mode: octal as Compose writes it (0400, 0o400) or decimal */
	SF_FILES,       /* struct file_ref_list: short "name" or long syntax (sub: the item's table) */
	/* a list {size_t n; T *v;} of sub structs of `size` bytes: */
	SF_LIST,        /* YAML: a list of mappings */
	SF_NAMED,       /* YAML: a list of names, or a mapping name -> mapping (or null); the
			 * sub table's first field is the name (SF_STR, SFF_NOYAML); encoded
			 * sorted by name */
};

enum {
	SFF_REQUIRED = 1, /* must appear in the YAML mapping */
	SFF_NOYAML = 2,   /* encoded, but not a YAML key (set by the parser itself) */
	SFF_NOCODEC = 4,  /* read from YAML and folded into other fields; never encoded */
	SFF_HOSTS = 8,    /* SF_LABELS written as Compose's extra_hosts: "host:ip", "host=ip" */
	SFF_ULIMITS = 16, /* SF_LABELS written as Compose's ulimits: name: N or {soft, hard} */
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

/* Where the nodes of a document came from: a node's start_mark.index is the index of its
 * file in files (the loaders in compose.c set it, so one document may hold nodes of several
 * files), and notes tell which values came out of interpolation with a variable unset, so an
 * error in such a value names the variable rather than only the bad result. */
struct spec_note {
	size_t file, line, col; /* the node's start_mark */
	char *text;             /* "PUBLIC_PORT is not set (from \"${PUBLIC_PORT}:80\")" */
};
struct spec_src {
	const char *const *files;
	size_t nfiles;
	const struct spec_note *notes;
	size_t nnotes;
};

/* The entries of a mapping, merge keys (<<) resolved, duplicates refused; found by a hash. */
struct spec_pair {
	yaml_node_t *k, *v;
	int kid, vid; /* node ids, for callers that add nodes (which moves the pointers) */
	const char *key;
};
struct spec_pairs {
	size_t n, cap, nslots;
	struct spec_pair *v;
	size_t *slots; /* open addressing: index + 1, 0 = empty */
};
int spec_map_pairs(const struct spec_src *src, yaml_document_t *doc, yaml_node_t *map, const char *path,
		   struct spec_pairs *out, char *err);
const struct spec_pair *spec_pairs_find(const struct spec_pairs *p, const char *key);
void spec_pairs_free(struct spec_pairs *p);
/* "file:line:col: path: message" for node n. */
int spec_node_err(const struct spec_src *src, const yaml_node_t *n, const char *path, char *err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Sorted labels from n entries in one sort; of a repeated key the last entry wins. */
void spec_labels_build(struct labels *l, const char *const *k, const char *const *v, size_t n);
/* The spec parse of a loaded (and interpolated, merged) document. */
int spec_parse_doc(const struct spec_src *src, yaml_document_t *doc, struct spec_file **out, char *err);

/* The Compose keys beside deploy: checked and folded in (restart: into deploy.restart
 * unless restart_policy was given; the image reference checked); spec_values.c. */
int spec_compose_keys(struct svc_spec *s, char *msg);
/* The hardening keys (cap_add, sysctls, security_opt, tmpfs, ...) checked and folded in;
 * spec_security.c. */
int spec_security_keys(struct svc_spec *s, char *msg);

extern const struct sf_table svc_table;
extern const struct sf_table port_table;
extern const struct sf_table mount_table;

/* A mount's source as parsed: a bind's host path made absolute (relative to dir, the
 * spec file's directory), a volume's slot template normalised and its name checked. */
int spec_mount_source(struct mount_spec *m, const char *dir, char *msg);
/* A decoded mount (from the network or the log) in the form the parser leaves: an
 * absolute target, a bind's absolute source, a volume's valid name, no tmpfs source. */
int spec_mount_valid(const struct mount_spec *m, char *msg);
extern const struct sf_table secret_ref_table, config_ref_table;
extern const struct sf_table network_table; /* top-level networks: (struct spec_network) */

/* The layout every list field shares (port_list, constraint_list, dep_list, ...). */
struct sf_list {
	size_t n;
	void *v;
};
void sf_table_defaults(const struct sf_table *t, void *obj);
void sf_table_free(const struct sf_table *t, void *obj);

#endif
