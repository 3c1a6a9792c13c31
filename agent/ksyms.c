/*
 * ksyms - an array of (address, name offset, module index) sorted by address over one string
 * buffer. CFI padding symbols (__pfx_*) are left out: they cover no executed code and would
 * double the table. A function's extent is up to the next symbol, capped at KSYMS_MAX_SIZE so
 * that addresses past the last symbol of a region stay unnamed.
 */
#include "agent/ksyms.h"

#include "lib/bsearch.h"
#include "lib/vec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KSYMS_MAX_SYMS	  (4u << 20)
#define KSYMS_MAX_MODULES 65535
#define KSYMS_MAX_SIZE	  (1u << 20)

struct ksym {
	uint64_t addr;
	uint32_t name;
	uint32_t module;
};

struct ksyms {
	struct ksym *syms;
	size_t n, cap;
	char *names;
	size_t nnames, capnames;
	uint32_t *modules; /* name offsets; module 0 is "" */
	size_t nmodules, capmodules;
	uint64_t modules_hash;
};

static int hash_modules(uint64_t *out)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	FILE *f = fopen("/proc/modules", "re");
	char buf[4096];
	size_t n;

	if (!f) {
		*out = 0; /* no modules support: nothing to watch */
		return errno == ENOENT ? 0 : -errno;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (size_t i = 0; i < n; i++)
			h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ULL;
	fclose(f);
	*out = h;
	return 0;
}

static int add_name(struct ksyms *k, const char *s, uint32_t *off)
{
	size_t len = strlen(s) + 1;
	int err;

	if (k->nnames + len > UINT32_MAX)
		return -E2BIG;
	err = vec_reserve((void **)&k->names, &k->capnames, k->nnames + len, 1);
	if (err)
		return err;
	memcpy(k->names + k->nnames, s, len);
	*off = (uint32_t)k->nnames;
	k->nnames += len;
	return 0;
}

static int module_index(struct ksyms *k, const char *mod, uint32_t *idx)
{
	uint32_t off;
	int err;

	/* kallsyms lists each module's symbols together: the last module is the likely one */
	if (k->nmodules && !strcmp(k->names + k->modules[k->nmodules - 1], mod)) {
		*idx = (uint32_t)k->nmodules - 1;
		return 0;
	}
	for (size_t i = 0; i < k->nmodules; i++)
		if (!strcmp(k->names + k->modules[i], mod)) {
			*idx = (uint32_t)i;
			return 0;
		}
	if (k->nmodules >= KSYMS_MAX_MODULES)
		return -E2BIG;
	err = add_name(k, mod, &off) ?: VEC_PUSH(k->modules, k->nmodules, k->capmodules, off);
	if (err)
		return err;
	*idx = (uint32_t)k->nmodules - 1;
	return 0;
}

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* "ADDR TYPE NAME [MODULE]" into its parts (pointing into LINE); false if malformed. */
static bool split(char *line, uint64_t *addr, char *type, char **name, char **mod)
{
	char *p;

	*addr = strtoull(line, &p, 16);
	if (p == line || p[0] != ' ' || !p[1] || p[2] != ' ')
		return false;
	*type = p[1];
	*name = p + 3;
	p = *name + strcspn(*name, " \t\n");
	*mod = NULL;
	if (*p == '\t' || *p == ' ') {
		*p++ = 0;
		p += strspn(p, " \t");
		if (*p == '[') {
			*mod = p + 1;
			(*mod)[strcspn(*mod, "]\n")] = 0;
		}
	} else {
		*p = 0;
	}
	return **name != 0;
}

static int parse(struct ksyms *k, FILE *f)
{
	char line[512], type, *name, *mod;
	uint64_t addr, nonzero = 0;
	uint32_t off, midx;
	int err;

	err = module_index(k, "", &midx);
	if (err)
		return err;
	/* by hand, not sscanf(): 100k+ lines at every (re)load */
	while (fgets(line, sizeof(line), f)) {
		if (!split(line, &addr, &type, &name, &mod))
			continue;
		nonzero |= addr;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (!strncmp(name, "__pfx_", 6))
			continue;
		if (k->n >= KSYMS_MAX_SYMS)
			return -E2BIG;
		err = module_index(k, mod ? mod : "", &midx) ?: add_name(k, name, &off);
		if (!err)
			err = VEC_PUSH(k->syms, k->n, k->cap,
				       ((struct ksym){.addr = addr, .name = off, .module = midx}));
		if (err)
			return err;
	}
	if (!nonzero)
		return -EPERM;
	qsort(k->syms, k->n, sizeof(*k->syms), cmp_ksym);
	return 0;
}

int ksyms_load(struct ksyms **out)
{
	struct ksyms *k;
	FILE *f = NULL;
	int err;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	err = hash_modules(&k->modules_hash);
	if (err)
		goto out;
	f = fopen("/proc/kallsyms", "re");
	if (!f) {
		err = -errno;
		goto out;
	}
	err = parse(k, f);
out:
	if (f)
		fclose(f);
	if (err) {
		ksyms_free(k);
		return err;
	}
	*out = k;
	return 0;
}

void ksyms_free(struct ksyms *k)
{
	if (!k)
		return;
	free(k->syms);
	free(k->names);
	free(k->modules);
	free(k);
}

int ksyms_refresh(struct ksyms **k)
{
	struct ksyms *nk;
	uint64_t h;
	int err;

	err = hash_modules(&h);
	if (err)
		return err;
	if (h == (*k)->modules_hash)
		return 0;
	err = ksyms_load(&nk);
	if (err)
		return err;
	ksyms_free(*k);
	*k = nk;
	return 1;
}

const char *ksyms_lookup(const struct ksyms *k, uint64_t addr, const char **module)
{
	long i = bsearch_last_le64(k->syms, k->n, sizeof(*k->syms), addr);

	if (i < 0 || addr - k->syms[i].addr >= KSYMS_MAX_SIZE)
		return NULL;
	*module = k->names + k->modules[k->syms[i].module];
	return k->names + k->syms[i].name;
}

size_t ksyms_count(const struct ksyms *k)
{
	return k->n;
}
