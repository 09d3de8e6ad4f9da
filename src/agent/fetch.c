#include "agent/fetch.h"
#include "agent/task_run.h"
#include "cli/client.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdio.h>
#include <string.h>

static int fetch_from(const struct blobstore *bs, const char *digest, const char *addr, const struct tlsctx *tls, char *err)
{
	struct client c;
	int rc = client_open_tcp(&c, addr, tls, 5000, err);
	if (rc)
		return rc;
	struct blob_writer w;
	if ((rc = blob_writer_begin(&w, bs, err))) {
		client_close(&c);
		return rc;
	}
	uint64_t off = 0, total = UINT64_MAX;
	while (off < total) {
		struct req_blob_get q = {.digest = digest, .offset = off, .len = FETCH_CHUNK};
		struct mpr r;
		rc = client_call_req(&c, OP_BLOB_GET, &q, &r, 30000, err);
		if (rc) {
			mpr_free(&r);
			break;
		}
		const msgpack_object *data = mp_get(r.root, "data");
		if (mp_get_u64(r.root, "size", &total) || !data || data->type != MSGPACK_OBJECT_BIN ||
		    (data->via.bin.size == 0 && off < total)) {
			mpr_free(&r);
			rc = errf(err, E_IO, "%s sent a malformed blob chunk", addr);
			break;
		}
		rc = blob_writer_write(&w, data->via.bin.ptr, data->via.bin.size, err);
		off += data->via.bin.size;
		mpr_free(&r);
		if (rc)
			break;
	}
	client_close(&c);
	if (rc) {
		blob_writer_abort(&w);
		return rc;
	}
	char got[DIGEST_LEN];
	return blob_writer_commit(&w, digest, got, NULL, err);
}

int fetch_blob(const struct blobstore *bs, const char *digest, const struct run_peer *peers, size_t npeers,
	       uint64_t first, const struct tlsctx *tls, char *err)
{
	char last[ERR_LEN] = "no peer to fetch from";
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < npeers; i++) {
			if ((pass == 0) != (peers[i].id == first))
				continue;
			char e[ERR_LEN];
			if (!fetch_from(bs, digest, peers[i].addr, tls, e)) {
				log_info(NULL, NULL, "fetched blob %.19s from %s", digest, peers[i].addr);
				return 0;
			}
			snprintf(last, sizeof last, "%s: %s", peers[i].addr, e);
		}
	char sd[24];
	digest_short(digest, sd, sizeof sd);
	return errf(err, E_NOTFOUND, "blob %s not found on any peer (last: %s)", sd, last);
}
