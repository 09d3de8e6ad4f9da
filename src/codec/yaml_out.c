#include "codec/yaml_out.h"
#include "util/mem.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static int write_out(void *data, unsigned char *p, size_t n)
{
	buf_append(data, p, n);
	return 1;
}

/* Would this text, written plain, read back as something other than a string? Errs on
 * the side of quoting (YAML 1.1 readers know yes/no/on/off and sexagesimal numbers). */
static bool needs_quotes(const char *s, size_t n)
{
	static const char *const words[] = {"~", "null", "Null", "NULL", "true", "True", "TRUE", "false",
					    "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO", "on",
					    "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N", "<<", NULL};
	if (n == 0)
		return true;
	for (int i = 0; words[i]; i++)
		if (strlen(words[i]) == n && !memcmp(words[i], s, n))
			return true;
	size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	if (i < n && s[i] == '.')
		i++;
	if (i < n && (!strncmp(s + i, "inf", 3) || !strncmp(s + i, "Inf", 3) || !strncmp(s + i, "nan", 3) ||
		      !strncmp(s + i, "NaN", 3)))
		return true;
	if (i >= n || s[i] < '0' || s[i] > '9')
		return false;
	/* Starts like a number: quote unless a letter shows it is not one ("1m30s", "16M").
	 * Hex, octal, exponents and sexagesimal ("8080:80") only use these characters. */
	for (size_t j = 0; j < n; j++)
		if (!strchr("0123456789abcdefABCDEFxXoO+-._:", s[j]))
			return false;
	return true;
}

static int scalar(yaml_emitter_t *e, const char *s, size_t n, yaml_scalar_style_t style)
{
	yaml_event_t ev;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)s, (int)n, 1, 1, style))
		return -1; /* not valid utf-8 */
	return yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int str(yaml_emitter_t *e, const char *s, size_t n)
{
	yaml_scalar_style_t style = needs_quotes(s, n) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
	if (scalar(e, s, n, style) == 0)
		return 0;
	/* Bytes that are not utf-8 text are shown as hex, like bin values. */
	char *h = xmalloc(n * 2 + 1);
	hex_encode((const uint8_t *)s, n, h);
	int rc = scalar(e, h, n * 2, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	free(h);
	return rc;
}

static int plain(yaml_emitter_t *e, const char *s)
{
	return scalar(e, s, strlen(s), YAML_PLAIN_SCALAR_STYLE);
}

static int emit(yaml_emitter_t *e, const msgpack_object *o)
{
	yaml_event_t ev;
	char num[64];
	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN: return plain(e, o->via.boolean ? "true" : "false");
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		snprintf(num, sizeof num, "%llu", (unsigned long long)o->via.u64);
		return plain(e, num);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		snprintf(num, sizeof num, "%lld", (long long)o->via.i64);
		return plain(e, num);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		/* the shortest form that reads back as the same double */
		snprintf(num, sizeof num, "%.15g", o->via.f64);
		if (strtod(num, NULL) != o->via.f64)
			snprintf(num, sizeof num, "%.17g", o->via.f64);
		if (!strpbrk(num, ".eEin"))
			strcat(num, ".0"); /* keep it a float when read back */
		return plain(e, num);
	case MSGPACK_OBJECT_STR: return str(e, o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN: {
		char *h = xmalloc(o->via.bin.size * 2 + 1);
		hex_encode((const uint8_t *)o->via.bin.ptr, o->via.bin.size, h);
		int rc = scalar(e, h, o->via.bin.size * 2, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
		free(h);
		return rc;
	}
	case MSGPACK_OBJECT_ARRAY:
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_SEQUENCE_STYLE);
		if (!yaml_emitter_emit(e, &ev))
			return -1;
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (emit(e, &o->via.array.ptr[i]))
				return -1;
		yaml_sequence_end_event_initialize(&ev);
		return yaml_emitter_emit(e, &ev) ? 0 : -1;
	case MSGPACK_OBJECT_MAP:
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_ANY_MAPPING_STYLE);
		if (!yaml_emitter_emit(e, &ev))
			return -1;
		for (uint32_t i = 0; i < o->via.map.size; i++)
			if (emit(e, &o->via.map.ptr[i].key) || emit(e, &o->via.map.ptr[i].val))
				return -1;
		yaml_mapping_end_event_initialize(&ev);
		return yaml_emitter_emit(e, &ev) ? 0 : -1;
	default: return plain(e, "null");
	}
}

void mp_to_yaml(const msgpack_object *o, struct buf *out)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	struct buf tmp = {0};
	if (!yaml_emitter_initialize(&e))
		abort();
	yaml_emitter_set_output(&e, write_out, &tmp);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	int ok = yaml_emitter_emit(&e, &ev);
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	ok = ok && yaml_emitter_emit(&e, &ev);
	ok = ok && emit(&e, o) == 0;
	yaml_document_end_event_initialize(&ev, 1);
	ok = ok && yaml_emitter_emit(&e, &ev);
	yaml_stream_end_event_initialize(&ev);
	ok = ok && yaml_emitter_emit(&e, &ev);
	ok = ok && yaml_emitter_flush(&e);
	const char *problem = e.problem ? e.problem : "emitter error";
	yaml_emitter_delete(&e);
	/* The emitter only fails on its own invariants; show that rather than half a document. */
	if (ok)
		buf_append(out, tmp.data, tmp.len);
	else
		buf_printf(out, "# yaml output failed: %s\n", problem);
	buf_free(&tmp);
}
