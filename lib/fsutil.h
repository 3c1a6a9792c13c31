/*
 * fsutil - the file-system chores every module with files on disk needs.
 */
#ifndef FLEETSYM_FSUTIL_H
#define FLEETSYM_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* write() all of BUF, retrying on EINTR and short writes. 0 or -errno. */
int fsutil_write_all(int fd, const void *buf, size_t len) __attribute__((warn_unused_result));

/* Copy everything from IN (from its current offset) to OUT until end of file. 0 or -errno. */
int fsutil_copy_fd(int in, int out) __attribute__((warn_unused_result));

/* mkdir -p PATH: parents with 0755, PATH itself with MODE; existing dirs are fine. */
int fsutil_mkdir_p(const char *path, mode_t mode) __attribute__((warn_unused_result));

/* fsync the file PATH (its data and metadata). 0 or -errno. */
int fsutil_fsync_file(const char *path) __attribute__((warn_unused_result));

/* fsync the directory that holds PATH (a file or directory name), so that a rename or create
 * of PATH is on disk: without it a crash after rename() can bring back the old name.
 * 0 or -errno. */
int fsutil_fsync_parent(const char *path) __attribute__((warn_unused_result));

/* Replace PATH with LEN bytes of BUF all at once: write PATH.tmp.PID (mode MODE), fsync it, and
 * rename it over PATH and fsync the directory, so a reader sees the old file or the whole new one,
 * never a part; the temp file is removed on failure. 0 or -errno. */
int fsutil_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
    __attribute__((warn_unused_result));

/* Bytes an unprivileged writer may still use on the file system of PATH (statvfs f_bavail);
 * UINT64_MAX when PATH cannot be asked, so that a failed statvfs never refuses a write. */
uint64_t fsutil_free_bytes(const char *path);

#endif
