/* The leader's assignment feed (node/feed.h) without connections: which watcher gets a
 * document when. */
#include "unit.h"
#include "entry.h"
#include "node/feed.h"
#include "util/mem.h"

struct sent {
	int docs[8];  /* documents per watcher (by its conn tag) */
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
	mpr_free(&r);
	s->docs[(int)(intptr_t)x->conn]++;
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

UNIT(feed_documents_go_to_new_watchers_and_on_change_only)
{
	struct store s;
	struct feed f = {0};
	struct sent out = {0};
	struct feed_out o = {on_send, on_self, &out};
	store_init(&s);
	add_node(&s, 1, "n1");
	add_node(&s, 2, "n2");
	add_node(&s, 3, "n3");
	feed_add(&f, CONN(2), 7, 2);
	feed_add(&f, CONN(3), 7, 3);
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[2], 1);
	CHECK_EQ_INT(out.docs[3], 1);
	CHECK_EQ_INT(out.self, 1);
	/* nothing changed: nothing sent */
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[2] + out.docs[3] + out.self, 3);
	/* a newcomer gets its document, the others nothing (their documents are as sent) */
	add_node(&s, 4, "n4");
	feed_push(&f, &s, 1, &o); /* the state changed: the peer lists changed for all */
	CHECK_EQ_INT(out.docs[2], 2);
	CHECK_EQ_INT(out.docs[3], 2);
	CHECK_EQ_INT(out.self, 2);
	feed_add(&f, CONN(4), 7, 4);
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[4], 1);
	CHECK_EQ_INT(out.docs[2], 2);
	CHECK_EQ_INT(out.docs[3], 2);
	CHECK_EQ_INT(out.self, 2);
	/* a watch made again on its connection (a resync) gets the whole document again */
	feed_add(&f, CONN(3), 8, 3);
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[3], 3);
	CHECK_EQ_INT(out.docs[2], 2);
	/* a new leadership gives this node's own agent its document again */
	feed_reset_self(&f);
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.self, 3);
	/* a closed connection takes its watches along */
	feed_conn_gone(&f, CONN(2));
	add_node(&s, 5, "n5");
	feed_push(&f, &s, 1, &o);
	CHECK_EQ_INT(out.docs[2], 2);
	CHECK_EQ_INT(out.docs[3], 4);
	feed_free(&f);
	store_free(&s);
}
