/* Named clusters the CLI drives (orch-context(1)): a small text file,
 * $ORCH_CONFIG, else $XDG_CONFIG_HOME/orch/config, else ~/.config/orch/config:
 *
 *   # comments and blank lines are ignored
 *   current: prod
 *   context prod
 *     host: 10.0.0.1:7420
 *     cert-bundle: /root/.config/orch/alice@prod.pem
 *
 * "current: local" (or none) means the local node's socket. The file holds no key: the
 * bundle it names does (mode 0600, orch-user(1)). */
#ifndef ORCH_CONTEXT_H
#define ORCH_CONTEXT_H
#include <stddef.h>

#define CONTEXT_MAX 64

struct context {
	char name[64];
	char host[64];
	char bundle[1024];
};

struct contexts {
	char current[64]; /* "" : local */
	size_t n;
	struct context v[CONTEXT_MAX];
};

/* The file's path; 0 or E_INVAL when neither ORCH_CONFIG, XDG_CONFIG_HOME nor HOME is set. */
int context_path(char *buf, size_t n, char *err);
/* Reads path into cs; a missing file is no context. E_INVAL naming path:line otherwise. */
int context_load(const char *path, struct contexts *cs, char *err);
/* Writes cs to path (its directory made, mode 0600, replaced atomically). */
int context_save(const char *path, const struct contexts *cs, char *err);
struct context *context_find(struct contexts *cs, const char *name);
/* A context name: 1-63 of [A-Za-z0-9._@-], not "local". */
int context_name_valid(const char *name);

#endif
