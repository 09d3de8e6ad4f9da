/* Image references (image/ref.h): every spelling of one image normalises to one string, the
 * short form Docker shows, and bad references refused with a message naming the fault. */
#include "unit.h"
#include "image/ref.h"
#include "util/err.h"

static void canon(const char *in, const char *want)
{
	char out[REF_STR_MAX + 1], err[ERR_LEN] = "";
	int rc = image_ref_normalise(in, out, sizeof out, err);
	if (rc)
		fprintf(stderr, "  %s: %s\n", in, err);
	CHECK_EQ_INT(rc, 0);
	CHECK_STR(out, want);
}

static void refused(const char *in, const char *needle)
{
	struct image_ref r;
	char err[ERR_LEN] = "";
	CHECK_EQ_INT(image_ref_parse(in, &r, err), E_INVAL);
	if (!strstr(err, needle))
		fprintf(stderr, "  %s: \"%s\" lacks \"%s\"\n", in, err, needle);
	CHECK(strstr(err, needle) != NULL);
}

UNIT(ref_normalises_as_docker_does)
{
	canon("nginx", "docker.io/library/nginx:latest");
	canon("nginx:1.27", "docker.io/library/nginx:1.27");
	canon("library/nginx:1.27", "docker.io/library/nginx:1.27");
	canon("docker.io/nginx", "docker.io/library/nginx:latest");
	canon("index.docker.io/library/nginx:latest", "docker.io/library/nginx:latest");
	canon("bitnami/redis:7", "docker.io/bitnami/redis:7");
	canon("ghcr.io/org/app:tag", "ghcr.io/org/app:tag");
	canon("localhost/app", "localhost/app:latest");
	canon("127.0.0.1:5000/team/app:v1.2-rc_3", "127.0.0.1:5000/team/app:v1.2-rc_3");
	canon("registry.example.com:443/a/b/c", "registry.example.com:443/a/b/c:latest");
	canon("my-app__x.y--z", "docker.io/library/my-app__x.y--z:latest");
	const char *d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char in[200], want[200];
	snprintf(in, sizeof in, "host:5000/app@%s", d);
	snprintf(want, sizeof want, "host:5000/app@%s", d);
	canon(in, want); /* a digest alone: no implicit tag */
	snprintf(in, sizeof in, "nginx:1.27@%s", d);
	snprintf(want, sizeof want, "docker.io/library/nginx:1.27@%s", d);
	canon(in, want);
}

UNIT(ref_familiar_and_repo_forms)
{
	struct image_ref r;
	char err[ERR_LEN], out[REF_STR_MAX + 1];
	CHECK_EQ_INT(image_ref_parse("docker.io/library/nginx", &r, err), 0);
	image_ref_familiar(&r, out, sizeof out);
	CHECK_STR(out, "nginx:latest");
	image_ref_repo(&r, out, sizeof out);
	CHECK_STR(out, "docker.io/library/nginx");
	CHECK_STR(r.domain, "docker.io");
	CHECK_STR(r.path, "library/nginx");
	CHECK_STR(r.tag, "latest");
	CHECK_STR(r.digest, "");
	CHECK_EQ_INT(image_ref_parse("grafana/grafana:11", &r, err), 0);
	image_ref_familiar(&r, out, sizeof out);
	CHECK_STR(out, "grafana/grafana:11");
	CHECK_EQ_INT(image_ref_parse("quay.io/prometheus/prometheus", &r, err), 0);
	image_ref_familiar(&r, out, sizeof out);
	CHECK_STR(out, "quay.io/prometheus/prometheus:latest");
	/* a truncated buffer still gets a terminated prefix */
	char small[8];
	CHECK_EQ_INT(image_ref_canonical(&r, small, sizeof small), 7);
	CHECK_STR(small, "quay.io");
}

UNIT(ref_refuses_bad_references)
{
	refused("", "empty");
	refused("Nginx", "lowercase");
	refused("nginx:", "tag");
	refused("nginx:bad/tag", "registry");
	refused("nginx:-x", "tag");
	refused("nginx@sha256:abc", "digest");
	refused("nginx@md5:0123", "digest");
	refused("host:99999999/app", "registry");
	refused("-bad.io/app", "registry");
	refused("ex.com/", "no repository");
	refused("a//b", "path part");
	refused("a/.b", "path part");
	refused("a/b_", "path part");
	refused("a___b", "path part");
	char big[400];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	refused(big, "longer");
	CHECK(image_digest_valid("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
	CHECK(!image_digest_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
}
