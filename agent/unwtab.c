/*
 * unwtab - FDE list (dwarf_next_cfi, initial locations decoded per the CIE's pointer encoding),
 * sorted; then per FDE one dwarf_cfi_addrframe per row, each turned into a struct unw_row.
 * Everything read from the file is bounded: the rows by UNWTAB_MAX_ROWS, the FDEs by the
 * section's size, and a row that does not advance ends its FDE.
 */
#include "agent/unwtab.h"

#include "lib/bsearch.h"
#include "lib/err.h"
#include "lib/vec.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define REG_RBP 6
#define REG_RSP 7
#define REG_RA	16

struct unwtab {
	struct unw_row *rows;
	size_t nrows, cap;
	uint64_t base;
	struct unw_seg seg[UNW_MAX_SEGS];
	uint32_t nsegs;
	struct unwtab_stats st;
};

struct fde {
	uint64_t start, end;
};

struct cie {
	uint64_t off;
	uint8_t enc; /* DW_EH_PE_* of the FDE pointers */
};

struct fdelist {
	struct fde *v;
	size_t n, cap;
	struct cie *cies;
	size_t ncies, ciecap;
};

/* Room for one more of *N elements, at most MAX of them (-E2BIG beyond). */
static int push(void **v, size_t *n, size_t *cap, size_t size, size_t max)
{
	if (*n >= max)
		return -E2BIG;
	return vec_reserve(v, cap, *n + 1, size);
}

/* Decode one DW_EH_PE_* pointer at *P (< END), FIELD_ADDR being its address for pcrel. */
static int read_enc(const uint8_t **p, const uint8_t *end, uint8_t enc, uint64_t field_addr,
		    bool apply_rel, uint64_t *out)
{
	const uint8_t *q = *p;
	uint64_t v = 0;
	int shift = 0;
	size_t n;

	if (enc == DW_EH_PE_omit)
		return -EINVAL;
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8: n = 8; break;
	case DW_EH_PE_udata4:
	case DW_EH_PE_sdata4: n = 4; break;
	case DW_EH_PE_udata2:
	case DW_EH_PE_sdata2: n = 2; break;
	case DW_EH_PE_uleb128:
	case DW_EH_PE_sleb128:
		for (;;) {
			if (q >= end || shift > 63)
				return -EINVAL;
			v |= (uint64_t)(*q & 0x7f) << shift;
			shift += 7;
			if (!(*q++ & 0x80))
				break;
		}
		if ((enc & 0x0f) == DW_EH_PE_sleb128 && shift < 64 && (q[-1] & 0x40))
			v |= ~0ULL << shift;
		goto rel;
	default: return -EINVAL;
	}
	if ((size_t)(end - q) < n)
		return -EINVAL;
	memcpy(&v, q, n); /* little endian host and file (x86-64 only) */
	if (n < 8 && (enc & 0x08) && (v >> (n * 8 - 1)) & 1)
		v |= ~0ULL << (n * 8);
	q += n;
rel:
	if (apply_rel && (enc & 0x70) == DW_EH_PE_pcrel)
		v += field_addr;
	else if (apply_rel && (enc & 0x70) != 0)
		return -EINVAL; /* datarel, textrel, funcrel: not used for x86-64 FDEs */
	*p = q;
	*out = v;
	return 0;
}

/* The FDE pointer encoding of a CIE, from its augmentation ("zR": 'R' gives it). */
static uint8_t cie_encoding(const Dwarf_CIE *c, bool eh)
{
	const uint8_t *a = c->augmentation_data, *end;
	const char *s = c->augmentation;
	uint64_t ignored;

	if (!eh || !s || s[0] != 'z' || !a)
		return DW_EH_PE_absptr;
	end = a + c->augmentation_data_size;
	for (s++; *s; s++) {
		if (*s == 'R')
			return a < end ? *a : DW_EH_PE_absptr;
		if (*s == 'L') {
			a++;
		} else if (*s == 'P') {
			uint8_t enc;

			if (a >= end)
				break;
			enc = *a++;
			if (read_enc(&a, end, enc & 0x0f, 0, false, &ignored))
				break;
		} else if (*s != 'S' && *s != 'B') {
			break;
		}
	}
	return DW_EH_PE_absptr;
}

/* List the FDEs of DATA (section at SH_ADDR) into L. */
static int list_fdes(Elf *elf, Elf_Data *data, uint64_t sh_addr, bool eh, struct fdelist *l,
		     struct unwtab_stats *st)
{
	const unsigned char *ident = (const unsigned char *)elf_getident(elf, NULL);
	Dwarf_Off off = 0, next;
	Dwarf_CFI_Entry e;
	int r, err;

	if (!ident)
		return -ERR_BADELF;
	while (off < data->d_size) {
		r = dwarf_next_cfi(ident, data, eh, off, &next, &e);
		if (r == 1)
			break;
		if (r < 0) {
			st->fde_errors++;
			if (next == (Dwarf_Off)-1 || next <= off)
				break; /* cannot skip: the rest of the section is lost */
			off = next;
			continue;
		}
		if (dwarf_cfi_cie_p(&e)) {
			err = push((void **)&l->cies, &l->ncies, &l->ciecap, sizeof(*l->cies),
				   1u << 20);
			if (err)
				return err;
			l->cies[l->ncies++] = (struct cie){off, cie_encoding(&e.cie, eh)};
		} else {
			const uint8_t *p = e.fde.start, *end = e.fde.end;
			uint8_t enc = DW_EH_PE_absptr;
			uint64_t loc, range;

			for (size_t i = l->ncies; i-- > 0;)
				if (l->cies[i].off == e.fde.CIE_pointer) {
					enc = l->cies[i].enc;
					break;
				}
			if (read_enc(&p, end, enc, sh_addr + (uint64_t)(p - (uint8_t *)data->d_buf),
				     true, &loc) ||
			    read_enc(&p, end, enc & 0x0f, 0, false, &range)) {
				st->fde_errors++;
			} else if (range) {
				err = push((void **)&l->v, &l->n, &l->cap, sizeof(*l->v),
					   UNWTAB_MAX_ROWS);
				if (err)
					return err;
				l->v[l->n++] = (struct fde){loc, loc + range};
				st->fdes++;
			}
		}
		off = next;
	}
	return 0;
}

static int cmp_fde(const void *a, const void *b)
{
	const struct fde *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* OPS is "CFA + N" (libdw's form of an offset(N) rule): set *OFF. */
static bool cfa_plus(const Dwarf_Op *ops, size_t nops, int64_t *off)
{
	if (nops < 1 || ops[0].atom != DW_OP_call_frame_cfa)
		return false;
	if (nops == 1) {
		*off = 0;
		return true;
	}
	if (nops == 2 && ops[1].atom == DW_OP_plus_uconst) {
		*off = (int64_t)ops[1].number;
		return true;
	}
	if (nops == 3 && ops[1].atom == DW_OP_consts && ops[2].atom == DW_OP_plus) {
		*off = (int64_t)ops[1].number;
		return true;
	}
	return false;
}

/* The PLT's CFA: rsp + 8 + ((rip & 15) >= K) << 3, as ld writes it for .plt. */
static bool plt_expr(const Dwarf_Op *o, size_t n, struct unw_row *r)
{
	if (n != 9 || o[0].atom != DW_OP_breg7 || o[1].atom != DW_OP_breg16 ||
	    o[2].atom < DW_OP_lit0 || o[2].atom > DW_OP_lit31 || o[3].atom != DW_OP_and ||
	    o[4].atom < DW_OP_lit0 || o[4].atom > DW_OP_lit31 || o[5].atom != DW_OP_ge ||
	    o[6].atom != DW_OP_lit3 || o[7].atom != DW_OP_shl || o[8].atom != DW_OP_plus ||
	    o[2].atom != DW_OP_lit15 || (int64_t)o[0].number % 8)
		return false;
	r->kind = UNW_ROW_PLT;
	r->cfa_off8 = (int16_t)((int64_t)o[0].number / 8);
	r->rbp_off8 = (int8_t)(o[4].atom - DW_OP_lit0);
	return true;
}

/* One frame state as a row (pc left to the caller). */
static void frame_row(Dwarf_Frame *f, bool signal, struct unw_row *r)
{
	Dwarf_Op mem[3], *ops;
	size_t nops;
	int64_t off;
	unsigned int reg;

	memset(r, 0, sizeof(*r));
	r->kind = UNW_ROW_BAD;
	if (signal) {
		r->kind = UNW_ROW_SIGNAL;
		return;
	}
	if (dwarf_frame_register(f, REG_RA, mem, &ops, &nops))
		return;
	if (nops == 0 && ops == mem) {
		r->kind = UNW_ROW_STOP; /* undefined: the outermost frame */
		return;
	}
	if (!cfa_plus(ops, nops, &off) || off != -8)
		return;
	if (dwarf_frame_cfa(f, &ops, &nops) || nops == 0)
		return;
	if (plt_expr(ops, nops, r))
		return;
	if (nops != 1)
		return;
	if (ops[0].atom == DW_OP_bregx) {
		reg = (unsigned int)ops[0].number;
		off = (int64_t)ops[0].number2;
	} else if (ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
		reg = ops[0].atom - DW_OP_breg0;
		off = (int64_t)ops[0].number;
	} else {
		return;
	}
	if ((reg != REG_RSP && reg != REG_RBP) || off % 8 || off / 8 < INT16_MIN ||
	    off / 8 > INT16_MAX)
		return; /* odd offsets, frames over 256 KiB: rare enough to be a counted stop */
	r->cfa_off8 = (int16_t)(off / 8);
	if (dwarf_frame_register(f, REG_RBP, mem, &ops, &nops))
		return;
	if (nops == 0) {
		r->rbp_off8 = 0; /* same value, or undefined: leave rbp as it is */
	} else if (cfa_plus(ops, nops, &off) && off != 0 && off % 8 == 0 && off / 8 >= INT8_MIN &&
		   off / 8 <= INT8_MAX) {
		r->rbp_off8 = (int8_t)(off / 8);
	} else {
		return;
	}
	r->kind = reg == REG_RSP ? UNW_ROW_CFA_RSP : UNW_ROW_CFA_RBP;
}

/* Append R at virtual address PC; equal neighbours merge, a later FDE overriding an earlier
 * one at the same pc wins, and rows out of order (overlapping FDEs) are dropped. */
static int add_row(struct unwtab *t, uint64_t pc, struct unw_row r)
{
	struct unw_row *last = t->nrows ? &t->rows[t->nrows - 1] : NULL;
	int err;

	if (pc < t->base || pc - t->base > UINT32_MAX)
		return 0;
	r.pc = (uint32_t)(pc - t->base);
	if (last && r.pc < last->pc)
		return 0;
	if (last && r.pc == last->pc) {
		*last = r;
		if (t->nrows >= 2) {
			struct unw_row *prev = &t->rows[t->nrows - 2];

			if (prev->kind == r.kind && prev->cfa_off8 == r.cfa_off8 &&
			    prev->rbp_off8 == r.rbp_off8)
				t->nrows--;
		}
		return 0;
	}
	if (last && last->kind == r.kind && last->cfa_off8 == r.cfa_off8 &&
	    last->rbp_off8 == r.rbp_off8)
		return 0;
	err = push((void **)&t->rows, &t->nrows, &t->cap, sizeof(*t->rows), UNWTAB_MAX_ROWS);
	if (err)
		return err;
	t->rows[t->nrows++] = r;
	return 0;
}

/* The rows of every FDE in L, read through CFI. */
static int build_rows(struct unwtab *t, Dwarf_CFI *cfi, struct fdelist *l)
{
	uint64_t prev_end = 0;
	int err;

	qsort(l->v, l->n, sizeof(*l->v), cmp_fde);
	for (size_t i = 0; i < l->n; i++) {
		struct fde *d = &l->v[i];
		uint64_t pc = d->start;

		if (prev_end && d->start > prev_end) {
			err = add_row(t, prev_end, (struct unw_row){.kind = UNW_ROW_NONE});
			if (err)
				return err;
		}
		while (pc < d->end) {
			Dwarf_Frame *f = NULL;
			Dwarf_Addr s, e;
			bool sig = false;
			struct unw_row r;

			if (dwarf_cfi_addrframe(cfi, pc, &f) ||
			    dwarf_frame_info(f, &s, &e, &sig) < 0) {
				free(f);
				t->st.fde_errors++;
				err = add_row(t, pc, (struct unw_row){.kind = UNW_ROW_BAD});
				if (err)
					return err;
				break;
			}
			frame_row(f, sig, &r);
			free(f);
			err = add_row(t, pc, r);
			if (err)
				return err;
			if (e <= pc)
				break;
			pc = e < d->end ? e : d->end;
		}
		if (d->end > prev_end)
			prev_end = d->end;
	}
	if (prev_end)
		return add_row(t, prev_end, (struct unw_row){.kind = UNW_ROW_NONE});
	return 0;
}

static Elf_Scn *find_section(Elf *elf, const char *name, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	const char *n;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, sh) || sh->sh_type == SHT_NOBITS)
			continue;
		n = elf_strptr(elf, shstrndx, sh->sh_name);
		if (n && !strcmp(n, name))
			return scn;
	}
	return NULL;
}

/* Executable PT_LOADs: the table's base and the file offset -> row pc segments. */
static int read_segments(Elf *elf, struct unwtab *t)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	size_t n;
	GElf_Phdr ph;

	if (elf_getphdrnum(elf, &n))
		return -ERR_BADELF;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD ||
			    !(ph.p_flags & PF_X))
				continue;
			if (pass == 0) {
				lo = ph.p_vaddr < lo ? ph.p_vaddr : lo;
				hi = ph.p_vaddr + ph.p_memsz > hi ? ph.p_vaddr + ph.p_memsz : hi;
			} else if (t->nsegs < UNW_MAX_SEGS) {
				t->seg[t->nsegs++] = (struct unw_seg){
				    .lo = ph.p_offset,
				    .hi = ph.p_offset + ph.p_filesz,
				    .delta = (int64_t)(ph.p_vaddr - ph.p_offset - lo),
				};
			}
		}
	if (lo == UINT64_MAX)
		return -ENOENT; /* nothing executable */
	if (hi - lo > UINT32_MAX)
		return -E2BIG;
	t->base = lo;
	return 0;
}

static int build(Elf *elf, struct unwtab **out)
{
	struct fdelist l = {0};
	struct unwtab *t;
	Dwarf_CFI *cfi = NULL;
	Dwarf *dw = NULL;
	GElf_Ehdr eh;
	GElf_Shdr sh;
	Elf_Scn *scn;
	int err;

	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
		return -ERR_NOTELF;
	if (eh.e_machine != EM_X86_64)
		return -ENOTSUP;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	err = read_segments(elf, t);
	if (err)
		goto out;
	scn = find_section(elf, ".eh_frame", &sh);
	if (scn) {
		Elf_Data *d = elf_getdata(scn, NULL);

		if (d && d->d_buf)
			err = list_fdes(elf, d, sh.sh_addr, true, &l, &t->st);
		if (err)
			goto out;
		if (l.n)
			cfi = dwarf_getcfi_elf(elf);
	}
	if (!cfi) {
		l.n = 0;
		scn = find_section(elf, ".debug_frame", &sh);
		if (scn) {
			Elf_Data *d = elf_getdata(scn, NULL);

			if (d && d->d_buf)
				err = list_fdes(elf, d, 0, false, &l, &t->st);
			if (err)
				goto out;
			dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
			cfi = dw && l.n ? dwarf_getcfi(dw) : NULL;
			t->st.debug_frame = 1;
		}
	}
	if (!cfi) {
		err = -ENOENT;
		goto out;
	}
	err = build_rows(t, cfi, &l);
	if (err)
		goto out;
	if (!t->nrows) {
		err = -ENOENT;
		goto out;
	}
	for (size_t i = 0; i < t->nrows; i++) {
		switch (t->rows[i].kind) {
		case UNW_ROW_PLT: t->st.plt++; break;
		case UNW_ROW_SIGNAL: t->st.signal++; break;
		case UNW_ROW_STOP: t->st.stop++; break;
		case UNW_ROW_BAD: t->st.bad++; break;
		case UNW_ROW_NONE: t->st.none++; break;
		}
	}
	t->st.rows = t->nrows;
	*out = t;
	t = NULL;
out:
	if (dw)
		dwarf_end(dw);
	else if (cfi)
		dwarf_cfi_end(cfi);
	free(l.v);
	free(l.cies);
	unwtab_free(t);
	return err;
}

int unwtab_build_fd(int fd, struct unwtab **out)
{
	Elf *elf;
	int err;

	elf_version(EV_CURRENT);
	/* Mapped, not read: only the headers and the CFI sections are touched, so building
	 * libjvm's table costs its 2 MB of .eh_frame, not its 20 MB. The price: a file truncated
	 * in place while its table is built would fault (SIGBUS); binaries and libraries are
	 * replaced by rename, which leaves the mapped old file intact. */
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ERR_NOTELF;
	err = build(elf, out);
	elf_end(elf);
	return err;
}

int unwtab_build_mem(const void *p, size_t size, struct unwtab **out)
{
	char *copy = malloc(size);
	Elf *elf;
	int err;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, p, size);
	elf_version(EV_CURRENT);
	elf = elf_memory(copy, size);
	if (!elf) {
		free(copy);
		return -ERR_NOTELF;
	}
	err = build(elf, out);
	elf_end(elf);
	free(copy);
	return err;
}

void unwtab_free(struct unwtab *t)
{
	if (!t)
		return;
	free(t->rows);
	free(t);
}

size_t unwtab_rows(const struct unwtab *t, const struct unw_row **rows)
{
	*rows = t->rows;
	return t->nrows;
}

void unwtab_segments(const struct unwtab *t, struct unw_file *f)
{
	f->nsegs = t->nsegs;
	memcpy(f->seg, t->seg, sizeof(f->seg));
}

void unwtab_get_stats(const struct unwtab *t, struct unwtab_stats *st)
{
	*st = t->st;
}

uint64_t unwtab_base(const struct unwtab *t)
{
	return t->base;
}

const struct unw_row *unwtab_find(const struct unwtab *t, uint64_t vaddr)
{
	long i;

	if (vaddr < t->base || vaddr - t->base > UINT32_MAX)
		return NULL;
	i = bsearch_last_le32(t->rows, t->nrows, sizeof(*t->rows), (uint32_t)(vaddr - t->base));
	return i >= 0 ? &t->rows[i] : NULL;
}
