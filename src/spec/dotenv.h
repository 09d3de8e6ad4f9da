/* .env and env_file: files of KEY=value lines as Compose reads them: '#' comments, an
 * optional "export " prefix, single quotes taken literally, double quotes with \n \t \\ \"
 * escapes, unquoted values trimmed and cut at " #"; double-quoted and unquoted values are
 * interpolated (spec/interp.h) against the outer variables and the lines before. A line
 * with a name only takes the outer variable of that name, or is skipped when there is none. */
#ifndef ORCH_SPEC_DOTENV_H
#define ORCH_SPEC_DOTENV_H
#include <stddef.h>
#include "state/schema.h" /* struct labels */

/* Adds the file's variables to out (later lines win). outer may be NULL. 0, or E_INVAL /
 * E_IO with err "name:line: what is wrong". */
int dotenv_parse(const char *name, const char *data, size_t len, const struct labels *outer, struct labels *out,
		 char *err);
/* Reads path (at most 16 MiB) and parses it; E_NOTFOUND when it does not exist. */
int dotenv_read(const char *path, const struct labels *outer, struct labels *out, char *err);

#endif
