/* Credentials for unit tests that run real nodes: what orch init leaves in a data
 * directory (data key, CA, node certificate, tokens), and a join as orch join does it. */
#ifndef ORCH_UNIT_CREDS_FIXTURE_H
#define ORCH_UNIT_CREDS_FIXTURE_H
#include "node/identity.h"
#include "net/token.h"

/* data_dir exists; id->id and id->cluster_id are set (cluster_id made random here). */
void fixture_init(const char *data_dir, struct identity *id, struct token *mgr, struct token *wrk);
/* A join of node `self` (record fields from it) through addr with token t: 0, or the rc
 * with err. On success data_dir/tls holds its credentials and self->tls is loaded. */
int fixture_join(const char *addr, const struct token *t, struct identity *self, const char *data_dir, char *err);

#endif
