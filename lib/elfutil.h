/*
 * elfutil - opening ELF files that come from outside: libelf reads lazily, so a truncated file
 * opens fine and fails (or worse) later; this checks up front that the headers and every
 * section with contents lie inside the file.
 */
#ifndef FLEETSYM_ELFUTIL_H
#define FLEETSYM_ELFUTIL_H

#include <gelf.h>

/* Open PATH read-only (mmap) and check it. Sets *FD and *ELF (the caller ends both with
 * elfutil_close()). Errors: -errno from open, -ERR_NOTELF, -ERR_BADELF. */
int elfutil_open(const char *path, int *fd, Elf **elf) __attribute__((warn_unused_result));

/* Check an Elf already open over a file of SIZE bytes. 0, -ERR_NOTELF or -ERR_BADELF. */
int elfutil_check(Elf *elf, size_t size);

/* The lowest PT_LOAD address of ELF (0 when it has none): what symbol tables' addresses are
 * stored relative to (cache/symindex.h). */
uint64_t elfutil_load_base(Elf *elf);

/* elf_end() and close(); either may be absent (NULL, -1). */
void elfutil_close(int fd, Elf *elf);

#endif
