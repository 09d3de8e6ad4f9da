/* The console's static files (src/console/web), built into the binary: build.zig turns
 * each file into a byte array of a generated C file and lists them here, ended by a
 * zeroed entry. */
#ifndef ORCH_CONSOLE_ASSETS_H
#define ORCH_CONSOLE_ASSETS_H
#include <stddef.h>

struct console_asset {
	const char *path; /* "/index.html" */
	const unsigned char *data;
	size_t len;
};

extern const struct console_asset console_assets[];

#endif
