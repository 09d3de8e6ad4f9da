#include "state/cmd.h"


#define CMD_FIELDS_(ID, low, nm, fn) \
	static const struct fl_field low##_fields_[] = {CMDB_##low(FL_FIELD_, struct cmd_##low)};
CMD_TYPES(CMD_FIELDS_)

#define CMD_TYPE_(ID, low, nm, fn) [CMD_##ID] = {nm, low##_fields_, sizeof low##_fields_ / sizeof low##_fields_[0]},
const struct cmd_type cmd_types[CMD__COUNT] = {CMD_TYPES(CMD_TYPE_)};

int cmd_lookup(const msgpack_object *name, enum cmd *t)
{
	int i = mp_str_find(name, cmd_types, CMD__COUNT, sizeof cmd_types[0]);
	if (i >= 0)
		*t = (enum cmd)i;
	return i < 0 ? -1 : 0;
}

int cmd_check(enum cmd t, const msgpack_object *body, char *err)
{
	return fl_decode(cmd_types[t].name, cmd_types[t].fields, cmd_types[t].nfields, body, 0, NULL, err);
}

void cmd_body(struct mpw *w, enum cmd t, const void *body)
{
	mpw_map_begin(w);
	fl_encode(w, cmd_types[t].fields, cmd_types[t].nfields, body);
	mpw_map_end(w);
}
