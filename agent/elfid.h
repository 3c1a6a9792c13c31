/*
 * elfid - the GNU build ID of an ELF image through its program headers only (PT_NOTE), read
 * with pread() or from memory. This is what the kernel itself reads for BPF_F_USER_BUILD_ID,
 * and it needs neither section headers (stripped and odd files) nor mapping the whole file
 * (no SIGBUS when a mapped file is truncated under us). A Go binary without a GNU build ID
 * gets the one derived from its Go build ID note (buildid_from_go()), as the server derives it.
 */
#ifndef FLEETSYM_AGENT_ELFID_H
#define FLEETSYM_AGENT_ELFID_H

#include "lib/buildid.h"

#include <stddef.h>

/* Build ID of the file open at FD into HEX (lowercase). 0, -ERR_NOTELF, -ERR_BADELF,
 * -ERR_NOBUILDID or -errno from pread(). */
int elfid_from_fd(int fd, char hex[BUILDID_HEX_MAX]) __attribute__((warn_unused_result));

/* Same for an image of SIZE bytes at P (the vDSO). */
int elfid_from_mem(const void *p, size_t size, char hex[BUILDID_HEX_MAX])
    __attribute__((warn_unused_result));

#endif
