#include "util/err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int errf(char *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, ERR_LEN, fmt, ap);
		va_end(ap);
	}
	return code;
}

int errwrap(char *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	char prefix[ERR_LEN], old[ERR_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	snprintf(old, sizeof old, "%s", err);
	snprintf(err, ERR_LEN, "%s: %s", prefix, old);
	return code;
}

const char *err_name(int code)
{
	switch (code) {
	case E_OK: return "ok";
	case E_INVAL: return "invalid";
	case E_NOTFOUND: return "not found";
	case E_EXISTS: return "exists";
	case E_IO: return "i/o error";
	case E_AUTH: return "authentication failed";
	case E_NOLEADER: return "no leader";
	case E_BUSY: return "busy";
	case E_TIMEOUT: return "timeout";
	case E_UNSUPP: return "unsupported";
	case E_STATE: return "illegal state change";
	case E_NOSPACE: return "low on disk space";
	default: return "failed";
	}
}
