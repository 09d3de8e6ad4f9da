/* A spec file as `orch deploy` reads it (spec/compose.h: YAML, interpolation, merge keys,
 * extends within the file, the orch and Compose forms of every key), then each service's
 * spec through its wire encoding and back (spec/spec.h), which must give the same spec:
 * the leader stores what the CLI sent. Runs in an empty directory with stdin on /dev/null,
 * so the files an input names (env_file:, include:) are not found rather than read. */
#include "common.h"
#include "spec/compose.h"
#include "util/err.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/orch-fuzz-spec-XXXXXX";

static void remove_dir(void)
{
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(dir) || chdir(dir))
		abort();
	atexit(remove_dir);
	int fd = open("/dev/null", O_RDONLY);
	dup2(fd, 0);
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *const env[] = {"TAG=1.2", "EMPTY=", "NAME=web", "PORT=8080", NULL};
	const char *files[] = {"compose.yaml"};
	struct compose_opts o = {.files = files, .nfiles = 1, .data = (const char *)data, .data_len = size,
				 .no_dotenv = true, .environ = env};
	struct spec_file *f = NULL;
	char project[64], err[ERR_LEN];
	if (compose_load(&o, &f, project, err))
		return 0;
	for (size_t i = 0; i < f->nsvc; i++) {
		struct mpw w;
		mpw_init(&w);
		svc_spec_encode(&f->svc[i], &w);
		struct mpr r;
		if (mpr_decode(&r, w.sb.data, w.sb.size))
			abort(); /* the encoder wrote something the decoder cannot read */
		struct svc_spec back;
		svc_spec_init(&back);
		if (svc_spec_decode(r.root, &back, err)) {
			fprintf(stderr, "spec of %s does not decode: %s\n", f->svc[i].name, err);
			abort();
		}
		if (!svc_spec_equal(&f->svc[i], &back)) {
			fprintf(stderr, "spec of %s changed through its encoding\n", f->svc[i].name);
			abort();
		}
		svc_spec_free(&back);
		mpr_free(&r);
		mpw_free(&w);
	}
	spec_file_free(f);
	return 0;
}
