#include "net/auth.h"
#include <string.h>

void auth_node_put(uint64_t id, uint8_t out[AUTH_NODE_LEN])
{
	for (int i = 0; i < AUTH_NODE_LEN; i++)
		out[i] = (uint8_t)(id >> (56 - 8 * i));
}

uint64_t auth_node_get(const uint8_t *extra, size_t len)
{
	uint64_t id = 0;
	if (!extra || len < AUTH_NODE_LEN)
		return 0;
	for (int i = 0; i < AUTH_NODE_LEN; i++)
		id = id << 8 | extra[i];
	return id;
}

void auth_preamble(enum auth_kind kind, size_t extra_len, uint8_t out[AUTH_PRE_LEN])
{
	memcpy(out, "ORCH", 4);
	out[4] = AUTH_VERSION;
	out[5] = (uint8_t)kind;
	out[6] = (uint8_t)(extra_len >> 8);
	out[7] = (uint8_t)extra_len;
}

int auth_preamble_parse(const uint8_t in[AUTH_PRE_LEN], enum auth_kind *kind, size_t *extra_len)
{
	if (memcmp(in, "ORCH", 4) || in[4] != AUTH_VERSION || (in[5] != AUTH_KIND_RAFT && in[5] != AUTH_KIND_RPC))
		return -1;
	*kind = (enum auth_kind)in[5];
	*extra_len = (size_t)in[6] << 8 | in[7];
	return *extra_len > AUTH_EXTRA_MAX ? -1 : 0;
}
