/*
 * cgnames - an smap from the decimal id to the path (num = 1) or to a negative entry (num = the
 * time after which to try again).
 */
#include "agent/cgnames.h"

#include "agent/smap.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CGNAMES_MAX 8192

struct cgnames {
	struct smap *ids;
	char root[PATH_MAX];
};

int cgnames_find_root(char *buf, size_t len)
{
	struct mntent *me;
	int err = -ENOENT;
	FILE *f;

	f = setmntent("/proc/self/mounts", "re");
	if (!f)
		return -errno;
	while ((me = getmntent(f)))
		if (!strcmp(me->mnt_type, "cgroup2")) {
			snprintf(buf, len, "%s", me->mnt_dir);
			err = 0;
			break;
		}
	endmntent(f);
	return err;
}

int cgnames_new(struct cgnames **out)
{
	struct cgnames *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	err = smap_new(CGNAMES_MAX, &c->ids);
	if (err) {
		free(c);
		return err;
	}
	if (cgnames_find_root(c->root, sizeof(c->root)))
		c->root[0] = 0;
	*out = c;
	return 0;
}

void cgnames_free(struct cgnames *c)
{
	if (!c)
		return;
	smap_free(c->ids);
	free(c);
}

const char *cgnames_root(const struct cgnames *c)
{
	return c->root;
}

/* PID's cgroup v2 path ("0::/path" in /proc/PID/cgroup) into BUF. */
static int pid_cgroup(uint32_t pid, char *buf, size_t len)
{
	char path[64], line[PATH_MAX + 16];
	int err = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			size_t n = strcspn(line + 3, "\n");

			err = n < len ? 0 : -ENAMETOOLONG;
			if (!err) {
				memcpy(buf, line + 3, n);
				buf[n] = 0;
			}
			break;
		}
	fclose(f);
	return err;
}

static void put(struct cgnames *c, const char *key, uint64_t num, const char *str)
{
	if (smap_put(c->ids, key, num, str) == -E2BIG) {
		smap_clear(c->ids);
		(void)!smap_put(c->ids, key, num, str);
	}
}

const char *cgnames_name(struct cgnames *c, uint64_t id, uint32_t pid, uint64_t now_ns)
{
	char key[24], rel[PATH_MAX], full[2 * PATH_MAX];
	const struct smap_ent *e;
	struct stat st;

	if (!c->root[0] || !id)
		return NULL;
	snprintf(key, sizeof(key), "%" PRIu64, id);
	e = smap_get(c->ids, key);
	if (e && e->str)
		return e->str;
	if (e && now_ns < e->num)
		return NULL;
	if (pid_cgroup(pid, rel, sizeof(rel)) == 0) {
		snprintf(full, sizeof(full), "%s%s", c->root, rel);
		if (stat(full, &st) == 0 && (uint64_t)st.st_ino == id) {
			put(c, key, 1, rel);
			e = smap_get(c->ids, key);
			return e ? e->str : NULL;
		}
	}
	put(c, key, now_ns + CGNAMES_RETRY_NS, NULL);
	return NULL;
}
