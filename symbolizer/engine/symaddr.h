/*
 * symaddr - a symbol given as an address, as eu-addr2line accepts it: NAME, NAME+OFF, NAME-OFF
 * (OFF hex with 0x, or decimal/octal as strtoull base 0 reads it), resolved through the ELF
 * symbol table of one file: its .symtab, else that of its debug file found by build ID, else its
 * .dynsym (libdwfl's order).
 */
#ifndef FLEETSYM_SYMADDR_H
#define FLEETSYM_SYMADDR_H

#include <stdint.h>

/* Resolve TEXT against the symbols of the ELF file at PATH into *ADDR (st_value +/- offset).
 * DEBUG_DIRS: .build-id layouts, NULL-terminated; NULL means { "/usr/lib/debug", NULL }.
 * Errors: -ERR_BADINPUT when TEXT is not of the form NAME[+-OFF], -ENOENT when no defined
 * symbol has that name, -ENOENT/-ERR_NOTELF/-ERR_BADELF when PATH cannot be read. */
int symaddr_resolve(const char *path, const char *const *debug_dirs, const char *text,
		    uint64_t *addr) __attribute__((warn_unused_result));

#endif
