#include "net/access.h"
#include "util/err.h"
#include <stdio.h>
#include <string.h>

enum proto_need access_need(enum op op, const void *args)
{
	enum proto_need need = proto_ops[op].need;
	const char *kind = NULL;
	if (op == OP_SECRET_CREATE)
		kind = ((const struct req_secret_create *)args)->kind;
	else if (op == OP_SECRET_RM)
		kind = ((const struct req_secret_rm *)args)->kind;
	if (kind && !strcmp(kind, "registry") && need < NEED_ADMIN)
		need = NEED_ADMIN;
	return need;
}

void access_describe(const struct peer *p, char *buf, size_t n)
{
	switch (p->kind) {
	case PEER_LOCAL: snprintf(buf, n, "the local socket"); break;
	case PEER_NODE: snprintf(buf, n, "node %016llx", (unsigned long long)p->node_id); break;
	case PEER_USER: snprintf(buf, n, "%s (user %s)", peer_role_name(p->role), p->user); break;
	default: snprintf(buf, n, "a client without a certificate"); break;
	}
}

static const char *need_name(enum proto_need need)
{
	switch (need) {
	case NEED_VIEWER: return "viewer";
	case NEED_OPERATOR: return "operator";
	case NEED_ADMIN: return "admin";
	default: return "node";
	}
}

int access_check(enum op op, enum proto_need need, const struct peer *p, char *err)
{
	if (need == NEED_ANY || p->kind == PEER_LOCAL || p->kind == PEER_NODE)
		return 0;
	if (p->kind == PEER_ANON)
		return errf(err, E_AUTH, "permission denied: op %s needs a certificate of this cluster; this connection has none",
			    proto_name(op));
	char who[128];
	access_describe(p, who, sizeof who);
	if (need == NEED_NODE)
		return errf(err, E_AUTH, "permission denied: op %s is only between the nodes of the cluster; you are %s",
			    proto_name(op), who);
	if (p->kind == PEER_USER && (int)p->role >= (int)need)
		return 0;
	return errf(err, E_AUTH, "permission denied: op %s needs role %s; you are %s", proto_name(op), need_name(need), who);
}

void access_origin_put(struct mpw *w, const struct peer *p, enum op op)
{
	mpw_key(w, "origin");
	mpw_map_begin(w);
	mpw_kstr(w, "op", proto_name(op));
	mpw_kstr(w, "kind", p->kind == PEER_LOCAL ? "local" : p->kind == PEER_USER ? "user" : "anon");
	mpw_kstr(w, "role", peer_role_name(p->role));
	if (p->kind == PEER_USER) {
		mpw_kstr(w, "user", p->user);
		mpw_kstr(w, "serial", p->serial);
	}
	mpw_map_end(w);
}

int access_origin_get(const msgpack_object *req, struct peer *p, enum op *op)
{
	const msgpack_object *o = mp_get(req, "origin");
	char kind[16], role[16];
	memset(p, 0, sizeof *p);
	if (!o || o->type != MSGPACK_OBJECT_MAP || proto_lookup(mp_get(o, "op"), op) ||
	    mp_get_strbuf(o, "kind", kind, sizeof kind) || mp_get_strbuf(o, "role", role, sizeof role))
		return -1;
	p->role = peer_role_parse(role);
	if (!strcmp(kind, "local")) {
		p->kind = PEER_LOCAL;
		p->role = PROLE_ADMIN;
	} else if (!strcmp(kind, "user")) {
		p->kind = PEER_USER;
		if (mp_get_strbuf(o, "user", p->user, sizeof p->user))
			return -1;
		mp_get_strbuf(o, "serial", p->serial, sizeof p->serial);
	} else {
		p->kind = PEER_ANON;
		p->role = PROLE_NONE;
	}
	return 0;
}
