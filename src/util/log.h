/* Logging to stderr and ORCH_TRACE tracing. Log lines name the node they come from (`who`,
 * its name; NULL for code that works for no node in particular) and are stamped with that
 * node's wall clock (util/clock.h; NULL: the system's): several nodes may share a process,
 * a simulation runs them on virtual time, so both are passed, never kept here. Trace lines
 * (stamped with the system's clock) carry an object id ("node:3f2a…", "task:17") so one
 * object's life can be followed across nodes:
 *   ORCH_TRACE=1 (everything) or ORCH_TRACE=raft,rpc (named areas). */
#ifndef ORCH_LOG_H
#define ORCH_LOG_H
#include <stdbool.h>
#include "util/clock.h"

void log_msg(const char *who, const struct clock *clock, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
bool trace_on(const char *area);
void trace_msg(const char *area, const char *obj, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_info(who, clock, ...) log_msg(who, clock, "info", __VA_ARGS__)
#define log_warn(who, clock, ...) log_msg(who, clock, "warn", __VA_ARGS__)
#define log_error(who, clock, ...) log_msg(who, clock, "error", __VA_ARGS__)
#define TRACE(area, obj, ...) \
	do { if (trace_on(area)) trace_msg(area, obj, __VA_ARGS__); } while (0)

#endif
