/* Named volumes under failures: a per-slot volume pins each slot to the node that holds
 * it. That node dies, and the leader with it: the next leader, from the replicated state
 * alone, keeps the slot waiting for its node (pending, saying why) instead of placing it
 * elsewhere; the node comes back and the slot runs there again. */
#include "scn.h"
#include "spec/spec.h"
#include "util/mem.h"
#include <stdio.h>
#include <string.h>

static const char db[] = "services:\n  db:\n    image: demo:1\n    volumes: [\"data-{slot}:/data\"]\n"
			 "    deploy:\n      replicas: 6\nvolumes:\n  data-{slot}:\n";

/* The live task of db's slot, or NULL. */
static const struct task *slot_task(const struct store *s, uint64_t slot)
{
	const struct task *hit = NULL;
	TABLE_FOREACH(&s->tasks, const struct task, t)
		if (!strcmp(t->service, "db") && t->slot == slot && t->desired == TD_RUNNING && !task_terminal(t))
			hit = t;
	return hit;
}

/* Every slot has its volume and runs (or waits) on that volume's node only. */
static int pinned(const struct store *s, char *err)
{
	char name[32];
	for (uint64_t slot = 1; slot <= 6; slot++) {
		snprintf(name, sizeof name, "data-%llu", (unsigned long long)slot);
		const struct volume *v = table_get_str(&s->volumes, name);
		const struct task *t = slot_task(s, slot);
		if (!v)
			return errf(err, E_FAIL, "no volume %s", name);
		if (t && t->node_id && t->node_id != v->node_id)
			return errf(err, E_FAIL, "slot %llu runs on %016llx, its volume is on %016llx", (unsigned long long)slot,
				    (unsigned long long)t->node_id, (unsigned long long)v->node_id);
	}
	return s->volumes.n == 6 ? 0 : errf(err, E_FAIL, "%zu volumes, expected 6", s->volumes.n);
}

int scn_volume_pinned(uint64_t seed, struct sim_result *res, char *err)
{
	int rc;
	char hash[65];
	struct simcl *c = scn_cluster(seed, 8, 8, &rc, err);
	if (!rc)
		rc = scn_deploy(c, db, err);
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	if (!rc)
		rc = pinned(simcl_store(c, (unsigned)simcl_leader(c)), err);
	/* a standby that holds a volume */
	int victim = -1;
	uint64_t slot = 0;
	for (unsigned k = 0; !rc && k < 16 && victim < 0; k++) {
		int i = scn_pick(c, false);
		const struct store *s = simcl_store(c, (unsigned)simcl_leader(c));
		for (uint64_t sl = 1; i >= 0 && sl <= 6 && victim < 0; sl++) {
			const struct task *t = slot_task(s, sl);
			if (t && t->node_id == c->n[i].ident.id)
				victim = i, slot = sl;
		}
	}
	if (!rc && victim < 0)
		rc = errf(err, E_FAIL, "no standby holds a volume");
	if (!rc) {
		scn_log(c, "kill %s (slot %llu's volume) and the leader", c->n[victim].ident.name, (unsigned long long)slot);
		simcl_kill(c, (unsigned)victim);
		scn_kill_leader(c, 300, 3000, false);
		simcl_run(c, 9000);
	}
	if (!rc) {
		int l = simcl_leader(c);
		const struct store *s = l >= 0 ? simcl_store(c, (unsigned)l) : NULL;
		const struct task *t = s ? slot_task(s, slot) : NULL;
		if (!s)
			rc = errf(err, E_FAIL, "no leader 9 s after the kills");
		else if (!t || t->node_id || t->state != TS_PENDING || !t->err || !strstr(t->err, "which is down"))
			rc = errf(err, E_FAIL, "slot %llu while its node is down: %s, node %016llx, reason \"%s\"",
				  (unsigned long long)slot, t ? task_state_name(t->state) : "no task",
				  t ? (unsigned long long)t->node_id : 0ull, t && t->err ? t->err : "");
		else
			rc = pinned(s, err);
	}
	if (!rc)
		rc = simcl_restart(c, (unsigned)victim, err);
	if (!rc)
		rc = check_wait_settled(c, 30000, hash, err);
	if (!rc) {
		const struct store *s = simcl_store(c, (unsigned)simcl_leader(c));
		const struct task *t = slot_task(s, slot);
		rc = pinned(s, err);
		if (!rc && (!t || t->node_id != c->n[victim].ident.id || t->state != TS_RUNNING))
			rc = errf(err, E_FAIL, "slot %llu did not return to %s", (unsigned long long)slot, c->n[victim].ident.name);
	}
	return scn_finish(c, 30000, res, rc, err);
}
