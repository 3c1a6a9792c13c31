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

struct symaddr {
	int fd, dfd;
	Elf *elf;
	Elf *delf; /* its debug file by build ID under the debug dirs, or NULL */
};

/* Call FN on each defined symbol of the table of type TYPE in ELF, with its name; stop when it
 * returns nonzero. 1 when the file has such a table. */
static int each_sym(Elf *elf, Elf64_Word type,
		    int (*fn)(void *ctx, const GElf_Sym *s, const char *name), void *ctx)
{
	Elf_Scn *scn = NULL;
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
		if (!fn)
			return 1;
		count = sh.sh_size / sh.sh_entsize;
		for (size_t i = 1; i < count; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
				continue;
			n = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (n && fn(ctx, &sym, n))
				return 1;
		}
	}
	return have;
}

int symaddr_open(const char *path, const char *const *debug_dirs, struct symaddr **out)
{
	static const char *const def[] = {"/usr/lib/debug", NULL};
	char bid[BUILDID_HEX_MAX], dpath[PATH_MAX];
	struct symaddr *sa = calloc(1, sizeof(*sa));
	int err;

	*out = NULL;
	if (!sa)
		return -ENOMEM;
	sa->dfd = -1;
	err = elfutil_open(path, &sa->fd, &sa->elf);
	if (err) {
		free(sa);
		return err;
	}
	if (buildid_from_elf(sa->elf, bid) == 0 && bid[0])
		for (const char *const *d = debug_dirs ? debug_dirs : def; *d && !sa->delf; d++)
			if (buildid_debug_path(*d, bid, dpath, sizeof(dpath)) != 0 ||
			    elfutil_open(dpath, &sa->dfd, &sa->delf) != 0)
				sa->delf = NULL, sa->dfd = -1;
	*out = sa;
	return 0;
}

void symaddr_close(struct symaddr *sa)
{
	if (!sa)
		return;
	elfutil_close(sa->dfd, sa->delf);
	elfutil_close(sa->fd, sa->elf);
	free(sa);
}

struct by_name {
	const char *name;
	uint64_t value;
	int found;
};

static int match_name(void *ctx, const GElf_Sym *s, const char *name)
{
	struct by_name *q = ctx;

	if (strcmp(name, q->name) != 0)
		return 0;
	q->value = s->st_value;
	q->found = 1;
	return 1;
}

int symaddr_resolve(const struct symaddr *sa, const char *text, uint64_t *addr)
{
	char name[1024];
	struct by_name q = {name, 0, 0};
	int64_t off;
	int err = split(text, name, sizeof(name), &off);

	if (err)
		return err;
	/* the file's .symtab; failing that its debug file's, or with none its .dynsym (a name
	 * missing from the debug file's table is not looked for further: versioned aliases are
	 * "NAME@@VER" there) */
	if (!each_sym(sa->elf, SHT_SYMTAB, match_name, &q) || !q.found) {
		if (sa->delf)
			each_sym(sa->delf, SHT_SYMTAB, match_name, &q);
		else
			each_sym(sa->elf, SHT_DYNSYM, match_name, &q);
	}
	if (!q.found)
		return -ENOENT;
	*addr = q.value + (uint64_t)off;
	return 0;
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

/* The allocated section of ELF that holds ADDR, else one that ends at ADDR (libdwfl names the
 * byte just past a section by that section's symbols and name), or NULL. */
static Elf_Scn *section_at(Elf *elf, uint64_t addr)
{
	Elf_Scn *scn = NULL, *ends_here = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) || addr < sh.sh_addr)
			continue;
		if (addr - sh.sh_addr < sh.sh_size)
			return scn;
		if (addr - sh.sh_addr == sh.sh_size && !ends_here)
			ends_here = scn;
	}
	return ends_here;
}

/* libdwfl's choice for ADDR: a sized symbol that covers it, else the nearest unsized one below
 * it in the same section, provided no sized symbol starts between them. */
struct covering {
	uint64_t addr;
	size_t shndx;		   /* the section of ADDR (0: none) */
	uint64_t next_sized_below; /* highest start of a sized symbol below ADDR */
	struct best sized, unsized;
};

static int cover(void *ctx, const GElf_Sym *s, const char *name)
{
	struct covering *c = ctx;
	struct best *into;
	int t = GELF_ST_TYPE(s->st_info);

	if (s->st_shndx == SHN_ABS || c->addr < s->st_value || t == STT_SECTION || t == STT_FILE ||
	    t == STT_TLS || !*name)
		return 0;
	if (s->st_size) {
		if (s->st_value > c->next_sized_below)
			c->next_sized_below = s->st_value;
		if (c->addr - s->st_value >= s->st_size)
			return 0;
		into = &c->sized;
	} else {
		if (s->st_shndx != c->shndx)
			return 0;
		into = &c->unsized;
	}
	if (!into->found || better(s, &into->sym))
		*into = (struct best){*s, name, 1};
	return 0;
}

/* For an ET_DYN file whose module (libdwfl's: from the first PT_LOAD's page to the end of the
 * last) holds ADDR: 1 and the module's start in *LOW. 0 otherwise. */
static int dyn_module_start(Elf *elf, uint64_t addr, uint64_t *low)
{
	GElf_Ehdr eh;
	size_t phnum;
	int first = 1;
	uint64_t high = 0;

	if (!gelf_getehdr(elf, &eh) || eh.e_type != ET_DYN || elf_getphdrnum(elf, &phnum) != 0)
		return 0;
	*low = 0;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (first)
			*low = ph.p_align ? ph.p_vaddr & -ph.p_align : ph.p_vaddr, first = 0;
		high = ph.p_vaddr + ph.p_memsz;
	}
	return !first && addr >= *low && addr < high;
}

int symaddr_describe(const struct symaddr *sa, uint64_t addr, int with_section, char *buf,
		     size_t len)
{
	Elf_Scn *scn = section_at(sa->elf, addr);
	struct covering c = {.addr = addr, .shndx = scn ? elf_ndxscn(scn) : 0};
	const struct best *b;
	size_t shstrndx;
	GElf_Shdr sh;

	/* libdwfl's one table: the file's .symtab, else its debug file's, else its .dynsym */
	if (!each_sym(sa->elf, SHT_SYMTAB, cover, &c) &&
	    !(sa->delf && each_sym(sa->delf, SHT_SYMTAB, cover, &c)))
		each_sym(sa->elf, SHT_DYNSYM, cover, &c);
	b = c.sized.found						      ? &c.sized
	    : c.unsized.found && c.unsized.sym.st_value >= c.next_sized_below ? &c.unsized
									      : NULL;
	if (!b) {
		uint64_t low;

		/* libdwfl's section-relative fallback: an ET_DYN file is one relocation base,
		 * named "", relative to the module's start; an ET_EXEC has none */
		if (dyn_module_start(sa->elf, addr, &low))
			snprintf(buf, len, "()+%#" PRIx64, addr - low);
		else
			snprintf(buf, len, "??");
		return -ENOENT;
	}
	if (addr == b->sym.st_value)
		snprintf(buf, len, "%s", b->name);
	else
		snprintf(buf, len, "%s+0x%" PRIx64, b->name, addr - b->sym.st_value);
	if (with_section && scn && gelf_getshdr(scn, &sh) &&
	    elf_getshdrstrndx(sa->elf, &shstrndx) == 0) {
		const char *sec = elf_strptr(sa->elf, shstrndx, sh.sh_name);
		size_t n = strlen(buf);

		if (sec)
			snprintf(buf + n, len - n, " (%s)", sec);
	}
	return 0;
}
