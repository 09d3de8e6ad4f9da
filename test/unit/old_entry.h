/* Log entries as older binaries wrote them, for tests that replay them: format 1 (origin
 * and sequence, no session) or 2 (with the session; states as text, no state tables). */
#ifndef ORCH_UNIT_OLD_ENTRY_H
#define ORCH_UNIT_OLD_ENTRY_H
#include "state/store.h"

/* A framed entry (free() it) of command `type` with the packed body map. */
void *old_entry(unsigned format, const char *type, const struct req_id *q, const void *body, size_t len, size_t *n);

#endif
