/* Errors: functions return 0 or a negative code and fill a caller-owned message buffer
 * with a lowercase sentence that says what failed (and, where useful, what to do). */
#ifndef ORCH_ERR_H
#define ORCH_ERR_H
#include <stddef.h>

#define ERR_LEN 256

enum {
	E_OK = 0,
	E_FAIL = -1,     /* generic failure, see message */
	E_INVAL = -2,    /* bad input from a user, a file or the network */
	E_NOTFOUND = -3,
	E_EXISTS = -4,
	E_IO = -5,
	E_AUTH = -6,     /* token or handshake rejected */
	E_NOLEADER = -7, /* no leader known right now: retry */
	E_BUSY = -8,
	E_TIMEOUT = -9,
	E_UNSUPP = -10,
	E_STATE = -11,   /* a move its object's state table does not allow (state/lifecycle.h) */
	E_NOSPACE = -12, /* a node is low on disk space: writes refused (node/diskwatch.h) */
};

/* Formats into err (ERR_LEN bytes) and returns code. err may be NULL. */
int errf(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes an existing message: "ctx: old message". */
int errwrap(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *err_name(int code);

#endif
