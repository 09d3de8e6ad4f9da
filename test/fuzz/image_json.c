/* The JSON documents of an image as a registry or an archive hands them over (codec/json.h):
 * an image config read for its runtime fields (image/image_load.h image_config_parse), an
 * index searched for this platform's manifest (registry/wire.h regwire_pick), a manifest's
 * media type. */
#include "common.h"
#include "codec/json.h"
#include "image/image_load.h"
#include "registry/wire.h"
#include "util/err.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json *j;
	char err[ERR_LEN];
	if (json_parse((const char *)data, size, &j, err))
		return 0;
	struct image_info im;
	memset(&im, 0, sizeof im);
	const struct json *diff_ids;
	image_config_parse(j, "fuzz", &im, &diff_ids, err);
	image_info_free(&im);
	char mt[128];
	regwire_media_type("application/json", j, mt, sizeof mt);
	struct regwire_platform want;
	regwire_platform_host(&want);
	size_t idx;
	regwire_pick(j, &want, &idx, err);
	regwire_platform_parse("linux/arm/v6", &want, err);
	regwire_pick(j, &want, &idx, err);
	json_free(j);
	return 0;
}
