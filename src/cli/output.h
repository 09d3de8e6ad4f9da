/* CLI output: aligned human tables (colour only on a terminal and never with NO_COLOR),
 * or the raw reply as JSON / YAML for scripts (-o json, -o yaml). */
#ifndef ORCH_OUTPUT_H
#define ORCH_OUTPUT_H
#include <stdbool.h>
#include <stddef.h>
#include "codec/mp.h"

enum out_fmt { OUT_TABLE, OUT_JSON, OUT_YAML };

int out_parse_fmt(const char *s, enum out_fmt *f); /* 0 or -1 */
void out_doc(enum out_fmt f, const msgpack_object *o); /* json or yaml of o, to stdout */
bool out_color(void);
const char *out_bold(void);
const char *out_dim(void);
const char *out_green(void);
const char *out_red(void);
const char *out_reset(void);
/* the same for standard error (itself a terminal or not) */
const char *out_err_red(void);
const char *out_err_reset(void);

struct out_table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major, header first */
};
void out_table_init(struct out_table *t, size_t ncols, const char *const *headers);
void out_table_row(struct out_table *t, const char *const *cols);
void out_table_print(struct out_table *t);
void out_table_free(struct out_table *t);

/* "3s", "5m", "2h", "4d" */
void out_age(uint64_t ms, char *buf, size_t n);
void out_bytes(uint64_t b, char *buf, size_t n);

#endif
