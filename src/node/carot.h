/* A CA rotation with no downtime (orch ca rotate), run by the leader:
 *
 *   1. a new CA (made here, or given) and a certificate of it signed by the old CA (the
 *      cross-signature) go into the state with one cluster.ca command: the bundle holds
 *      the new CA then the old, the new key signs from now on, and the tokens pin the new
 *      CA (their fingerprint is the bundle's first certificate's);
 *   2. every node sees its bundle differ from the state's (a worker through its feed,
 *      node/feed.h) and renews at once (node/renew.h): its new certificate comes from the
 *      new CA, and it sends the cross-signature after it, so a peer that still trusts only
 *      the old CA accepts it; the leader records each node's CA (node.cert_ca);
 *   3. once every ready node's record names the new CA, a second cluster.ca leaves the
 *      new CA alone in the bundle and drops the cross-signature; the nodes renew once more
 *      to take that bundle, and from then on a certificate of the old CA is refused.
 *
 * A node that was down during the whole rotation holds a certificate of the old CA,
 * which nobody accepts afterwards: it has to leave and join again (orch-ca(1)). */
#ifndef ORCH_CAROT_H
#define ORCH_CAROT_H
#include <stddef.h>
#include "state/store.h"

struct daemon;

/* How far a rotation is: nodes (ready ones) and how many hold a certificate of the
 * bundle's first CA. False when none is in progress. */
bool carot_progress(const struct store *s, size_t *on_new, size_t *total);
/* The leader's periodic step: ends a rotation once every ready node moved. */
void carot_tick(struct daemon *d);

#endif
