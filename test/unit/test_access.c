/* Access control without a node (net/access.h): every op has a need that fits where it is
 * served, users never reach ops between nodes, each role reaches exactly what its need
 * allows, the origin a node forwards comes back as it went, and the users of the state
 * machine (state/apply_user.c) refuse a taken name and revoke on removal. */
#include "unit.h"
#include "net/access.h"
#include "state/store.h"
#include "util/err.h"
#include "util/mem.h"

static struct peer user(enum peer_role role)
{
	struct peer p = {.kind = PEER_USER, .role = role};
	snprintf(p.user, sizeof p.user, "alice");
	snprintf(p.serial, sizeof p.serial, "0a1b");
	return p;
}

UNIT(access_every_op_has_a_fitting_need)
{
	for (int op = 0; op < OP__COUNT; op++) {
		const struct proto_op *d = &proto_ops[op];
		CHECK(d->need >= NEED_ANY && d->need <= NEED_NODE);
		/* open to anyone: only join, which proves the token itself */
		if (d->need == NEED_ANY)
			CHECK_STR(d->name, "join");
		/* an op served only on the node port that is not join is an op between nodes */
		if (d->via == VIA_PEER && op != OP_JOIN && d->need != NEED_NODE) {
			fprintf(stderr, "  %s: served only between nodes but needs a user role\n", d->name);
			exit(1);
		}
	}
	/* the ones the brief of the feature names */
	CHECK_EQ_INT(proto_ops[OP_HB].need, NEED_NODE);
	CHECK_EQ_INT(proto_ops[OP_WATCH].need, NEED_NODE);
	CHECK_EQ_INT(proto_ops[OP_APPLY].need, NEED_NODE);
	CHECK_EQ_INT(proto_ops[OP_BLOB_GET].need, NEED_NODE);
	CHECK_EQ_INT(proto_ops[OP_IMAGE_NODE].need, NEED_NODE);
	CHECK_EQ_INT(proto_ops[OP_VOLUME_DROP].need, NEED_NODE);
	CHECK_EQ_INT(proto_ops[OP_SERVICES].need, NEED_VIEWER);
	CHECK_EQ_INT(proto_ops[OP_SERVICE_PUT].need, NEED_OPERATOR);
	CHECK_EQ_INT(proto_ops[OP_LOGS_CLUSTER].need, NEED_OPERATOR);
	CHECK_EQ_INT(proto_ops[OP_NODE_RM].need, NEED_ADMIN);
	CHECK_EQ_INT(proto_ops[OP_USER_ADD].need, NEED_ADMIN);
	CHECK_EQ_INT(proto_ops[OP_USERS].need, NEED_ADMIN);
	CHECK_EQ_INT(proto_ops[OP_USER_RM].need, NEED_ADMIN);
}

UNIT(access_users_never_reach_ops_between_nodes)
{
	struct peer admin = user(PROLE_ADMIN), node = {.kind = PEER_NODE, .node_id = 7};
	int between = 0;
	for (int op = 0; op < OP__COUNT; op++) {
		if (proto_ops[op].need != NEED_NODE)
			continue;
		char err[ERR_LEN] = "";
		CHECK_EQ_INT(access_check((enum op)op, NEED_NODE, &admin, err), E_AUTH);
		CHECK(strstr(err, "permission denied") && strstr(err, proto_ops[op].name) && strstr(err, "user alice"));
		CHECK_EQ_INT(access_check((enum op)op, NEED_NODE, &node, err), 0);
		between++;
	}
	CHECK(between >= 8);
}

UNIT(access_each_role_reaches_what_its_need_allows)
{
	struct peer local = {.kind = PEER_LOCAL, .role = PROLE_ADMIN}, anon = {.kind = PEER_ANON};
	for (int op = 0; op < OP__COUNT; op++) {
		enum proto_need need = proto_ops[op].need;
		char err[ERR_LEN];
		for (int r = PROLE_VIEWER; r <= PROLE_ADMIN; r++) {
			struct peer u = user((enum peer_role)r);
			bool may = need == NEED_ANY || (need != NEED_NODE && r >= (int)need);
			err[0] = 0;
			CHECK_EQ_INT(access_check((enum op)op, need, &u, err), may ? 0 : E_AUTH);
			if (!may && need != NEED_NODE) {
				/* names the op, the role it needs and who asked */
				char want[160];
				snprintf(want, sizeof want, "permission denied: op %s needs role %s; you are %s (user alice)",
					 proto_ops[op].name,
					 need == NEED_VIEWER ? "viewer" : need == NEED_OPERATOR ? "operator" : "admin",
					 peer_role_name((enum peer_role)r));
				CHECK_STR(err, want);
			}
		}
		CHECK_EQ_INT(access_check((enum op)op, need, &local, err), 0);
		CHECK_EQ_INT(access_check((enum op)op, need, &anon, err), need == NEED_ANY ? 0 : E_AUTH);
	}
	char err[ERR_LEN];
	struct peer viewer = user(PROLE_VIEWER), op = user(PROLE_OPERATOR);
	CHECK_EQ_INT(access_check(OP_SERVICES, proto_ops[OP_SERVICES].need, &viewer, err), 0);
	CHECK_EQ_INT(access_check(OP_SERVICE_PUT, proto_ops[OP_SERVICE_PUT].need, &viewer, err), E_AUTH);
	CHECK_EQ_INT(access_check(OP_SERVICE_SCALE, proto_ops[OP_SERVICE_SCALE].need, &op, err), 0);
	CHECK_EQ_INT(access_check(OP_USER_ADD, proto_ops[OP_USER_ADD].need, &op, err), E_AUTH);
}

UNIT(access_registry_credentials_need_admin)
{
	struct req_secret_create sc = {.kind = "registry", .name = "r.example"};
	struct req_secret_rm sr = {.kind = "registry", .name = "r.example"};
	struct req_secret_create plain = {.kind = NULL, .name = "db"};
	CHECK_EQ_INT(access_need(OP_SECRET_CREATE, &sc), NEED_ADMIN);
	CHECK_EQ_INT(access_need(OP_SECRET_RM, &sr), NEED_ADMIN);
	CHECK_EQ_INT(access_need(OP_SECRET_CREATE, &plain), NEED_OPERATOR);
	struct req_services none = {0};
	CHECK_EQ_INT(access_need(OP_SERVICES, &none), NEED_VIEWER);
}

UNIT(access_origin_roundtrip)
{
	struct peer bob = user(PROLE_OPERATOR), local = {.kind = PEER_LOCAL, .role = PROLE_ADMIN};
	snprintf(bob.user, sizeof bob.user, "bob");
	const struct peer *in[] = {&bob, &local};
	for (int i = 0; i < 2; i++) {
		struct mpw w;
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_kstr(&w, "op", "service.put");
		access_origin_put(&w, in[i], OP_SERVICE_SCALE);
		mpw_map_end(&w);
		struct mpr r;
		CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
		struct peer out;
		enum op op;
		CHECK_EQ_INT(access_origin_get(r.root, &out, &op), 0);
		CHECK_EQ_INT(op, OP_SERVICE_SCALE);
		CHECK_EQ_INT(out.kind, in[i]->kind);
		CHECK_EQ_INT(out.role, in[i]->role);
		CHECK_STR(out.user, in[i]->user);
		CHECK_STR(out.serial, in[i]->serial);
		mpr_free(&r);
		mpw_free(&w);
	}
	/* none, or a malformed one: the request is the node's own */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "origin", "admin");
	mpw_map_end(&w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	struct peer out;
	enum op op;
	CHECK_EQ_INT(access_origin_get(r.root, &out, &op), -1);
	mpr_free(&r);
	mpw_free(&w);
}

static int user_cmd(struct store *s, enum cmd t, uint64_t seq, const char *name, const char *role, const char *serial,
		    struct apply_res *res)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", name);
	if (role) {
		mpw_kstr(&w, "role", role);
		mpw_kstr(&w, "serial", serial);
		mpw_ku64(&w, "at", 1000);
	}
	mpw_map_end(&w);
	struct req_id q = {1, 2, seq};
	size_t n;
	void *e = cmd_build(t, &q, w.sb.data, w.sb.size, &n);
	memset(res, 0, sizeof *res);
	store_apply(s, e, n, res);
	free(e);
	mpw_free(&w);
	return res->rc;
}

UNIT(access_users_in_the_state_machine)
{
	struct store s;
	store_init(&s);
	struct apply_res res;
	CHECK_EQ_INT(user_cmd(&s, CMD_USER_PUT, 1, "alice", "viewer", "1f2e", &res), 0);
	const struct user *u = table_get_str(&s.users, "alice");
	CHECK(u && !strcmp(u->role, "viewer") && !strcmp(u->serial, "1f2e") && u->created_at == 1000);
	/* a taken name, a bad role, a bad name, a bad serial: refused, no user changes */
	CHECK_EQ_INT(user_cmd(&s, CMD_USER_PUT, 2, "alice", "admin", "99", &res), E_EXISTS);
	CHECK_EQ_INT(user_cmd(&s, CMD_USER_PUT, 3, "bob", "root", "99", &res), E_INVAL);
	CHECK_EQ_INT(user_cmd(&s, CMD_USER_PUT, 4, "bob/x", "admin", "99", &res), E_INVAL);
	CHECK_EQ_INT(user_cmd(&s, CMD_USER_PUT, 5, "bob", "admin", "xyz", &res), E_INVAL);
	CHECK_EQ_INT(user_cmd(&s, CMD_USER_RM, 6, "carol", NULL, NULL, &res), E_NOTFOUND);
	CHECK_EQ_INT(s.users.n, 1);
	u = table_get_str(&s.users, "alice");
	CHECK(u && !strcmp(u->role, "viewer") && !strcmp(u->serial, "1f2e"));
	/* a snapshot keeps them */
	struct mpw w;
	mpw_init(&w);
	store_snapshot(&s, &w);
	struct store t;
	store_init(&t);
	char err[ERR_LEN];
	CHECK_EQ_INT(store_restore(&t, w.sb.data, w.sb.size, err), 0);
	CHECK(table_get_str(&t.users, "alice") != NULL);
	store_free(&t);
	mpw_free(&w);
	CHECK_EQ_INT(user_cmd(&s, CMD_USER_RM, 7, "alice", NULL, NULL, &res), 0);
	CHECK(table_get_str(&s.users, "alice") == NULL);
	store_free(&s);
}
