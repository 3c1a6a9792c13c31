/*
 * symaddr - a symbol given as an address, as eu-addr2line accepts it: NAME, NAME+OFF, NAME-OFF
 * (OFF hex with 0x, or decimal/octal as strtoull base 0 reads it), resolved through the ELF
 * symbol table of one file: its .symtab, else that of its debug file found by build ID, else its
 * .dynsym (libdwfl's order).
 */
#ifndef FLEETSYM_SYMADDR_H
#define FLEETSYM_SYMADDR_H

#include <stddef.h>
#include <stdint.h>

struct symaddr;

/* Open the symbol tables of the ELF file at PATH, and of its debug file found by build ID
 * under DEBUG_DIRS (.build-id layouts, NULL-terminated; NULL means { "/usr/lib/debug", NULL }),
 * once for any number of lookups. Sets *OUT (free with symaddr_close()). Errors: -ENOENT,
 * -ERR_NOTELF, -ERR_BADELF, -ENOMEM. */
int symaddr_open(const char *path, const char *const *debug_dirs, struct symaddr **out)
    __attribute__((warn_unused_result));
void symaddr_close(struct symaddr *sa);

/* Resolve TEXT into *ADDR (st_value +/- offset). -ERR_BADINPUT when TEXT is not of the form
 * NAME[+-OFF], -ENOENT when no defined symbol has that name. */
int symaddr_resolve(const struct symaddr *sa, const char *text, uint64_t *addr)
    __attribute__((warn_unused_result));

/* eu-addr2line -S/-x: the symbol at ADDR in libdwfl's one table (the file's .symtab, else the
 * debug file's, else .dynsym), written to BUF as NAME or NAME+0xOFF; with WITH_SECTION,
 * " (SECTION)" follows (the section of the file that holds ADDR). Of the symbols that cover
 * ADDR the one starting last wins, then a sized one, then global over weak over local.
 * -ENOENT when none covers ADDR: BUF is then libdwfl's relocation-relative fallback, with no
 * section, "()+0xOFF" (OFF from the module's start) for an ET_DYN file whose loaded range
 * holds ADDR, else "??". A scan of the table per call. */
int symaddr_describe(const struct symaddr *sa, uint64_t addr, int with_section, char *buf,
		     size_t len);

#endif
