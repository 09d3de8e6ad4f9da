/* orch image pull | prune and the disk figures of orch images, served by the node the CLI
 * talks to: it asks every ready node (itself included, over the node port, as logs are
 * read) for its share (op image.node, node/imagework.h) and streams the answers back as
 * they come, each tagged with the node:
 *
 *   {id, rc 0, more true, resolved}                          pull: the digest the tag names
 *   {id, rc 0, more true, node, node_more true, phase, ...}  a node's progress
 *   {id, rc 0, more true, node, node_more false, node_rc, err | results}   a node's answer
 *   {id, rc 0, more false, nodes, failed, removed?}          every node has answered
 *
 * A pull resolves the tag once, here, so every node pulls the same bytes; prune first
 * removes from the cluster the records of pulled images no service uses (current or
 * previous version; listed in removed), then every node removes the blobs and layers no
 * remaining image uses. Loaded images (orch image load) are removed only by orch image rm:
 * no registry could give them back. */
#ifndef ORCH_IMAGEFAN_H
#define ORCH_IMAGEFAN_H
#include "net/proto.h"

struct daemon;
struct conn;

void imagefan_pull(struct daemon *d, struct conn *c, const struct req_image_pull *a);
void imagefan_prune(struct daemon *d, struct conn *c, const struct req_image_prune *a);
void imagefan_disk(struct daemon *d, struct conn *c, const struct req_image_disk *a);

#endif
