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

/* Resolve TEXT against the symbols of the ELF file at PATH into *ADDR (st_value +/- offset).
 * DEBUG_DIRS: .build-id layouts, NULL-terminated; NULL means { "/usr/lib/debug", NULL }.
 * Errors: -ERR_BADINPUT when TEXT is not of the form NAME[+-OFF], -ENOENT when no defined
 * symbol has that name, -ENOENT/-ERR_NOTELF/-ERR_BADELF when PATH cannot be read. */
int symaddr_resolve(const char *path, const char *const *debug_dirs, const char *text,
		    uint64_t *addr) __attribute__((warn_unused_result));

/* eu-addr2line -S/-x: the symbol at ADDR in the same symbol table resolve uses, written to
 * BUF as NAME or NAME+0xOFF; with WITH_SECTION, " (SECTION)" follows (the section of the file
 * that holds ADDR). Of the symbols that cover ADDR the one starting last wins, then a sized
 * one, then global over weak over local. -ENOENT when none covers ADDR (BUF then "??"). */
int symaddr_describe(const char *path, const char *const *debug_dirs, uint64_t addr,
		     int with_section, char *buf, size_t len);

#endif
