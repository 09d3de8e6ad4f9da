/* Logging to stderr and ORCH_TRACE tracing. Log lines name the node they come from (`who`,
 * its name; NULL for code that works for no node in particular): several nodes may share
 * a process, so the name is passed, never kept here. Trace lines carry an object id
 * ("node:3f2a…", "task:17") so one object's life can be followed across nodes:
 *   ORCH_TRACE=1 (everything) or ORCH_TRACE=raft,rpc (named areas). */
#ifndef ORCH_LOG_H
#define ORCH_LOG_H
#include <stdbool.h>

void log_msg(const char *who, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool trace_on(const char *area);
void trace_msg(const char *area, const char *obj, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_info(who, ...) log_msg(who, "info", __VA_ARGS__)
#define log_warn(who, ...) log_msg(who, "warn", __VA_ARGS__)
#define log_error(who, ...) log_msg(who, "error", __VA_ARGS__)
#define TRACE(area, obj, ...) \
	do { if (trace_on(area)) trace_msg(area, obj, __VA_ARGS__); } while (0)

#endif
