/*
 * elfutil - sanity checks that make a truncated or damaged ELF file a clean error.
 */
#include "lib/elfutil.h"

#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int elfutil_check(Elf *elf, size_t size)
{
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	size_t shnum;

	if (elf_kind(elf) != ELF_K_ELF)
		return -ERR_NOTELF;
	if (!gelf_getehdr(elf, &eh) || elf_getshdrnum(elf, &shnum) != 0)
		return -ERR_BADELF;
	/* libelf reports no sections when the section headers lie past the end of the file */
	if (eh.e_shoff && shnum == 0 && eh.e_shnum != 0)
		return -ERR_BADELF;
	if (eh.e_shoff && (eh.e_shoff > size ||
			   (uint64_t)(shnum ? shnum : 1) * eh.e_shentsize > size - eh.e_shoff))
		return -ERR_BADELF;
	if (eh.e_phnum &&
	    (eh.e_phoff > size || (uint64_t)eh.e_phnum * eh.e_phentsize > size - eh.e_phoff))
		return -ERR_BADELF;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			return -ERR_BADELF;
		if (sh.sh_type != SHT_NOBITS &&
		    (sh.sh_offset > size || sh.sh_size > size - sh.sh_offset))
			return -ERR_BADELF;
	}
	return 0;
}

int elfutil_open(const char *path, int *fd, Elf **elf)
{
	struct stat st;
	int err;

	*elf = NULL;
	elf_version(EV_CURRENT);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (fstat(*fd, &st) < 0) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -ERR_NOTELF;
		goto fail;
	}
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf) {
		err = st.st_size < EI_NIDENT ? -ERR_NOTELF : -ERR_BADELF;
		goto fail;
	}
	err = elfutil_check(*elf, (size_t)st.st_size);
	if (!err)
		return 0;
fail:
	elfutil_close(*fd, *elf);
	*fd = -1;
	*elf = NULL;
	return err;
}

void elfutil_close(int fd, Elf *elf)
{
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
}

uint64_t elfutil_load_base(Elf *elf)
{
	uint64_t base = 0;
	size_t n;
	int found = 0;

	if (elf_getphdrnum(elf, &n) != 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (!found || ph.p_vaddr < base)
			base = ph.p_vaddr;
		found = 1;
	}
	return base;
}
