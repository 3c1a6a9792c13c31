/*
 * elfid - ELF header, then the program header table (at most ELFID_MAX_PHDRS entries), then
 * each PT_NOTE segment (at most ELFID_MAX_NOTE bytes) scanned for NT_GNU_BUILD_ID, else for
 * Go's build ID note. ELF32 and
 * ELF64, host byte order only. All reads go through one bounded reader over fd or memory.
 */
#include "agent/elfid.h"

#include "lib/err.h"

#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ELFID_MAX_PHDRS 128
#define ELFID_MAX_NOTE	4096

struct reader {
	int fd;
	const unsigned char *mem;
	size_t size;
};

static int rd(const struct reader *r, uint64_t off, void *buf, size_t len)
{
	ssize_t n;

	if (r->mem) {
		if (off > r->size || len > r->size - off)
			return -ERR_BADELF;
		memcpy(buf, r->mem + off, len);
		return 0;
	}
	if (off > INT64_MAX)
		return -ERR_BADELF;
	do
		n = pread(r->fd, buf, len, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -ERR_BADELF;
}

/* The GNU build ID in the notes at P into HEX; a Go build ID note's derived one into GO (""
 * until found), which the caller takes when no segment has a GNU note. */
static int scan_notes(const unsigned char *p, size_t len, char hex[BUILDID_HEX_MAX],
		      char go[BUILDID_HEX_MAX])
{
	size_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh; /* same layout as Elf32_Nhdr */
		size_t name, desc, next;

		memcpy(&nh, p + off, sizeof(nh));
		name = off + sizeof(nh);
		desc = name + ((nh.n_namesz + 3) & ~(size_t)3);
		next = desc + ((nh.n_descsz + 3) & ~(size_t)3);
		if (nh.n_namesz > len || nh.n_descsz > len || next > len || desc > len)
			break; /* cut by ELFID_MAX_NOTE, or damaged */
		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
		    !memcmp(p + name, "GNU", 4)) {
			if (nh.n_descsz < 1 || nh.n_descsz > (BUILDID_HEX_MAX - 1) / 2)
				return -ERR_BADELF;
			for (size_t i = 0; i < nh.n_descsz; i++)
				snprintf(hex + 2 * i, 3, "%02x", p[desc + i]);
			return 0;
		}
		/* Go's linker: type 4 under the name "Go\0\0" */
		if (nh.n_type == 4 && (nh.n_namesz == 3 || nh.n_namesz == 4) &&
		    !memcmp(p + name, "Go", 3) && !go[0] &&
		    buildid_from_go((const char *)p + desc, nh.n_descsz, go) != 0)
			go[0] = '\0';
		off = next;
	}
	return -ERR_NOBUILDID;
}

static int find(const struct reader *r, char hex[BUILDID_HEX_MAX])
{
	unsigned char ident[EI_NIDENT], note[ELFID_MAX_NOTE];
	char go[BUILDID_HEX_MAX] = "";
	uint64_t phoff;
	size_t phentsize, phnum;
	int is64, err;

	err = rd(r, 0, ident, sizeof(ident));
	if (err)
		return err == -ERR_BADELF ? -ERR_NOTELF : err;
	if (memcmp(ident, ELFMAG, SELFMAG) != 0)
		return -ERR_NOTELF;
	is64 = ident[EI_CLASS] == ELFCLASS64;
	if ((!is64 && ident[EI_CLASS] != ELFCLASS32) ||
	    ident[EI_DATA] !=
		(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB))
		return -ERR_NOTELF;
	if (is64) {
		Elf64_Ehdr eh;

		err = rd(r, 0, &eh, sizeof(eh));
		phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
	} else {
		Elf32_Ehdr eh;

		err = rd(r, 0, &eh, sizeof(eh));
		phoff = eh.e_phoff, phentsize = eh.e_phentsize, phnum = eh.e_phnum;
	}
	if (err)
		return err;
	if (phentsize != (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ||
	    phnum > ELFID_MAX_PHDRS)
		return -ERR_BADELF;
	for (size_t i = 0; i < phnum; i++) {
		uint64_t off, size;
		uint32_t type;

		if (is64) {
			Elf64_Phdr ph;

			err = rd(r, phoff + i * phentsize, &ph, sizeof(ph));
			type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
		} else {
			Elf32_Phdr ph;

			err = rd(r, phoff + i * phentsize, &ph, sizeof(ph));
			type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
		}
		if (err)
			return err;
		if (type != PT_NOTE)
			continue;
		if (size > sizeof(note))
			size = sizeof(note);
		err = rd(r, off, note, size);
		if (err)
			return err;
		err = scan_notes(note, size, hex, go);
		if (err != -ERR_NOBUILDID)
			return err;
	}
	if (!go[0])
		return -ERR_NOBUILDID;
	memcpy(hex, go, sizeof(go));
	return 0;
}

int elfid_from_fd(int fd, char hex[BUILDID_HEX_MAX])
{
	struct reader r = {.fd = fd};

	return find(&r, hex);
}

int elfid_from_mem(const void *p, size_t size, char hex[BUILDID_HEX_MAX])
{
	struct reader r = {.fd = -1, .mem = p, .size = size};

	return find(&r, hex);
}
