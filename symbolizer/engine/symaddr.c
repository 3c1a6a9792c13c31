#include "symbolizer/engine/symaddr.h"

#include "lib/buildid.h"
#include "lib/elfutil.h"
#include "lib/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
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

struct best {
	GElf_Sym sym;
	const char *name;
	int found;
};

static int bind_rank(const GElf_Sym *s)
{
	int b = GELF_ST_BIND(s->st_info);
	return b == STB_GLOBAL ? 2 : b == STB_WEAK ? 1 : 0;
}

/* Is A a better answer than B (both cover the address)? */
static int better(const GElf_Sym *a, const GElf_Sym *b)
{
	if (a->st_value != b->st_value)
		return a->st_value > b->st_value;
	if ((a->st_size != 0) != (b->st_size != 0))
		return a->st_size != 0;
	return bind_rank(a) > bind_rank(b);
}

/* Index of the allocated section of ELF that holds ADDR, 0 when none. */
static size_t section_index(Elf *elf, uint64_t addr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_ALLOC) && addr >= sh.sh_addr &&
		    addr - sh.sh_addr < sh.sh_size)
			return elf_ndxscn(scn);
	}
	return 0;
}

/* The best symbol of table TYPE in ELF for ADDR into *B (libdwfl's choice: a sized symbol
 * that covers ADDR, else the nearest unsized one below it in the same section, provided no
 * sized symbol starts between them); 1 when the table exists. */
static int covering(Elf *elf, Elf64_Word type, uint64_t addr, struct best *b)
{
	Elf_Scn *scn = NULL;
	struct best unsized = {0};
	uint64_t next_sized_below = 0; /* highest start of a sized symbol below ADDR */
	size_t shndx = section_index(elf, addr);
	int have = 0;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t count;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		have = 1;
		count = sh.sh_size / sh.sh_entsize;
		for (size_t i = 1; i < count; i++) {
			GElf_Sym s;
			struct best *into;
			const char *n;
			int t;

			if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF ||
			    s.st_shndx == SHN_ABS || addr < s.st_value)
				continue;
			t = GELF_ST_TYPE(s.st_info);
			if (t == STT_SECTION || t == STT_FILE || t == STT_TLS)
				continue;
			if (s.st_size) {
				if (s.st_value > next_sized_below)
					next_sized_below = s.st_value;
				if (addr - s.st_value >= s.st_size)
					continue;
				into = b;
			} else {
				if (s.st_shndx != shndx)
					continue;
				into = &unsized;
			}
			if (into->found && !better(&s, &into->sym))
				continue;
			n = elf_strptr(elf, sh.sh_link, s.st_name);
			if (!n || !*n)
				continue;
			into->sym = s;
			into->name = n;
			into->found = 1;
		}
	}
	if (!b->found && unsized.found && unsized.sym.st_value >= next_sized_below)
		*b = unsized;
	return have;
}

static const char *section_of(Elf *elf, uint64_t addr)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC))
			continue;
		if (addr >= sh.sh_addr && addr - sh.sh_addr < sh.sh_size)
			return elf_strptr(elf, shstrndx, sh.sh_name);
	}
	return NULL;
}

int symaddr_describe(const char *path, const char *const *debug_dirs, uint64_t addr,
		     int with_section, char *buf, size_t len)
{
	static const char *const def[] = {"/usr/lib/debug", NULL};
	struct best b = {0};
	Elf *elf = NULL, *delf = NULL;
	int fd = -1, dfd = -1, err, have;
	const char *sec;

	snprintf(buf, len, "??");
	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	have = covering(elf, SHT_SYMTAB, addr, &b);
	if (!have) {
		char bid[BUILDID_HEX_MAX], dpath[PATH_MAX];

		if (buildid_from_elf(elf, bid) == 0 && bid[0]) {
			for (const char *const *d = debug_dirs ? debug_dirs : def; *d && !delf;
			     d++) {
				if (buildid_debug_path(*d, bid, dpath, sizeof(dpath)) != 0 ||
				    elfutil_open(dpath, &dfd, &delf) != 0)
					delf = NULL, dfd = -1;
			}
		}
		if (delf)
			have = covering(delf, SHT_SYMTAB, addr, &b);
	}
	if (!have)
		covering(elf, SHT_DYNSYM, addr, &b);
	err = b.found ? 0 : -ENOENT;
	if (b.found && addr == b.sym.st_value)
		snprintf(buf, len, "%s", b.name);
	else if (b.found)
		snprintf(buf, len, "%s+0x%" PRIx64, b.name, addr - b.sym.st_value);
	sec = with_section ? section_of(elf, addr) : NULL;
	if (sec) {
		size_t n = strlen(buf);

		snprintf(buf + n, len - n, " (%s)", sec);
	}
	elfutil_close(dfd, delf);
	elfutil_close(fd, elf);
	return err;
}
