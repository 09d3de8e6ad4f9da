#include "node/diskwatch.h"
#include "node/daemon.h"
#include "net/auth.h"
#include "util/log.h"
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#define LOOK_MS 200    /* statvfs is cheap: every tick */
#define RESEND_MS 2000 /* a report that did not commit (no leader yet) is sent again */
#define HAND_MS 2000   /* between two leadership hand-overs asked */
#define AGAIN_MS 20    /* a leader short of space looks again before letting an entry in */

static uint64_t floor_of(const struct diskwatch *w)
{
	return w->floor ? w->floor : DISKWATCH_FLOOR_DEFAULT;
}

static void mib(uint64_t b, char *out, size_t n)
{
	snprintf(out, n, "%llu MiB", (unsigned long long)(b >> 20));
}

static void sent(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)data;
	d->disk.inflight = false;
	if (rc && rc != E_EXISTS && rc != E_NOSPACE && !d->disk.warned_fail) {
		d->disk.warned_fail = true;
		log_warn(d->ident.name, d->clock, "disk report not recorded yet (%s): %s", err_name(rc), res->msg);
	}
	if (!rc)
		d->disk.warned_fail = false;
}

/* The node's record says what its own look says, else a node.update with the figures and
 * an event (disk_low / disk_ok). */
static void report(struct daemon *d)
{
	struct diskwatch *w = &d->disk;
	const struct node *self = table_get_u64(&d->store.nodes, d->ident.id);
	uint64_t now = clock_now(d->clock);
	if (!self || w->inflight || (self->disk_alarm_at != 0) == w->low || now - w->sent_at < RESEND_MS)
		return;
	char fr[32], fl[32], msg[ERR_LEN + 600];
	mib(w->free, fr, sizeof fr);
	mib(floor_of(w), fl, sizeof fl);
	if (w->low)
		snprintf(msg, sizeof msg, "node %s is low on disk space (%s free on %s, floor %s): writes refused until space is freed",
			 d->ident.name, fr, d->data_dir, fl);
	else
		snprintf(msg, sizeof msg, "node %s has disk space again (%s free on %s, floor %s): writes resume", d->ident.name,
			 fr, d->data_dir, fl);
	struct mpw ev, b;
	mpw_init(&ev);
	mpw_arr(&ev, 1);
	mpw_map_begin(&ev);
	mpw_kstr(&ev, "kind", w->low ? "disk_low" : "disk_ok");
	mpw_ku64(&ev, "node", d->ident.id);
	mpw_kstr(&ev, "message", msg);
	mpw_map_end(&ev);
	/* written field by field, not with cmd_body: that would also send every other
	 * number of a node.update as 0, and the apply takes some of them as given */
	uint64_t at = clock_wall(d->clock);
	mpw_init(&b);
	mpw_map_begin(&b);
	mpw_ku64(&b, "id", d->ident.id);
	mpw_ku64(&b, "at", at);
	mpw_key(&b, "events");
	mpw_raw(&b, ev.sb.data, ev.sb.size);
	mpw_ku64(&b, "disk_alarm_at", w->low ? at : 0);
	mpw_ku64(&b, "disk_free", w->free);
	mpw_ku64(&b, "disk_floor", floor_of(w));
	mpw_kstr(&b, "disk_dir", d->data_dir);
	mpw_map_end(&b);
	char err[ERR_LEN];
	w->sent_at = now;
	w->inflight = !daemon_submit(d, CMD_NODE_UPDATE, b.sb.data, b.sb.size, sent, NULL, err);
	mpw_free(&b);
	mpw_free(&ev);
	if (!w->logged || w->logged_low != w->low) /* once per change, not per retry */
		log_warn(d->ident.name, d->clock, "%s", msg);
	w->logged = true;
	w->logged_low = w->low;
}

static void handed(void *data, int status, const char *msg)
{
	(void)data;
	(void)status;
	(void)msg;
}

static void look(struct daemon *d, uint64_t now)
{
	struct diskwatch *w = &d->disk;
	struct statvfs sv;
	if (statvfs(d->data_dir, &sv))
		return;
	w->looked = true;
	w->checked_at = now;
	w->free = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	w->low = diskwatch_low(w->low, w->free, floor_of(w));
}

bool diskwatch_low(bool was, uint64_t free, uint64_t floor)
{
	return was ? free < floor + floor / 4 : free < floor;
}

/* A follower below the hard floor stops hearing the leader (its incoming raft streams
 * closed, new ones refused) until the alarm clears: what it would be sent it could not
 * append, and libraft 0.15 wedges a follower whose append fails (measured: it applied
 * nothing more, even once space was back, while the leader believed it held the log). */
static void hearing(struct daemon *d)
{
	struct diskwatch *w = &d->disk;
	bool deaf = !cons_is_leader(&d->cons) && !d->worker &&
		    (w->free < floor_of(w) / 2 || (w->deaf && w->low));
	if (deaf == w->deaf)
		return;
	w->deaf = deaf;
	cons_set_deaf(&d->cons, deaf);
	if (!deaf) {
		log_warn(d->ident.name, d->clock, "disk space is back: hearing the leader again, catching up");
		return;
	}
	log_warn(d->ident.name, d->clock,
		 "below half the disk floor: no longer hearing the leader (nothing appended here) until space is freed");
	for (size_t i = 0; i < d->nconns;) {
		struct conn *c = d->conns[i];
		if (c->kind == AUTH_KIND_RAFT && !c->client) {
			conn_close(c, "disk nearly full"); /* removes it from the list */
			continue;
		}
		i++;
	}
}

void diskwatch_tick(struct daemon *d)
{
	struct diskwatch *w = &d->disk;
	uint64_t now = clock_now(d->clock);
	if (w->looked && now - w->checked_at < LOOK_MS) {
		report(d);
		return;
	}
	look(d, now);
	uint64_t fl = floor_of(w);
	hearing(d);
	report(d);
	/* Below the hard floor a leader's own appends are the danger: another voter with
	 * space leads instead (libraft picks the most up-to-date one). */
	if (w->free < fl / 2 && cons_is_leader(&d->cons) && cons_nservers(&d->cons) > 1 && now - w->handed_at >= HAND_MS) {
		char err[ERR_LEN];
		w->handed_at = now;
		if (!cons_transfer(&d->cons, 0, handed, NULL, err))
			log_warn(d->ident.name, d->clock, "below half the disk floor: handing leadership over");
	}
}

/* The writes an alarm refuses: those that make the state (and so the log and snapshots)
 * grow at a user's or a joiner's request. Deletions, scale-downs and what the controllers
 * and agents record about running work (task batches, node states, rollout states)
 * still go through: they are how space comes back and how the cluster stays true. */
bool diskwatch_refuses(const struct store *s, enum cmd t, const msgpack_object *body)
{
	switch (t) {
	case CMD_KV_SET:
	case CMD_SERVICE_PUT:
	case CMD_IMAGE_PUT:
	case CMD_SECRET_PUT:
	case CMD_USER_PUT:
	case CMD_NODE_ADD:
	case CMD_CLUSTER_TOKENS: return true;
	case CMD_SERVICE_SCALE: {
		char name[256];
		uint64_t n = 0;
		if (mp_get_strbuf(body, "name", name, sizeof name) || mp_get_u64(body, "replicas", &n))
			return true;
		const struct service *sv = store_service_by_name(s, name);
		return !sv || n > sv->replicas;
	}
	default: return false;
	}
}

static void alarm_text(char *out, size_t n, const char *name, uint64_t free, const char *dir, uint64_t floor)
{
	char fr[32], fl[32];
	mib(free, fr, sizeof fr);
	mib(floor, fl, sizeof fl);
	snprintf(out, n,
		 "node %s is low on disk space (%s free on %s, floor %s): writes refused until space is freed; "
		 "deleting still works",
		 name, fr, dir, fl);
}

void diskwatch_alarm_text(const struct node *nd, char *out, size_t n)
{
	alarm_text(out, n, nd->name, nd->disk_free, nd->disk_dir ? nd->disk_dir : "its data dir", nd->disk_floor);
}

static int nospace(char *err, const char *name, uint64_t free, const char *dir, uint64_t floor)
{
	alarm_text(err, ERR_LEN, name, free, dir, floor);
	return E_NOSPACE;
}

int diskwatch_admit(struct daemon *d, const void *entry, size_t len, char *err)
{
	struct diskwatch *w = &d->disk;
	/* Below the hard floor this leader appends nothing at all: libraft 0.15 frees twice
	 * when its own append meets ENOSPC (PLATFORM.md), deletions included. Space can go
	 * fast (a burst of writes, another program filling the disk), so look again rather
	 * than trust the tick's look. */
	uint64_t now = clock_now(d->clock);
	if (!w->looked || now - w->checked_at >= AGAIN_MS)
		look(d, now);
	if (w->looked) {
		if (w->free < floor_of(w) / 2) {
			char fr[32], fl[32];
			mib(w->free, fr, sizeof fr);
			mib(floor_of(w) / 2, fl, sizeof fl);
			return errf(err, E_NOSPACE,
				    "node %s (the leader) is out of disk space (%s free on %s, below %s, half its floor): "
				    "every write refused until space is freed or another node leads",
				    d->ident.name, fr, d->data_dir, fl);
		}
	}
	const struct node *low = NULL;
	TABLE_FOREACH(&d->store.nodes, const struct node, n) {
		if (n->disk_alarm_at && !low)
			low = n;
	}
	if (!low && !w->low)
		return 0;
	struct mpr r;
	enum cmd t;
	const msgpack_object *body;
	if (cmd_peek(entry, len, &r, &t, &body, err))
		return 0; /* not this gate's to judge: applying it answers */
	bool no = diskwatch_refuses(&d->store, t, body);
	mpr_free(&r);
	if (!no)
		return 0;
	if (!low) /* this leader's own look, before its report commits */
		return nospace(err, d->ident.name, w->free, d->data_dir, floor_of(w));
	diskwatch_alarm_text(low, err, ERR_LEN);
	return E_NOSPACE;
}

int diskwatch_local(struct daemon *d, const char *what, char *err)
{
	if (!d->disk.low)
		return 0;
	int rc = nospace(err, d->ident.name, d->disk.free, d->data_dir, floor_of(&d->disk));
	return errwrap(err, rc, "%s", what);
}
