/*
 * symfile - picks the best source of symbols for one file and hides which one answers.
 *
 * Order: the index for the build ID (no ELF is even opened), else the file's own DWARF, else
 * the separate debug file <debug-dir>/.build-id/xx/rest.debug, else a Go binary's pclntab
 * (goview.h: function, file:line and inline frames, as good as DWARF for Go), else the file's
 * symbol tables.
 * A damaged index is removed and rebuilt from DWARF, never trusted.
 */
#include "symbolizer/engine/symfile.h"

#include "symbolizer/engine/debuglink.h"

#include "symbolizer/engine/dwarfsym.h"
#include "symbolizer/engine/gopclntab.h"
#include "symbolizer/engine/goview.h"

#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const default_debug_dirs[] = {"/usr/lib/debug", NULL};

struct symfile {
	struct symfile_opts opts;
	char build_id[BUILDID_HEX_MAX];
	int addr_width;
	uint64_t base; /* lowest PT_LOAD address */
	struct symindex *idx;
	struct dwarfsym *dw;
	struct goview *go; /* a Go binary without DWARF */
};

static int index_path(const struct symfile *sf, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.symidx", sf->opts.index_dir, sf->build_id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int try_index(struct symfile *sf)
{
	char path[4096];
	int err;

	if (!sf->opts.index_dir || sf->opts.relative_names || !sf->build_id[0] ||
	    index_path(sf, path, sizeof(path)))
		return -ENOENT;
	err = symindex_open(path, sf->build_id, &sf->idx);
	if (err == -ERR_BADINDEX) {
		log_msg(FS_LOG_WARN, "%s: removing damaged index; it will be rebuilt", path);
		unlink(path);
	}
	return err;
}

/* Does PATH carry DWARF itself, and what is its ELF class? */
static int probe_elf(const char *path, int *has_dwarf, int *width, uint64_t *base,
		     char bid[BUILDID_HEX_MAX])
{
	Elf *elf = NULL;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	GElf_Ehdr eh;
	int fd, err = 0;

	*has_dwarf = 0;
	bid[0] = '\0';
	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	if (!gelf_getehdr(elf, &eh) || elf_getshdrstrndx(elf, &shstrndx) != 0) {
		err = -ERR_BADELF;
		goto out;
	}
	*width = eh.e_ident[EI_CLASS] == ELFCLASS32 ? 8 : 16;
	*base = elfutil_load_base(elf);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (name && (!strcmp(name, ".debug_info") || !strcmp(name, ".zdebug_info")))
			*has_dwarf = 1;
	}
	if (buildid_from_elf(elf, bid) != 0)
		bid[0] = '\0';
out:
	elfutil_close(fd, elf);
	return err;
}

static int find_debug_file(const struct symfile *sf, char *buf, size_t len)
{
	for (const char *const *d = sf->opts.debug_dirs; *d; d++) {
		if (buildid_debug_path(*d, sf->build_id, buf, len) == 0 && access(buf, R_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static int symfile_new(const struct symfile_opts *opts, struct symfile **out)
{
	struct symfile *sf = calloc(1, sizeof(*sf));

	if (!sf)
		return -ENOMEM;
	if (opts)
		sf->opts = *opts;
	if (!sf->opts.debug_dirs)
		sf->opts.debug_dirs = default_debug_dirs;
	sf->addr_width = 16;
	*out = sf;
	return 0;
}

static int open_dwarf(struct symfile *sf, const char *debug, const char *main)
{
	struct dwarfsym_opts dopts = {.debug_dirs = sf->opts.debug_dirs,
				      .alt_path = sf->opts.alt_path,
				      .alt_no_name = sf->opts.alt_no_name,
				      .relative_names = sf->opts.relative_names};

	return dwarfsym_open(debug, main, &dopts, &sf->dw);
}

/* The pclntab of PATH as a view, with the file's own symbol table (read by dwarfsym) for the
 * code Go's tables do not cover: 0, or an error when it is no Go binary (or a damaged one). */
static int open_go(struct symfile *sf, const char *path)
{
	const struct symview *elf = NULL;
	struct gopcln *g;
	int err = gopcln_open(path, &g);

	if (err)
		return err;
	if (open_dwarf(sf, path, NULL) == 0 && dwarfsym_view_all(sf->dw, &elf) != 0)
		elf = NULL;
	err = goview_build(g, sf->base, elf, &sf->go);
	gopcln_close(g);
	dwarfsym_close(sf->dw);
	sf->dw = NULL;
	return err;
}

int symfile_open(const char *path, const struct symfile_opts *opts, struct symfile **out)
{
	struct symfile *sf;
	char debug[4096];
	int has_dwarf, err;

	*out = NULL;
	err = symfile_new(opts, &sf);
	if (err)
		return err;
	err = probe_elf(path, &has_dwarf, &sf->addr_width, &sf->base, sf->build_id);
	if (err)
		goto out;
	if (try_index(sf) == 0)
		goto out;
	if (!has_dwarf && sf->build_id[0] && find_debug_file(sf, debug, sizeof(debug)) == 0)
		err = open_dwarf(sf, debug, path);
	else if (!has_dwarf && sf->opts.use_debuglink &&
		 debuglink_find(path, sf->opts.debuginfo_path, debug, sizeof(debug)) == 0)
		err = open_dwarf(sf, debug, path);
	else if (has_dwarf || open_go(sf, path) != 0)
		err = open_dwarf(sf, path, NULL);
out:
	if (err) {
		symfile_close(sf);
		return err;
	}
	*out = sf;
	return 0;
}

int symfile_open_build_id(const char *build_id, const struct symfile_opts *opts,
			  struct symfile **out)
{
	struct symfile *sf;
	char debug[4096];
	int err;

	*out = NULL;
	if (!buildid_valid(build_id))
		return -ERR_BADBUILDID;
	err = symfile_new(opts, &sf);
	if (err)
		return err;
	err = buildid_normalize(build_id, BUILDID_WHOLE, sf->build_id);
	if (err)
		goto out;
	if (try_index(sf) == 0)
		goto out;
	err = find_debug_file(sf, debug, sizeof(debug));
	if (!err)
		err = open_dwarf(sf, debug, NULL);
out:
	if (err) {
		symfile_close(sf);
		return err;
	}
	*out = sf;
	return 0;
}

int symfile_lookup(struct symfile *sf, uint64_t addr, struct sym_frame *out, int max)
{
	if (sf->idx)
		return symindex_lookup(sf->idx, addr, out, max);
	if (sf->go)
		return symview_lookup(goview_view(sf->go), addr, out, max);
	return dwarfsym_lookup(sf->dw, addr, out, max);
}

void symfile_lookup_symtab(struct symfile *sf, uint64_t addr, struct sym_frame *out)
{
	if (sf->idx)
		symindex_lookup_symtab(sf->idx, addr, out);
	else if (sf->go)
		symview_lookup_symtab(goview_view(sf->go), addr, out);
	else
		dwarfsym_lookup_symtab(sf->dw, addr, out);
}

int symfile_build_index(struct symfile *sf)
{
	const struct symview *v;
	char path[4096];
	int err;

	if (sf->idx)
		return 0;
	if (!sf->opts.index_dir || sf->opts.relative_names || !sf->build_id[0])
		return -EINVAL;
	err = index_path(sf, path, sizeof(path));
	if (err)
		return err;
	if (mkdir(sf->opts.index_dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (sf->go)
		v = goview_view(sf->go);
	else if ((err = dwarfsym_view_all(sf->dw, &v)) != 0)
		return err;
	err = symindex_write(v, sf->build_id, path);
	if (err)
		return err;
	err = symindex_open(path, sf->build_id, &sf->idx);
	if (err)
		return err;
	dwarfsym_close(sf->dw);
	sf->dw = NULL;
	goview_free(sf->go);
	sf->go = NULL;
	return 0;
}

int symfile_is_indexed(const struct symfile *sf)
{
	return sf->idx != NULL;
}

const char *symfile_build_id(const struct symfile *sf)
{
	return sf->build_id;
}

int symfile_addr_width(const struct symfile *sf)
{
	return sf->addr_width;
}

void symfile_close(struct symfile *sf)
{
	if (!sf)
		return;
	symindex_close(sf->idx);
	dwarfsym_close(sf->dw);
	goview_free(sf->go);
	free(sf);
}
