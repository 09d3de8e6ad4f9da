#include "node/imgrec.h"
#include "image/image_load.h"
#include "util/log.h"
#include <stdio.h>
#include <string.h>

static void recorded(void *data, int rc, const struct apply_res *res)
{
	(void)data;
	if (rc && rc != E_EXISTS)
		TRACE("image", "record", "not recorded: %s", res->msg);
}

int imgrec_submit(const struct host *h, const uint8_t *info, size_t len, char *err)
{
	struct mpr r;
	struct image_info im;
	if (mpr_decode(&r, info, len))
		return errf(err, E_INVAL, "pulled image: info is not msgpack");
	int rc = image_info_decode(r.root, &im, err);
	mpr_free(&r);
	if (rc)
		return rc;
	struct cmd_image_put b = {.name = im.name, .digest = im.digest, .size = im.size,
				  .info = {.raw = info, .len = len}, .loaded_at = clock_wall(h->clock),
				  .node_id = h->ident->id};
	struct mpw w;
	mpw_init(&w);
	cmd_body(&w, CMD_IMAGE_PUT, &b);
	rc = host_submit(h, CMD_IMAGE_PUT, w.sb.data, w.sb.size, recorded, NULL, err);
	mpw_free(&w);
	image_info_free(&im);
	return rc;
}
