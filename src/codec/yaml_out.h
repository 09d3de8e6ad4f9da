/* `-o yaml`: a msgpack object tree written as a YAML document (libyaml's emitter), so
 * that reading it back gives the same types: strings that would read as numbers,
 * booleans or null are quoted. */
#ifndef ORCH_YAML_OUT_H
#define ORCH_YAML_OUT_H
#include <msgpack.h>

struct buf;
/* Appends one YAML document (no "---" marker) ending in a newline. */
void mp_to_yaml(const msgpack_object *o, struct buf *out);

#endif
