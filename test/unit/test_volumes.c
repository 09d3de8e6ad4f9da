/* Service volumes in spec files: short and long syntax, top-level declarations, the slot
 * template, project names, errors with their positions, and the canonical encoding. */
#include "unit.h"
#include "entry.h"
#include "spec/spec.h"
#include "util/err.h"
#include "util/mem.h"

static struct spec_file *vparse(const char *yml, char *err)
{
	struct spec_file *f = NULL;
	err[0] = 0;
	int rc = spec_parse_buf("/srv/app/app.yml", yml, strlen(yml), &f, err);
	if (rc) {
		CHECK(f == NULL);
		CHECK(err[0] != 0);
		return NULL;
	}
	return f;
}

static struct spec_file *vok(const char *yml)
{
	char err[ERR_LEN];
	struct spec_file *f = vparse(yml, err);
	if (!f)
		fprintf(stderr, "  unexpected error: %s\n", err);
	CHECK(f != NULL);
	return f;
}

static void verr(const char *yml, const char *want)
{
	char err[ERR_LEN];
	struct spec_file *f = vparse(yml, err);
	if (f || !strstr(err, want))
		fprintf(stderr, "  expected an error containing \"%s\", got \"%s\"\n", want, f ? "(parsed)" : err);
	CHECK(f == NULL);
	CHECK(strstr(err, want) != NULL);
}

UNIT(volumes_short_syntax)
{
	struct spec_file *f = vok("services:\n"
				  "  db:\n"
				  "    image: busybox\n"
				  "    volumes:\n"
				  "      - data:/var/lib/db\n"
				  "      - /srv/conf:/etc/conf:ro\n"
				  "      - ./html:/www:rw\n"
				  "      - ../shared/x:/x\n"
				  "      - /cache\n"
				  "      - seed:/seed:ro,nocopy\n"
				  "      - ./src:/app:cached\n"
				  "volumes:\n"
				  "  data:\n"
				  "  seed: {}\n");
	const struct svc_spec *s = spec_file_find(f, "db");
	CHECK(s && s->mounts.n == 7);
	const struct mount_spec *m = s->mounts.v;
	CHECK_EQ_INT(m[0].type, MOUNT_VOLUME);
	CHECK_STR(m[0].source, "data");
	CHECK_STR(m[0].target, "/var/lib/db");
	CHECK(!m[0].read_only && !m[0].nocopy);
	CHECK_EQ_INT(m[1].type, MOUNT_BIND);
	CHECK_STR(m[1].source, "/srv/conf");
	CHECK(m[1].read_only && m[1].create_host_path);
	CHECK_EQ_INT(m[2].type, MOUNT_BIND);
	CHECK_STR(m[2].source, "/srv/app/html"); /* relative to the file's directory */
	CHECK(!m[2].read_only);
	CHECK_STR(m[3].source, "/srv/shared/x");
	CHECK_EQ_INT(m[4].type, MOUNT_VOLUME); /* anonymous */
	CHECK(m[4].source == NULL);
	CHECK_STR(m[4].target, "/cache");
	CHECK(m[5].read_only && m[5].nocopy);
	CHECK_STR(m[6].source, "/srv/app/src"); /* :cached is a hint of Docker Desktop: no effect */
	CHECK(!m[6].read_only);
	/* Compose's names: <project>_<key> */
	spec_file_qualify(f, "shop");
	CHECK_STR(m[0].source, "shop_data");
	CHECK_STR(m[5].source, "shop_seed");
	CHECK_STR(m[1].source, "/srv/conf");
	CHECK(m[4].source == NULL);
	spec_file_free(f);
}

UNIT(volumes_long_syntax)
{
	struct spec_file *f = vok("services:\n"
				  "  db:\n"
				  "    image: busybox\n"
				  "    volumes:\n"
				  "      - type: volume\n"
				  "        source: data\n"
				  "        target: /data\n"
				  "        volume:\n"
				  "          nocopy: true\n"
				  "      - type: bind\n"
				  "        source: /srv/www\n"
				  "        target: /www\n"
				  "        read_only: true\n"
				  "        bind:\n"
				  "          create_host_path: false\n"
				  "      - type: tmpfs\n"
				  "        target: /scratch\n"
				  "        tmpfs:\n"
				  "          size: 16m\n"
				  "          mode: 0700\n"
				  "volumes:\n"
				  "  data:\n"
				  "    driver: local\n"
				  "    name: pgdata\n"
				  "    labels:\n"
				  "      team: db\n");
	const struct svc_spec *s = spec_file_find(f, "db");
	CHECK(s && s->mounts.n == 3);
	const struct mount_spec *m = s->mounts.v;
	CHECK_EQ_INT(m[0].type, MOUNT_VOLUME);
	CHECK(m[0].nocopy);
	CHECK_EQ_INT(m[1].type, MOUNT_BIND);
	CHECK(m[1].read_only && !m[1].create_host_path);
	CHECK_EQ_INT(m[2].type, MOUNT_TMPFS);
	CHECK_EQ_INT(m[2].tmpfs_size, 16ull << 20);
	CHECK_EQ_INT(m[2].tmpfs_mode, 0700);
	spec_file_qualify(f, "shop");
	CHECK_STR(m[0].source, "pgdata"); /* name: is used as is */
	CHECK_STR(labels_get(&m[0].labels, "team"), "db");

	/* the canonical encoding keeps every field and decodes to the same spec */
	struct svc_spec copy;
	svc_spec_copy(&copy, s);
	CHECK(svc_spec_equal(&copy, s));
	CHECK_EQ_INT(copy.mounts.n, 3);
	CHECK_STR(copy.mounts.v[0].source, "pgdata");
	CHECK(copy.mounts.v[0].nocopy);
	CHECK_EQ_INT(copy.mounts.v[2].tmpfs_size, 16ull << 20);
	CHECK_STR(labels_get(&copy.mounts.v[0].labels, "team"), "db");
	svc_spec_free(&copy);
	spec_file_free(f);
}

UNIT(volumes_slot_template)
{
	struct spec_file *f = vok("services:\n"
				  "  db:\n"
				  "    image: busybox\n"
				  "    volumes:\n"
				  "      - \"data-{{.Task.Slot}}:/data\"\n"
				  "      - logs-{slot}:/logs\n"
				  "volumes:\n"
				  "  \"data-{{ .Task.Slot }}\":\n"
				  "  logs-{slot}:\n"
				  "    external: true\n");
	const struct mount_spec *m = spec_file_find(f, "db")->mounts.v;
	CHECK_STR(m[0].source, "data-{slot}");
	spec_file_qualify(f, "p");
	CHECK_STR(m[0].source, "p_data-{slot}");
	CHECK_STR(m[1].source, "logs-{slot}"); /* external: not prefixed */
	CHECK(m[1].external);
	char name[128];
	CHECK(spec_volume_name(m[0].source, 2, name, sizeof name));
	CHECK_STR(name, "p_data-2");
	CHECK(spec_volume_name("a{slot}b{slot}", 12, name, sizeof name));
	CHECK_STR(name, "a12b12");
	CHECK(!spec_volume_name("bad/name", 1, name, sizeof name));
	CHECK(!spec_volume_name("x", 1, name, 1)); /* does not fit */
	spec_file_free(f);
}

UNIT(volumes_errors_located)
{
	/* not declared at the top level */
	verr("services:\n  db:\n    image: busybox\n    volumes:\n      - data:/data\n",
	     "app.yml:5:9: services.db.volumes[0]: volume \"data\" is not declared in the top-level volumes: key");
	/* a driver other than local */
	verr("services:\n  db:\n    image: x\nvolumes:\n  data:\n    driver: rexray\n",
	     "app.yml:6:13: volumes.data.driver: volume driver \"rexray\" is not supported by orch");
	verr("services:\n  db:\n    image: x\nvolumes:\n  data:\n    driver_opts:\n      type: nfs\n",
	     "app.yml:7:7: volumes.data.driver_opts: driver_opts are not supported");
	verr("services:\n  db:\n    image: x\nvolumes:\n  data:\n    drivr: local\n",
	     "app.yml:6:5: volumes.data: unknown key \"drivr\" (did you mean \"driver\"?)");
	/* short syntax */
	verr("services:\n  db:\n    image: x\n    volumes: [\"data:rel\"]\n",
	     "app.yml:4:15: services.db.volumes[0]: volume \"data:rel\": the target must be an absolute path");
	verr("services:\n  db:\n    image: x\n    volumes: [\"d:/x:rel\"]\n", "mode \"rel\" is not supported");
	verr("services:\n  db:\n    image: x\n    volumes:\n      - type: tmpfs\n        target: /x\n        tmpfs: {mode: 0800}\n",
	     "expected a file mode from 0 to 07777");
	verr("services:\n  db:\n    image: x\n    volumes: [\"/a:/b:rshared\"]\n", "mode \"rshared\" is not supported");
	verr("services:\n  db:\n    image: x\n    volumes: [\"/a:/b:c:d\"]\n", "expected \"source:target[:mode]\"");
	verr("services:\n  db:\n    image: x\n    volumes: [\"/a:b\"]\n", "mode \"b\" is not supported");
	verr("services:\n  db:\n    image: x\n    volumes: [\"bad name:/b\"]\n", "invalid volume name \"bad name\"");
	/* long syntax */
	verr("services:\n  db:\n    image: x\n    volumes:\n      - type: volume\n        source: d\n",
	     "app.yml:5:9: services.db.volumes[0]: missing required key \"target\"");
	verr("services:\n  db:\n    image: x\n    volumes:\n      - type: npipe\n        target: /x\n",
	     "app.yml:5:15: services.db.volumes[0].type: \"npipe\" is not supported by orch");
	verr("services:\n  db:\n    image: x\n    volumes:\n      - type: tmpfs\n        source: a\n        target: /x\n",
	     "a tmpfs mount takes no source");
	verr("services:\n  db:\n    image: x\n    volumes:\n      - type: bind\n        source: data\n        target: /x\n",
	     "bind source \"data\" must be a host path");
	verr("services:\n  db:\n    image: x\n    volumes:\n      - type: volume\n        target: /x\n        tmpfs: {size: 1m}\n",
	     "tmpfs options apply to type tmpfs only");
	verr("services:\n  db:\n    image: x\n    volumes:\n      - type: tmpfs\n        target: /x\n        tmpfs: {size: lots}\n",
	     "services.db.volumes[0].tmpfs.size: invalid size");
	verr("services:\n  db:\n    image: x\n    volumes:\n      - type: volume\n        target: x\n",
	     "target must be an absolute path");
	verr("services:\n  db:\n    image: x\n    volumes: [\"/a:/x\", \"/b:/x\"]\n", "two mounts on /x");
	verr("services:\n  db:\n    image: x\nvolumes: [a]\n", "app.yml:4:10: volumes: expected a mapping of volume names");
	verr("services:\n  db:\n    image: x\nvolumes:\n  data:\n    name: \"a b\"\n", "invalid volume name \"a b\"");
}

UNIT(volumes_decode_rejects_bad)
{
	/* a spec whose mount has no absolute target does not decode */
	struct mpw w;
	mpw_init(&w);
	mpw_map_begin(&w);
	mpw_ku64(&w, "v", SPEC_ENCODING_VERSION);
	mpw_kstr(&w, "name", "db");
	mpw_kstr(&w, "image", "x");
	mpw_key(&w, "volumes");
	mpw_arr(&w, 1);
	mpw_map_begin(&w);
	mpw_kstr(&w, "type", "volume");
	mpw_kstr(&w, "target", "relative");
	mpw_map_end(&w);
	mpw_map_end(&w);
	struct mpr r;
	CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
	struct svc_spec s;
	char err[ERR_LEN];
	CHECK(svc_spec_decode(r.root, &s, err) < 0);
	CHECK(strstr(err, "volumes") != NULL);
	svc_spec_free(&s);
	mpr_free(&r);
	mpw_free(&w);
	/* nor one that names a path where a volume name belongs, or a relative bind */
	const char *bad[][2] = {{"volume", "../../etc"}, {"bind", "relative"}, {"tmpfs", "/x"}};
	for (size_t i = 0; i < 3; i++) {
		mpw_init(&w);
		mpw_map_begin(&w);
		mpw_ku64(&w, "v", SPEC_ENCODING_VERSION);
		mpw_kstr(&w, "image", "x");
		mpw_key(&w, "volumes");
		mpw_arr(&w, 1);
		mpw_map_begin(&w);
		mpw_kstr(&w, "type", bad[i][0]);
		mpw_kstr(&w, "source", bad[i][1]);
		mpw_kstr(&w, "target", "/t");
		mpw_map_end(&w);
		mpw_map_end(&w);
		CHECK_EQ_INT(mpr_decode(&r, w.sb.data, w.sb.size), 0);
		CHECK(svc_spec_decode(r.root, &s, err) < 0);
		svc_spec_free(&s);
		mpr_free(&r);
		mpw_free(&w);
	}
}

UNIT(volumes_bind_prefixes)
{
	CHECK(spec_path_allowed("/srv", "/srv"));
	CHECK(spec_path_allowed("/srv", "/srv/a/b"));
	CHECK(!spec_path_allowed("/srv", "/srvx"));
	CHECK(!spec_path_allowed("/srv/app", "/srv/application"));
	CHECK(spec_path_allowed("/a\n/var/log/", "/var/log/app"));
	CHECK(spec_path_allowed("/a\n/var/log/", "/a"));
	CHECK(!spec_path_allowed("/a\n/var/log/", "/var"));
	CHECK(spec_path_allowed("/", "/etc"));
	CHECK(!spec_path_allowed("", "/etc"));
	CHECK(!spec_path_allowed(NULL, "/etc"));
	CHECK(!spec_path_allowed("relative\n", "relative/x"));
}

/* ---- on the node: directories, filling, bind prefixes, the bundle ---- */

#include "agent/volumes.h"
#include "image/fsutil.h"
#include "runtime/rtjson.h"
#include <sys/stat.h>
#include <unistd.h>

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* The options of mount i of the set, joined by commas. */
static void opts_of(const struct volumes_set *s, size_t i, char *out, size_t n)
{
	out[0] = 0;
	for (const char *const *o = s->bm[i].options; *o; o++)
		snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? "," : "", *o);
}

UNIT(volumes_prepare_on_node)
{
	char tmp[] = "/tmp/orch-unit-vol-XXXXXX", p[512], err[ERR_LEN], o[256];
	CHECK(mkdtemp(tmp) != NULL);
	char *data = xasprintf("%s/data", tmp), *task = xasprintf("%s/task", tmp), *root = xasprintf("%s/rootfs", tmp);
	char *allowed = xasprintf("%s/allowed", tmp);
	CHECK_EQ_INT(fs_mkdir_p(data, 0700, err), 0);
	CHECK_EQ_INT(fs_mkdir_p(task, 0700, err), 0);
	snprintf(p, sizeof p, "%s/www/sub", root);
	CHECK_EQ_INT(fs_mkdir_p(p, 0755, err), 0);
	snprintf(p, sizeof p, "%s/www/index.html", root);
	put_file(p, "<html>");
	snprintf(p, sizeof p, "%s/www/sub/inner.txt", root);
	put_file(p, "inner");
	snprintf(p, sizeof p, "%s/cfg", root);
	CHECK_EQ_INT(mkdir(p, 0755), 0);
	snprintf(p, sizeof p, "%s/cfg/a.txt", root);
	put_file(p, "a");
	snprintf(p, sizeof p, "%s/www", root);
	CHECK_EQ_INT(chmod(p, 0750), 0);
	snprintf(p, sizeof p, "%s/link", root); /* an image's symlink out of its root */
	CHECK_EQ_INT(symlink("/etc", p), 0);
	CHECK_EQ_INT(fs_mkdir_p(allowed, 0755, err), 0);
	struct strv allow = {0};
	strv_push(&allow, allowed);
	CHECK_EQ_INT(volumes_allow_save(data, &allow, err), 0);
	strv_free(&allow);

	char *yml = xasprintf("services:\n  db:\n    image: x\n    volumes:\n"
			      "      - web-{slot}:/www\n"
			      "      - /www/sub\n"
			      "      - seed:/link\n"
			      "      - quiet:/cfg:nocopy\n"
			      "      - %s/new/dir:/conf:ro\n"
			      "      - {type: tmpfs, target: /scratch, tmpfs: {size: 1m, mode: \"0700\"}}\n"
			      "volumes:\n  web-{slot}:\n  seed:\n  quiet:\n", allowed);
	struct spec_file *f = vok(yml);
	spec_file_qualify(f, "p");
	struct volumes_set set;
	CHECK_EQ_INT(volumes_prepare(data, task, root, spec_file_find(f, "db"), 3, &set, err), 0);
	CHECK_EQ_INT(set.n, 6);
	/* the named volume of slot 3, filled from the image with the target's mode */
	snprintf(p, sizeof p, "%s/volumes/p_web-3/data", data);
	CHECK_STR(set.bm[0].source, p);
	CHECK_STR(set.bm[0].destination, "/www");
	CHECK_STR(set.bm[0].type, "bind");
	opts_of(&set, 0, o, sizeof o);
	CHECK_STR(o, "rbind,rprivate,rw");
	struct stat st;
	CHECK_EQ_INT(stat(p, &st), 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0750);
	snprintf(p, sizeof p, "%s/volumes/p_web-3/data/index.html", data);
	CHECK_EQ_INT(access(p, F_OK), 0);
	snprintf(p, sizeof p, "%s/volumes/p_web-3/data/sub", data);
	CHECK(fs_is_dir(p));
	/* the anonymous one: the task's, filled too */
	snprintf(p, sizeof p, "%s/volumes/1/inner.txt", task);
	CHECK_EQ_INT(access(p, F_OK), 0);
	/* never filled through a symlink of the image, nor with nocopy */
	snprintf(p, sizeof p, "%s/volumes/p_seed/data/passwd", data);
	CHECK(access(p, F_OK) != 0);
	snprintf(p, sizeof p, "%s/volumes/p_quiet/data/a.txt", data);
	CHECK(access(p, F_OK) != 0);
	/* the bind, created under the allowed prefix, read-only */
	snprintf(p, sizeof p, "%s/new/dir", allowed);
	CHECK(fs_is_dir(p));
	CHECK_STR(set.bm[4].source, p);
	opts_of(&set, 4, o, sizeof o);
	CHECK_STR(o, "rbind,rprivate,ro");
	CHECK_STR(set.bm[5].type, "tmpfs");
	opts_of(&set, 5, o, sizeof o);
	CHECK_STR(o, "nosuid,nodev,mode=0700,rw,size=1048576");

	/* the mounts land in config.json after the defaults */
	char *args[] = {"sh", NULL};
	struct run_spec rs = {.id = "c1", .bundle_dir = "/tmp/b", .rootfs = "/tmp/b/rootfs", .args = args,
			      .cgroups_path = "/orch/n/1", .vol_mounts = set.bm, .nvol_mounts = set.n};
	struct buf b = {0};
	CHECK_EQ_INT(bundle_json(&rs, &b, err), 0);
	struct rtjson_v v, ms, m;
	CHECK_EQ_INT(rtjson_parse((char *)b.data, b.len, &v), 0);
	CHECK_EQ_INT(rtjson_get(&v, "mounts", &ms), 0);
	size_t pos = 0, n = 0;
	char dst[64] = "";
	while (rtjson_next(&ms, &pos, &m) == 1) {
		n++;
		rtjson_get_str(&m, "destination", dst, sizeof dst);
	}
	CHECK_STR(dst, "/scratch");
	CHECK(n > 5);
	buf_free(&b);
	volumes_set_free(&set);
	spec_file_free(f);
	free(yml);

	/* the data stays for the next task of the slot; the task's own volume goes with it */
	volumes_task_cleanup(task);
	snprintf(p, sizeof p, "%s/volumes", task);
	CHECK(!fs_is_dir(p));
	snprintf(p, sizeof p, "%s/volumes/p_web-3/data/index.html", data);
	CHECK_EQ_INT(access(p, F_OK), 0);

	/* binds outside the prefixes, or led out by a symlink, are refused */
	snprintf(p, sizeof p, "%s/escape", allowed);
	CHECK_EQ_INT(symlink("/etc", p), 0);
	const char *bad[] = {"/etc", p};
	for (int i = 0; i < 2; i++) {
		yml = xasprintf("services:\n  db:\n    image: x\n    volumes: [\"%s:/x\"]\n", bad[i]);
		f = vok(yml);
		CHECK(volumes_prepare(data, task, root, spec_file_find(f, "db"), 1, &set, err) < 0);
		CHECK(strstr(err, "refused: not under a prefix this node allows") != NULL);
		spec_file_free(f);
		free(yml);
	}
	/* rm: the directory goes; names that are not volume names are refused */
	CHECK_EQ_INT(volumes_remove(data, "p_web-3", err), 0);
	snprintf(p, sizeof p, "%s/volumes/p_web-3", data);
	CHECK(!fs_is_dir(p));
	CHECK_EQ_INT(volumes_remove(data, "p_web-3", err), E_NOTFOUND);
	CHECK(volumes_remove(data, "..", err) == E_INVAL);
	CHECK(volumes_remove(data, "a/../../x", err) == E_INVAL);
	fs_rm_rf(tmp);
	free(data);
	free(task);
	free(root);
	free(allowed);
}

/* Every byte of a file with volumes mangled, and every truncation: a spec that survives
 * the codec, or a located error; never a crash. */
UNIT(volumes_every_byte_mangled)
{
	entry_spec_mangle("services:\n  db:\n    image: demo\n    volumes:\n      - data-{slot}:/data:ro\n"
			  "      - /srv/x:/x\n      - type: tmpfs\n        target: /t\n        tmpfs: {size: 1m, mode: 0700}\n"
			  "      - {type: volume, source: seed, target: /s, volume: {nocopy: true}}\n"
			  "volumes:\n  data-{slot}:\n  seed:\n    name: s\n    labels: [a=b]\n");
}
