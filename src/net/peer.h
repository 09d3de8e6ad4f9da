/* Who is at the other end of a connection, and what it may do: the identity the node port
 * proved (today the shared-secret handshake, net/auth.h; with issue 11 the peer's TLS
 * certificate, issued by the cluster CA) or the local Unix socket (file permissions: root on
 * this machine). The RPC dispatch checks an op's required role against it; a node that
 * forwards a request on someone's behalf sends that someone's role along, and the leader
 * checks it again.
 *
 *   PEER_LOCAL  the local socket: this machine's operator, ROLE_ADMIN
 *   PEER_NODE   another node of the cluster (node_id from its certificate; manager: a node
 *               that may become a raft voter, not a worker-only one)
 *   PEER_USER   a remote client with a user certificate (user name and role from it)
 *   PEER_ANON   connected but not proved (a joiner before it has a certificate): may call
 *               only what is open to anyone (join with a token)
 */
#ifndef ORCH_PEER_H
#define ORCH_PEER_H
#include <stdbool.h>
#include <stdint.h>

enum peer_kind { PEER_ANON = 0, PEER_LOCAL, PEER_NODE, PEER_USER };
/* Ordered: a higher role may do all a lower one may. */
enum peer_role { PROLE_NONE = 0, PROLE_VIEWER, PROLE_OPERATOR, PROLE_ADMIN };

struct peer {
	enum peer_kind kind;
	enum peer_role role; /* PEER_LOCAL: admin; PEER_USER: from the certificate */
	uint64_t node_id;    /* PEER_NODE */
	bool manager;        /* PEER_NODE */
	char user[64];       /* PEER_USER */
	/* PEER_USER: the certificate's serial (hex), "" when the identity has none (the token
	 * handshake): a user known by certificate must be a current user of the cluster with
	 * that serial (orch user rm revokes it at once) */
	char serial[48];
};

const char *peer_role_name(enum peer_role r);
/* "viewer", "operator", "admin" -> role; PROLE_NONE for anything else. */
enum peer_role peer_role_parse(const char *s);

#endif
