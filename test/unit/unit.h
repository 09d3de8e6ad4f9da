/* A small unit-test harness: each test file registers cases with UNIT(name); the runner
 * (main.c) runs each in a forked child with a timeout and prints "N passed, N failed". */
#ifndef ORCH_UNIT_H
#define ORCH_UNIT_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit_case {
	const char *name;
	void (*fn)(void);
	struct unit_case *next;
};
void unit_register(struct unit_case *c);
/* orch-unit --probe-syscalls, run inside a container by the seccomp tests: tries calls the
 * default profile denies and prints "name errno" for each (test_runtime.c). */
#define UNIT_PROBE_ARG "--probe-syscalls"
int unit_probe_syscalls(void);

#define UNIT(name) \
	static void unit_##name(void); \
	static struct unit_case unit_case_##name = {#name, unit_##name, NULL}; \
	__attribute__((constructor)) static void unit_reg_##name(void) { unit_register(&unit_case_##name); } \
	static void unit_##name(void)

#define CHECK(cond) \
	do { if (!(cond)) { fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)
#define CHECK_EQ_INT(a, b) \
	do { long long a_ = (long long)(a), b_ = (long long)(b); \
	     if (a_ != b_) { fprintf(stderr, "  %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, a_, b_); exit(1); } } while (0)
#define CHECK_STR(a, b) \
	do { const char *a_ = (a), *b_ = (b); \
	     if (!a_ || strcmp(a_, b_)) { fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_); exit(1); } } while (0)

#endif
