#include "traffic/scope.h"
#include "spec/spec.h"
#include <string.h>

const struct task *scope_asker(const struct store *s, uint64_t node, uint64_t task, const char *ip)
{
	const struct task *t = task ? table_get_u64(&s->tasks, task) : NULL;
	if (t)
		return t;
	if (!ip || !ip[0])
		return NULL;
	TABLE_FOREACH(&s->tasks, const struct task, x)
		if (x->node_id == node && x->ip && !strcmp(x->ip, ip) && !task_terminal(x))
			return x;
	return NULL;
}

const struct service *scope_service(const struct store *s, const struct task *asker)
{
	const struct service *v = asker ? table_get_u64(&s->services, asker->service_id) : NULL;
	return v && service_spec(v) ? v : NULL;
}

bool scope_allowed(const struct service *from, const struct service *to)
{
	if (!from || !to || !service_spec(from) || !service_spec(to))
		return true;
	/* a service on the host's network is on no Compose network: reachable as the host is */
	if (service_spec(from)->network_mode == NET_HOST || service_spec(to)->network_mode == NET_HOST)
		return true;
	return spec_share_network(from->project, service_spec(from), to->project, service_spec(to));
}
