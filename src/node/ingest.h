/* orch image load, done by the node the CLI talks to (the CLI never writes the blob store
 * behind the agent). The CLI names the archive by its absolute path: the node runs on the
 * same machine. In the loop's thread pool the node verifies every blob into its own blob
 * store (image/image_load.h) and unpacks every layer once into its layer cache, so that
 * an entry escaping the root is refused now rather than when a task first starts; back on
 * the loop it records the image through raft. When any step fails nothing is recorded,
 * blobs of a refused layer are dropped, and the reply says why. */
#ifndef ORCH_INGEST_H
#define ORCH_INGEST_H
#include <stdint.h>
#include "net/proto.h"

struct daemon;
struct conn;

struct image_info;

/* Unpacks every layer of im into the node's layer cache (a worker thread's work); a layer
 * refused is dropped from the blob store so nothing can run it later. Pulls do it too. */
int ingest_check_layers(const char *data_dir, const struct image_info *im, char *err);

/* op image.load (net/proto.h): every image of the archive, under every tag it carries
 * (names recorded canonical, image/image_load.h image_name_key). Replies {result, name,
 * digest, size, layers} of the first image and "images": [{name, ref, digest, size,
 * layers, result}], one per record (name shown short, ref canonical). */
void ingest_start(struct daemon *d, struct conn *c, const struct req_image_load *a);

#endif
