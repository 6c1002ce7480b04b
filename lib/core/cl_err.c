/* Text for the CL_* error codes, and the one formatter of error messages. */
#include "cl_err.h"

#include <stdio.h>

const char *cl_strerror(int code) {
  switch (code) {
  case CL_OK: return "ok";
  case CL_EINVAL: return "invalid argument";
  case CL_EMALFORMED: return "malformed input";
  case CL_ETOOBIG: return "too large";
  case CL_EBADSIG: return "bad signature";
  case CL_EIO: return "I/O error";
  case CL_EDB: return "database error";
  case CL_ENOMEM: return "out of memory";
  case CL_EEXIST: return "already exists";
  case CL_ENOTFOUND: return "not found";
  case CL_EVERSION: return "unsupported version";
  case CL_EAGAIN: return "incomplete";
  case CL_EPERM: return "permission denied";
  case CL_EUNKNOWNMSG: return "unknown message type";
  case CL_ESUITE: return "unknown cipher suite";
  default: return "unknown error";
  }
}

void cl_err_vset(char *err, size_t errlen, const char *fmt, va_list ap) {
  if (!err || errlen == 0) return;
  vsnprintf(err, errlen, fmt, ap);
}

void cl_err_set(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cl_err_vset(err, errlen, fmt, ap);
  va_end(ap);
}
