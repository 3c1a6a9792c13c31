/*
 * mapfile - safe opens of mapped files; see mapfile.h.
 */
#include "agent/mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

/* PATH (absolute, as the process sees it) inside ROOT, following no link. */
static int open_in_root(int root, const char *path)
{
	struct open_how how = {
	    .flags = OPEN_FLAGS,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS) /* before Linux 5.6: the last component at least */
		fd = openat(root, path + strspn(path, "/"), OPEN_FLAGS | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

static int check(int fd, const struct mapfile_id *m)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	if (m->ino && (st.st_ino != m->ino || major(st.st_dev) != m->dev_major ||
		       minor(st.st_dev) != m->dev_minor))
		return -ESTALE;
	return 0;
}

int mapfile_open_path(uint32_t pid, const char *path)
{
	char root_path[64];
	struct stat st;
	int root, fd;

	snprintf(root_path, sizeof(root_path), "/proc/%" PRIu32 "/root", pid);
	root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	fd = open_in_root(root, path);
	close(root);
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -ENODEV;
	}
	return fd;
}

int mapfile_open(uint32_t pid, const struct mapfile_id *m)
{
	char path[96];
	size_t len = m->path ? strlen(m->path) : 0;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/map_files/%" PRIx64 "-%" PRIx64, pid,
		 m->start, m->end);
	fd = open(path, OPEN_FLAGS);
	if (fd < 0) {
		if (!len || m->path[0] != '/' ||
		    (len > 10 && !strcmp(m->path + len - 10, " (deleted)")))
			return -ENOENT; /* nothing to resolve, or the path now names another file */
		fd = mapfile_open_path(pid, m->path);
		if (fd < 0)
			return fd;
	}
	err = check(fd, m);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}
