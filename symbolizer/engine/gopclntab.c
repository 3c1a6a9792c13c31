/*
 * gopclntab - Go symbolization from .gopclntab and the inline trees; see gopclntab.h.
 *
 * The handle keeps the file mmap'd through libelf and a small array of the file's allocated
 * sections (address, size, bytes), so that an address the tables hold (the pclntab header's
 * neighbours, go:func.* data) becomes a checked pointer with one scan. Nothing per function is
 * copied: the function table is checked once at open (it must fit and be sorted, which makes the
 * binary search well defined) and every other record is checked when a lookup reads it.
 *
 * All reads go through rd32()/rdptr() on a (base, size, offset) triple that fails instead of
 * reading past the end; pc-value decoding stops at the end of pctab and at a varint longer than
 * five bytes, so hostile bytes cost at most one pass over one table.
 */
#include "symbolizer/engine/gopclntab.h"

#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC_118 0xfffffff0u
#define MAGIC_120 0xfffffff1u

/* Caps on what the file claims. The go tool itself has ~20k functions; kubelet-size binaries
 * under 200k. */
#define MAX_FUNCS	 (1u << 24)
#define MAX_SECTIONS	 256
#define MAX_INLINE_DEPTH 256
/* Longest function or file name read: a hostile table without NULs costs one bounded scan. */
#define MAX_NAME (1u << 16)

#define PCDATA_INLTREEINDEX 2
#define FUNCDATA_INLTREE    3

struct gsect {
	uint64_t addr, size;
	const uint8_t *data;
	int writable;
};

/* A byte range of the file with its length: all reads go through one of these. */
struct span {
	const uint8_t *p;
	size_t n;
};

struct gopcln {
	int fd;
	Elf *elf;
	int version, big_endian, ptrsize, quantum;
	uint64_t tab_addr, text_start;
	struct span tab, funcnames, cutab, filetab, pctab, pcln;
	uint32_t nfunc;
	size_t func_hdr; /* size of _func before the pcdata offsets: 40 (1.18) or 44 (1.20) */
	size_t inl_size; /* one inlinedCall: 20 (1.18) or 16 (1.20) */
	uint64_t gofunc;
	int have_gofunc;
	struct gsect *sects;
	size_t nsects;
	char build_id[GOPCLN_BUILDID_MAX];
};

static int rd32(const struct gopcln *g, struct span s, uint64_t off, uint32_t *v)
{
	const uint8_t *p;

	if (off > s.n || s.n - off < 4)
		return -ERR_BADINPUT;
	p = s.p + off;
	*v = g->big_endian
		 ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
		 : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
	return 0;
}

static int rdptr(const struct gopcln *g, struct span s, uint64_t off, uint64_t *v)
{
	uint32_t a, b;
	int err;

	if (g->ptrsize == 4) {
		err = rd32(g, s, off, &a);
		*v = a;
		return err;
	}
	if ((err = rd32(g, s, off, &a)) < 0 || (err = rd32(g, s, off + 4, &b)) < 0)
		return err;
	*v = g->big_endian ? (uint64_t)a << 32 | b : (uint64_t)b << 32 | a;
	return 0;
}

/* The NUL-terminated string at OFF in S, or NULL when it does not end inside S within
 * MAX_NAME bytes. */
static const char *str_at(struct span s, uint64_t off)
{
	if (off >= s.n || !memchr(s.p + off, 0, s.n - off < MAX_NAME ? s.n - off : MAX_NAME))
		return NULL;
	return (const char *)s.p + off;
}

static struct span span_from(struct span s, uint64_t off)
{
	if (off > s.n)
		return (struct span){NULL, 0};
	return (struct span){s.p + off, s.n - off};
}

/* ---- sections ---- */

static const struct gsect *sect_for(const struct gopcln *g, uint64_t addr)
{
	for (size_t i = 0; i < g->nsects; i++)
		if (addr >= g->sects[i].addr && addr - g->sects[i].addr < g->sects[i].size)
			return &g->sects[i];
	return NULL;
}

/* The bytes from ADDR to the end of its section. */
static struct span span_at(const struct gopcln *g, uint64_t addr)
{
	const struct gsect *s = sect_for(g, addr);

	if (!s)
		return (struct span){NULL, 0};
	return (struct span){s->data + (addr - s->addr), (size_t)(s->size - (addr - s->addr))};
}

/* Record the allocated sections with contents; return the index of the pclntab among them (the
 * section named .gopclntab, or the one holding runtime.pcheader/runtime.pclntab), or -1. */
static int load_sections(struct gopcln *g, size_t shstrndx, uint64_t *text_addr)
{
	Elf_Scn *scn = NULL;
	int found = -1;

	*text_addr = 0;
	while ((scn = elf_nextscn(g->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC) ||
		    sh.sh_type == SHT_NOBITS || (sh.sh_flags & SHF_COMPRESSED) || !sh.sh_size)
			continue;
		name = elf_strptr(g->elf, shstrndx, sh.sh_name);
		d = elf_rawdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size != sh.sh_size)
			continue;
		if (g->nsects == MAX_SECTIONS)
			return -ERR_TOOBIG;
		if (name && strcmp(name, ".text") == 0)
			*text_addr = sh.sh_addr;
		if (name && (strcmp(name, ".gopclntab") == 0 ||
			     strcmp(name, ".data.rel.ro.gopclntab") == 0))
			found = (int)g->nsects;
		g->sects[g->nsects++] =
		    (struct gsect){sh.sh_addr, sh.sh_size, d->d_buf, !!(sh.sh_flags & SHF_WRITE)};
	}
	return found;
}

/* Without a .gopclntab section (other linkers, or section headers rewritten), the symbol table
 * may still name the header. */
static int find_by_symbol(struct gopcln *g, uint64_t *addr)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(g->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(d, (int)i, &sym))
				break;
			n = elf_strptr(g->elf, sh.sh_link, sym.st_name);
			if (n && (strcmp(n, "runtime.pcheader") == 0 ||
				  strcmp(n, "runtime.pclntab") == 0)) {
				*addr = sym.st_value;
				return 0;
			}
		}
	}
	return -ENODATA;
}

/* ---- header and function table ---- */

static int parse_header(struct gopcln *g, uint64_t text_addr)
{
	const uint8_t *p = g->tab.p;
	uint64_t nfunc, nfiles, text, off[5];
	struct span *dst[5] = {&g->funcnames, &g->cutab, &g->filetab, &g->pctab, &g->pcln};
	uint32_t magic;
	int err;

	if (g->tab.n < 8)
		return -ERR_BADINPUT;
	if (p[4] || p[5] || (p[6] != 1 && p[6] != 2 && p[6] != 4) || (p[7] != 4 && p[7] != 8))
		return -ENODATA;
	g->quantum = p[6];
	g->ptrsize = p[7];
	for (g->big_endian = 0; g->big_endian < 2; g->big_endian++) {
		if (rd32(g, g->tab, 0, &magic) == 0 && (magic == MAGIC_118 || magic == MAGIC_120))
			break;
	}
	if (g->big_endian == 2)
		return -ENODATA; /* older layouts (Go <= 1.17) or not a pclntab */
	g->version = magic == MAGIC_120 ? 120 : 118;
	g->func_hdr = g->version == 120 ? 44 : 40;
	g->inl_size = g->version == 120 ? 16 : 20;

	/* magic, pad, quantum, ptrsize; then nfunc, nfiles, textStart and five table offsets */
	if ((err = rdptr(g, g->tab, 8, &nfunc)) < 0 ||
	    (err = rdptr(g, g->tab, 8 + g->ptrsize, &nfiles)) < 0 ||
	    (err = rdptr(g, g->tab, 8 + 2 * g->ptrsize, &text)) < 0)
		return err;
	for (int i = 0; i < 5; i++) {
		if ((err = rdptr(g, g->tab, 8 + (uint64_t)(3 + i) * g->ptrsize, &off[i])) < 0)
			return err;
		if (off[i] >= g->tab.n)
			return -ERR_BADINPUT;
		*dst[i] = span_from(g->tab, off[i]);
	}
	if (nfunc > MAX_FUNCS)
		return -ERR_TOOBIG;
	g->nfunc = (uint32_t)nfunc;
	(void)nfiles;
	/* The header holds runtime.text, where Go's code starts: after the C start files when
	 * the linking was external, so not always at .text. A PIE's header may hold an
	 * unrelocated 0; then .text's start is the best guess (internal linking puts
	 * runtime.text first). */
	g->text_start = text ? text : text_addr;
	return 0;
}

/* functab: nfunc+1 pairs (entry offset, _func offset), entries nondecreasing, the last one the
 * end of the text. */
static int check_functab(struct gopcln *g)
{
	uint64_t need = ((uint64_t)g->nfunc + 1) * 8;
	uint32_t prev = 0, e;

	if (g->nfunc == 0 || need > g->pcln.n)
		return -ERR_BADINPUT;
	for (uint32_t i = 0; i <= g->nfunc; i++) {
		if (rd32(g, g->pcln, (uint64_t)i * 8, &e) < 0 || e < prev)
			return -ERR_BADINPUT;
		prev = e;
	}
	return 0;
}

/* ---- go:func.* through runtime.firstmoduledata ---- */

/* moduledata begins with the pclntab header's address followed by the slices funcnametab,
 * cutab, filetab, pctab, pclntable and ftab (pointer, len, cap each), findfunctab, minpc,
 * maxpc, text, etext, and after more pairs (one more, covctrs, from Go 1.20) rodata and gofunc.
 * The candidate is accepted only if its slices point where the header says the tables are and
 * its text equals the header's. */
static int check_moduledata(struct gopcln *g, struct span md)
{
	uint64_t v, hdr_text;
	size_t w = (size_t)g->ptrsize;
	size_t gofunc_word = g->version == 120 ? 40 : 38;
	const struct span *tabs[4] = {&g->funcnames, &g->cutab, &g->filetab, &g->pctab};

	for (int i = 0; i < 4; i++)
		if (rdptr(g, md, (1 + 3 * i) * w, &v) < 0 ||
		    v != g->tab_addr + (uint64_t)(tabs[i]->p - g->tab.p))
			return 0;
	if (rdptr(g, g->tab, 8 + 2 * w, &hdr_text) < 0 || rdptr(g, md, 22 * w, &v) < 0 ||
	    v != hdr_text)
		return 0;
	if (rdptr(g, md, gofunc_word * w, &v) < 0 || !sect_for(g, v))
		return 0;
	g->gofunc = v;
	g->have_gofunc = 1;
	return 1;
}

/* runtime.firstmoduledata is written by the runtime (the module list), so it lives in a
 * writable section (.noptrdata; .data.rel.ro in a PIE): only those are scanned, which keeps
 * the multi-megabyte code and read-only data of a large binary out of memory. */
static void find_gofunc(struct gopcln *g)
{
	size_t w = (size_t)g->ptrsize;

	for (size_t s = 0; s < g->nsects && !g->have_gofunc; s++) {
		struct span sp = {g->sects[s].data, (size_t)g->sects[s].size};

		if (!g->sects[s].writable)
			continue;

		for (size_t off = 0; off + w <= sp.n; off += w) {
			uint64_t v;

			if (rdptr(g, sp, off, &v) == 0 && v == g->tab_addr &&
			    check_moduledata(g, span_from(sp, off)))
				return;
		}
	}
	if (!g->have_gofunc)
		log_msg(FS_LOG_DEBUG, "gopclntab: no moduledata found: no inline frames");
}

/* ---- open/close ---- */

static void read_build_id(struct gopcln *g)
{
	if (gopcln_go_buildid(g->elf, g->build_id, sizeof(g->build_id)) < 0)
		g->build_id[0] = '\0';
}

int gopcln_open(const char *path, struct gopcln **out)
{
	struct gopcln *g;
	size_t shstrndx;
	uint64_t text_addr, addr;
	int err, idx;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->fd = -1;
	if ((err = elfutil_open(path, &g->fd, &g->elf)) < 0)
		goto out;
	g->sects = calloc(MAX_SECTIONS, sizeof(*g->sects));
	err = -ENOMEM;
	if (!g->sects)
		goto out;
	err = -ERR_BADELF;
	if (elf_getshdrstrndx(g->elf, &shstrndx) != 0)
		goto out;
	if ((idx = load_sections(g, shstrndx, &text_addr)) < -1) {
		err = idx;
		goto out;
	}
	if (idx >= 0) {
		g->tab_addr = g->sects[idx].addr;
		g->tab = (struct span){g->sects[idx].data, (size_t)g->sects[idx].size};
	} else {
		if ((err = find_by_symbol(g, &addr)) < 0)
			goto out;
		g->tab_addr = addr;
		g->tab = span_at(g, addr);
	}
	if ((err = parse_header(g, text_addr)) < 0 || (err = check_functab(g)) < 0)
		goto out;
	find_gofunc(g);
	read_build_id(g);
	*out = g;
	return 0;
out:
	log_msg(FS_LOG_DEBUG, "gopclntab: %s: %s", path, err_str(err));
	gopcln_close(g);
	return err;
}

void gopcln_close(struct gopcln *g)
{
	if (!g)
		return;
	elfutil_close(g->fd, g->elf);
	free(g->sects);
	free(g);
}

size_t gopcln_func_count(const struct gopcln *g)
{
	return g->nfunc;
}

int gopcln_has_inline(const struct gopcln *g)
{
	return g->have_gofunc;
}

int gopcln_version(const struct gopcln *g)
{
	return g->version;
}

const char *gopcln_build_id(const struct gopcln *g)
{
	return g->build_id;
}

size_t gopcln_heap_bytes(const struct gopcln *g)
{
	return sizeof(*g) + MAX_SECTIONS * sizeof(*g->sects);
}

/* ---- one function's record ---- */

struct gfunc {
	uint64_t entry, end; /* end: the next function's entry */
	struct span rec;     /* the _func record up to the end of pclntable */
	uint32_t nameoff, pcfile, pcln, npcdata, cuoff, nfuncdata;
};

static int func_read(const struct gopcln *g, uint32_t i, struct gfunc *f)
{
	uint32_t entryoff, endoff, funcoff, hdr_npcdata;
	int err;

	if ((err = rd32(g, g->pcln, (uint64_t)i * 8, &entryoff)) < 0 ||
	    (err = rd32(g, g->pcln, (uint64_t)i * 8 + 4, &funcoff)) < 0)
		return err;
	if ((err = rd32(g, g->pcln, (uint64_t)i * 8 + 8, &endoff)) < 0)
		return err;
	f->entry = g->text_start + entryoff;
	f->end = g->text_start + endoff;
	f->rec = span_from(g->pcln, funcoff);
	if (f->rec.n < g->func_hdr)
		return -ERR_BADINPUT;
	if ((err = rd32(g, f->rec, 4, &f->nameoff)) < 0 ||
	    (err = rd32(g, f->rec, 20, &f->pcfile)) < 0 ||
	    (err = rd32(g, f->rec, 24, &f->pcln)) < 0 ||
	    (err = rd32(g, f->rec, 28, &hdr_npcdata)) < 0 ||
	    (err = rd32(g, f->rec, 32, &f->cuoff)) < 0)
		return err;
	f->npcdata = hdr_npcdata;
	f->nfuncdata = f->rec.p[g->func_hdr - 1];
	if (((uint64_t)f->npcdata + f->nfuncdata) * 4 > f->rec.n - g->func_hdr)
		return -ERR_BADINPUT;
	return 0;
}

/* The pc-value table at OFF (in pctab) for function F, evaluated at TARGET: -1 when the table
 * is absent or does not cover TARGET, as the runtime answers. A real table has at most one
 * step per instruction of F (pc deltas of 0 occur only at the entry); more steps than F has
 * bytes, plus slack, means a damaged table, whatever pctab's size. */
static int32_t pcvalue_run(const struct gopcln *g, uint32_t off, const struct gfunc *f,
			   uint64_t target, uint64_t *run_end)
{
	struct span s;
	uint64_t entry = f->entry, pc = entry, steps = 0;
	uint64_t max_steps = (f->end > entry ? f->end - entry : 0) + 64;
	int32_t val = -1;
	size_t i = 0;

	if (off == 0)
		return -1;
	s = span_from(g->pctab, off);
	for (; steps < max_steps; steps++) {
		uint32_t d[2] = {0, 0};

		for (int k = 0; k < 2; k++) {
			for (int shift = 0;; shift += 7) {
				if (i >= s.n || shift > 28)
					return -1;
				d[k] |= (uint32_t)(s.p[i] & 0x7f) << shift;
				if (!(s.p[i++] & 0x80))
					break;
			}
			if (k == 0 && d[0] == 0 && pc != entry)
				return -1; /* end of table */
		}
		/* wrapping, as the runtime's int32 does, without signed overflow on hostile deltas
		 */
		val = (int32_t)((uint32_t)val + ((d[0] & 1) ? ~(d[0] >> 1) : d[0] >> 1));
		pc += (uint64_t)d[1] * (uint64_t)g->quantum;
		if (target < pc) {
			*run_end = pc; /* where this value stops */
			return val;
		}
	}
	return -1;
}

static int32_t pcvalue(const struct gopcln *g, uint32_t off, const struct gfunc *f, uint64_t target)
{
	uint64_t run_end;

	return pcvalue_run(g, off, f, target, &run_end);
}

/* PCDATA table TABLE of F at PC; *RUN_END (if the table covers PC) where that value stops. */
static int32_t pcdata_run(const struct gopcln *g, const struct gfunc *f, uint32_t table,
			  uint64_t pc, uint64_t *run_end)
{
	uint32_t off;

	if (table >= f->npcdata || rd32(g, f->rec, g->func_hdr + (uint64_t)table * 4, &off) < 0)
		return -1;
	return pcvalue_run(g, off, f, pc, run_end);
}

static int32_t pcdata(const struct gopcln *g, const struct gfunc *f, uint32_t table, uint64_t pc)
{
	uint64_t run_end;

	return pcdata_run(g, f, table, pc, &run_end);
}

static void file_line(const struct gopcln *g, const struct gfunc *f, uint64_t pc,
		      struct gopcln_frame *fr)
{
	int32_t fileno = pcvalue(g, f->pcfile, f, pc);
	int32_t line = pcvalue(g, f->pcln, f, pc);
	uint32_t fileoff;

	fr->file = NULL;
	fr->line = line > 0 ? (uint32_t)line : 0;
	if (fileno < 0 ||
	    rd32(g, g->cutab, ((uint64_t)f->cuoff + (uint32_t)fileno) * 4, &fileoff) < 0 ||
	    fileoff == UINT32_MAX)
		return;
	fr->file = str_at(g->filetab, fileoff);
}

/* The inline tree of F as bytes, or an empty span. */
static struct span inltree(const struct gopcln *g, const struct gfunc *f)
{
	uint32_t off;

	if (!g->have_gofunc || f->nfuncdata <= FUNCDATA_INLTREE ||
	    rd32(g, f->rec, g->func_hdr + ((uint64_t)f->npcdata + FUNCDATA_INLTREE) * 4, &off) <
		0 ||
	    off == UINT32_MAX)
		return (struct span){NULL, 0};
	return span_at(g, g->gofunc + off);
}

/* Name offset and parentPc of inline-tree entry IX. */
static int inl_entry(const struct gopcln *g, struct span tree, int32_t ix, uint32_t *nameoff,
		     uint32_t *parent_pc)
{
	uint64_t base = (uint64_t)ix * g->inl_size;
	int err;

	/* 1.18: parent, funcID, pad, file, line, func_, parentPc; 1.20: funcID, pad, nameOff,
	 * parentPc, startLine */
	size_t name_at = g->version == 120 ? 4 : 12, ppc_at = g->version == 120 ? 8 : 16;

	if ((err = rd32(g, tree, base + name_at, nameoff)) < 0 ||
	    (err = rd32(g, tree, base + ppc_at, parent_pc)) < 0)
		return err;
	return 0;
}

static uint32_t find_func(const struct gopcln *g, uint64_t addr, int *ok)
{
	uint32_t lo = 0, hi = g->nfunc, e;
	uint64_t off;

	*ok = 0;
	if (addr < g->text_start)
		return 0;
	off = addr - g->text_start;
	if (rd32(g, g->pcln, (uint64_t)g->nfunc * 8, &e) < 0 || off >= e)
		return 0;
	/* the last i with entry(i) <= off; by hand, not lib/bsearch.h: each entry is read from the
	 * file's bytes through rd32()'s bounds check, not from an array of records */
	while (hi - lo > 1) {
		uint32_t m = lo + (hi - lo) / 2;

		if (rd32(g, g->pcln, (uint64_t)m * 8, &e) < 0)
			return 0;
		if (e <= off)
			lo = m;
		else
			hi = m;
	}
	if (rd32(g, g->pcln, (uint64_t)lo * 8, &e) < 0 || e > off)
		return 0;
	*ok = 1;
	return lo;
}

int gopcln_lookup(const struct gopcln *g, uint64_t addr, struct gopcln_frame *out, int max)
{
	struct gfunc f;
	struct span tree;
	uint64_t pc = addr;
	int n = 0, ok, err;
	uint32_t i = find_func(g, addr, &ok);

	if (!ok)
		return 0;
	if ((err = func_read(g, i, &f)) < 0)
		return err;
	/* Functions are padded to their alignment and the table gives no sizes, but the line
	 * table ends with the code: beyond it lies no function, as DWARF's high_pc says too. */
	if (pcvalue(g, f.pcln, &f, addr) < 0)
		return 0;
	tree = inltree(g, &f);
	while (n < max) {
		int32_t ix = tree.n ? pcdata(g, &f, PCDATA_INLTREEINDEX, pc) : -1;
		uint32_t nameoff, parent_pc;
		struct gopcln_frame *fr = &out[n];

		if (ix < 0 || n == MAX_INLINE_DEPTH ||
		    inl_entry(g, tree, ix, &nameoff, &parent_pc) < 0 ||
		    !str_at(g->funcnames, nameoff)) {
			/* the physical function (also the answer when the tree is damaged) */
			fr->function = str_at(g->funcnames, f.nameoff);
			if (!fr->function)
				return -ERR_BADINPUT;
			fr->inlined = 0;
			file_line(g, &f, pc, fr);
			return n + 1;
		}
		fr->function = str_at(g->funcnames, nameoff);
		fr->inlined = 1;
		file_line(g, &f, pc, fr);
		pc = f.entry + parent_pc;
		n++;
	}
	return n;
}

int gopcln_func_at(const struct gopcln *g, size_t i, uint64_t *entry, uint64_t *end,
		   const char **name)
{
	struct gfunc f;
	uint32_t e;
	int err;

	if (i >= g->nfunc)
		return -ERANGE;
	if ((err = func_read(g, (uint32_t)i, &f)) < 0 ||
	    (err = rd32(g, g->pcln, (uint64_t)(i + 1) * 8, &e)) < 0)
		return err;
	*entry = f.entry;
	*end = g->text_start + e;
	*name = str_at(g->funcnames, f.nameoff);
	return *name ? 0 : -ERR_BADINPUT;
}

int gopcln_func_ranges(const struct gopcln *g, size_t i, gopcln_range_fn fn, void *ctx)
{
	struct gopcln_frame fr[GOPCLN_RANGE_FRAMES];
	struct gfunc f;
	uint64_t pc;
	int err;

	if (i >= g->nfunc)
		return -ERANGE;
	if ((err = func_read(g, (uint32_t)i, &f)) < 0)
		return err;
	for (pc = f.entry; pc < f.end;) {
		/* the answer changes only where the line, the file or the inline index does */
		uint64_t end = f.end, e_line = f.end, e_file = f.end, e_inl = f.end;
		int n;

		if (pcvalue_run(g, f.pcln, &f, pc, &e_line) < 0)
			break; /* the code ends here: padding follows */
		(void)pcvalue_run(g, f.pcfile, &f, pc, &e_file);
		(void)pcdata_run(g, &f, PCDATA_INLTREEINDEX, pc, &e_inl);
		end = e_line < end ? e_line : end;
		end = e_file < end ? e_file : end;
		end = e_inl < end ? e_inl : end;
		if (end <= pc)
			return -ERR_BADINPUT;
		n = gopcln_lookup(g, pc, fr, GOPCLN_RANGE_FRAMES);
		if (n < 0)
			return n;
		if (n > 0 && (err = fn(ctx, pc, end, fr, n)) != 0)
			return err;
		pc = end;
	}
	return 0;
}

/* ---- .note.go.buildid ---- */

int gopcln_go_buildid(Elf *elf, char *buf, size_t len)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return -ERR_BADELF;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		Elf_Data *d;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name || strcmp(name, ".note.go.buildid") != 0 || !(d = elf_getdata(scn, NULL)))
			continue;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			const char *desc = (const char *)d->d_buf + desc_off;

			/* the linker writes the name "Go\0\0" with n_namesz 4 */
			if (nh.n_type != 4 || (nh.n_namesz != 3 && nh.n_namesz != 4) ||
			    memcmp((const char *)d->d_buf + name_off, "Go", 3) != 0)
				continue;
			if (nh.n_descsz == 0 || nh.n_descsz >= GOPCLN_BUILDID_MAX)
				return -ERR_BADINPUT;
			if (nh.n_descsz >= len)
				return -ENAMETOOLONG;
			for (size_t k = 0; k < nh.n_descsz; k++)
				if (desc[k] < 0x21 || desc[k] > 0x7e)
					return -ERR_BADINPUT;
			memcpy(buf, desc, nh.n_descsz);
			buf[nh.n_descsz] = '\0';
			return 0;
		}
	}
	return -ENOENT;
}
