/* Claims of node network tags on this machine (see runtime/nat.h for what a tag names). */
#ifndef ORCH_NETTAG_H
#define ORCH_NETTAG_H
#include <stdbool.h>

/* A node network's tag is claimed on this machine the moment a node picks it: the bridge
 * that shows it taken appears only when the first task needs it, and another node (of
 * another cluster with the same address byte) picking in between took the same bridge, and
 * removed it under the first one's tasks when it left. The claim names the node's data dir;
 * a claim whose data dir no longer keeps that tag in its net-tag file is stale and taken over.
 * True when the tag is now this data dir's (or claims cannot be kept here). */
bool nettag_claim(const char *tag, const char *data_dir);
/* Drops the claim if it is this data dir's. */
void nettag_release(const char *tag, const char *data_dir);
/* The same for the tag a data dir keeps in its net-tag file, if any. */
void nettag_release_dir(const char *data_dir);

#endif
