/* Human-friendly quantities shared by spec files and CLI flags: durations ("1m30s"),
 * byte sizes ("512m", "1.5GiB") and CPU shares ("0.5"). Each returns 0, or -1 when the
 * text is not a valid, in-range value (the caller names the field in its message). */
#ifndef ORCH_SPEC_UNITS_H
#define ORCH_SPEC_UNITS_H
#include <stddef.h>
#include <stdint.h>

/* Go-style durations as Compose uses them: one or more <number><unit> with units
 * ns, us, ms, s, m, h and decimal numbers ("1.5s"); a bare "0" is zero. Sub-millisecond
 * remainders are truncated. A number without a unit is rejected: "10" is ambiguous. */
int parse_duration_ms(const char *s, uint64_t *ms);
/* Docker's RAMInBytes rules: a decimal number, optional space, optional unit among
 * b, k, m, g, t, p (case-insensitive, optional "i" and "b": "16M", "512mb", "1.5GiB").
 * Units are powers of 1024, as in Docker. Fractions of a byte are truncated. */
int parse_bytes(const char *s, uint64_t *bytes);
/* A decimal CPU count with at most 3 decimals ("0.5" -> 500, "2" -> 2000). */
int parse_cpus_milli(const char *s, uint64_t *milli);

/* Canonical text forms, read back exactly by the parsers above: "1h2m3s500ms", "0s";
 * "0.5", "2". out should hold 32 bytes. */
void format_duration_ms(uint64_t ms, char *out, size_t size);
void format_cpus_milli(uint64_t milli, char *out, size_t size);

#endif
