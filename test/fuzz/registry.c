/* What a registry answers (registry/http.h, registry/wire.h): the response head and body
 * read from a socket (Content-Length, chunked or until close), then what a pull reads of
 * it: a WWW-Authenticate challenge, the error of a failed answer, the manifest's media type
 * and, for an index, the manifest for this platform. The first byte says whether the
 * request was a HEAD. */
#include "common.h"
#include "codec/json.h"
#include "registry/http.h"
#include "registry/wire.h"
#include "util/err.h"
#include "util/mem.h"
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 100000)
		return 0;
	signal(SIGPIPE, SIG_IGN);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 0;
	int buf = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
	if (write(sv[0], data + 1, size - 1) != (ssize_t)(size - 1)) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	close(sv[0]);
	struct http_conn c;
	http_conn_fd(&c, sv[1], 1000);
	struct http_resp r;
	char err[ERR_LEN];
	bool head = data[0] & 1;
	if (!http_read_head(&c, &r, head, err)) {
		struct buf body = {0};
		if (!http_read_all(&c, &r, 1 << 20, &body, err)) {
			const char *auth = http_header(&r, "www-authenticate");
			struct regwire_challenge ch;
			if (auth)
				regwire_challenge_parse(auth, &ch, err);
			regwire_status_error(r.status, (const char *)body.data, body.len, http_header(&r, "retry-after"),
					     "fuzz", err);
			struct json *j;
			if (!json_parse((const char *)body.data, body.len, &j, err)) {
				char mt[128];
				regwire_media_type(http_header(&r, "content-type"), j, mt, sizeof mt);
				struct regwire_platform want;
				regwire_platform_host(&want);
				size_t idx;
				if (regwire_is_index(mt))
					regwire_pick(j, &want, &idx, err);
				json_free(j);
			}
		}
		buf_free(&body);
		http_resp_free(&r);
	}
	http_close(&c);
	return 0;
}
