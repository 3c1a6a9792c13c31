/*
 * err - messages for fleetsym's error codes; plain errno values go to strerror().
 */
#include "lib/err.h"

#include <string.h>

static const char *const err_msgs[] = {
#define ERR_MSG_(name, msg) msg,
    ERR_LIST(ERR_MSG_)
#undef ERR_MSG_
};

const char *err_str(int err)
{
	if (err < 0)
		err = -err;
	if (err > ERR_BASE && err < ERR_LAST_)
		return err_msgs[err - ERR_BASE - 1];
	return strerror(err);
}
