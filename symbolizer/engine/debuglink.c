#include "symbolizer/engine/debuglink.h"

#include "lib/elfutil.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* The .gnu_debuglink name and CRC of ELF. */
static int read_link(Elf *elf, char *name, size_t len, uint32_t *crc)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return -ERR_BADELF;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *sn;
		Elf_Data *d;
		size_t n, off;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		sn = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!sn || strcmp(sn, ".gnu_debuglink"))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			return -ERR_BADELF;
		n = strnlen(d->d_buf, d->d_size);
		off = (n + 4) & ~(size_t)3;
		if (n == 0 || n >= len || off + 4 > d->d_size)
			return -ERR_BADELF;
		memcpy(name, d->d_buf, n);
		name[n] = '\0';
		memcpy(crc, (const char *)d->d_buf + off, 4);
		return 0;
	}
	return -ENOENT;
}

/* The CRC-32 of the file at PATH, as .gnu_debuglink records it. */
static int crc_of(const char *path, uint32_t *out)
{
	enum { CHUNK = 1 << 16 };
	unsigned char *buf = malloc(CHUNK);
	uLong crc = crc32(0, NULL, 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;
	ssize_t n;

	if (fd < 0 || !buf) {
		err = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	while ((n = read(fd, buf, CHUNK)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			crc = crc32(crc, buf, (uInt)n);
	if (n < 0)
		err = -EIO;
	else
		*out = (uint32_t)crc;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return err;
}

/* Is CAND a usable debug file: not the main file itself, readable, and (CHECK) its CRC. */
static int usable(const char *cand, const struct stat *main_st, int check, uint32_t crc)
{
	struct stat st;
	uint32_t c = 0;

	if (stat(cand, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	if (st.st_dev == main_st->st_dev && st.st_ino == main_st->st_ino)
		return 0;
	return !check || (crc_of(cand, &c) == 0 && c == crc);
}

static int try_dir(const char *dir, const char *name, const struct stat *main_st, int check,
		   uint32_t crc, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n > 0 && (size_t)n < len && usable(buf, main_st, check, crc);
}

int debuglink_find(const char *path, const char *debuginfo_path, char *buf, size_t len)
{
	char name[PATH_MAX], absmain[PATH_MAX], dir[PATH_MAX], elem[PATH_MAX], sub[2 * PATH_MAX];
	const char *p = debuginfo_path ? debuginfo_path : DEBUGLINK_DEFAULT_PATH, *slash;
	struct stat main_st;
	uint32_t crc = 0;
	Elf *elf = NULL;
	int fd = -1, err, check_default = 1;

	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	err = read_link(elf, name, sizeof(name), &crc);
	elfutil_close(fd, elf);
	if (err)
		return err == -ERR_BADELF ? -ENOENT : err;
	if (!realpath(path, absmain) || stat(absmain, &main_st) != 0)
		return -errno;
	slash = strrchr(absmain, '/');
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - absmain), absmain);
	if (*p == '+' || *p == '-')
		check_default = *p++ == '+';
	while (p) {
		const char *colon = strchr(p, ':');
		size_t n = colon ? (size_t)(colon - p) : strlen(p);
		int check = check_default;
		const char *e = elem;

		snprintf(elem, sizeof(elem), "%.*s", (int)n, p);
		p = colon ? colon + 1 : NULL;
		if (*e == '+' || *e == '-')
			check = *e++ == '+';
		if (!*e) {
			if (try_dir(dir, name, &main_st, check, crc, buf, len))
				return 0;
		} else if (*e != '/') {
			snprintf(sub, sizeof(sub), "%s/%s", dir, e);
			if (try_dir(sub, name, &main_st, check, crc, buf, len))
				return 0;
		} else {
			/* DIR/<file's dir>, then with its leading components dropped, then DIR */
			for (const char *d = dir; d; d = strchr(d + 1, '/')) {
				snprintf(sub, sizeof(sub), "%s%s", e, d);
				if (try_dir(sub, name, &main_st, check, crc, buf, len))
					return 0;
			}
			if (try_dir(e, name, &main_st, check, crc, buf, len))
				return 0;
		}
	}
	return -ENOENT;
}
