#include "net/peer.h"
#include <string.h>

static const char *const names[] = {[PROLE_NONE] = "none", [PROLE_VIEWER] = "viewer", [PROLE_OPERATOR] = "operator",
				    [PROLE_ADMIN] = "admin"};

const char *peer_role_name(enum peer_role r)
{
	return r <= PROLE_ADMIN ? names[r] : "none";
}

enum peer_role peer_role_parse(const char *s)
{
	for (int r = PROLE_VIEWER; s && r <= PROLE_ADMIN; r++)
		if (!strcmp(s, names[r]))
			return (enum peer_role)r;
	return PROLE_NONE;
}
