/* orch snapshot save (state/snapfile.h): the node writes a backup of the state it has
 * applied, on its own machine, from the loop thread (so the copy is of one applied index:
 * consistent), with the raft index and term it stands at. Any manager can (it holds the
 * state and the data key); a worker holds neither. */
#include "node/daemon.h"
#include "pki/pki.h"
#include "secret/datakey.h"
#include "state/snapfile.h"
#include "util/log.h"
#include "util/mem.h"
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

void rpc_snapshot_save(struct daemon *d, struct conn *c, const struct req_snapshot_save *a)
{
	char err[ERR_LEN];
	if (d->worker) {
		rpc_reply_err(c, a->id, E_UNSUPP, "snapshot: a worker holds no copy of the state; run it on a manager's machine");
		return;
	}
	if (!d->store.has_cluster) {
		rpc_reply_err(c, a->id, E_STATE, "snapshot: this node has no cluster state yet");
		return;
	}
	if (a->path[0] != '/' || strlen(a->path) > 700) {
		rpc_reply_err(c, a->id, E_INVAL, "snapshot: the path must be absolute, at most 700 bytes");
		return;
	}
	bool sealed = a->kek.n || a->salt.n;
	if (sealed && (a->kek.n != SEAL_KEY_LEN || a->salt.n != SNAPFILE_SALT_LEN)) {
		rpc_reply_err(c, a->id, E_INVAL, "snapshot: kek and salt must be 32 and 16 bytes");
		return;
	}
	bool needs = snapfile_needs_key(&d->store);
	if (needs && !sealed && !a->with_key) {
		rpc_reply_err(c, a->id, E_INVAL,
			      "snapshot: the state holds sealed values (secrets, configs, registry credentials or "
			      "services' environments); give --passphrase-file FILE to seal the data key under a "
			      "passphrase, or --with-data-key to carry it in clear");
		return;
	}
	uint64_t t0 = now_ms();
	struct datakey dk;
	int rc = 0;
	if (needs && (rc = datakey_load(d->data_dir, &dk, err))) {
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	struct snapfile_meta m = {.index = cons_applied_index(&d->cons), .term = cons_term(&d->cons),
				  .created_at = clock_wall(d->clock)};
	snprintf(m.version, sizeof m.version, "%s", ORCH_VERSION);
	snprintf(m.cluster, sizeof m.cluster, "%s", d->store.cluster.id ? d->store.cluster.id : "");
	struct snapfile_kek kek;
	if (sealed) {
		memcpy(kek.k, a->kek.p, sizeof kek.k);
		memcpy(kek.salt, a->salt.p, sizeof kek.salt);
	}
	struct buf out = {0};
	rc = snapfile_build(&d->store, &m, needs ? dk.k : NULL, sealed && !a->with_key ? &kek : NULL, &out, err);
	OPENSSL_cleanse(&kek, sizeof kek);
	if (needs)
		datakey_wipe(&dk);
	if (!rc)
		rc = pki_write_file(a->path, out.data, out.len, 0600, err); /* beside it, synced, renamed */
	if (out.data)
		OPENSSL_cleanse(out.data, out.len);
	size_t bytes = out.len;
	buf_free(&out);
	if (rc) {
		rpc_reply_err(c, a->id, rc, err);
		return;
	}
	log_info(d->ident.name, d->clock, "snapshot of index %llu written to %s (%zu bytes)", (unsigned long long)m.index,
		 a->path, bytes);
	struct mpw w;
	rpc_reply_begin(&w, a->id, 0);
	mpw_ku64(&w, "bytes", bytes);
	mpw_ku64(&w, "index", m.index);
	mpw_ku64(&w, "term", m.term);
	mpw_ku64(&w, "services", m.services);
	mpw_ku64(&w, "secrets", m.secrets);
	mpw_ku64(&w, "images", m.images);
	mpw_ku64(&w, "ms", now_ms() - t0);
	mpw_kstr(&w, "key", m.key == SNAPKEY_PASSPHRASE ? "passphrase" : m.key == SNAPKEY_CLEAR ? "clear" : "none");
	rpc_reply_send(c, &w);
}
