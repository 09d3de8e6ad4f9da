#include "node/nodecfg.h"
#include "node/daemon.h"
#include "agent/volumes.h"
#include "node/nodesec.h"
#include "util/log.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

int nodecfg_load(struct daemon *d, char *err)
{
	struct strv allow;
	int rc = volumes_allow_load(d->data_dir, &allow, err);
	if (rc)
		return rc;
	free(d->cfg.binds);
	d->cfg.binds = volumes_allow_text(&allow);
	strv_free(&allow);
	struct nodesec ns;
	if ((rc = nodesec_load(d->data_dir, &ns, err)))
		return rc;
	free(d->cfg.security);
	d->cfg.security = nodesec_text(&ns);
	d->cfg.done = false;
	return 0;
}

static void sent(struct daemon *d, void *data, int rc, const struct apply_res *res)
{
	(void)data;
	(void)res;
	d->cfg.inflight = false;
	if (!rc || rc == E_EXISTS)
		d->cfg.done = true; /* else: again on a later tick (no leader yet, not a member yet) */
}

void nodecfg_tick(struct daemon *d)
{
	struct nodecfg *c = &d->cfg;
	if (!c->binds || c->done || c->inflight || d->opts.hollow)
		return;
	const struct node *self = table_get_u64(&d->store.nodes, d->ident.id);
	if (self && !strcmp(self->binds ? self->binds : "", c->binds) &&
	    !strcmp(self->security ? self->security : "", c->security)) {
		c->done = true;
		return;
	}
	struct cmd_node_update b = {.id = d->ident.id, .binds = c->binds, .security = c->security};
	struct mpw w;
	char err[ERR_LEN];
	mpw_init(&w);
	cmd_body(&w, CMD_NODE_UPDATE, &b);
	c->inflight = !daemon_submit(d, CMD_NODE_UPDATE, w.sb.data, w.sb.size, sent, NULL, err);
	mpw_free(&w);
}

void nodecfg_free(struct nodecfg *c)
{
	free(c->binds);
	c->binds = NULL;
	free(c->security);
	c->security = NULL;
}
