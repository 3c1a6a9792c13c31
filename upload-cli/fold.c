/*
 * fold - perf script samples: a header line, frames leaf first (indented), a blank line.
 */
#include "upload-cli/fold.h"

#include "lib/buildid.h"
#include "lib/elfutil.h"
#include "lib/err.h"

#include <ctype.h>
#include <errno.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 1024
#define MAX_FILES  256 /* files of unnamed frames whose layout is kept */
#define MAX_LOADS  16

struct file {
	char *path;
	char build_id[BUILDID_HEX_MAX]; /* "" when none */
	struct {
		uint64_t vaddr, memsz, offset;
	} load[MAX_LOADS];
	size_t nload;
};

struct folder {
	struct file files[MAX_FILES];
	size_t nfiles;
	char *frames[MAX_FRAMES];
	size_t nframes;
	char comm[256];
	int in_sample;
};

static struct file *file_of(struct folder *fo, const char *path)
{
	struct file *f;
	GElf_Phdr ph;
	size_t n;
	Elf *elf;
	int fd;

	for (size_t i = 0; i < fo->nfiles; i++)
		if (!strcmp(fo->files[i].path, path))
			return &fo->files[i];
	if (fo->nfiles == MAX_FILES)
		return NULL;
	f = &fo->files[fo->nfiles];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);
	if (!f->path)
		return NULL;
	fo->nfiles++;
	if (elfutil_open(path, &fd, &elf))
		return f;
	if (buildid_from_elf(elf, f->build_id))
		f->build_id[0] = '\0';
	if (elf_getphdrnum(elf, &n) == 0)
		for (size_t i = 0; i < n && f->nload < MAX_LOADS; i++) {
			if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
				continue;
			f->load[f->nload].vaddr = ph.p_vaddr;
			f->load[f->nload].memsz = ph.p_memsz;
			f->load[f->nload++].offset = ph.p_offset;
		}
	elfutil_close(fd, elf);
	return f;
}

/* A frame line: "ADDR SYM[+0xOFF] (DSO)". Sets a malloc'd frame name. */
static int frame(struct folder *fo, char *line, char **name)
{
	char *p = line, *end, *dso = NULL, *sym, *off;
	unsigned long long addr;

	while (isspace((unsigned char)*p))
		p++;
	errno = 0;
	addr = strtoull(p, &end, 16);
	if (end == p || errno || !isspace((unsigned char)*end))
		return -ERR_BADINPUT;
	sym = end;
	while (isspace((unsigned char)*sym))
		sym++;
	end = sym + strlen(sym);
	while (end > sym && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (end > sym && end[-1] == ')') {
		char *open = strrchr(sym, '(');

		if (open) {
			end[-1] = '\0';
			dso = open + 1;
			*open = '\0';
			end = open;
			while (end > sym && isspace((unsigned char)end[-1]))
				*--end = '\0';
		}
	}
	if (!strcmp(sym, "[unknown]") && dso && dso[0] == '/') {
		struct file *f = file_of(fo, dso);

		for (size_t i = 0; f && f->build_id[0] && i < f->nload; i++)
			if (addr >= f->load[i].vaddr &&
			    addr - f->load[i].vaddr < f->load[i].memsz) {
				size_t cap = strlen(dso) + BUILDID_HEX_MAX + 24;

				*name = malloc(cap);
				if (!*name)
					return -ENOMEM;
				snprintf(*name, cap, "%s@%s+0x%" PRIx64, dso, f->build_id,
					 (uint64_t)(addr - f->load[i].vaddr + f->load[i].offset));
				for (char *c = *name; *c; c++)
					if (*c == ';')
						*c = '_';
				return 0;
			}
	}
	off = strstr(sym, "+0x");
	if (off)
		*off = '\0';
	if (!*sym)
		sym = "[unknown]";
	*name = strdup(sym);
	if (!*name)
		return -ENOMEM;
	for (char *c = *name; *c; c++)
		if (*c == ';')
			*c = ':';
	return 0;
}

static void emit(struct folder *fo, FILE *out)
{
	if (fo->in_sample && fo->nframes) {
		fputs(fo->comm, out);
		for (size_t i = fo->nframes; i-- > 0;) {
			fputc(';', out);
			fputs(fo->frames[i], out);
		}
		fputs(" 1\n", out);
	}
	for (size_t i = 0; i < fo->nframes; i++)
		free(fo->frames[i]);
	fo->nframes = 0;
	fo->in_sample = 0;
}

/* A sample header: "COMM PID[/TID] [CPU] TIME: PERIOD EVENT:"; COMM may have spaces. */
static int header(struct folder *fo, const char *line)
{
	const char *p = line, *tok;
	size_t n;

	for (;;) {
		while (*p && !isspace((unsigned char)*p))
			p++;
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return -ERR_BADINPUT;
		tok = p;
		while (isdigit((unsigned char)*p) || *p == '/')
			p++;
		if (p > tok && (!*p || isspace((unsigned char)*p)))
			break;
		p = tok;
	}
	n = (size_t)(tok - line);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(fo->comm))
		return -ERR_BADINPUT;
	memcpy(fo->comm, line, n);
	fo->comm[n] = '\0';
	for (char *c = fo->comm; *c; c++)
		if (*c == ' ' || *c == ';')
			*c = '_';
	fo->in_sample = 1;
	return 0;
}

int fold_perf_script(FILE *in, FILE *out, char *errbuf, size_t errlen)
{
	struct folder *fo = calloc(1, sizeof(*fo));
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int err = 0;

	if (!fo)
		return -ENOMEM;
	while (!err && (n = getline(&line, &cap, in)) >= 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0) {
			emit(fo, out);
		} else if (isspace((unsigned char)line[0])) {
			char *name;

			if (!fo->in_sample)
				err = -ERR_BADINPUT;
			else if (fo->nframes == MAX_FRAMES)
				continue; /* the outermost frames of a deeper stack are dropped */
			else if (!(err = frame(fo, line, &name)))
				fo->frames[fo->nframes++] = name;
		} else if (line[0] == '#' || strstr(line, "PERF_RECORD_")) {
			continue;
		} else {
			emit(fo, out);
			err = header(fo, line);
		}
		if (err == -ERR_BADINPUT)
			snprintf(errbuf, errlen, "line %zu is not perf script output: '%.80s'",
				 lineno, line);
	}
	if (err)
		fo->in_sample = 0; /* a partial sample is dropped */
	emit(fo, out);
	for (size_t i = 0; i < fo->nfiles; i++)
		free(fo->files[i].path);
	free(line);
	free(fo);
	if (!err && ferror(in))
		err = -EIO;
	return err;
}
