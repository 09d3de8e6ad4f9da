/* Prometheus text exposition format 0.0.4: each family is a "# HELP" and a "# TYPE" line
 * followed by its samples `name{label="value",...} number`, label values escaped (\\, \",
 * \n). Pure string building. */
#ifndef ORCH_PROM_H
#define ORCH_PROM_H
#include <stdint.h>
#include "util/mem.h"

/* type: "counter" | "gauge" */
void prom_family(struct buf *b, const char *name, const char *type, const char *help);
/* labels: NULL-terminated list of key, value, key, value, ... (NULL for none) */
void prom_u64(struct buf *b, const char *name, const char *const *labels, uint64_t v);
void prom_double(struct buf *b, const char *name, const char *const *labels, double v);

#endif
