/* Compose variable interpolation of one string: ${VAR}, $VAR, ${VAR:-default},
 * ${VAR-default}, ${VAR:?message}, ${VAR?message}, ${VAR:+alt}, ${VAR+alt} (defaults,
 * messages and alternatives may nest further references) and $$ for a literal '$'. A '$'
 * that starts no valid reference is kept as written, as Compose keeps it. An unset
 * variable without a default becomes "" and is reported through the result, so the caller
 * can warn and can name it when the value later proves invalid. */
#ifndef ORCH_SPEC_INTERP_H
#define ORCH_SPEC_INTERP_H
#include <stdbool.h>
#include "state/schema.h" /* struct labels */

#define INTERP_NAME_MAX 128

struct interp_res {
	char *out;                       /* malloc'd result (NULL on error) */
	bool changed;                    /* some reference or $$ was replaced */
	char unset[INTERP_NAME_MAX + 1]; /* first variable found unset without a default, or "" */
};

/* env: the variables (sorted labels). 0, or E_INVAL with msg (ERR_LEN) saying what is
 * wrong: "required variable DB_PW is missing a value: set it in .env" or an unclosed "${". */
int interp_string(const char *in, const struct labels *env, struct interp_res *res, char *msg);

/* The value of name in env, or NULL (binary search of the sorted labels). */
const char *interp_lookup(const struct labels *env, const char *name);

#endif
