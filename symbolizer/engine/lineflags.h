/*
 * lineflags - the line-table flags of an address as eu-addr2line -F prints them after its
 * file:line: " (is_stmt)", " (basic_block)", " (prologue_end)", " (epilogue_begin)",
 * " (isa N)" and " (discriminator N)" for the nonzero ones. Read through libdwfl as
 * eu-addr2line reads them (the file reported offline, its debug file found by libdwfl's
 * standard rules), so the row is the one it prints. The engine and its symbol index keep no
 * flags; this serves fleetsym-symbolize -F only, on local files the user names (trusted).
 */
#ifndef FLEETSYM_LINEFLAGS_H
#define FLEETSYM_LINEFLAGS_H

#include <stddef.h>
#include <stdint.h>

struct lineflags;

/* Open PATH with the debuginfo path DEBUGINFO_PATH (libdwfl's syntax; NULL: its default).
 * Sets *OUT (free with lineflags_close()). Errors: -ENOENT, -ERR_BADELF. */
int lineflags_open(const char *path, const char *debuginfo_path, struct lineflags **out)
    __attribute__((warn_unused_result));

/* ADDR's flags into BUF (LEN bytes): "" when the address has no line or no flag is set. */
void lineflags_describe(struct lineflags *lf, uint64_t addr, char *buf, size_t len);

void lineflags_close(struct lineflags *lf);

#endif
