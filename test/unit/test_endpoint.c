/* Task endpoints as typed fields (state/endpoint.h): the encoding round trip, the text
 * form of older entries read into the same fields, and the task record fed both ways. */
#include "unit.h"
#include "entry.h"
#include "agent/task_run.h"
#include "state/store.h"
#include "util/layout.h"
#include "util/mem.h"
#include <netinet/in.h>
#include <unistd.h>

/* Field by field: the struct has padding, which memcmp would compare too. */
static bool endpoint_same(const struct endpoint *x, const struct endpoint *y)
{
	return x->host == y->host && x->host_port == y->host_port && x->port == y->port && x->proto == y->proto;
}

static void roundtrip(const struct endpoints *in, struct endpoints *out)
{
	struct mpw w;
	mpw_init(&w);
	endpoints_encode(in, &w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	memset(out, 0, sizeof *out);
	CHECK_EQ_INT(endpoints_decode(r.root, out), 0);
	mpr_free(&r);
	mpw_free(&w);
}

UNIT(endpoint_encode_decode_roundtrip)
{
	struct endpoints e = {0}, back;
	struct endpoint a = {0x7f000002, 56914, 80, IPPROTO_TCP}, b = {0x0a000001, 65535, 53, IPPROTO_UDP},
			c = {0xffffffff, 1, 65535, IPPROTO_TCP};
	endpoints_add(&e, &a);
	endpoints_add(&e, &b);
	endpoints_add(&e, &c);
	roundtrip(&e, &back);
	CHECK_EQ_INT(back.n, 3);
	for (size_t i = 0; i < 3; i++)
		CHECK(endpoint_same(&back.v[i], &e.v[i]));
	char txt[256];
	endpoints_format(&back, txt, sizeof txt);
	CHECK_STR(txt, "127.0.0.2:56914->80/tcp,10.0.0.1:65535->53/udp,255.255.255.255:1->65535/tcp");
	CHECK(endpoints_find(&back, 53, IPPROTO_UDP)->host == 0x0a000001);
	CHECK(endpoints_find(&back, 53, IPPROTO_TCP) == NULL);
	char addr[ENDPOINT_ADDR_LEN];
	endpoint_addr(&c, addr);
	CHECK_STR(addr, "255.255.255.255:1");
	endpoints_free(&back);
	/* none */
	struct endpoints none = {0};
	roundtrip(&none, &back);
	CHECK_EQ_INT(back.n, 0);
	endpoints_format(&none, txt, sizeof txt);
	CHECK_STR(txt, "");
	/* a short buffer cuts the text, never overflows */
	endpoints_format(&e, txt, 10);
	CHECK_EQ_INT(strlen(txt), 9);
	endpoints_free(&e);
}

static int decode_text(const char *text, struct endpoints *out)
{
	struct mpw w;
	mpw_init(&w);
	mpw_str(&w, text);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	memset(out, 0, sizeof *out);
	int rc = endpoints_decode(r.root, out);
	mpr_free(&r);
	mpw_free(&w);
	return rc;
}

UNIT(endpoint_old_text_form_read)
{
	struct endpoints e;
	CHECK_EQ_INT(decode_text("127.0.0.2:56914->80/tcp,127.0.0.2:40001->5353/udp", &e), 0);
	CHECK_EQ_INT(e.n, 2);
	CHECK_EQ_INT(e.v[0].host, 0x7f000002);
	CHECK_EQ_INT(e.v[0].host_port, 56914);
	CHECK_EQ_INT(e.v[0].port, 80);
	CHECK_EQ_INT(e.v[0].proto, IPPROTO_TCP);
	CHECK_EQ_INT(e.v[1].port, 5353);
	CHECK_EQ_INT(e.v[1].proto, IPPROTO_UDP);
	endpoints_free(&e);
	CHECK_EQ_INT(decode_text("", &e), 0);
	CHECK_EQ_INT(e.n, 0);
	/* entries that do not read are left out, the others kept */
	const char *bad[] = {"127.0.0.1:0->80/tcp", "127.0.0.1:70000->80/tcp", "127.0.0.1:8080->80/sctp", "host:1->2/tcp",
			     "127.0.0.1:1->/tcp", "127.0.0.1->80/tcp", "127.0.0.1:1-80/tcp", "127.0.0.1:+1->80/tcp",
			     "1.2.3.4:5->6", ",", "999.0.0.1:1->2/tcp"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char both[128];
		snprintf(both, sizeof both, "%s,10.1.2.3:4->5/tcp", bad[i]);
		CHECK_EQ_INT(decode_text(both, &e), 0);
		CHECK_EQ_INT(e.n, 1);
		CHECK_EQ_INT(e.v[0].host, 0x0a010203);
		endpoints_free(&e);
	}
	/* the array form is checked whole: one bad entry is an error */
	struct mpw w;
	mpw_init(&w);
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_ku64(&w, "host", 1);
	mpw_ku64(&w, "host_port", 70000);
	mpw_ku64(&w, "port", 80);
	mpw_kstr(&w, "proto", "tcp");
	mpw_map_end(&w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	memset(&e, 0, sizeof e);
	CHECK_EQ_INT(endpoints_decode(r.root, &e), -1);
	CHECK_EQ_INT(e.n, 0);
	mpr_free(&r);
	mpw_free(&w);
}

/* A running report as the agent sends it now (typed) and as agents before it did (text,
 * format 2) leave the same record. The task returned lives until the next call. */
static struct task *report(unsigned format, struct endpoints *typed, const char *text)
{
	static struct store s;
	static bool used;
	struct apply_res res;
	if (used)
		store_free(&s);
	used = true;
	store_init(&s);
	struct task *t = xcalloc(1, sizeof *t);
	t->id = 4;
	t->state = TS_STARTING;
	t->desired = TD_RUNNING;
	table_put(&s.tasks, t);
	struct mpw b;
	mpw_init(&b);
	mpw_map_begin(&b);
	mpw_key(&b, "update");
	mpw_arr(&b, 1);
	mpw_map_begin(&b);
	mpw_ku64(&b, "id", 4);
	mpw_kstr(&b, "state", "running");
	mpw_key(&b, "endpoint");
	if (typed)
		endpoints_encode(typed, &b);
	else
		mpw_str(&b, text);
	mpw_map_end(&b);
	mpw_map_end(&b);
	size_t n;
	struct req_id q = {1, 2, 3};
	void *e;
	if (format == 3)
		e = cmd_build(CMD_TASK_BATCH, &q, b.sb.data, b.sb.size, &n);
	else
		e = entry_old(format, CMD_TASK_BATCH, &q, b.sb.data, b.sb.size, &n);
	store_apply(&s, e, n, &res);
	free(e);
	mpw_free(&b);
	CHECK_EQ_INT(res.rc, 0);
	return table_get_u64(&s.tasks, 4);
}

UNIT(endpoint_task_record_from_either_form)
{
	struct endpoints e = {0};
	struct endpoint a = {0x7f000102, 40000, 8080, IPPROTO_TCP};
	endpoints_add(&e, &a);
	struct task *t = report(3, &e, NULL);
	CHECK_EQ_INT(t->endpoint.n, 1);
	CHECK(endpoint_same(t->endpoint.v, &a));
	char h1[65];
	t = report(2, NULL, "127.0.1.2:40000->8080/tcp");
	CHECK_EQ_INT(t->endpoint.n, 1);
	CHECK(endpoint_same(t->endpoint.v, &a));
	/* a snapshot of the record is the same whichever way it came */
	struct store one, two;
	store_init(&one);
	store_init(&two);
	table_put(&one.tasks, schema_dup(&task_schema, report(3, &e, NULL)));
	table_put(&two.tasks, schema_dup(&task_schema, report(2, NULL, "127.0.1.2:40000->8080/tcp")));
	char h2[65];
	store_hash(&one, h1);
	store_hash(&two, h2);
	CHECK_STR(h1, h2);
	store_free(&one);
	store_free(&two);
	endpoints_free(&e);
}

/* What a restarted agent reads back of its tasks' published ports (agent/task_run.h). */
UNIT(endpoint_agent_port_state_roundtrip)
{
	struct run_job j;
	memset(&j, 0, sizeof j);
	char tmpl[] = "/tmp/orch-unit-ports-XXXXXX";
	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(j.dir, sizeof j.dir, "%s", tmpl);
	snprintf(j.ip, sizeof j.ip, "10.9.0.5");
	j.ports[0] = (struct port_map){40001, 80, IPPROTO_TCP};
	j.ports[1] = (struct port_map){65535, 53, IPPROTO_UDP};
	j.nports = 2;
	CHECK_EQ_INT(run_save_state(&j), 0);
	struct run_job back;
	memset(&back, 0, sizeof back);
	snprintf(back.dir, sizeof back.dir, "%s", tmpl);
	CHECK_EQ_INT(run_load_state(&back), 0);
	CHECK_EQ_INT(back.nports, 2);
	CHECK(!memcmp(back.ports, j.ports, 2 * sizeof *j.ports));
	CHECK_STR(back.ip, "10.9.0.5");
	/* lines that do not read are skipped, the others kept */
	char path[700];
	layout_task_path(path, sizeof path, tmpl, LAYOUT_TASK_STATE);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fprintf(f, "port=70000:80:6\nport=1:2:99\nport=x:1:6\nport=5:6:17trailing\nport=7:8:6\n");
	fclose(f);
	CHECK_EQ_INT(run_load_state(&back), 0);
	CHECK_EQ_INT(back.nports, 1);
	CHECK_EQ_INT(back.ports[0].host_port, 7);
	CHECK_EQ_INT(back.ports[0].container_port, 8);
	unlink(path);
	rmdir(tmpl);
}
