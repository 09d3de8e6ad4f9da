/* A node's identity, kept in <data-dir>/identity (mode 0600): what lets a node started
 * again on its data directory resume instead of joining again. */
#ifndef ORCH_IDENTITY_H
#define ORCH_IDENTITY_H
#include <stdint.h>
#include "net/token.h"

struct identity {
	uint64_t id;
	char name[64];
	char listen[64];    /* IP:PORT bound */
	char advertise[64]; /* IP:PORT peers use (also the raft address) */
	struct token tok;
};

/* 0 when loaded, E_NOTFOUND when the data dir has no identity, other codes on a bad file. */
int identity_load(const char *data_dir, struct identity *id, char *err);
int identity_save(const char *data_dir, const struct identity *id, char *err);
void identity_remove(const char *data_dir);
uint64_t identity_new_id(void);

#endif
