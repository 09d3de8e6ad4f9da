#include "entry.h"
#include "secret/envseal.h"
#include "spec/spec.h"
#include "unit.h"
#include "util/mem.h"
#include <stdlib.h>

void *entry_old(unsigned format, enum cmd type, const struct req_id *q, const void *body, size_t len, size_t *n)
{
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "t", cmd_name(type));
	mpw_ku64(&w, "v", format);
	mpw_ku64(&w, "o", q->origin);
	if (format >= 2)
		mpw_ku64(&w, "n", q->session);
	mpw_ku64(&w, "s", q->seq);
	mpw_key(&w, "b");
	mpw_raw(&w, body, len);
	mpw_map_end(&w);
	void *p = cmd_frame(w.sb.data, w.sb.size, n);
	mpw_free(&w);
	return p;
}

void entry_apply(struct store *s, enum cmd type, struct mpw *w, struct apply_res *res)
{
	static uint64_t seq;
	size_t n;
	struct req_id q = {3, 9, ++seq};
	void *e = cmd_build(type, &q, w->sb.data, w->sb.size, &n);
	store_apply(s, e, n, res);
	free(e);
	mpw_free(w);
}

void entry_node_body(struct mpw *w, uint64_t id, const char *name)
{
	mpw_init(w);
	mpw_map_begin(w);
	mpw_ku64(w, "id", id);
	mpw_kstr(w, "name", name);
	mpw_kstr(w, "addr", "127.0.0.1:7420");
	mpw_map_end(w);
}

void entry_add_node(struct store *s, uint64_t id, const char *name, struct apply_res *res)
{
	struct mpw w;
	entry_node_body(&w, id, name);
	entry_apply(s, CMD_NODE_ADD, &w, res);
}

void entry_put_service(struct store *s, const char *yaml, struct apply_res *res)
{
	entry_put_service_sealed(s, yaml, NULL, res);
}

void entry_put_service_sealed(struct store *s, const char *yaml, const uint8_t *key, struct apply_res *res)
{
	struct spec_file *f = NULL;
	char err[ERR_LEN];
	if (spec_parse_buf("t.yml", yaml, strlen(yaml), &f, err)) {
		fprintf(stderr, "  spec: %s\n", err);
		exit(1);
	}
	spec_file_qualify(f, NULL);
	if (key && envseal_close(key, &f->svc[0], err)) {
		fprintf(stderr, "  seal: %s\n", err);
		exit(1);
	}
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_kstr(&w, "name", f->svc[0].name);
	mpw_ku64(&w, "at", 1);
	mpw_key(&w, "spec");
	svc_spec_encode(&f->svc[0], &w);
	spec_file_free(f);
	mpw_map_end(&w);
	entry_apply(s, CMD_SERVICE_PUT, &w, res);
}

void entry_restore_copy(const struct store *s, struct store *out)
{
	struct mpw snap;
	char err[ERR_LEN];
	mpw_init(&snap);
	store_snapshot(s, &snap);
	store_init(out);
	if (store_restore(out, snap.sb.data, snap.sb.size, err)) {
		fprintf(stderr, "  restore: %s\n", err);
		exit(1);
	}
	mpw_free(&snap);
}

void entry_spec_mangle(const char *yml)
{
	static const char subst[] = ":-[]{}'\"\n #&*|%,\\0.~";
	size_t len = strlen(yml);
	char *buf = xmalloc(len + 1);
	int parsed = 0, refused = 0;
	for (size_t at = 0; at <= len; at++) {
		for (size_t k = 0; k <= sizeof subst - 1; k++) {
			memcpy(buf, yml, len);
			size_t n = len;
			if (k == sizeof subst - 1)
				n = at; /* the truncation at this byte */
			else if (at < len)
				buf[at] = subst[k];
			else
				continue;
			char err[ERR_LEN] = "";
			struct spec_file *f = NULL;
			if (spec_parse_buf("app.yml", buf, n, &f, err)) {
				CHECK(!strncmp(err, "app.yml", 7));
				refused++;
				continue;
			}
			parsed++;
			for (size_t i = 0; i < f->nsvc; i++) {
				struct svc_spec back;
				svc_spec_copy(&back, &f->svc[i]); /* aborts if the encoding does not decode */
				CHECK_EQ_INT(svc_spec_equal(&back, &f->svc[i]), 1);
				svc_spec_free(&back);
			}
			spec_file_free(f);
		}
	}
	free(buf);
	CHECK(parsed > 100);
	CHECK(refused > 100);
}
