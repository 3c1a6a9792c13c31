/*
 * fsutil - the file-system chores every module with files on disk needs.
 */
#ifndef FLEETSYM_FSUTIL_H
#define FLEETSYM_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* write() all of BUF, retrying on EINTR and short writes. 0 or -errno. */
int fsutil_write_all(int fd, const void *buf, size_t len) __attribute__((warn_unused_result));

/* mkdir -p PATH: parents with 0755, PATH itself with MODE; existing dirs are fine. */
int fsutil_mkdir_p(const char *path, mode_t mode) __attribute__((warn_unused_result));

#endif
