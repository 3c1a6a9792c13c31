/*
 * debugstore - debug files by build ID under <data-dir>/debuginfo, a JSON sidecar beside each.
 *
 * In memory: a chained hash table of entries (build ID → source, quality, sizes, times, SHA-256
 * of the bytes as received) and, threaded through the non-upload entries, an LRU list that
 * eviction walks from its cold end. The table is rebuilt from the directory at open: the files
 * are the only truth, so there is no journal to keep in step with them.
 *
 * An install does the slow parts (hashing, ELF checks, decompression) on the caller's temp file
 * without the lock; under the lock it decides (create, identical, replace, refuse) and renames
 * the metadata, then the ELF file, into place. The metadata records the ELF file's size and
 * mtime, so a crash between the two renames leaves a sidecar that visibly does not describe its
 * file; open rebuilds such sidecars from the file.
 *
 * Decompression: libelf's elf_compress(scn, 0, 0) on each SHF_COMPRESSED section, in place
 * (ELF_C_RDWR), with our own layout: program headers and allocated sections keep their offsets
 * (an executable stays runnable, as eu-elfcompress does it); the non-allocated sections are laid
 * out again after them, in their old order.
 */
#include "cache/debugstore.h"

#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/sha256.h"
#include "lib/log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#define DSTORE_MAX_ENTRIES (1u << 20)
/* Decompressed bytes of one file (libelf holds them in memory while rewriting). */
#define DSTORE_MAX_RAW	 ((uint64_t)4 << 30)
#define DSTORE_MAX_ALIGN ((uint64_t)1 << 20)
#define DSTORE_META_MAX	 16384
/* last_used is persisted as the sidecar's mtime, at most this often per entry. */
#define DSTORE_TOUCH_S 60

struct dent {
	char bid[BUILDID_HEX_MAX];
	enum dstore_source source;
	unsigned quality;
	uint64_t size, orig_size;
	time_t added, last_used, touched;
	int orig;	      /* <bid>.orig holds the bytes as received (orig_size of them) */
	char sha[SHA256_HEX]; /* of the bytes as received; "" when unknown (rebuilt sidecar) */
	struct dent *hnext;
	struct dent *prev, *next; /* LRU of non-upload entries, coldest first */
};

struct dstore {
	char data_dir[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX];
	uint64_t cap, max_inflated, reserve;
	dstore_elf_checker check; /* NULL: libelf runs here */
	void *check_ctx;
	pthread_mutex_t lock;
	struct dent **buckets;
	size_t nbuckets, n;
	struct dent *lru_head, *lru_tail;
	struct dstore_stats st;
};

/* What an install learnt about its file before taking the lock. */
struct prep {
	char sha[SHA256_HEX];
	uint64_t orig_size, size;
	unsigned quality;
	time_t mtime;
	char meta_tmp[PATH_MAX]; /* "" when none */
	char orig_tmp[PATH_MAX]; /* the bytes as received when inflated, else "" */
};

static const char *const source_names[] = {"upload", "local", "debuginfod", "peer"};

const char *dstore_source_name(enum dstore_source src)
{
	return (unsigned)src < sizeof(source_names) / sizeof(source_names[0]) ? source_names[src]
									      : "unknown";
}

static int source_from_name(const char *name, enum dstore_source *src)
{
	for (unsigned i = 0; i < sizeof(source_names) / sizeof(source_names[0]); i++)
		if (name && strcmp(name, source_names[i]) == 0) {
			*src = (enum dstore_source)i;
			return 0;
		}
	return -1;
}

int dstore_quality_rank(unsigned q)
{
	if ((q & DSTORE_Q_DWARF) && (q & DSTORE_Q_LINES))
		return 4;
	if (q & DSTORE_Q_DWARF)
		return 3;
	if (q & DSTORE_Q_PCLNTAB)
		return 2;
	return (q & DSTORE_Q_SYMTAB) ? 1 : 0;
}

const char *dstore_quality_name(unsigned q)
{
	static const char *const names[] = {"no symbols", "symbol table only",
					    "Go pclntab (functions, lines, inline frames)",
					    "DWARF without line tables", "DWARF with line tables"};

	return names[dstore_quality_rank(q)];
}

const char *dstore_tmp_dir(const struct dstore *s)
{
	return s->tmp;
}

const char *dstore_index_dir(const struct dstore *s)
{
	return s->dir;
}

const char *dstore_data_dir(const struct dstore *s)
{
	return s->data_dir;
}

/* ---- small file helpers ---- */

static int hash_file(const char *path, char sha[SHA256_HEX], uint64_t *size)
{
	const size_t bufsz = 1 << 20;
	struct sha256 c;
	uint8_t *buf = NULL;
	int fd, err = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(bufsz);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	sha256_init(&c);
	while ((n = read(fd, buf, bufsz)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		sha256_update(&c, buf, (size_t)n);
	}
	*size = c.len;
	sha256_final(&c, sha);
out:
	free(buf);
	close(fd);
	return err;
}

/* Paths of one entry; the lengths were checked at open, so these always fit. */
static void ent_path(const struct dstore *s, const char *bid, const char *suffix,
		     char buf[PATH_MAX])
{
	int n = snprintf(buf, PATH_MAX, "%s/%s%s", s->dir, bid, suffix);

	assert(n > 0 && n < PATH_MAX);
	(void)n;
}

/* ---- ELF inspection and decompression ---- */

static int has_func_symbol(Elf_Scn *scn, const GElf_Shdr *sh)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n;

	if (!data || sh->sh_entsize == 0)
		return 0;
	n = sh->sh_size / sh->sh_entsize;
	for (size_t i = 0; i < n; i++) {
		GElf_Sym sym;

		if (!gelf_getsym(data, (int)i, &sym))
			break;
		if (GELF_ST_TYPE(sym.st_info) == STT_FUNC && sym.st_shndx != SHN_UNDEF)
			return 1;
	}
	return 0;
}

/* Quality bits of ELF, and how many sections libelf can decompress (zlib). */
static unsigned elf_quality(Elf *elf, int *nzlib)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	unsigned q = 0;

	*nzlib = 0;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return 0;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_flags & SHF_COMPRESSED) {
			GElf_Chdr ch;

			if (gelf_getchdr(scn, &ch) && ch.ch_type == ELFCOMPRESS_ZLIB)
				(*nzlib)++;
		}
		if (sh.sh_type == SHT_NOBITS || sh.sh_size == 0)
			continue;
		if ((sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) &&
		    !(q & DSTORE_Q_SYMTAB) && has_func_symbol(scn, &sh))
			q |= DSTORE_Q_SYMTAB;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name)
			continue;
		if (!strcmp(name, ".debug_info") || !strcmp(name, ".zdebug_info"))
			q |= DSTORE_Q_DWARF;
		else if (!strcmp(name, ".debug_line") || !strcmp(name, ".zdebug_line"))
			q |= DSTORE_Q_LINES;
		else if (!strcmp(name, ".text"))
			q |= DSTORE_Q_EXEC;
		else if (!strcmp(name, ".gopclntab") || !strcmp(name, ".data.rel.ro.gopclntab"))
			q |= DSTORE_Q_PCLNTAB;
	}
	return q;
}

struct secpos {
	size_t ndx;
	uint64_t off;
};

static int secpos_cmp(const void *a, const void *b)
{
	const struct secpos *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->ndx < y->ndx ? -1 : x->ndx > y->ndx;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return a > 1 ? (v + a - 1) / a * a : v;
}

/* Where the fixed part of the file ends: ELF header, program headers, segments inside the
 * file, allocated sections. Also loads every section's data, because libelf reads lazily and
 * the rewrite in place would otherwise read sections it has already overwritten. */
static int fixed_end(Elf *elf, uint64_t fsize, uint64_t *end, struct secpos *v, size_t *nv)
{
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	size_t phnum;
	uint64_t e;

	if (!gelf_getehdr(elf, &eh) || elf_getphdrnum(elf, &phnum) != 0)
		return -ERR_BADELF;
	e = eh.e_ehsize;
	if (phnum && eh.e_phoff + (uint64_t)phnum * eh.e_phentsize > e)
		e = eh.e_phoff + (uint64_t)phnum * eh.e_phentsize;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return -ERR_BADELF;
		if (ph.p_filesz && ph.p_offset <= fsize && ph.p_filesz <= fsize - ph.p_offset &&
		    ph.p_offset + ph.p_filesz > e)
			e = ph.p_offset + ph.p_filesz;
	}
	*nv = 0;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_addralign > DSTORE_MAX_ALIGN)
			return -ERR_BADELF;
		if (!elf_getdata(scn, NULL) && sh.sh_type != SHT_NOBITS && sh.sh_size)
			return -ERR_BADELF;
		if (!(sh.sh_flags & SHF_ALLOC))
			v[(*nv)++] = (struct secpos){elf_ndxscn(scn), sh.sh_offset};
		else if (sh.sh_type != SHT_NOBITS && sh.sh_offset + sh.sh_size > e)
			e = sh.sh_offset + sh.sh_size;
	}
	*end = e;
	return 0;
}

/* Sum of the sizes the zlib sections of ELF declare, without inflating anything: what an
 * install would add is known and checked before a byte of it is made. */
static int inflated_size(Elf *elf, uint64_t *total)
{
	Elf_Scn *scn = NULL;

	*total = 0;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		GElf_Chdr ch;

		if (!gelf_getshdr(scn, &sh))
			return -ERR_BADELF;
		if (!(sh.sh_flags & SHF_COMPRESSED) || !gelf_getchdr(scn, &ch) ||
		    ch.ch_type != ELFCOMPRESS_ZLIB)
			continue;
		if (ch.ch_size > DSTORE_MAX_RAW || *total + ch.ch_size > DSTORE_MAX_RAW)
			return -ERR_TOOBIG;
		*total += ch.ch_size;
	}
	return 0;
}

/* The caps of a decompression of a file of ORIG bytes in S that declares TOTAL inflated: 0
 * and the cap in *CAP_OUT when it may inflate. */
static int inflation_allowed(const struct dstore *s, const char *path, uint64_t orig,
			     uint64_t total, uint64_t *cap_out)
{
	uint64_t cap =
	    s->max_inflated && s->max_inflated < DSTORE_MAX_RAW ? s->max_inflated : DSTORE_MAX_RAW;
	uint64_t free;

	if (orig < cap / DSTORE_INFLATE_RATIO)
		cap = orig * DSTORE_INFLATE_RATIO;
	if (total > cap) {
		log_msg(FS_LOG_WARN,
			"debugstore: %s: %" PRIu64 " bytes would inflate to %" PRIu64
			", more than the cap of %" PRIu64,
			path, orig, total, cap);
		return -ERR_TOOBIG;
	}
	free = fsutil_free_bytes(s->tmp);
	if (free < total || free - total < s->reserve) {
		log_msg(FS_LOG_WARN,
			"debugstore: %s: inflating to %" PRIu64
			" bytes would leave less than %" PRIu64 " bytes free (%" PRIu64 " free)",
			path, total, s->reserve, free);
		return -ENOSPC;
	}
	*cap_out = cap;
	return 0;
}

static int decompress_sections(Elf *elf, const char *path)
{
	Elf_Scn *scn = NULL;
	uint64_t total = 0;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		GElf_Chdr ch;

		if (!gelf_getshdr(scn, &sh))
			return -ERR_BADELF;
		if (!(sh.sh_flags & SHF_COMPRESSED))
			continue;
		if (sh.sh_flags & SHF_ALLOC)
			return -ERR_BADELF; /* the gABI forbids it */
		if (!gelf_getchdr(scn, &ch) || ch.ch_type != ELFCOMPRESS_ZLIB) {
			log_msg(FS_LOG_WARN,
				"debugstore: %s: section %zu: compression this libelf cannot "
				"undo; kept compressed",
				path, elf_ndxscn(scn));
			continue;
		}
		total += ch.ch_size;
		if (total > DSTORE_MAX_RAW)
			return -ERR_TOOBIG;
		if (elf_compress(scn, 0, 0) < 0) {
			const char *m = elf_errmsg(-1);

			log_msg(FS_LOG_WARN, "debugstore: %s: section %zu: %s", path,
				elf_ndxscn(scn), m);
			/* libelf says so only in words (its error numbers are private) */
			return m && strstr(m, "out of memory") ? -ENOMEM : -ERR_BADELF;
		}
	}
	return 0;
}

/* Rewrite the ELF file at PATH (ours: a temp file) with its compressed sections inflated, when
 * they declare at most MAX_INFLATED bytes. */
static int decompress_file(const char *path, uint64_t max_inflated)
{
	struct secpos *v = NULL;
	Elf *elf = NULL;
	GElf_Ehdr eh;
	uint64_t end;
	size_t shnum, nv;
	struct stat st;
	int fd, err;
	off_t size;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	elf_version(EV_CURRENT); /* this may be the process's first libelf call (a worker's) */
	elf = elf_begin(fd, ELF_C_RDWR, NULL);
	err = -ERR_BADELF;
	if (!elf || elf_getshdrnum(elf, &shnum) != 0 || !gelf_getehdr(elf, &eh))
		goto out;
	err = inflated_size(elf, &end);
	if (!err && end > max_inflated)
		err = -ERR_TOOBIG;
	if (err)
		goto out;
	v = calloc(shnum ? shnum : 1, sizeof(*v));
	if (!v) {
		err = -ENOMEM;
		goto out;
	}
	err = decompress_sections(elf, path);
	if (!err)
		err = fixed_end(elf, (uint64_t)st.st_size, &end, v, &nv);
	if (err)
		goto out;
	err = -ERR_BADELF;
	qsort(v, nv, sizeof(*v), secpos_cmp);
	for (size_t i = 0; i < nv; i++) {
		Elf_Scn *scn = elf_getscn(elf, v[i].ndx);
		GElf_Shdr sh;

		if (!scn || !gelf_getshdr(scn, &sh))
			goto out;
		if (sh.sh_type != SHT_NOBITS)
			end = align_up(end, sh.sh_addralign);
		sh.sh_offset = end;
		if (sh.sh_type != SHT_NOBITS)
			end += sh.sh_size;
		if (!gelf_update_shdr(scn, &sh))
			goto out;
	}
	eh.e_shoff = align_up(end, gelf_getclass(elf) == ELFCLASS64 ? 8 : 4);
	if (!gelf_update_ehdr(elf, &eh))
		goto out;
	elf_flagelf(elf, ELF_C_SET, ELF_F_LAYOUT | ELF_F_DIRTY);
	size = elf_update(elf, ELF_C_WRITE);
	if (size < 0) {
		log_msg(FS_LOG_WARN, "debugstore: %s: rewrite failed: %s", path, elf_errmsg(-1));
		goto out;
	}
	err = 0;
	if (ftruncate(fd, size) < 0 || fsync(fd) < 0)
		err = -errno;
out:
	free(v);
	elfutil_close(fd, elf);
	return err;
}

static int inspect(const char *path, struct dstore_elf_facts *f)
{
	Elf *elf;
	int fd, err;

	memset(f, 0, sizeof(*f));
	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	err = buildid_from_elf(elf, f->build_id);
	if (!err)
		f->quality = elf_quality(elf, &f->nzlib);
	if (!err && f->nzlib)
		err = inflated_size(elf, &f->inflated);
	elfutil_close(fd, elf);
	return err;
}

int dstore_inspect(const char *path, char build_id[BUILDID_HEX_MAX], unsigned *quality)
{
	struct dstore_elf_facts f;
	int err = inspect(path, &f);

	if (!err) {
		memcpy(build_id, f.build_id, sizeof(f.build_id));
		*quality = f.quality;
	}
	return err;
}

int dstore_elf_check(const char *path, int decompress, uint64_t max_inflated,
		     struct dstore_elf_facts *out)
{
	int err = decompress ? decompress_file(path, max_inflated) : 0;

	return err ? err : inspect(path, out);
}

void dstore_set_elf_checker(struct dstore *s, dstore_elf_checker check, void *ctx)
{
	s->check = check;
	s->check_ctx = ctx;
}

/* dstore_elf_check() where S runs it */
static int check_elf(const struct dstore *s, const char *path, int decompress,
		     uint64_t max_inflated, struct dstore_elf_facts *out)
{
	if (s->check)
		return s->check(s->check_ctx, path, decompress, max_inflated, out);
	return dstore_elf_check(path, decompress, max_inflated, out);
}

int dstore_check(struct dstore *s, const char *path, struct dstore_elf_facts *out)
{
	return check_elf(s, path, 0, 0, out);
}

/* ---- metadata sidecars ---- */

static json_t *meta_json(const char *bid, enum dstore_source src, unsigned quality, uint64_t size,
			 uint64_t orig_size, const char *sha, time_t added, time_t last_used,
			 time_t mtime)
{
	return json_pack("{s:s, s:s, s:i, s:I, s:I, s:s, s:I, s:I, s:I}", "build_id", bid, "source",
			 dstore_source_name(src), "quality", (int)quality, "size", (json_int_t)size,
			 "orig_size", (json_int_t)orig_size, "sha256", sha, "added",
			 (json_int_t)added, "last_used", (json_int_t)last_used, "debug_mtime",
			 (json_int_t)mtime);
}

/* Write J into a new temp file of S; its name goes to OUT. */
static int write_meta_tmp(struct dstore *s, json_t *j, char out[PATH_MAX])
{
	char *txt = NULL;
	int fd = -1, err;

	out[0] = '\0';
	if (!j)
		return -ENOMEM;
	txt = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (!txt) {
		err = -ENOMEM;
		goto out;
	}
	if (snprintf(out, PATH_MAX, "%s/meta.XXXXXX", s->tmp) >= PATH_MAX) {
		err = -ENAMETOOLONG;
		goto out;
	}
	fd = mkstemp(out);
	if (fd < 0) {
		err = -errno;
		out[0] = '\0';
		goto out;
	}
	err = fsutil_write_all(fd, txt, strlen(txt));
	if (!err && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
		err = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (err && out[0]) {
		unlink(out);
		out[0] = '\0';
	}
	free(txt);
	json_decref(j);
	return err;
}

static json_t *read_meta(const char *path)
{
	char buf[DSTORE_META_MAX];
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len == 0 || len == sizeof(buf))
		return NULL;
	return json_loadb(buf, len, 0, NULL);
}

/* ---- the table ---- */

static size_t bid_hash(const char *bid)
{
	uint64_t h = 1469598103934665603ull;

	for (; *bid; bid++)
		h = (h ^ (uint8_t)*bid) * 1099511628211ull;
	return (size_t)h;
}

static struct dent *table_find(struct dstore *s, const char *bid)
{
	struct dent *d = s->buckets[bid_hash(bid) & (s->nbuckets - 1)];

	while (d && strcmp(d->bid, bid) != 0)
		d = d->hnext;
	return d;
}

static int table_insert(struct dstore *s, struct dent *d)
{
	size_t b;

	if (s->n >= s->nbuckets) {
		size_t nb = s->nbuckets * 2;
		struct dent **nbk = calloc(nb, sizeof(*nbk));

		if (!nbk)
			return -ENOMEM;
		for (size_t i = 0; i < s->nbuckets; i++)
			while (s->buckets[i]) {
				struct dent *x = s->buckets[i];

				s->buckets[i] = x->hnext;
				x->hnext = nbk[bid_hash(x->bid) & (nb - 1)];
				nbk[bid_hash(x->bid) & (nb - 1)] = x;
			}
		free(s->buckets);
		s->buckets = nbk;
		s->nbuckets = nb;
	}
	b = bid_hash(d->bid) & (s->nbuckets - 1);
	d->hnext = s->buckets[b];
	s->buckets[b] = d;
	s->n++;
	return 0;
}

static void table_remove(struct dstore *s, struct dent *d)
{
	struct dent **pp = &s->buckets[bid_hash(d->bid) & (s->nbuckets - 1)];

	while (*pp && *pp != d)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = d->hnext;
		s->n--;
	}
}

static void lru_unlink(struct dstore *s, struct dent *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else if (s->lru_head == d)
		s->lru_head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	else if (s->lru_tail == d)
		s->lru_tail = d->prev;
	d->prev = d->next = NULL;
}

static void lru_append(struct dstore *s, struct dent *d)
{
	d->prev = s->lru_tail;
	d->next = NULL;
	if (s->lru_tail)
		s->lru_tail->next = d;
	else
		s->lru_head = d;
	s->lru_tail = d;
}

/* Count D into the totals (SIGN +1) or out of them (-1); the LRU follows. */
static void account(struct dstore *s, struct dent *d, int sign)
{
	int cached = d->source != DSTORE_SRC_UPLOAD;
	uint64_t bytes = d->size + (d->orig ? d->orig_size : 0);

	if (sign > 0) {
		s->st.entries++;
		s->st.bytes += bytes;
		if (cached) {
			s->st.cached_bytes += bytes;
			lru_append(s, d);
		}
	} else {
		s->st.entries--;
		s->st.bytes -= bytes;
		if (cached) {
			s->st.cached_bytes -= bytes;
			lru_unlink(s, d);
		}
	}
}

static void fill_entry(const struct dstore *s, const struct dent *d, struct dstore_entry *e)
{
	if (!e)
		return;
	memset(e, 0, sizeof(*e));
	memcpy(e->build_id, d->bid, sizeof(e->build_id));
	e->source = d->source;
	e->quality = d->quality;
	e->size = d->size;
	e->orig_size = d->orig_size;
	e->added = d->added;
	e->last_used = d->last_used;
	ent_path(s, d->bid, ".debug", e->path);
	ent_path(s, d->bid, d->orig ? ".orig" : ".debug", e->served_path);
}

static void remove_files(struct dstore *s, const char *bid)
{
	static const char *const order[] = {".debug", ".orig", ".symidx", ".meta.json"};
	char path[PATH_MAX];

	/* The sidecar goes last: a crash part-way leaves a sidecar without its file, which open
	 * drops, never a file without a sidecar, which open would adopt. */
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		ent_path(s, bid, order[i], path);
		if (unlink(path) < 0 && errno != ENOENT)
			log_msg(FS_LOG_WARN, "debugstore: unlink %s: %s", path, strerror(errno));
	}
}

/* Evict cold non-upload entries until the cap holds again; KEEP (just installed) stays. */
static void evict_locked(struct dstore *s, const struct dent *keep)
{
	while (s->cap && s->st.cached_bytes > s->cap) {
		struct dent *v = s->lru_head;

		if (v == keep)
			v = v->next;
		if (!v)
			break;
		log_msg(FS_LOG_INFO, "debugstore: evict %s (%llu bytes, %s)", v->bid,
			(unsigned long long)v->size, dstore_source_name(v->source));
		remove_files(s, v->bid);
		s->st.evictions++;
		s->st.evicted_bytes += v->size;
		account(s, v, -1);
		table_remove(s, v);
		free(v);
	}
}

/* ---- open: scan what is on disk ---- */

/* Remove the directory NAME in DFD and the files in it: a DWARF worker's private dir (one
 * level of plain files) left by a process that was killed. 0 or -errno. */
static int remove_flat_dir(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static void clean_dir_tmp(const char *dir, int all)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		int gone;

		if (de->d_name[0] == '.')
			continue;
		if (!all && !strstr(de->d_name, ".tmp."))
			continue;
		gone = unlinkat(dirfd(d), de->d_name, 0) == 0 ||
		       (all && errno == EISDIR && remove_flat_dir(dirfd(d), de->d_name) == 0);
		if (gone)
			log_msg(FS_LOG_INFO, "debugstore: removed stale temp file %s/%s", dir,
				de->d_name);
	}
	closedir(d);
}

/* Build ID of NAME if it is "<lowercase bid>SUFFIX". */
static int name_bid(const char *name, const char *suffix, char bid[BUILDID_HEX_MAX])
{
	size_t n = strlen(name), k = strlen(suffix);

	if (n <= k || n - k >= BUILDID_HEX_MAX || strcmp(name + n - k, suffix) != 0)
		return 0;
	memcpy(bid, name, n - k);
	bid[n - k] = '\0';
	for (size_t i = 0; bid[i]; i++)
		if (bid[i] >= 'A' && bid[i] <= 'F')
			return 0;
	return buildid_valid(bid);
}

static int meta_matches(json_t *m, const char *bid, const struct stat *st, struct dent *d)
{
	json_int_t size = 0, orig = 0, added = 0, used = 0, mtime = 0;
	const char *b = NULL, *src = NULL, *sha = NULL;
	int q = 0;

	if (!m ||
	    json_unpack(m, "{s:s, s:s, s:i, s:I, s:I, s:s, s:I, s:I, s:I}", "build_id", &b,
			"source", &src, "quality", &q, "size", &size, "orig_size", &orig, "sha256",
			&sha, "added", &added, "last_used", &used, "debug_mtime", &mtime) != 0)
		return 0;
	if (source_from_name(src, &d->source) != 0)
		return 0;
	if (strcmp(b, bid) != 0 || size != st->st_size || mtime != st->st_mtime ||
	    strlen(sha) >= SHA256_HEX)
		return 0;
	d->quality = (unsigned)q;
	d->size = (uint64_t)size;
	d->orig_size = (uint64_t)orig;
	snprintf(d->sha, sizeof(d->sha), "%s", sha);
	d->added = (time_t)added;
	d->last_used = (time_t)used;
	return 1;
}

/* The sidecar is missing, damaged or describes another file: describe the file again. A file
 * without a sidecar was put there by a person, so it is kept like an upload. */
static int rebuild_meta(struct dstore *s, const char *bid, const char *path, const struct stat *st,
			json_t *old, struct dent *d)
{
	char meta[PATH_MAX], tmp[PATH_MAX];
	struct dstore_elf_facts f;
	int err;

	/* a file the store installed (checked then) or that its operator put there: read here */
	err = inspect(path, &f);
	if (!err && strcmp(f.build_id, bid) != 0)
		err = -ERR_BUILDID_MISMATCH;
	if (err)
		return err;
	d->quality = f.quality;
	if (!old ||
	    source_from_name(json_string_value(json_object_get(old, "source")), &d->source) != 0)
		d->source = DSTORE_SRC_UPLOAD;
	d->size = d->orig_size = (uint64_t)st->st_size;
	d->sha[0] = '\0';
	d->added = d->last_used = st->st_mtime;
	err = write_meta_tmp(s,
			     meta_json(bid, d->source, d->quality, d->size, d->orig_size, "",
				       d->added, d->last_used, st->st_mtime),
			     tmp);
	if (err)
		return err;
	ent_path(s, bid, ".meta.json", meta);
	if (rename(tmp, meta) < 0) {
		err = -errno;
		unlink(tmp);
	} else {
		err = fsutil_fsync_parent(meta);
	}
	log_msg(FS_LOG_INFO, "debugstore: %s: metadata rebuilt from the file", bid);
	return err;
}

/* Adopt <bid>.orig of D when it is the original its metadata describes (a crash between the
 * renames of an install can leave another one); a stray one goes. */
static int load_orig(struct dstore *s, struct dent *d)
{
	char path[PATH_MAX];
	struct stat st;

	ent_path(s, d->bid, ".orig", path);
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISREG(st.st_mode) && d->sha[0] && (uint64_t)st.st_size == d->orig_size &&
	    d->size != d->orig_size) {
		d->orig = 1;
		return 0;
	}
	log_msg(FS_LOG_INFO, "debugstore: %s: does not match its metadata; removed", path);
	return unlink(path) < 0 ? -errno : 0;
}

static int load_entry(struct dstore *s, const char *bid)
{
	char path[PATH_MAX], meta[PATH_MAX];
	struct stat st, mst;
	struct dent *d;
	json_t *m;
	int err = 0;

	ent_path(s, bid, ".debug", path);
	ent_path(s, bid, ".meta.json", meta);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	memcpy(d->bid, bid, strlen(bid) + 1);
	m = read_meta(meta);
	if (!meta_matches(m, bid, &st, d))
		err = rebuild_meta(s, bid, path, &st, m, d);
	json_decref(m);
	if (!err)
		err = load_orig(s, d);
	if (err == -ERR_NOTELF || err == -ERR_BADELF || err == -ERR_NOBUILDID ||
	    err == -ERR_BUILDID_MISMATCH) {
		log_msg(FS_LOG_WARN, "debugstore: %s: unusable (%s); removed", path, err_str(err));
		remove_files(s, bid);
		free(d);
		return 0;
	}
	if (err) {
		/* unreadable rather than bad (permissions, I/O): refuse to open, delete nothing */
		log_msg(FS_LOG_ERROR, "debugstore: %s: %s", path, err_str(err));
		free(d);
		return err;
	}
	if (stat(meta, &mst) == 0 && mst.st_mtime > d->last_used)
		d->last_used = mst.st_mtime;
	d->touched = d->last_used;
	err = table_insert(s, d);
	if (err) {
		free(d);
		return err;
	}
	return 0;
}

static int dent_cmp_used(const void *a, const void *b)
{
	const struct dent *x = *(const struct dent *const *)a, *y = *(const struct dent *const *)b;

	return (x->last_used > y->last_used) - (x->last_used < y->last_used);
}

/* Put the loaded entries into the totals, the LRU ordered by last use. */
static int account_all(struct dstore *s)
{
	struct dent **v = calloc(s->n ? s->n : 1, sizeof(*v));
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct dent *d = s->buckets[i]; d; d = d->hnext)
			v[k++] = d;
	qsort(v, k, sizeof(*v), dent_cmp_used);
	for (size_t i = 0; i < k; i++)
		account(s, v[i], +1);
	free(v);
	return 0;
}

static int scan(struct dstore *s)
{
	char bid[BUILDID_HEX_MAX];
	struct dirent *de;
	DIR *dir;
	int err = 0;

	clean_dir_tmp(s->tmp, 1);
	clean_dir_tmp(s->dir, 0);
	dir = opendir(s->dir);
	if (!dir)
		return -errno;
	while (!err && (de = readdir(dir)))
		if (name_bid(de->d_name, ".debug", bid)) {
			if (s->n >= DSTORE_MAX_ENTRIES)
				err = -ERR_TOOBIG;
			else
				err = load_entry(s, bid);
		}
	/* sidecars and indexes whose ELF file is gone (eviction interrupted by a crash) */
	rewinddir(dir);
	while (!err && (de = readdir(dir)))
		if ((name_bid(de->d_name, ".meta.json", bid) ||
		     name_bid(de->d_name, ".symidx", bid) || name_bid(de->d_name, ".orig", bid)) &&
		    !table_find(s, bid))
			unlinkat(dirfd(dir), de->d_name, 0);
	closedir(dir);
	return err ? err : account_all(s);
}

int dstore_open(const struct dstore_opts *opts, struct dstore **out)
{
	struct dstore *s;
	size_t n;
	int err;

	*out = NULL;
	if (!opts || !opts->data_dir || !opts->data_dir[0])
		return -EINVAL;
	n = strlen(opts->data_dir);
	/* <data-dir>/debuginfo/<64 hex>.meta.json must fit in PATH_MAX */
	if (n + sizeof("/debuginfo/") + BUILDID_HEX_MAX + sizeof(".meta.json") > PATH_MAX)
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	snprintf(s->data_dir, sizeof(s->data_dir), "%s", opts->data_dir);
	snprintf(s->dir, sizeof(s->dir), "%s/debuginfo", opts->data_dir);
	snprintf(s->tmp, sizeof(s->tmp), "%s/tmp", opts->data_dir);
	s->cap = opts->cache_size;
	s->max_inflated = opts->max_inflated;
	s->reserve = opts->reserve;
	s->nbuckets = 1024;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	err = -ENOMEM;
	if (!s->buckets)
		goto fail;
	elf_version(EV_CURRENT);
	err = fsutil_mkdir_p(s->dir, 0755);
	if (!err)
		err = fsutil_mkdir_p(s->tmp, 0755);
	if (!err)
		err = scan(s);
	if (err)
		goto fail;
	evict_locked(s, NULL);
	*out = s;
	return 0;
fail:
	dstore_close(s);
	return err;
}

void dstore_close(struct dstore *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->buckets && i < s->nbuckets; i++)
		while (s->buckets[i]) {
			struct dent *d = s->buckets[i];

			s->buckets[i] = d->hnext;
			free(d);
		}
	free(s->buckets);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- get / put ---- */

/* Returns whether the sidecar's mtime should be moved to now (rate-limited). */
static int mark_used(struct dstore *s, struct dent *d, time_t now)
{
	d->last_used = now;
	if (d->source != DSTORE_SRC_UPLOAD) {
		lru_unlink(s, d);
		lru_append(s, d);
	}
	if (now - d->touched < DSTORE_TOUCH_S)
		return 0;
	d->touched = now;
	return 1;
}

int dstore_get(struct dstore *s, const char *build_id, struct dstore_entry *e)
{
	char bid[BUILDID_HEX_MAX], meta[PATH_MAX];
	time_t now = time(NULL);
	struct dent *d;
	int touch = 0, err;

	err = buildid_normalize(build_id, BUILDID_WHOLE, bid);
	if (err)
		return err;
	pthread_mutex_lock(&s->lock);
	d = table_find(s, bid);
	if (d) {
		touch = mark_used(s, d, now);
		fill_entry(s, d, e);
	}
	pthread_mutex_unlock(&s->lock);
	if (!d)
		return -ENOENT;
	if (touch) {
		/* best effort, outside the lock; an eviction in between makes it fail harmlessly */
		ent_path(s, bid, ".meta.json", meta);
		utimensat(AT_FDCWD, meta, NULL, 0);
	}
	return 0;
}

/* Copy the file at PATH, as received, into a new temp file of S (named in OUT) before it is
 * inflated: that copy is what the store serves. */
static int keep_original(struct dstore *s, const char *path, char out[PATH_MAX])
{
	int in, fd, err;

	if (snprintf(out, PATH_MAX, "%s/orig.XXXXXX", s->tmp) >= PATH_MAX) {
		out[0] = '\0';
		return -ENAMETOOLONG;
	}
	fd = mkstemp(out);
	if (fd < 0) {
		out[0] = '\0';
		return -errno;
	}
	in = open(path, O_RDONLY | O_CLOEXEC);
	err = in < 0 ? -errno : fsutil_copy_fd(in, fd);
	if (!err && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
		err = -errno;
	if (in >= 0)
		close(in);
	close(fd);
	/* on failure the caller's cleanup unlinks OUT */
	return err;
}

/* Checks, hash, decompression and the sidecar of the new file, all without the lock. */
static int prepare(struct dstore *s, const char *bid, const char *path, enum dstore_source src,
		   struct prep *p)
{
	struct dstore_elf_facts f;
	uint64_t cap = 0;
	struct stat st;
	int err;

	err = check_elf(s, path, 0, 0, &f);
	if (!err && strcmp(f.build_id, bid) != 0)
		err = -ERR_BUILDID_MISMATCH;
	if (!err)
		err = hash_file(path, p->sha, &p->orig_size);
	if (!err && fsutil_free_bytes(s->tmp) < s->reserve) {
		log_msg(FS_LOG_WARN, "debugstore: less than %" PRIu64 " bytes free in %s",
			s->reserve, s->tmp);
		err = -ENOSPC;
	}
	if (!err && f.nzlib)
		err = inflation_allowed(s, path, p->orig_size, f.inflated, &cap);
	if (!err && f.nzlib)
		err = keep_original(s, path, p->orig_tmp);
	if (!err && f.nzlib) {
		/* inflated where the file is read; what libelf wrote is read again as if it came
		 * from outside */
		err = check_elf(s, path, 1, cap, &f);
		if (!err && strcmp(f.build_id, bid) != 0)
			err = -ERR_BADELF;
	} else if (!err) {
		err = fsutil_fsync_file(path);
	}
	if (err)
		return err;
	p->quality = f.quality;
	if (chmod(path, 0644) < 0 || stat(path, &st) < 0)
		return -errno;
	p->size = (uint64_t)st.st_size;
	p->mtime = st.st_mtime;
	return write_meta_tmp(s,
			      meta_json(bid, src, p->quality, p->size, p->orig_size, p->sha,
					time(NULL), time(NULL), p->mtime),
			      p->meta_tmp);
}

static int better(const struct prep *p, enum dstore_source src, const struct dent *d)
{
	int rn = dstore_quality_rank(p->quality), ro = dstore_quality_rank(d->quality);

	/* an upload is what a person vouched for: it outranks a cached file of equal quality */
	return rn > ro || (rn == ro && src == DSTORE_SRC_UPLOAD && d->source != DSTORE_SRC_UPLOAD);
}

static int install_locked(struct dstore *s, const char *bid, const char *tmp_path,
			  enum dstore_source src, int force, struct prep *p,
			  enum dstore_put_result *result, struct dstore_entry *e, int *consumed)
{
	char meta[PATH_MAX], path[PATH_MAX], orig[PATH_MAX];
	struct dent *d = table_find(s, bid), *nd = NULL;
	enum dstore_put_result res = d ? DSTORE_PUT_REPLACED : DSTORE_PUT_CREATED;
	time_t now = time(NULL);
	int has_orig;

	if (d && d->sha[0] && d->orig_size == p->orig_size && strcmp(d->sha, p->sha) == 0) {
		res = DSTORE_PUT_IDENTICAL;
		/* the same bytes uploaded over a cached copy: install them to pin the entry */
		if (!(src == DSTORE_SRC_UPLOAD && d->source != DSTORE_SRC_UPLOAD)) {
			mark_used(s, d, now);
			fill_entry(s, d, e);
			*result = res;
			return 0;
		}
	} else if (d && !force && !better(p, src, d)) {
		return -EEXIST;
	}
	if (!d) {
		if (s->n >= DSTORE_MAX_ENTRIES)
			return -ERR_TOOBIG;
		d = nd = calloc(1, sizeof(*d));
		if (!d)
			return -ENOMEM;
		memcpy(d->bid, bid, strlen(bid) + 1);
	}
	ent_path(s, bid, ".meta.json", meta);
	ent_path(s, bid, ".debug", path);
	if (rename(p->meta_tmp, meta) < 0) {
		free(nd);
		return -errno;
	}
	p->meta_tmp[0] = '\0';
	/* the original before the file: a crash in between leaves a .debug that its sidecar does
	 * not describe, and open then drops the .orig with the rebuilt sidecar */
	ent_path(s, bid, ".orig", orig);
	has_orig = p->orig_tmp[0] != '\0';
	if (has_orig ? rename(p->orig_tmp, orig) < 0 : unlink(orig) < 0 && errno != ENOENT) {
		int err = -errno;

		if (nd)
			unlink(meta);
		free(nd);
		return err;
	}
	p->orig_tmp[0] = '\0';
	if (rename(tmp_path, path) < 0) {
		int err = -errno;

		/* a new entry's sidecar goes; a replaced one no longer matches its file and is
		 * rebuilt at the next open */
		if (nd)
			unlink(meta);
		free(nd);
		return err;
	}
	*consumed = 1;
	if (res == DSTORE_PUT_REPLACED) {
		ent_path(s, bid, ".symidx", meta);
		unlink(meta);
	}
	if (!nd)
		account(s, d, -1);
	d->source = src;
	d->quality = p->quality;
	d->size = p->size;
	d->orig_size = p->orig_size;
	d->orig = has_orig;
	memcpy(d->sha, p->sha, sizeof(d->sha));
	d->added = d->last_used = d->touched = now;
	if (nd && table_insert(s, d) != 0) {
		/* the files are in place; the next open picks them up */
		free(nd);
		return -ENOMEM;
	}
	account(s, d, +1);
	evict_locked(s, d);
	fill_entry(s, d, e);
	*result = res;
	return 0;
}

static int under_tmp(const struct dstore *s, const char *path)
{
	size_t n = strlen(s->tmp);

	return path && strncmp(path, s->tmp, n) == 0 && path[n] == '/' &&
	       !strchr(path + n + 1, '/');
}

int dstore_put(struct dstore *s, const char *build_id, const char *tmp_path,
	       enum dstore_source source, int force, enum dstore_put_result *result,
	       struct dstore_entry *e)
{
	char bid[BUILDID_HEX_MAX];
	struct prep p = {0};
	enum dstore_put_result res = DSTORE_PUT_CREATED;
	int consumed = 0, err;

	if (!under_tmp(s, tmp_path) || (unsigned)source > DSTORE_SRC_PEER)
		return -EINVAL;
	err = buildid_normalize(build_id, BUILDID_WHOLE, bid);
	if (!err)
		err = prepare(s, bid, tmp_path, source, &p);
	if (!err) {
		pthread_mutex_lock(&s->lock);
		err = install_locked(s, bid, tmp_path, source, force, &p, &res, e, &consumed);
		pthread_mutex_unlock(&s->lock);
	}
	if (consumed && !err) {
		char path[PATH_MAX];

		/* the renames are done: make them survive a crash before the caller acknowledges */
		ent_path(s, bid, ".debug", path);
		err = fsutil_fsync_parent(path);
	}
	if (!consumed)
		unlink(tmp_path);
	if (p.meta_tmp[0])
		unlink(p.meta_tmp);
	if (p.orig_tmp[0])
		unlink(p.orig_tmp);
	if (err)
		log_msg(err == -EEXIST ? FS_LOG_DEBUG : FS_LOG_WARN,
			"debugstore: put %s from %s: %s",
			err == -ERR_BADBUILDID ? "(invalid build ID)" : bid,
			dstore_source_name(source), err_str(err));
	else if (result)
		*result = res;
	return err;
}

void dstore_stats(struct dstore *s, struct dstore_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	pthread_mutex_unlock(&s->lock);
}
