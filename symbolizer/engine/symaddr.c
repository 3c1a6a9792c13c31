#include "symbolizer/engine/symaddr.h"

#include "lib/buildid.h"
#include "lib/elfutil.h"
#include "lib/err.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Split TEXT into NAME (copied into NAME_BUF) and a signed offset. */
static int split(const char *text, char *name_buf, size_t len, int64_t *off)
{
	size_t n;
	const char *p;
	char *end;
	uint64_t v;

	while (*text == ' ' || *text == '\t')
		text++;
	n = strcspn(text, "+- \t\r\n");
	if (n == 0 || n >= len)
		return -ERR_BADINPUT;
	memcpy(name_buf, text, n);
	name_buf[n] = '\0';
	p = text + n;
	*off = 0;
	if (*p == '+' || *p == '-') {
		errno = 0;
		v = strtoull(p + 1, &end, 0);
		if (errno || end == p + 1)
			return -ERR_BADINPUT;
		*off = *p == '-' ? -(int64_t)v : (int64_t)v;
		p = end;
	}
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return *p ? -ERR_BADINPUT : 0;
}

/* Look NAME up in the symbol table of type TYPE. 0 and *VALUE, or -ENOENT. */
static int find_in(Elf *elf, Elf64_Word type, const char *name, uint64_t *value)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t count;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		count = sh.sh_size / sh.sh_entsize;
		for (size_t i = 1; i < count; i++) {
			GElf_Sym s;
			const char *sn;

			if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF)
				continue;
			sn = elf_strptr(elf, sh.sh_link, s.st_name);
			if (sn && !strcmp(sn, name)) {
				*value = s.st_value;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* NAME in the .symtab of the debug file of ELF (by build ID under DEBUG_DIRS), as libdwfl
 * prefers it over .dynsym. -ENOENT when found but NAME is not in it (libdwfl does not look
 * further then: versioned aliases are "NAME@@VER" there), -ENODEV when there is none. */
static int find_in_debug_file(Elf *elf, const char *const *debug_dirs, const char *name,
			      uint64_t *value)
{
	static const char *const def[] = {"/usr/lib/debug", NULL};
	char bid[BUILDID_HEX_MAX], path[PATH_MAX];
	int err = -ENODEV;

	if (buildid_from_elf(elf, bid) != 0 || !bid[0])
		return -ENODEV;
	for (const char *const *d = debug_dirs ? debug_dirs : def; *d && err == -ENODEV; d++) {
		Elf *delf = NULL;
		int fd = -1;

		if (buildid_debug_path(*d, bid, path, sizeof(path)) != 0 ||
		    elfutil_open(path, &fd, &delf) != 0)
			continue;
		err = find_in(delf, SHT_SYMTAB, name, value);
		elfutil_close(fd, delf);
	}
	return err;
}

int symaddr_resolve(const char *path, const char *const *debug_dirs, const char *text,
		    uint64_t *addr)
{
	char name[1024];
	int64_t off;
	uint64_t value = 0;
	Elf *elf = NULL;
	int fd = -1, err;

	err = split(text, name, sizeof(name), &off);
	if (err)
		return err;
	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	err = find_in(elf, SHT_SYMTAB, name, &value);
	if (err)
		err = find_in_debug_file(elf, debug_dirs, name, &value);
	if (err == -ENODEV)
		err = find_in(elf, SHT_DYNSYM, name, &value);
	if (!err)
		*addr = value + (uint64_t)off;
	elfutil_close(fd, elf);
	return err;
}
