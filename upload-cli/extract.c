/*
 * extract - only-keep-debug with libelf: a new ELF with the source's headers, sections in the
 * same order (so sh_link/sh_info and e_shstrndx stay valid), data borrowed from the source image
 * for the sections kept, SHT_NOBITS for the rest; libelf lays the file out.
 */
#include "upload-cli/extract.h"

#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int starts_with(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static int is_debug_name(const char *name)
{
	return starts_with(name, ".debug_") || starts_with(name, ".zdebug_") ||
	       !strcmp(name, ".gnu_debugaltlink") || !strcmp(name, ".gdb_index");
}

/* Keep the contents of section SH (named NAME, index NDX)? SYMTAB_STR is the string table the
 * symbol table links to. */
static int keep_contents(const GElf_Shdr *sh, const char *name, size_t ndx, size_t shstrndx,
			 size_t symtab_str)
{
	if (sh->sh_type == SHT_NOBITS)
		return 0;
	return sh->sh_type == SHT_SYMTAB || sh->sh_type == SHT_NOTE || ndx == shstrndx ||
	       (symtab_str && ndx == symtab_str) || is_debug_name(name);
}

static size_t find_symtab_strtab(Elf *elf)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB)
			return sh.sh_link;
	return 0;
}

static int copy_headers(Elf *in, Elf *out)
{
	GElf_Ehdr eh, oh;
	size_t phnum;

	if (!gelf_getehdr(in, &eh) || !gelf_newehdr(out, gelf_getclass(in)) ||
	    !gelf_getehdr(out, &oh))
		return -ERR_BADELF;
	memcpy(oh.e_ident, eh.e_ident, EI_NIDENT);
	oh.e_type = eh.e_type;
	oh.e_machine = eh.e_machine;
	oh.e_version = eh.e_version;
	oh.e_entry = eh.e_entry;
	oh.e_flags = eh.e_flags;
	oh.e_shstrndx = eh.e_shstrndx;
	if (!gelf_update_ehdr(out, &oh))
		return -ERR_BADELF;
	if (elf_getphdrnum(in, &phnum) != 0)
		return -ERR_BADELF;
	if (phnum && !gelf_newphdr(out, phnum))
		return -ERR_BADELF;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(in, (int)i, &ph) || !gelf_update_phdr(out, (int)i, &ph))
			return -ERR_BADELF;
	}
	return 0;
}

/* The largest section alignment taken (2 MiB, a huge page; real files use at most 64 KiB). */
#define EXTRACT_MAX_ALIGN ((uint64_t)2 << 20)

static int copy_section(Elf *out, Elf_Scn *iscn, const GElf_Shdr *ish, int keep, int compress,
			const char *name, struct extract_stats *st)
{
	Elf_Scn *oscn = elf_newscn(out);
	GElf_Shdr osh = *ish;
	Elf_Data *idata, *odata;

	/* libelf lays the output out by alignment: 2^40 would make a file of a terabyte */
	if (ish->sh_addralign > EXTRACT_MAX_ALIGN)
		return -ERR_BADELF;
	if (!oscn || !(odata = elf_newdata(oscn)))
		return -ENOMEM;
	if (keep) {
		idata = elf_getdata(iscn, NULL);
		if (!idata)
			return -ERR_BADELF;
		*odata = *idata;
		st->sections_kept++;
	} else {
		osh.sh_type = SHT_NOBITS;
		odata->d_buf = NULL;
		odata->d_type = ELF_T_BYTE;
		odata->d_size = ish->sh_size;
		odata->d_align = ish->sh_addralign ? ish->sh_addralign : 1;
		st->sections_emptied++;
	}
	if (!gelf_update_shdr(oscn, &osh))
		return -ERR_BADELF;
	if (keep && compress && starts_with(name, ".debug_") && !(ish->sh_flags & SHF_COMPRESSED) &&
	    ish->sh_size > 64 && elf_compress(oscn, ELFCOMPRESS_ZLIB, 0) < 0) {
		log_msg(FS_LOG_WARN, "section %s: not compressed: %s", name, elf_errmsg(-1));
	}
	return 0;
}

int extract_debug(const char *src, const char *dst, int compress, struct extract_stats *st)
{
	Elf *in = NULL, *out = NULL;
	Elf_Scn *scn = NULL;
	size_t shstrndx, symtab_str;
	struct stat sb;
	int ifd = -1, ofd = -1, err, useful = 0;

	memset(st, 0, sizeof(*st));
	err = elfutil_open(src, &ifd, &in);
	if (err)
		return err;
	if (elf_getshdrstrndx(in, &shstrndx) != 0) {
		err = -ERR_BADELF;
		goto out;
	}
	symtab_str = find_symtab_strtab(in);
	ofd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (ofd < 0) {
		err = -errno;
		goto out;
	}
	out = elf_begin(ofd, ELF_C_WRITE, NULL);
	if (!out) {
		err = -ENOMEM;
		goto out;
	}
	err = copy_headers(in, out);
	while (!err && (scn = elf_nextscn(in, scn))) {
		GElf_Shdr sh;
		const char *name;
		int keep;

		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(in, shstrndx, sh.sh_name))) {
			err = -ERR_BADELF;
			break;
		}
		keep = keep_contents(&sh, name, elf_ndxscn(scn), shstrndx, symtab_str);
		if (keep && (is_debug_name(name) || sh.sh_type == SHT_SYMTAB))
			useful = 1;
		err = copy_section(out, scn, &sh, keep, compress, name, st);
	}
	if (!err && !useful)
		err = -ERR_NODWARF;
	if (!err && elf_update(out, ELF_C_WRITE) < 0) {
		log_msg(FS_LOG_ERROR, "%s: writing: %s", dst, elf_errmsg(-1));
		err = -EIO;
	}
	if (!err && fstat(ifd, &sb) == 0)
		st->in_size = (uint64_t)sb.st_size;
	if (!err && fstat(ofd, &sb) == 0)
		st->out_size = (uint64_t)sb.st_size;
	if (!err && fsync(ofd) < 0)
		err = -errno;
out:
	if (out)
		elf_end(out);
	if (ofd >= 0 && close(ofd) < 0 && !err)
		err = -errno;
	elfutil_close(ifd, in);
	return err;
}
