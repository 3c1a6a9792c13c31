/*
 * debuglink - finding a separate debug file by its .gnu_debuglink name, as libdwfl's
 * dwfl_standard_find_debuginfo does with a debuginfo path (libdwfl.h): elements separated by
 * ':', each optionally prefixed by '+' (check the CRC) or '-' (don't; a prefix on the whole
 * string sets the default, which is to check). An empty element is the file's directory, a
 * relative one a subdirectory of it, an absolute one DIR/<file's dir>, then DIR/<that dir
 * without its first component>, ..., then DIR.
 */
#ifndef FLEETSYM_DEBUGLINK_H
#define FLEETSYM_DEBUGLINK_H

#include <stddef.h>

/* The default path, as eu-addr2line's. */
#define DEBUGLINK_DEFAULT_PATH ":.debug:/usr/lib/debug"

/* Find the debug file of the ELF file PATH (a real path; made absolute here) along
 * DEBUGINFO_PATH (NULL: the default) into BUF. A candidate that is PATH itself or whose CRC
 * does not match (when checked) is passed over. 0; -ENOENT when the file has no
 * .gnu_debuglink or nothing matches; errors of opening PATH. */
int debuglink_find(const char *path, const char *debuginfo_path, char *buf, size_t len)
    __attribute__((warn_unused_result));

#endif
