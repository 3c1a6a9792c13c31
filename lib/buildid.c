/*
 * buildid - reads the GNU build ID note from SHT_NOTE sections, or from PT_NOTE segments when
 * the section headers are gone; without one, a build ID derived from the Go build ID note.
 */
#include "lib/buildid.h"

#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int buildid_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
		      (s[n] >= 'A' && s[n] <= 'F')))
			return 0;
	return n >= 2 && n <= 64;
}

int buildid_normalize(const char *s, size_t len, char hex[BUILDID_HEX_MAX])
{
	size_t n = 0;

	for (; s && n < len && s[n]; n++) {
		if (n + 1 >= BUILDID_HEX_MAX) {
			hex[0] = '\0';
			return -ERR_BADBUILDID;
		}
		hex[n] = (char)tolower((unsigned char)s[n]);
	}
	hex[n] = '\0';
	if (!buildid_valid(hex)) {
		hex[0] = '\0';
		return -ERR_BADBUILDID;
	}
	return 0;
}

int buildid_from_go(const char *go_id, size_t len, char hex[BUILDID_HEX_MAX])
{
	char sha[SHA256_HEX];
	struct sha256 c;

	hex[0] = '\0';
	if (len == 0 || len > BUILDID_GO_MAX)
		return -ERR_BADBUILDID;
	for (size_t i = 0; i < len; i++)
		if (go_id[i] < 0x21 || go_id[i] > 0x7e)
			return -ERR_BADBUILDID;
	sha256_init(&c);
	sha256_update(&c, (const uint8_t *)go_id, len);
	sha256_final(&c, sha);
	memcpy(hex, sha, 40);
	hex[40] = '\0';
	return 0;
}

/* The GNU build ID in DATA's notes, or with GO the build ID derived from the Go one. */
static int note_in(Elf_Data *data, int go, char hex[BUILDID_HEX_MAX])
{
	size_t off = 0, name_off, desc_off;
	GElf_Nhdr nh;

	while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const unsigned char *desc = (const unsigned char *)data->d_buf + desc_off;
		const char *name = (const char *)data->d_buf + name_off;

		if (go) {
			/* Go's linker writes type 4 under the name "Go\0\0" (n_namesz 4) */
			if (nh.n_type == 4 && (nh.n_namesz == 3 || nh.n_namesz == 4) &&
			    !memcmp(name, "Go", 3))
				return buildid_from_go((const char *)desc, nh.n_descsz, hex)
					   ? -ERR_BADELF
					   : 0;
			continue;
		}
		if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 || memcmp(name, "GNU", 4) != 0)
			continue;
		if (nh.n_descsz < 1 || nh.n_descsz > 32)
			return -ERR_BADELF;
		for (size_t i = 0; i < nh.n_descsz; i++)
			snprintf(hex + 2 * i, 3, "%02x", desc[i]);
		return 0;
	}
	return -ERR_NOBUILDID;
}

static int notes_in(Elf *elf, int go, char hex[BUILDID_HEX_MAX])
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	size_t n;
	int err = -ERR_NOBUILDID;

	while ((scn = elf_nextscn(elf, scn)) && err == -ERR_NOBUILDID)
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE)
			err = note_in(elf_getdata(scn, NULL), go, hex);
	if (err != -ERR_NOBUILDID || elf_getphdrnum(elf, &n) != 0)
		return err;
	for (size_t i = 0; i < n && err == -ERR_NOBUILDID; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_NOTE && ph.p_offset)
			err = note_in(elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
							   ELF_T_NHDR),
				      go, hex);
	}
	return err;
}

int buildid_from_elf(Elf *elf, char hex[BUILDID_HEX_MAX])
{
	int err = notes_in(elf, 0, hex);

	return err == -ERR_NOBUILDID ? notes_in(elf, 1, hex) : err;
}

int buildid_from_path(const char *path, char hex[BUILDID_HEX_MAX])
{
	Elf *elf;
	int fd, err;

	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	err = buildid_from_elf(elf, hex);
	elfutil_close(fd, elf);
	return err;
}

int buildid_debug_path(const char *dir, const char *hex, char *buf, size_t len)
{
	int n;

	if (!buildid_valid(hex))
		return -ERR_BADBUILDID;
	n = snprintf(buf, len, "%s/.build-id/%.2s/%s.debug", dir, hex, hex + 2);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}
