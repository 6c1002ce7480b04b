/*
 * Error codes shared by every chiploc module. Functions return 0 on success
 * and one of these negative codes otherwise; the code becomes text only where
 * it is logged or printed (cl_strerror). A function that can say more than
 * its code writes a message into the caller's (err, errlen) buffer with
 * cl_err_set, the one formatter every module shares.
 */
#ifndef CL_ERR_H
#define CL_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum {
  CL_OK = 0,
  CL_EINVAL = -1,     /* bad argument from the caller */
  CL_EMALFORMED = -2, /* input that does not parse or has wrong lengths */
  CL_ETOOBIG = -3,    /* input above a configured or protocol limit */
  CL_EBADSIG = -4,    /* a signature did not verify */
  CL_EIO = -5,        /* file or socket error; errno may say more */
  CL_EDB = -6,        /* database error */
  CL_ENOMEM = -7,     /* allocation failed */
  CL_EEXIST = -8,     /* refusing to overwrite something that exists */
  CL_ENOTFOUND = -9,  /* looked-up item does not exist */
  CL_EVERSION = -10,  /* unsupported format or protocol version */
  CL_EAGAIN = -11,    /* not complete yet; call again with more input */
  CL_EPERM = -12,     /* permission denied (file mode, database grant) */
  CL_EUNKNOWNMSG = -13, /* a well-formed frame of a message type we do not know */
  CL_ESUITE = -14,    /* a cipher suite this build does not implement */
};

/* Returns a static, human-readable name for a CL_* code. */
const char *cl_strerror(int code);

/*
 * Formats an error message into the caller's buffer err of errlen bytes, the
 * (char *err, size_t errlen) pair most chiploc functions take. The text is
 * cut to errlen - 1 bytes and always NUL-terminated. err == NULL or
 * errlen == 0 means the caller wants no text: nothing is written, so a
 * function may pass its own err argument through without checking it.
 * cl_err_vset is the same for a va_list, for wrappers that add a prefix.
 */
void cl_err_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cl_err_vset(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
