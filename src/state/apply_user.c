/* Users of the remote API in the state machine: a name, a role and the serial of the one
 * certificate the cluster CA issued for it. Removing a user is what revokes its
 * certificate: every node refuses a certificate whose serial is not its user's. */
#include "state/apply.h"
#include "net/peer.h"
#include "pki/pki.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

static bool serial_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int apply_user_put(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	struct user *u = xcalloc(1, sizeof *u);
	int rc = schema_decode(&user_schema, u, c->body, res->msg);
	uint64_t at = 0;
	mp_get_u64(c->body, "at", &at);
	u->created_at = at;
	if (!rc && !pki_user_name_ok(u->name))
		rc = errf(res->msg, E_INVAL, "user.put: a user name is 1-63 of A-Z a-z 0-9 . _ @ -");
	else if (!rc && peer_role_parse(u->role) == PROLE_NONE)
		rc = errf(res->msg, E_INVAL, "user.put: role must be viewer, operator or admin");
	else if (!rc && !serial_valid(u->serial))
		rc = errf(res->msg, E_INVAL, "user.put: serial must be 1-40 hex digits");
	else if (!rc && table_get_str(&s->users, u->name))
		rc = errf(res->msg, E_EXISTS, "user %s exists (orch user rm %s first to issue a new certificate)", u->name,
			  u->name);
	if (rc) {
		schema_free(&user_schema, u);
		free(u);
		return rc;
	}
	table_put(&s->users, u);
	return 0;
}

int apply_user_rm(struct store *s, const struct cmd_ctx *c, struct apply_res *res)
{
	char name[64];
	if (mp_get_strbuf(c->body, "name", name, sizeof name) || table_del_str(&s->users, name))
		return errf(res->msg, E_NOTFOUND, "no user %s (see orch user ls)",
			    mp_get_strbuf(c->body, "name", name, sizeof name) ? "" : name);
	return 0;
}
