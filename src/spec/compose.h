/* Compose files as people write them, read the way `docker compose` reads them before orch
 * parses the result into specs (spec.h): several files merged in order, "-" for standard
 * input, ${VAR} interpolation from the shell and a .env file (or --env-file files),
 * env_file:, extends:, top-level include:, profiles, and the keys that cannot apply to a
 * cluster (build:, container_name:, links:) reported as warnings and dropped. */
#ifndef ORCH_SPEC_COMPOSE_H
#define ORCH_SPEC_COMPOSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "spec/spec.h"

struct compose_opts {
	const char *const *files; /* at least one; "-" is standard input */
	size_t nfiles;
	const char *const *env_files; /* when given, read instead of the .env beside the first file */
	size_t nenv_files;
	const char *const *profiles; /* --profile; COMPOSE_PROFILES from the variables adds to them */
	size_t nprofiles;
	const char *project;   /* --project, or NULL: name: of the file, else the first file's directory */
	char *const *environ;  /* the deploying shell's variables ("NAME=value"), or NULL */
	FILE *warn;            /* where warnings go; NULL drops them */
	const char *data;      /* the text of files[0] when given (tests, spec_parse_buf), or NULL */
	size_t data_len;
	bool no_dotenv;        /* do not read the .env beside the first file */
};

/* Reads, interpolates, merges and parses. On success *out holds the services of the active
 * profiles and project (64 bytes) the project name. On error nothing is returned and err
 * reads "file:line:column: key.path: what is wrong". */
int compose_load(const struct compose_opts *o, struct spec_file **out, char *project, char *err);

#endif
