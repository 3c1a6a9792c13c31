/*
 * fixture.h - what several unit tests need around real ELF fixtures: a temp dir with fixtures
 * compiled there from the source tree, removed at exit, and a look at an ELF file's sections.
 * Include after t.h.
 */
#ifndef FLEETSYM_FIXTURE_H
#define FLEETSYM_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fixture_dir[64];

__attribute__((destructor, unused)) static void fixture_teardown(void)
{
	char cmd[128];

	if (fixture_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", fixture_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", fixture_dir);
	}
}

/* Once per test binary: a temp dir /tmp/NAME.XXXXXX in which the shell command CMD runs, with
 * %1$s standing for that dir and %2$s for the source tree ($FLEETSYM_TOP, default the current
 * dir, as under make). NULL when gcc or objcopy is missing; a failed command fails the test. */
static inline const char *fixture_setup(const char *name, const char *cmd_fmt)
{
	char cmd[4096], top[PATH_MAX];

	if (fixture_dir[0])
		return fixture_dir;
	if (system("command -v gcc >/dev/null && command -v objcopy >/dev/null") != 0)
		return NULL;
	if (!realpath(getenv("FLEETSYM_TOP") ? getenv("FLEETSYM_TOP") : ".", top))
		T_FAIL_("realpath: %s", strerror(errno));
	snprintf(fixture_dir, sizeof(fixture_dir), "/tmp/%s.XXXXXX", name);
	CHECK(mkdtemp(fixture_dir));
	if (snprintf(cmd, sizeof(cmd), cmd_fmt, fixture_dir, top) >= (int)sizeof(cmd))
		T_FAIL_("path too long");
	if (system(cmd) != 0)
		T_FAIL_("building the fixtures failed: %s", cmd);
	return fixture_dir;
}

/* Sections with SHF_COMPRESSED, as libelf sees them; -1 if PATH cannot be opened. */
static inline int fixture_compressed_sections(const char *path)
{
	int fd = open(path, O_RDONLY), n = 0;
	Elf_Scn *scn = NULL;
	Elf *elf;

	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_COMPRESSED))
			n++;
	}
	elf_end(elf);
	close(fd);
	return n;
}

#endif
