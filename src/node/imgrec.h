/* A node that pulled an image from a registry records it in the cluster (image.put), under
 * the pinned name the service's spec gives it ("HOST/REPO:TAG@sha256:..."), naming itself
 * as a holder: the assignment documents then carry the image to the other nodes, which
 * fetch its blobs from peers first and go to the registry only when no peer has them. */
#ifndef ORCH_IMGREC_H
#define ORCH_IMGREC_H
#include <stddef.h>
#include <stdint.h>
#include "node/host.h"

/* info: image_info_encode() of the pulled image, its name the pinned one. A record of the
 * same name and digest is left as it is. 0, or an E_* when it could not be submitted. */
int imgrec_submit(const struct host *h, const uint8_t *info, size_t len, char *err);

#endif
