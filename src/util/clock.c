#include "util/clock.h"
#include "util/mem.h"

static uint64_t sys_mono(void *data)
{
	(void)data;
	return now_ms();
}

static uint64_t sys_wall(void *data)
{
	(void)data;
	return wall_ms();
}

const struct clock clock_system = {.mono = sys_mono, .wall = sys_wall, .data = NULL};
