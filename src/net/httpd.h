/* A plain HTTP listener for what a local Prometheus scrapes (orch init|join
 * --metrics-listen IP:PORT): GET and HEAD only, one request per connection, the whole
 * response made by the owner's page function. Nothing else is served on it: the node
 * port speaks only its authenticated protocol. A client gets 5 s to send its request
 * (4 KiB at most) and at most HTTPD_CONNS connections are open at once. */
#ifndef ORCH_HTTPD_H
#define ORCH_HTTPD_H
#include <uv.h>
#include "util/mem.h"

#define HTTPD_CONNS 64

/* Fills resp with a whole HTTP response (status line, headers, body unless HEAD). */
typedef void (*httpd_page_fn)(void *data, const char *method, const char *path, struct buf *resp);

struct httpd;
/* Listens on addr ("IP:PORT"); NULL and err on failure. */
struct httpd *httpd_start(uv_loop_t *loop, const char *addr, httpd_page_fn page, void *data, char *err);
/* Closes the listener and its connections; cb(arg) once all are closed (h is freed then). */
void httpd_close(struct httpd *h, void (*cb)(void *arg), void *arg);

/* A response into resp: status "200 OK", content type, body (not sent for HEAD). */
void httpd_response(struct buf *resp, const char *method, const char *status, const char *ctype, const struct buf *body);

#endif
