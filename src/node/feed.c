#include "node/feed.h"
#include "image/ref.h"
#include "spec/spec.h"
#include "util/err.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

/* ---- what the documents of one pass share ----------------------------------------------- */

/* A service's specs and images, by generation (its own and the previous one). */
struct svc_view {
	const struct service *v;
	const struct image *im, *prev_im;
	bool looked_up;
};

struct docs {
	const struct store *s;
	const struct feed_out *out; /* NULL: nothing can be opened (feed_doc) */
	struct svc_view *svc;    /* by position in the services table */
	struct mpw peers;        /* the "peers" array, packed once */
	struct mpw members;      /* the "members" array (node ids), packed once */
	uint64_t peers_fp;       /* of both, and of ca_tag */
	uint64_t ca_tag;
};

static uint64_t fnv(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 0xff)) * 1099511628211ull;
	return h;
}

static const struct image *spec_image(const struct store *s, const struct rawmp *spec)
{
	const struct svc_spec *sp = spec->len ? spec->dec : NULL;
	return sp && sp->image ? store_image_by_name(s, sp->image) : NULL;
}

static struct svc_view *svc_of(struct docs *d, uint64_t id)
{
	long i = table_index_u64(&d->s->services, id);
	if (i < 0)
		return NULL;
	struct svc_view *sv = &d->svc[i];
	if (!sv->looked_up) {
		sv->looked_up = true;
		sv->v = d->s->services.items[i];
		sv->im = spec_image(d->s, &sv->v->spec);
		sv->prev_im = spec_image(d->s, &sv->v->prev_spec);
	}
	return sv;
}

uint64_t feed_ca_tag(const char *bundle)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)bundle; p && *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return bundle && *bundle ? h : 0;
}

/* Peers for blob fetches: the ready nodes that can hold blobs (not hollow ones). */
static void docs_init(struct docs *d, const struct store *s, const struct feed_out *out)
{
	d->s = s;
	d->out = out;
	d->svc = xcalloc(s->services.n + 1, sizeof *d->svc);
	mpw_init(&d->peers);
	uint32_t np = 0;
	TABLE_FOREACH(&s->nodes, const struct node, nd)
		np += nd->state == NS_READY && !node_hollow(nd);
	mpw_arr(&d->peers, np);
	d->peers_fp = 1469598103934665603ull;
	TABLE_FOREACH(&s->nodes, const struct node, nd) {
		if (nd->state != NS_READY || node_hollow(nd))
			continue;
		mpw_map_begin(&d->peers);
		mpw_ku64(&d->peers, "id", nd->id);
		mpw_kstr(&d->peers, "addr", nd->addr);
		mpw_map_end(&d->peers);
		d->peers_fp = fnv(d->peers_fp, nd->id);
	}
	/* every member, whatever its state: a worker refuses the certificates of the others
	 * (removed nodes), having no state to ask */
	d->ca_tag = feed_ca_tag(s->has_cluster ? s->cluster.ca_certs : NULL);
	d->peers_fp = fnv(d->peers_fp, d->ca_tag);
	mpw_init(&d->members);
	mpw_arr(&d->members, (uint32_t)s->nodes.n);
	d->peers_fp = fnv(d->peers_fp, s->nodes.n);
	TABLE_FOREACH(&s->nodes, const struct node, nd) {
		mpw_u64(&d->members, nd->id);
		d->peers_fp = fnv(d->peers_fp, nd->id);
	}
}

static void docs_free(struct docs *d)
{
	free(d->svc);
	mpw_free(&d->peers);
	mpw_free(&d->members);
}

/* Tasks a document lists: not ended (history stays out; an agent stops a task that leaves
 * its document as it does one whose desired state is shutdown). */
static bool listed(const struct task *t)
{
	return !task_terminal(t);
}

/* The spec of the task's own generation: current or previous. */
static const struct rawmp *task_spec(const struct svc_view *sv, const struct task *t, const struct image **im)
{
	*im = NULL;
	if (!sv)
		return NULL;
	if (t->generation == sv->v->generation) {
		*im = sv->im;
		return &sv->v->spec;
	}
	if (sv->v->prev_spec.len) {
		*im = sv->prev_im;
		return &sv->v->prev_spec;
	}
	return NULL;
}

/* What the agent acts on, for one task: see node/feed.h. */
static uint64_t task_fp(struct docs *d, const struct task *t)
{
	const struct image *im;
	const struct svc_view *sv = svc_of(d, t->service_id);
	const struct rawmp *spec = task_spec(sv, t, &im);
	uint64_t h = fnv(1469598103934665603ull, t->generation);
	h = fnv(h, t->desired == TD_RUNNING);
	h = fnv(h, t->start_after);
	h = fnv(h, spec ? spec->len : 0);
	return fnv(h, im ? im->node_id : 0);
}

/* The same for a whole document (this node's own). */
static uint64_t fingerprint(struct docs *d, const struct node *self, const struct task *const *ts, size_t n)
{
	uint64_t h = fnv(d->peers_fp, self ? self->subnet : 0);
	for (size_t i = 0; i < n; i++)
		h = fnv(fnv(h, ts[i]->id), task_fp(d, ts[i]));
	return h;
}

void feed_put_sealed(const struct feed_out *out, bool worker, const char *kind, const char *name,
		     const struct rawmp *sealed, struct mpw *w)
{
	if (!sealed || !sealed->len) {
		mpw_key(w, "data");
		mpw_nil(w);
		return;
	}
	if (!worker) {
		mpw_key(w, "data");
		mpw_raw(w, sealed->data, sealed->len);
		return;
	}
	char err[ERR_LEN] = "";
	struct mpr r;
	struct buf v = {0};
	int rc = E_INVAL;
	if (!out || !out->open)
		rc = errf(err, E_UNSUPP, "%s %s: no data key here to open it for a worker", kind, name);
	else if (mpr_decode(&r, sealed->data, sealed->len))
		errf(err, E_INVAL, "%s %s: stored value unreadable", kind, name);
	else {
		if (r.root->type == MSGPACK_OBJECT_BIN)
			rc = out->open(out->arg, kind, name, r.root->via.bin.ptr, r.root->via.bin.size, &v, err);
		else
			errf(err, E_INVAL, "%s %s: stored value unreadable", kind, name);
		mpr_free(&r);
	}
	if (rc) {
		mpw_kstr(w, "open_err", err);
	} else {
		mpw_key(w, "value");
		mpw_bin(w, v.data, v.len);
	}
	if (v.data)
		memset(v.data, 0, v.cap); /* the copy in the document goes out with it */
	buf_free(&v);
}

/* The secrets and configs of a task's spec with their values (put_sealed): only the node
 * that runs the task is sent them. No value when the version is gone (the agent fails
 * the task, saying so). */
static void doc_files(struct docs *d, bool worker, const struct rawmp *spec, struct mpw *w)
{
	const struct svc_spec *sp = spec && spec->len ? spec->dec : NULL;
	size_t n = sp ? sp->secrets.n + sp->configs.n : 0;
	mpw_arr(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		bool sec = i < sp->secrets.n;
		const struct file_ref *r = sec ? &sp->secrets.v[i] : &sp->configs.v[i - sp->secrets.n];
		const char *kind = sec ? "secret" : "config";
		const struct secret *x = store_secret_version(d->s, kind, r->source, r->version);
		mpw_map_begin(w);
		mpw_kstr(w, "kind", kind);
		mpw_kstr(w, "name", r->source);
		mpw_ku64(w, "version", r->version);
		mpw_kstr(w, "target", r->target);
		mpw_ku64(w, "uid", r->uid);
		mpw_ku64(w, "gid", r->gid);
		mpw_ku64(w, "mode", r->mode);
		feed_put_sealed(d->out, worker, kind, r->source, x ? &x->data : NULL, w);
		mpw_map_end(w);
	}
}

void feed_registry_creds(const struct store *s, const struct feed_out *out, bool worker, const char *domain,
			 struct mpw *w)
{
	const struct secret *x = worker ? store_secret_latest(s, "registry", domain) : NULL;
	mpw_arr(w, x ? 1 : 0);
	if (!x)
		return;
	mpw_map_begin(w);
	mpw_kstr(w, "host", domain);
	feed_put_sealed(out, worker, "registry", domain, &x->data, w);
	mpw_map_end(w);
}

/* A worker pulls an image the cluster does not hold from its registry with the
 * credentials orch registry login stored for that host: it cannot read them from a state
 * it does not hold, so they come with the task, opened. */
static void doc_registry(struct docs *d, bool worker, const struct image *im, const struct rawmp *spec, struct mpw *w)
{
	const struct svc_spec *sp = spec && spec->len ? spec->dec : NULL;
	struct image_ref ref;
	char err[ERR_LEN];
	bool pulls = worker && !im && sp && sp->image && !image_ref_parse(sp->image, &ref, err);
	feed_registry_creds(d->s, d->out, pulls, pulls ? ref.domain : "", w);
}

/* The spec as the log holds it; for a worker, which holds no data key, with its
 * environment opened by the leader (kept sealed if that fails: the task then fails to
 * start, saying why). */
static void doc_spec(struct docs *d, bool worker, const struct rawmp *spec, struct mpw *w)
{
	const struct svc_spec *sp = spec && spec->len ? spec->dec : NULL;
	if (!sp) {
		mpw_nil(w);
		return;
	}
	if (worker && sp->env_sealed.len && d->out && d->out->open) {
		char err[ERR_LEN];
		struct buf v = {0};
		if (!d->out->open(d->out->arg, FEED_SPEC_KIND, sp->name, spec->data, spec->len, &v, err)) {
			mpw_raw(w, v.data, v.len);
			explicit_bzero(v.data, v.len);
			buf_free(&v);
			return;
		}
		buf_free(&v);
	}
	mpw_raw(w, spec->data, spec->len);
}

static void doc_task(struct docs *d, const struct task *t, struct mpw *w)
{
	const struct svc_view *sv = svc_of(d, t->service_id);
	const struct image *im;
	const struct rawmp *spec = task_spec(sv, t, &im);
	const struct node *to = table_get_u64(&d->s->nodes, t->node_id);
	mpw_map_begin(w);
	mpw_ku64(w, "id", t->id);
	mpw_kstr(w, "service", t->service);
	mpw_ku64(w, "slot", t->slot);
	mpw_ku64(w, "generation", t->generation);
	mpw_kstr(w, "desired", lifecycle_name(&lifecycle_desired, (int)t->desired));
	mpw_kstr(w, "state", task_state_name(t->state));
	mpw_ku64(w, "start_after", t->start_after);
	mpw_key(w, "spec");
	doc_spec(d, to && to->worker, spec, w);
	mpw_key(w, "image");
	if (im && im->info.len)
		mpw_raw(w, im->info.data, im->info.len);
	else
		mpw_nil(w);
	mpw_ku64(w, "image_node", im ? im->node_id : 0);
	mpw_kstr(w, "project", sv && sv->v->project ? sv->v->project : "");
	mpw_key(w, "files");
	doc_files(d, to && to->worker, spec, w);
	mpw_key(w, "registry");
	doc_registry(d, to && to->worker, im, spec, w);
	mpw_map_end(w);
}

/* Opens the document's map with what every form has; the caller adds the rest and closes
 * it. */
static void doc_head(struct docs *d, uint64_t node_id, struct mpw *w)
{
	const struct node *self = table_get_u64(&d->s->nodes, node_id);
	mpw_map_begin(w);
	mpw_ku64(w, "node_id", node_id);
	mpw_ku64(w, "subnet", self ? self->subnet : 0);
	mpw_key(w, "peers");
	mpw_raw(w, d->peers.sb.data, d->peers.sb.size);
	mpw_key(w, "members");
	mpw_raw(w, d->members.sb.data, d->members.sb.size);
	mpw_ku64(w, "ca_tag", d->ca_tag);
}

/* {node_id, subnet, peers: [{id, addr}], tasks: [...]} */
static void doc_write(struct docs *d, uint64_t node_id, const struct task *const *ts, size_t n, struct mpw *w)
{
	doc_head(d, node_id, w);
	mpw_key(w, "tasks");
	mpw_arr(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		doc_task(d, ts[i], w);
	mpw_map_end(w);
}

/* What a watch was last sent: its tasks' ids and fingerprints, in id order. */
static void remember(struct docs *d, struct feed_watcher *x, const struct node *self, const struct task *const *ts, size_t n)
{
	free(x->sent_tasks);
	x->sent_tasks = xcalloc(n + 1, sizeof *x->sent_tasks);
	for (size_t i = 0; i < n; i++)
		x->sent_tasks[i] = (struct feed_sent){ts[i]->id, task_fp(d, ts[i])};
	x->nsent = n;
	x->fp = fnv(d->peers_fp, self ? self->subnet : 0);
	x->sent = true;
}

/* The changes since what x was last sent, or false when there are none. */
static bool doc_delta(struct docs *d, struct feed_watcher *x, const struct task *const *ts, size_t n, struct mpw *w)
{
	const struct node *self = table_get_u64(&d->s->nodes, x->node_id);
	uint64_t head = fnv(d->peers_fp, self ? self->subnet : 0);
	struct mpw ch, rm;
	mpw_init(&ch);
	mpw_init(&rm);
	uint32_t nch = 0, nrm = 0;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		while (j < x->nsent && x->sent_tasks[j].id < ts[i]->id) {
			mpw_u64(&rm, x->sent_tasks[j++].id);
			nrm++;
		}
		bool known = j < x->nsent && x->sent_tasks[j].id == ts[i]->id;
		if (!known || x->sent_tasks[j].fp != task_fp(d, ts[i])) {
			doc_task(d, ts[i], &ch);
			nch++;
		}
		if (known)
			j++;
	}
	for (; j < x->nsent; j++, nrm++)
		mpw_u64(&rm, x->sent_tasks[j].id);
	bool any = nch || nrm || head != x->fp;
	if (any) {
		doc_head(d, x->node_id, w);
		mpw_key(w, "changed");
		mpw_arr(w, nch);
		mpw_raw(w, ch.sb.data, ch.sb.size);
		mpw_key(w, "removed");
		mpw_arr(w, nrm);
		mpw_raw(w, rm.sb.data, rm.sb.size);
		mpw_map_end(w);
		remember(d, x, self, ts, n);
	}
	mpw_free(&ch);
	mpw_free(&rm);
	return any;
}

/* The tasks listed for node_id, in id order. */
static const struct task **node_tasks(const struct store *s, uint64_t node_id, size_t *n)
{
	const struct task **ts = NULL;
	size_t cap = 0;
	*n = 0;
	TABLE_FOREACH(&s->tasks, const struct task, t) {
		if (t->node_id != node_id || !listed(t))
			continue;
		if (*n == cap)
			ts = xrealloc(ts, (cap = cap ? cap * 2 : 16) * sizeof *ts);
		ts[(*n)++] = t;
	}
	return ts;
}

void feed_doc(const struct store *s, uint64_t node_id, struct mpw *w)
{
	struct docs d;
	docs_init(&d, s, NULL);
	size_t n;
	const struct task **ts = node_tasks(s, node_id, &n);
	doc_write(&d, node_id, ts, n, w);
	free(ts);
	docs_free(&d);
}

/* ---- the watches ------------------------------------------------------------------------- */

/* The document of one watcher, built and sent now (a new or renewed watch). */
static void push_one(const struct store *s, struct feed_watcher *x, const struct feed_out *out)
{
	struct docs dc;
	docs_init(&dc, s, out);
	size_t n;
	const struct task **ts = node_tasks(s, x->node_id, &n);
	struct mpw w;
	mpw_init(&w);
	doc_write(&dc, x->node_id, ts, n, &w);
	remember(&dc, x, table_get_u64(&s->nodes, x->node_id), ts, n);
	out->send(out->arg, x, w.sb.data, w.sb.size);
	mpw_free(&w);
	free(ts);
	docs_free(&dc);
}

bool feed_add(struct feed *f, void *conn, uint64_t req_id, uint64_t node_id, const struct store *s,
	      const struct feed_out *out)
{
	struct feed_watcher *x = NULL;
	for (struct feed_watcher *y = f->watchers; y; y = y->next)
		if (y->conn == conn && y->node_id == node_id)
			x = y;
	bool fresh = !x;
	if (!x) {
		x = xcalloc(1, sizeof *x);
		x->conn = conn;
		x->node_id = node_id;
		x->next = f->watchers;
		f->watchers = x;
		f->nwatchers++;
	}
	x->req_id = req_id;
	push_one(s, x, out);
	return fresh;
}

void feed_conn_gone(struct feed *f, const void *conn)
{
	for (struct feed_watcher **pp = &f->watchers; *pp;) {
		if ((*pp)->conn == conn) {
			struct feed_watcher *x = *pp;
			*pp = x->next;
			f->nwatchers--;
			free(x->sent_tasks);
			free(x);
		} else
			pp = &(*pp)->next;
	}
}

void feed_reset_self(struct feed *f)
{
	f->self_sent = false;
}

void feed_free(struct feed *f)
{
	while (f->watchers) {
		struct feed_watcher *x = f->watchers;
		f->watchers = x->next;
		free(x->sent_tasks);
		free(x);
	}
	f->nwatchers = 0;
}

/* A watched node and the tasks its document lists (a bucket of the pass). */
struct slot {
	uint64_t node_id;
	struct feed_watcher *x;  /* NULL: this node's own agent */
	const struct task **ts;
	size_t n, cap;
};

static int slot_cmp(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	return x->node_id < y->node_id ? -1 : x->node_id > y->node_id;
}

static struct slot *slot_find(struct slot *sl, size_t n, uint64_t node_id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (sl[mid].node_id < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && sl[lo].node_id == node_id ? &sl[lo] : NULL;
}

void feed_push(struct feed *wa, const struct store *st, uint64_t self_id, const struct feed_out *out)
{
	/* the documents are functions of the state: look again only when it changed */
	if (wa->built && st->revision == wa->last_revision && wa->self_sent)
		return;
	wa->built = true;
	wa->last_revision = st->revision;

	/* one slot per watched node (a node may watch twice, over two connections: both are
	 * served from the same bucket), sorted by node id, and this node's own */
	size_t ns = 0;
	struct slot *sl = xcalloc(wa->nwatchers + 1, sizeof *sl);
	sl[ns++].node_id = self_id;
	for (struct feed_watcher *x = wa->watchers; x; x = x->next) {
		sl[ns].node_id = x->node_id;
		sl[ns++].x = x;
	}
	qsort(sl, ns, sizeof *sl, slot_cmp);
	/* a node's tasks go into the first slot of its id */
	TABLE_FOREACH(&st->tasks, const struct task, t) {
		if (!t->node_id || !listed(t))
			continue;
		struct slot *s = slot_find(sl, ns, t->node_id);
		if (!s)
			continue;
		if (s->n == s->cap)
			s->ts = xrealloc(s->ts, (s->cap = s->cap ? s->cap * 2 : 8) * sizeof *s->ts);
		s->ts[s->n++] = t;
	}
	struct docs dc;
	docs_init(&dc, st, out);
	struct mpw w;
	mpw_init(&w);
	const struct slot *bucket = NULL;
	for (size_t i = 0; i < ns; i++) {
		struct slot *s = &sl[i];
		if (!bucket || bucket->node_id != s->node_id)
			bucket = s;
		msgpack_sbuffer_clear(&w.sb);
		if (s->x) {
			if (doc_delta(&dc, s->x, bucket->ts, bucket->n, &w))
				out->send(out->arg, s->x, w.sb.data, w.sb.size);
			continue;
		}
		/* this node's own agent: the whole document, when it changed */
		uint64_t fp = fingerprint(&dc, table_get_u64(&st->nodes, s->node_id), bucket->ts, bucket->n);
		if (wa->self_sent && fp == wa->self_fp)
			continue;
		doc_write(&dc, s->node_id, bucket->ts, bucket->n, &w);
		wa->self_fp = fp;
		wa->self_sent = true;
		struct mpr r;
		if (!mpr_decode(&r, w.sb.data, w.sb.size)) {
			out->self(out->arg, r.root);
			mpr_free(&r);
		}
	}
	mpw_free(&w);
	docs_free(&dc);
	for (size_t i = 0; i < ns; i++)
		free(sl[i].ts);
	free(sl);
}
