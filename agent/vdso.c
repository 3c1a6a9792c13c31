/*
 * vdso - a sorted array of (offset, size, name) from the vDSO image's .dynsym; see vdso.h.
 * The image is read in place, every offset checked against the mapping's size.
 */
#include "agent/vdso.h"

#include "lib/bsearch.h"
#include "lib/err.h"

#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VDSO_MAX_SYMS 4096

struct vsym {
	uint64_t off, size;
	const char *name; /* in the image's .dynstr */
	int global;
};

struct vdso {
	struct vsym *s;
	size_t n;
};

int vdso_self_range(uint64_t *start, uint64_t *end)
{
	char line[512];
	unsigned long s, e;
	FILE *f = fopen("/proc/self/maps", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (err && fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2 && e > s) {
			*start = s;
			*end = e;
			err = 0;
		}
	fclose(f);
	return err;
}

static int by_off(const void *a, const void *b)
{
	const struct vsym *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	if (x->global != y->global) /* __vdso_clock_gettime before its weak alias */
		return y->global - x->global;
	return (int)strlen(x->name) - (int)strlen(y->name);
}

/* The symbols of the 64-bit image at P (SIZE bytes) into V. */
static int read_syms(const uint8_t *p, size_t size, struct vdso *v)
{
	const Elf64_Ehdr *eh = (const void *)p;
	const Elf64_Shdr *sh, *sym = NULL, *str;
	uint64_t lo = UINT64_MAX, base = UINT64_MAX; /* lowest PT_LOAD; its image's first byte */

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(*sh) ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_shoff > size ||
	    eh->e_shnum > (size - eh->e_shoff) / sizeof(*sh) || eh->e_phoff > size ||
	    eh->e_phnum > (size - eh->e_phoff) / sizeof(Elf64_Phdr))
		return -ERR_BADELF;
	for (size_t i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const void *)(p + eh->e_phoff + i * sizeof(*ph));

		if (ph->p_type == PT_LOAD && ph->p_vaddr < lo && ph->p_offset <= ph->p_vaddr) {
			lo = ph->p_vaddr;
			base = ph->p_vaddr - ph->p_offset;
		}
	}
	sh = (const void *)(p + eh->e_shoff);
	for (size_t i = 0; i < eh->e_shnum && !sym; i++)
		if (sh[i].sh_type == SHT_DYNSYM)
			sym = &sh[i];
	if (!sym || base == UINT64_MAX || sym->sh_link >= eh->e_shnum ||
	    sym->sh_entsize != sizeof(Elf64_Sym))
		return -ERR_BADELF;
	str = &sh[sym->sh_link];
	if (sym->sh_offset > size || sym->sh_size > size - sym->sh_offset ||
	    str->sh_offset > size || str->sh_size > size - str->sh_offset || !str->sh_size ||
	    p[str->sh_offset + str->sh_size - 1] != 0)
		return -ERR_BADELF;
	v->s = calloc(sym->sh_size / sizeof(Elf64_Sym) + 1, sizeof(*v->s));
	if (!v->s)
		return -ENOMEM;
	for (size_t i = 0; i < sym->sh_size / sizeof(Elf64_Sym) && v->n < VDSO_MAX_SYMS; i++) {
		const Elf64_Sym *s = (const void *)(p + sym->sh_offset + i * sizeof(*s));

		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || !s->st_size || s->st_value < base ||
		    s->st_name >= str->sh_size || s->st_value - base >= size)
			continue;
		v->s[v->n++] = (struct vsym){s->st_value - base, s->st_size,
					     (const char *)p + str->sh_offset + s->st_name,
					     ELF64_ST_BIND(s->st_info) == STB_GLOBAL};
	}
	qsort(v->s, v->n, sizeof(*v->s), by_off);
	return v->n ? 0 : -ERR_BADELF;
}

int vdso_open(struct vdso **out)
{
	struct vdso *v;
	uint64_t s, e;
	int err;

	*out = NULL;
	err = vdso_self_range(&s, &e);
	if (err)
		return err;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	err = read_syms((const uint8_t *)(uintptr_t)s, e - s, v);
	if (err) {
		vdso_free(v);
		return err;
	}
	*out = v;
	return 0;
}

const char *vdso_lookup(const struct vdso *v, uint64_t off)
{
	long k = v ? bsearch_last_le(v->s, v->n, sizeof(*v->s), offsetof(struct vsym, off),
				     sizeof(v->s->off), off)
		   : -1;

	while (k > 0 && v->s[k - 1].off == v->s[k].off) /* aliases: the preferred sorts first */
		k--;
	if (k < 0 || off - v->s[k].off >= v->s[k].size)
		return NULL;
	return v->s[k].name;
}

size_t vdso_count(const struct vdso *v)
{
	return v ? v->n : 0;
}

void vdso_free(struct vdso *v)
{
	if (!v)
		return;
	free(v->s);
	free(v);
}
