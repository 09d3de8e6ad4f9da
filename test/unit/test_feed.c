/* The leader's assignment feed (node/feed.h) without connections: which watcher gets a
 * document when. */
#include "unit.h"
#include "entry.h"
#include "node/feed.h"
#include "util/mem.h"

struct sent {
	int docs[8];  /* documents per watcher (by its conn tag) */
	int full[8];  /* of them, whole ones (the others carry changes) */
	int self;
};

static void on_send(void *arg, const struct feed_watcher *x, const void *doc, size_t len)
{
	struct sent *s = arg;
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, doc, len), 0);
	uint64_t node = 0;
	CHECK_EQ_INT(mp_get_u64(r.root, "node_id", &node), 0);
	CHECK_EQ_INT(node, x->node_id);
	bool whole = mp_get(r.root, "tasks") != NULL;
	CHECK(whole != (mp_get(r.root, "changed") != NULL));
	mpr_free(&r);
	s->docs[(int)(intptr_t)x->conn]++;
	s->full[(int)(intptr_t)x->conn] += whole;
}

static void on_self(void *arg, const msgpack_object *doc)
{
	struct sent *s = arg;
	(void)doc;
	s->self++;
}

static void add_node(struct store *s, uint64_t id, const char *name)
{
	struct apply_res res;
	entry_add_node(s, id, name, &res);
	CHECK_EQ_INT(res.rc, 0);
}

#define CONN(i) ((void *)(intptr_t)(i))

UNIT(feed_whole_document_first_then_changes_only)
{
	struct store s;
	struct feed f = {0};
	struct sent out = {0};
	struct feed_out o = {on_send, on_self, &out, NULL};
	store_init(&s);
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	add_node(&s, 3, "n3");
	/* a new watch gets its whole document at once */
	CHECK(feed_add(&f, CONN(2), 7, 2, &s, &o));
	CHECK(feed_add(&f, CONN(3), 7, 3, &s, &o));
	CHECK_EQ_INT(out.docs[2], 1);
	CHECK_EQ_INT(out.full[2], 1);
	CHECK_EQ_INT(out.docs[3], 1);
	/* the first push: this node's own agent; the watchers have what is current */
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.self, 1);
	CHECK_EQ_INT(out.docs[2] + out.docs[3], 2);
	/* nothing changed: nothing sent */
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[2] + out.docs[3] + out.self, 3);
	/* a new node changes every peer list: each watcher gets the change, not its whole set */
	add_node(&s, 4, "n4");
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[2], 2);
	CHECK_EQ_INT(out.full[2], 1);
	CHECK_EQ_INT(out.docs[3], 2);
	CHECK_EQ_INT(out.self, 2);
	/* a newcomer: its document at once, nobody else's again */
	CHECK(feed_add(&f, CONN(4), 7, 4, &s, &o));
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[4], 1);
	CHECK_EQ_INT(out.docs[2], 2);
	CHECK_EQ_INT(out.docs[3], 2);
	CHECK_EQ_INT(out.self, 2);
	/* a watch made again on its connection (a resync) gets the whole document again */
	CHECK(!feed_add(&f, CONN(3), 8, 3, &s, &o));
	CHECK_EQ_INT(out.docs[3], 3);
	CHECK_EQ_INT(out.full[3], 2);
	CHECK_EQ_INT(f.nwatchers, 3);
	/* a new leadership gives this node's own agent its document again */
	feed_reset_self(&f);
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.self, 3);
	CHECK_EQ_INT(out.docs[2] + out.docs[3] + out.docs[4], 6);
	/* a closed connection takes its watches along */
	feed_conn_gone(&f, CONN(2));
	CHECK_EQ_INT(f.nwatchers, 2);
	add_node(&s, 5, "n5");
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[2], 2);
	CHECK_EQ_INT(out.docs[3], 4);
	CHECK_EQ_INT(out.full[3], 2);
	feed_free(&f);
	store_free(&s);
}
