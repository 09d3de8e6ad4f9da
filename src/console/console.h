/* The web console every node serves: the static pages built into the binary
 * (console/assets.h) and a JSON API under /api/ that runs the same ops as the CLI, with the
 * same role checks, through an internal conn (net/conn.h conn_internal) of the caller:
 *
 *   GET  /api/whoami                  {role, user, node}: what the page may offer
 *   GET  /api/OP?k=v...               a read op (status, nodes, services, service.get,
 *                                     tasks, events, top, images, logs.cluster): its reply
 *                                     as JSON, the same map `orch ... -o json` prints from
 *   POST /api/OP  {args}              an action (service.scale, service.update for rollout
 *                                     pause/resume/undo, node.update for drain/activate);
 *                                     needs the X-Orch-Console header (a cross-site form
 *                                     cannot send it) and JSON args
 *   GET  /api/stream                  the event log as Server-Sent Events, live
 *   GET  /api/history                 the plots' hour of figures (console/hist.h)
 *   GET  /api/hashes                  every state-holding node's applied index and state
 *                                     hash, asked now (console/hashes.h)
 *
 * Two ways in: inside TLS on the node port (the caller's certificate gives its role, as for
 * the CLI), and the plain listener of --console-listen, opt-in and meant for the local
 * machine, whose callers are operators (CONSOLE_PLAIN_ROLE: they may read, scale and roll
 * out, not what needs admin; viewers on a worker). An answer is sent whole, then the connection closes; a
 * stream stays open until the client goes. */
#ifndef ORCH_CONSOLE_H
#define ORCH_CONSOLE_H
#include "net/peer.h"

#define CONSOLE_PLAIN_ROLE PROLE_OPERATOR

struct daemon;
/* The plain listener's role on node d: CONSOLE_PLAIN_ROLE, but viewer on a worker-only
 * node, whose root may only read the cluster (node/worker.h) and whose listener must not
 * give more. */
enum peer_role console_plain_role(const struct daemon *d);

struct daemon;
struct conn;
struct httpreq;
struct console;

struct console *console_new(struct daemon *d);
/* The plain listener on addr ("IP:PORT"); 0 or an error in err. */
int console_listen(struct console *con, const char *addr, char *err);
/* The plain listener's address, "" when there is none. */
const char *console_addr(const struct console *con);
/* A request inside TLS on the node port: answered on c. */
void console_tls(struct console *con, struct conn *c, const struct httpreq *rq);
/* The node port's conn c has closed (its exchange, if any, ends). */
void console_conn_gone(struct console *con, struct conn *c);
/* Every few seconds (the daemon's tick): the plots' sampler. */
void console_tick(struct console *con);
/* Closes the listener and every exchange; cb(arg) once all is closed, con freed. */
void console_close(struct console *con, void (*cb)(void *arg), void *arg);

#endif
