/*
 * unwtab - the unwind table of one ELF file: rows of struct unw_row (bpf/profile.h), sorted by
 * pc, built from the file's call-frame information (.eh_frame, else .debug_frame) with libdw's
 * CFI reader, plus the file's executable segments (file offset -> row pc).
 *
 * The FDEs are listed with dwarf_next_cfi; inside each FDE libdw evaluates the frame state at
 * the start of every row (dwarf_cfi_addrframe gives the row's [start, end)), and each state
 * becomes a row: CFA = rsp|rbp + offset, rbp saved at CFA + offset or unchanged, return address
 * at CFA - 8. What is not expressible so is an explicit row kind and counted: the PLT's CFA
 * expression, signal trampolines, the entry point (undefined return address), other DWARF
 * expressions ("bad"). Gaps between FDEs are NONE rows (frame pointers). Equal consecutive rows
 * are merged. Row pcs are 32-bit, relative to the lowest executable address.
 */
#ifndef FLEETSYM_AGENT_UNWTAB_H
#define FLEETSYM_AGENT_UNWTAB_H

#include "bpf/profile.h"

#include <stddef.h>
#include <stdint.h>

/* Rows one table may have: past this the file gets no table (-E2BIG). */
#define UNWTAB_MAX_ROWS (4u << 20)

struct unwtab;

struct unwtab_stats {
	uint64_t fdes;	     /* FDEs read */
	uint64_t fde_errors; /* CFI entries or frame states libdw could not read */
	uint64_t rows;	     /* rows after merging */
	uint64_t plt, signal, stop, bad, none; /* rows of these kinds */
	int debug_frame;		       /* 1 if the rows came from .debug_frame */
};

/* Build the table of the ELF file open at FD (mapped read-only, see unwtab.c). Sets *OUT (free with
 * unwtab_free()). -ENOENT: no CFI at all; -ERR_NOTELF, -ERR_BADELF; -E2BIG: too many rows; -ENOMEM.
 */
int unwtab_build_fd(int fd, struct unwtab **out) __attribute__((warn_unused_result));

/* The same for an ELF image in memory (the vDSO). P must stay valid during the call. */
int unwtab_build_mem(const void *p, size_t size, struct unwtab **out)
    __attribute__((warn_unused_result));

void unwtab_free(struct unwtab *t);

/* The rows, borrowed until unwtab_free(). Returns the count. */
size_t unwtab_rows(const struct unwtab *t, const struct unw_row **rows);

/* Fill the executable segments of F (nsegs, seg[]); leaves state, rows and build ID alone. */
void unwtab_segments(const struct unwtab *t, struct unw_file *f);

void unwtab_get_stats(const struct unwtab *t, struct unwtab_stats *st);

/* The row covering ELF virtual address VADDR (binary search), or NULL. */
const struct unw_row *unwtab_find(const struct unwtab *t, uint64_t vaddr);

/* The table's base: row pc = virtual address - base. */
uint64_t unwtab_base(const struct unwtab *t);

#endif
