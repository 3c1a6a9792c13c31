/*
 * lineflags - eu-addr2line -F's flags, from the row libdwfl answers for an address.
 */
#include "symbolizer/engine/lineflags.h"

#include "lib/err.h"

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lineflags {
	Dwfl_Callbacks cb;
	char *debuginfo_path; /* what cb points at (libdwfl takes a char **) */
	Dwfl *dwfl;
	Dwfl_Module *mod;
	Dwarf_Addr bias; /* libdwfl places an offline ET_DYN file at 0x10000 on (eu-addr2line's -e
			    starts it at 0 through a field outside the API): its addresses are
			    the file's plus this */
};

int lineflags_open(const char *path, const char *debuginfo_path, struct lineflags **out)
{
	struct lineflags *lf = calloc(1, sizeof(*lf));
	int err = 0;

	*out = NULL;
	if (!lf)
		return -ENOMEM;
	if (debuginfo_path && !(lf->debuginfo_path = strdup(debuginfo_path))) {
		err = -ENOMEM;
		goto out;
	}
	lf->cb.find_elf = dwfl_build_id_find_elf;
	lf->cb.find_debuginfo = dwfl_standard_find_debuginfo;
	lf->cb.section_address = dwfl_offline_section_address;
	lf->cb.debuginfo_path = debuginfo_path ? &lf->debuginfo_path : NULL;
	lf->dwfl = dwfl_begin(&lf->cb);
	if (!lf->dwfl) {
		err = -ENOMEM;
		goto out;
	}
	dwfl_report_begin(lf->dwfl);
	lf->mod = dwfl_report_offline(lf->dwfl, "", path, -1);
	dwfl_report_end(lf->dwfl, NULL, NULL);
	if (!lf->mod || !dwfl_module_getelf(lf->mod, &lf->bias))
		err = access(path, R_OK) ? -ENOENT : -ERR_BADELF;
out:
	if (err) {
		lineflags_close(lf);
		return err;
	}
	*out = lf;
	return 0;
}

static void add(char *buf, size_t len, size_t *at, const char *s)
{
	int n = snprintf(buf + *at, len - *at, "%s", s);

	if (n > 0 && (size_t)n < len - *at)
		*at += (size_t)n;
}

void lineflags_describe(struct lineflags *lf, uint64_t addr, char *buf, size_t len)
{
	static const struct {
		int (*get)(Dwarf_Line *, bool *);
		const char *note;
	} notes[] = {{dwarf_linebeginstatement, " (is_stmt)"},
		     {dwarf_lineblock, " (basic_block)"},
		     {dwarf_lineprologueend, " (prologue_end)"},
		     {dwarf_lineepiloguebegin, " (epilogue_begin)"}};
	Dwfl_Line *line = dwfl_module_getsrc(lf->mod, addr + lf->bias);
	Dwarf_Addr bias;
	Dwarf_Line *info = line ? dwfl_dwarf_line(line, &bias) : NULL;
	char num[40];
	unsigned int v;
	size_t at = 0;
	bool flag;

	if (!len)
		return;
	buf[0] = '\0';
	if (!info)
		return;
	for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++)
		if (notes[i].get(info, &flag) == 0 && flag)
			add(buf, len, &at, notes[i].note);
	if (dwarf_lineisa(info, &v) == 0 && v) {
		snprintf(num, sizeof(num), " (isa %u)", v);
		add(buf, len, &at, num);
	}
	if (dwarf_linediscriminator(info, &v) == 0 && v) {
		snprintf(num, sizeof(num), " (discriminator %u)", v);
		add(buf, len, &at, num);
	}
}

void lineflags_close(struct lineflags *lf)
{
	if (!lf)
		return;
	if (lf->dwfl)
		dwfl_end(lf->dwfl);
	free(lf->debuginfo_path);
	free(lf);
}
