/*
 * fleetsym-symbolize - offline, addr2line-compatible front end of the symbol engine.
 *
 * Output follows eu-addr2line's format for the same flags (-f -i -C -a -s, -p as its
 * --pretty-print), one answer per address, flushed as soon as it is written so that the tool
 * can be driven as a co-process. --json prints one JSON object per address instead.
 *
 * Exit status: 0 all addresses parsed; 1 the file could not be opened or some input was not an
 * address (each such line is answered with ?? and reported on stderr); 2 usage errors.
 */
#include "symbolizer/engine/lineflags.h"
#include "symbolizer/engine/symaddr.h"
#include "symbolizer/engine/symfile.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/version.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FRAMES     128
#define MAX_DEBUG_DIRS 16

struct cli {
	int functions, inlines, demangle, addresses, pretty, basenames, json;
	int symbols, sections; /* -S, -x (which implies -S) */
	int relative;	       /* --relative (-A, the default, undoes it) */
	int flags;	       /* -F: line-table flags (through lineflags, opened once) */
	struct lineflags *lflags;
	int lflags_failed;
	struct symaddr *syms; /* the -e file's symbol tables, opened at first need */
	int syms_failed;
	const char *exe, *build_id, *index_dir, *debuginfo_path;
	char *path_dirs; /* the absolute elements of --debuginfo-path, split in place */
	const char *debug_dirs[MAX_DEBUG_DIRS + 1];
	int ndebug_dirs;
	struct symfile *sf;
	const char *module; /* basename of the file, for module+0xoff */
};

static void usage(FILE *f)
{
	/* the help text is laid out as it prints */
	/* clang-format off */
	fputs("usage: fleetsym-symbolize [-e FILE | --build-id HEX] [-f] [-i] [-C] [-a] [-p] [-s]\n"
	      "                          [--debug-dir DIR]... [--index-dir DIR] [--json] [ADDR...]\n"
	      "Symbolizes ELF virtual addresses (hex) given as arguments or one per line on stdin.\n"
	      "An address may also be a symbol of the file's symbol table: NAME, NAME+OFF, NAME-OFF.\n"
	      "  -e, --exe FILE        the ELF file (unstripped, a .debug file, or stripped with its\n"
	      "                        debug file under a debug dir)\n"
	      "      --build-id HEX    find the debug file by build ID under the debug dirs\n"
	      "  -f, --functions       print function names\n"
	      "  -i, --inlines         print the inline chain\n"
	      "  -C, --demangle        demangle C++/Rust names\n"
	      "  -a, --addresses       print the address first\n"
	      "  -p, --pretty-print    one line per frame\n"
	      "  -s, --basenames       file basenames only\n"
	      "  -A, --absolute        file names with the compilation directory (the default)\n"
	      "      --relative        file names as DWARF has them, without the compilation\n"
	      "                        directory (reads DWARF: the index holds joined names)\n"
	      "  -S, --symbols         also the ELF symbol with +0xOFF (needs -e)\n"
	      "  -x, --symbols-sections  -S and the section name\n"
	      "  -F, --flags           also the line-table flags (is_stmt, discriminator, ...; -e)\n"
	      "      --debug-dir DIR   .build-id layout to search (repeatable; default /usr/lib/debug)\n"
	      "      --debuginfo-path PATH  eu-addr2line's: where debug files are looked up by\n"
	      "                        build ID and by .gnu_debuglink (':'-separated, '+'/'-'\n"
	      "                        CRC check on/off; default :.debug:/usr/lib/debug)\n"
	      "      --index-dir DIR   use, or build after answering, the symbol index there\n"
	      "      --json            one JSON object per address\n"
	      "      --version         version, commit and library versions\n"
	      "Not taken from eu-addr2line: -p/--pid, -k/--kernel, -K, -M and --core (they need a\n"
	      "live process, the kernel or a core file; -p is --pretty-print here, as in binutils),\n"
	      "and its -j/--section (honoured by it only for relocatable .o files, which the engine\n"
	      "does not read).\n",
	      f);
	/* clang-format on */
}

static const char *base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p;
}

static const char *frame_name(const struct cli *c, const struct sym_frame *f)
{
	if (!f->function)
		return "??";
	return c->demangle ? f->function : f->linkage;
}

/* Output goes through stdio's buffer without format parsing: this is the hot path of a warm
 * batch. */
static void out_str(const char *s)
{
	fputs_unlocked(s, stdout);
}

static void out_u32(uint32_t v)
{
	char buf[12], *p = buf + sizeof(buf);

	*--p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	out_str(p);
}

static void print_src(const struct cli *c, const char *file, uint32_t line, uint32_t col)
{
	if (c->basenames)
		file = base_name(file);
	out_str(file);
	putc_unlocked(':', stdout);
	out_u32(line);
	if (col) {
		putc_unlocked(':', stdout);
		out_u32(col);
	}
}

/* The -e file's symbol tables for -S/-x and symbol input, opened once (NULL with --build-id,
 * or when the file cannot be read). */
static struct symaddr *symbols_of(struct cli *c)
{
	if (!c->syms && !c->syms_failed && c->exe)
		c->syms_failed =
		    symaddr_open(c->exe, c->ndebug_dirs ? c->debug_dirs : NULL, &c->syms) != 0;
	return c->syms;
}

/* eu-addr2line -S / -x: SYMBOL[+0xOFF][ (SECTION)] from the file's symbol table */
static void print_symbol(const struct cli *c, uint64_t addr)
{
	char buf[1200] = "??";

	if (c->syms) /* opened in main() for -S/-x */
		(void)symaddr_describe(c->syms, addr, c->sections, buf, sizeof(buf));
	out_str(buf);
}

/* eu-addr2line -F: the line-table flags of ADDR's row, read through libdwfl as it reads them
 * (the -e file only: nothing with --build-id) */
static void print_flags(struct cli *c, uint64_t addr)
{
	char buf[256];

	if (!c->lflags && !c->lflags_failed && c->exe)
		c->lflags_failed = lineflags_open(c->exe, c->debuginfo_path, &c->lflags) != 0;
	if (!c->lflags)
		return;
	lineflags_describe(c->lflags, addr, buf, sizeof(buf));
	out_str(buf);
}

/* eu-addr2line's "NAME inlined at CALLSITE in OUTER" line for an inlined innermost frame;
 * OUTER is the ELF symbol at the address, as eu-addr2line prints it. */
static void print_inlined_head(const struct cli *c, uint64_t addr, const struct sym_frame *f)
{
	const struct sym_frame *site = &f[1];
	const char *file = site->file ? site->file : "???";
	struct sym_frame outer;

	out_str(frame_name(c, &f[0]));
	out_str(" inlined");
	if (site->line == 0) {
		out_str(" from ");
		out_str(c->basenames && site->file ? base_name(file) : file);
	} else {
		out_str(" at ");
		print_src(c, file, site->line, site->column);
	}
	out_str(" in ");
	if (c->symbols) {
		print_symbol(c, addr);
	} else {
		symfile_lookup_symtab(c->sf, addr, &outer);
		out_str(frame_name(c, &outer));
	}
	putc_unlocked('\n', stdout);
}

static void print_text(struct cli *c, uint64_t addr, const struct sym_frame *f, int n)
{
	int head = 0; /* the inlined head line, which carries the symbol */

	if (c->addresses)
		printf("0x%.*" PRIx64 "%s", symfile_addr_width(c->sf), addr,
		       c->pretty ? ": " : "\n");
	if (c->functions) {
		if (f[0].source == SYM_SRC_DWARF && f[0].inlined && n > 1 && !c->pretty) {
			print_inlined_head(c, addr, f);
			head = 1;
		} else if (!c->symbols || f[0].source == SYM_SRC_DWARF) {
			/* without DWARF's name, eu-addr2line -S prints only the symbol */
			out_str(frame_name(c, &f[0])), out_str(c->pretty ? " " : "\n");
		}
	}
	if (c->symbols && !head)
		print_symbol(c, addr), out_str(c->pretty ? " " : "\n");
	if (c->pretty && (c->functions || c->symbols))
		out_str("at ");
	if (f[0].file) {
		print_src(c, f[0].file, f[0].line, f[0].column);
		if (c->flags)
			print_flags(c, addr);
		putc_unlocked('\n', stdout);
	} else {
		out_str("??:0\n");
	}
	if (!c->inlines || f[0].source != SYM_SRC_DWARF)
		return;
	for (int i = 0; i + 1 < n && f[i].inlined; i++) {
		if (c->pretty)
			out_str(" (inlined by) ");
		if (c->functions)
			out_str(frame_name(c, &f[i + 1])), out_str(c->pretty ? " at " : "\n");
		if (f[i + 1].file) {
			print_src(c, f[i + 1].file, f[i + 1].line, f[i + 1].column);
			putc_unlocked('\n', stdout);
		} else {
			out_str("??:0\n");
		}
	}
}

static void print_json(const struct cli *c, uint64_t addr, const struct sym_frame *f, int n)
{
	static const char *const sources[] = {"none", "symtab", "dwarf"};
	json_t *o = json_object(), *frames = json_array();
	char buf[64];
	char *s;

	if (!o || !frames)
		goto out;
	snprintf(buf, sizeof(buf), "0x%" PRIx64, addr);
	json_object_set_new(o, "address", json_string(buf));
	json_object_set_new(o, "build_id", json_string(symfile_build_id(c->sf)));
	json_object_set_new(o, "source", json_string(sources[f[0].source]));
	if (f[0].source == SYM_SRC_NONE) {
		snprintf(buf, sizeof(buf), "%.40s+0x%" PRIx64, c->module, addr);
		json_object_set_new(o, "unknown", json_string(buf));
	}
	for (int i = 0; i < n; i++) {
		json_t *fr = json_object();

		if (!fr)
			break;
		if (f[i].function) {
			json_object_set_new(fr, "function", json_string(f[i].function));
			json_object_set_new(fr, "linkage_name", json_string(f[i].linkage));
		}
		if (f[i].file) {
			json_object_set_new(fr, "file", json_string(f[i].file));
			json_object_set_new(fr, "line", json_integer(f[i].line));
			json_object_set_new(fr, "column", json_integer(f[i].column));
		}
		json_object_set_new(fr, "inlined", json_boolean(f[i].inlined));
		json_array_append_new(frames, fr);
	}
	json_object_set(o, "frames", frames);
	s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (s)
		puts(s);
	free(s);
out:
	json_decref(frames);
	json_decref(o);
}

/* Parse a hex address as addr2line does ("0x" optional, surrounding blanks ignored). */
static int parse_addr(const char *s, uint64_t *out)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || *s == '-')
		return -ERR_BADINPUT;
	errno = 0;
	*out = strtoull(s, &end, 16);
	if (errno || end == s)
		return -ERR_BADINPUT;
	while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
		end++;
	return *end ? -ERR_BADINPUT : 0;
}

static int answer(struct cli *c, const char *text)
{
	struct sym_frame frames[MAX_FRAMES];
	uint64_t addr = 0;
	int n, bad = parse_addr(text, &addr) != 0;

	/* eu-addr2line's symbol input: NAME, NAME+OFF, NAME-OFF (needs the file, not a build ID) */
	if (bad && symbols_of(c) && symaddr_resolve(c->syms, text, &addr) == 0)
		bad = 0;

	if (bad) {
		fprintf(stderr, "fleetsym-symbolize: not an address: '%.*s'\n",
			(int)strcspn(text, "\r\n"), text);
		memset(frames, 0, sizeof(frames[0]));
		n = 1;
	} else {
		n = symfile_lookup(c->sf, addr, frames, MAX_FRAMES);
	}
	if (c->json)
		print_json(c, addr, frames, n);
	else
		print_text(c, addr, frames, n);
	return bad;
}

/*
 * Answer stdin line by line. Answers are buffered while more input is already there and
 * flushed before every read that could block, so a batch costs few writes and a co-process
 * gets each answer as soon as its question is read.
 */
static int answer_stdin(struct cli *c)
{
	enum { LINE_MAX_LEN = 4096 };
	static char buf[1 << 16];
	size_t start = 0, len = 0; /* unread input is buf[start, len) */
	int bad = 0, eof = 0, skipping = 0;

	while (!eof || start < len) {
		char *line = buf + start, *nl = memchr(line, '\n', len - start);
		size_t n;

		if (!nl && !eof && len - start < sizeof(buf) - 1) {
			ssize_t r;

			memmove(buf, line, len - start);
			len -= start;
			start = 0;
			fflush(stdout);
			r = read(STDIN_FILENO, buf + len, sizeof(buf) - 1 - len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				eof = 1;
			else
				len += (size_t)r;
			continue;
		}
		n = nl ? (size_t)(nl - line) : len - start;
		line[n] = '\0';
		if (skipping || n > LINE_MAX_LEN) {
			if (!skipping)
				bad |= answer(c, "(line too long)");
			skipping = !nl;
		} else if (n || nl) {
			bad |= answer(c, line);
		}
		start += nl ? n + 1 : n;
	}
	fflush(stdout);
	return bad;
}

/* --debuginfo-path without --debug-dir: its absolute elements are where build IDs are looked
 * up, as libdwfl does. */
static int path_debug_dirs(struct cli *c)
{
	const char *p = c->debuginfo_path;
	char *save = NULL, *tok;

	if (*p == '+' || *p == '-')
		p++;
	c->path_dirs = strdup(p);
	if (!c->path_dirs)
		return -1;
	for (tok = strtok_r(c->path_dirs, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		if (*tok == '+' || *tok == '-')
			tok++;
		if (*tok != '/')
			continue;
		if (c->ndebug_dirs == MAX_DEBUG_DIRS) {
			fprintf(stderr, "fleetsym-symbolize: at most %d absolute directories\n",
				MAX_DEBUG_DIRS);
			return -1;
		}
		c->debug_dirs[c->ndebug_dirs++] = tok;
	}
	if (!c->ndebug_dirs) /* none: no build-ID search (an empty list, not the default) */
		c->debug_dirs[c->ndebug_dirs++] = "/nonexistent";
	return 0;
}

static int parse_args(struct cli *c, int argc, char **argv)
{
	enum {
		OPT_BUILD_ID = 256,
		OPT_DEBUG_DIR,
		OPT_INDEX_DIR,
		OPT_JSON,
		OPT_VERSION,
		OPT_DEBUGINFO_PATH,
		OPT_RELATIVE
	};
	static const struct option longopts[] = {
	    {"exe", required_argument, NULL, 'e'},
	    {"functions", no_argument, NULL, 'f'},
	    {"inlines", no_argument, NULL, 'i'},
	    {"demangle", no_argument, NULL, 'C'},
	    {"addresses", no_argument, NULL, 'a'},
	    {"pretty-print", no_argument, NULL, 'p'},
	    {"basenames", no_argument, NULL, 's'},
	    {"absolute", no_argument, NULL, 'A'},
	    {"relative", no_argument, NULL, OPT_RELATIVE},
	    {"flags", no_argument, NULL, 'F'},
	    {"symbols", no_argument, NULL, 'S'},
	    {"symbols-sections", no_argument, NULL, 'x'},
	    {"build-id", required_argument, NULL, OPT_BUILD_ID},
	    {"debug-dir", required_argument, NULL, OPT_DEBUG_DIR},
	    {"index-dir", required_argument, NULL, OPT_INDEX_DIR},
	    {"debuginfo-path", required_argument, NULL, OPT_DEBUGINFO_PATH},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "e:fiCapsSxAFh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e': c->exe = optarg; break;
		case 'f': c->functions = 1; break;
		case 'i': c->inlines = 1; break;
		case 'C': c->demangle = 1; break;
		case 'a': c->addresses = 1; break;
		case 'p': c->pretty = 1; break;
		case 's': c->basenames = 1; break;
		case 'A': c->relative = 0; break;
		case OPT_RELATIVE: c->relative = 1; break;
		case 'F': c->flags = 1; break;
		case 'S': c->symbols = 1; break;
		case 'x': c->symbols = c->sections = 1; break;
		case OPT_BUILD_ID: c->build_id = optarg; break;
		case OPT_INDEX_DIR: c->index_dir = optarg; break;
		case OPT_DEBUGINFO_PATH: c->debuginfo_path = optarg; break;
		case OPT_JSON: c->json = 1; break;
		case OPT_DEBUG_DIR:
			if (c->ndebug_dirs == MAX_DEBUG_DIRS) {
				fprintf(stderr, "fleetsym-symbolize: at most %d --debug-dir\n",
					MAX_DEBUG_DIRS);
				return -1;
			}
			c->debug_dirs[c->ndebug_dirs++] = optarg;
			break;
		case 'h': usage(stdout); exit(0);
		case OPT_VERSION:
			version_print(stdout, "fleetsym-symbolize", VERSION_LIBS_SYMBOLIZE);
			exit(0);
		default: return -1;
		}
	}
	if (c->exe && c->build_id) {
		fprintf(stderr, "fleetsym-symbolize: -e and --build-id exclude each other\n");
		return -1;
	}
	if (!c->exe && !c->build_id)
		c->exe = "a.out";
	if (c->debuginfo_path && !c->ndebug_dirs && path_debug_dirs(c) < 0)
		return -1;
	if (c->symbols && !c->exe) {
		fprintf(stderr, "fleetsym-symbolize: -S and -x need -e FILE\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c = {0};
	struct symfile_opts opts = {0};
	int bad = 0, err;

	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (parse_args(&c, argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	if (c.ndebug_dirs)
		opts.debug_dirs = c.debug_dirs;
	opts.index_dir = c.index_dir;
	opts.use_debuglink = 1;
	opts.debuginfo_path = c.debuginfo_path;
	opts.relative_names = c.relative;
	if (c.build_id) {
		err = symfile_open_build_id(c.build_id, &opts, &c.sf);
		c.module = c.build_id;
	} else {
		err = symfile_open(c.exe, &opts, &c.sf);
		c.module = base_name(c.exe);
	}
	if (err) {
		fprintf(stderr, "fleetsym-symbolize: %s: %s\n", c.build_id ? c.build_id : c.exe,
			err == -ENOENT && c.build_id ? "no debug file for this build ID"
						     : err_str(err));
		return 1;
	}
	if (c.symbols)
		symbols_of(&c);
	if (optind < argc) {
		for (int i = optind; i < argc; i++)
			bad |= answer(&c, argv[i]);
	} else {
		bad |= answer_stdin(&c);
	}
	if (c.index_dir && !c.relative && !symfile_is_indexed(c.sf)) {
		err = symfile_build_index(c.sf);
		if (err)
			fprintf(stderr, "fleetsym-symbolize: index not built: %s\n", err_str(err));
	}
	symaddr_close(c.syms);
	lineflags_close(c.lflags);
	symfile_close(c.sf);
	free(c.path_dirs);
	return bad ? 1 : 0;
}
