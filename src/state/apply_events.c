/* The event log of the state machine: entries ride along inside the command that makes
 * the change they describe (a task.batch that places tasks carries "scheduled" events),
 * so an event is committed exactly when its change is, never for a rejected command.
 * Deterministic like every apply: ids follow the newest stored one, the time comes from
 * the command, and the oldest entries beyond EVENTS_MAX are dropped. */
#include "state/store.h"
#include "util/mem.h"
#include <stdlib.h>
#include <string.h>

#define EVENT_KIND_MAX 32
#define EVENT_MSG_MAX 512

static bool valid_kind(const char *k)
{
	size_t n = strlen(k);
	if (!n || n > EVENT_KIND_MAX)
		return false;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
			return false;
	return true;
}

/* Decodes one entry; false (nothing allocated) when it is not a valid event. */
static bool event_decode(const msgpack_object *o, struct event *e)
{
	memset(e, 0, sizeof *e);
	if (o->type != MSGPACK_OBJECT_MAP || schema_decode(&event_schema, e, o, NULL))
		goto bad;
	if (!e->kind || !valid_kind(e->kind) || !e->message || strlen(e->message) > EVENT_MSG_MAX ||
	    (e->service && strlen(e->service) > 63))
		goto bad;
	return true;
bad:
	schema_free(&event_schema, e);
	return false;
}

void events_apply(struct store *s, const msgpack_object *events, uint64_t at)
{
	if (!events || events->type != MSGPACK_OBJECT_ARRAY)
		return;
	for (uint32_t i = 0; i < events->via.array.size; i++) {
		struct event tmp;
		if (!event_decode(&events->via.array.ptr[i], &tmp))
			continue;
		const struct event *last = s->events.n ? s->events.items[s->events.n - 1] : NULL;
		struct event *e = xmalloc(sizeof *e);
		*e = tmp;
		e->id = last ? last->id + 1 : 1;
		if (!e->at)
			e->at = at;
		if (!e->service)
			e->service = xstrdup("");
		table_put(&s->events, e);
	}
	while (s->events.n > EVENTS_MAX) {
		const struct event *oldest = s->events.items[0];
		table_del_u64(&s->events, oldest->id);
	}
}
