/* Names and descriptions for every code nio returns. */
#include <errno.h>
#include <string.h>

#include "nio/common.h"

const char *nio_strerror(int err)
{
    if (err > 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
#define NIO_ERR_MSG_(name, val, msg)                                                               \
    case -(val):                                                                                   \
        return msg;
        NIO_ERRNO_MAP(NIO_ERR_MSG_)
#undef NIO_ERR_MSG_
    default:
        break;
    }
    if (-err > 0 && -err < 4096) {
        const char *d = strerrordesc_np(-err);
        if (d != NULL)
            return d;
    }
    return "unknown error";
}

const char *nio_err_name(int err)
{
    if (err > 0)
        err = -err;
    switch (err) {
    case 0:
        return "OK";
#define NIO_ERR_NAME_(name, val, msg)                                                              \
    case -(val):                                                                                   \
        return #name;
        NIO_ERRNO_MAP(NIO_ERR_NAME_)
#undef NIO_ERR_NAME_
    default:
        break;
    }
    if (-err > 0 && -err < 4096) {
        const char *n = strerrorname_np(-err);
        if (n != NULL)
            return n;
    }
    return "UNKNOWN";
}

const char *nio_version(void)
{
    return NIO_VERSION_STRING;
}
