/* Log entries for tests that apply commands: as this binary writes them, or as older
 * binaries did — format 1 (origin and sequence, no session) or 2 (with the session;
 * states as text, no state tables). */
#ifndef ORCH_UNIT_ENTRY_H
#define ORCH_UNIT_ENTRY_H
#include "state/store.h"

/* A framed entry (free() it) of command `type` with the packed body map, in `format`. */
void *entry_old(unsigned format, enum cmd type, const struct req_id *q, const void *body, size_t len, size_t *n);
/* Applies command `type` with the body in w (freed) as origin 3 of session 9 would, a
 * new request each time. */
void entry_apply(struct store *s, enum cmd type, struct mpw *w, struct apply_res *res);
/* The body of a node.add of a node with that id and name (w initialised here). */
void entry_node_body(struct mpw *w, uint64_t id, const char *name);
/* That node.add applied (entry_apply); res->rc says how it went. */
void entry_add_node(struct store *s, uint64_t id, const char *name, struct apply_res *res);
/* service.put of the first service of a spec file's text (entry_apply); res->id is the
 * service. */
void entry_put_service(struct store *s, const char *yaml, struct apply_res *res);
/* The same with its environment sealed under key (secret/envseal.h), as a node writes it. */
void entry_put_service_sealed(struct store *s, const char *yaml, const uint8_t *key, struct apply_res *res);
/* Every byte of spec text yml replaced in turn by each of a few troublesome characters,
 * and every truncation: each parse ends in specs that survive the codec unchanged or in
 * an error located in the file ("app.yml:..."), never a crash; both outcomes happen more
 * than 100 times. */
void entry_spec_mangle(const char *yml);
/* A new store (out, initialised here) restored from a snapshot of s. */
void entry_restore_copy(const struct store *s, struct store *out);

#endif
