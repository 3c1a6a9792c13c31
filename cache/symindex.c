/*
 * symindex - lookup over a struct symview, and the index file that stores one.
 *
 * File layout (little endian, native structs, every section 8-byte aligned):
 *   header: magic, version, crc32 of everything after the header, total size, base address,
 *           build ID, and (offset, count) for each of the six arrays;
 *   ranges, nodes, funcs, lines, syms, strs.
 * Opening checks magic, version, size, checksum and that every section lies inside the file;
 * lookups still bounds-check every reference, so even a file that passes the checksum by
 * accident cannot make a lookup read outside the map.
 */
#include "symindex.h"

#include "../lib/err.h"
#include "../lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SYMIDX_MAGIC "FSYMIDX"
#define SYMIDX_NSECT 6

struct symidx_header {
	char magic[8];
	uint32_t version;
	uint32_t crc;
	uint64_t size;
	uint64_t base;
	char build_id[72];
	struct {
		uint64_t off;
		uint64_t count;
	} sect[SYMIDX_NSECT];
};

struct symindex {
	void *map;
	size_t size;
	struct symview view;
};

/* --- lookup ---------------------------------------------------------------------------- */

long symview_find_range(const struct symidx_range *r, size_t n, uint32_t a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r[mid].addr <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

long symview_find_line(const struct symidx_line *l, size_t n, uint32_t a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l[mid].addr <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

static const char *view_str(const struct symview *v, uint32_t off)
{
	if (off == SYMIDX_NONE || off >= v->strs_size)
		return NULL;
	return v->strs + off;
}

static void set_func(const struct symview *v, uint32_t func, struct sym_frame *f)
{
	if (func >= v->nfuncs)
		return;
	f->linkage = view_str(v, v->funcs[func].name);
	f->function = view_str(v, v->funcs[func].demangled);
	if (!f->function)
		f->function = f->linkage;
}

/*
 * The ELF symbol for A, ranked as libdwfl's dwfl_module_addrsym ranks them: the sized symbol
 * covering A with the highest address wins (ties: stronger binding, then smaller size, which
 * the build order puts last within one address); failing that, the closest sizeless label above
 * every sized symbol below A. The scan back is bounded: nested symbols deeper than that are
 * not worth an unbounded walk.
 */
static long find_sym(const struct symview *v, uint32_t a)
{
	size_t lo = 0, hi = v->nsyms;
	uint64_t min_label = 0;
	long label = -1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->syms[mid].addr <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (long j = (long)lo - 1, seen = 0; j >= 0 && seen < 256; j--, seen++) {
		const struct symidx_sym *s = &v->syms[j];
		uint64_t end = (uint64_t)s->addr + s->size;

		if (s->size && a < end)
			return j;
		if (end > min_label)
			min_label = end;
		if (!s->size && label < 0)
			label = j;
	}
	if (label >= 0 && v->syms[label].addr >= min_label)
		return label;
	return -1;
}

void symview_lookup_symtab(const struct symview *v, uint64_t addr, struct sym_frame *out)
{
	long si;

	memset(out, 0, sizeof(*out));
	if (addr < v->base || addr - v->base > UINT32_MAX)
		return;
	si = find_sym(v, (uint32_t)(addr - v->base));
	if (si >= 0) {
		set_func(v, v->syms[si].func, out);
		out->source = out->function ? SYM_SRC_SYMTAB : SYM_SRC_NONE;
	}
}

int symview_lookup(const struct symview *v, uint64_t addr, struct sym_frame *out, int max)
{
	const char *file = NULL;
	uint32_t line = 0, col = 0, a;
	long li, ri;
	uint32_t node;
	int n = 0;

	memset(out, 0, sizeof(*out));
	if (addr < v->base || addr - v->base > UINT32_MAX)
		return 1;
	a = (uint32_t)(addr - v->base);

	li = symview_find_line(v->lines, v->nlines, a);
	if (li >= 0 && v->lines[li].file != SYMIDX_NONE) {
		file = view_str(v, v->lines[li].file);
		line = v->lines[li].line;
		col = v->lines[li].col;
	}
	ri = symview_find_range(v->ranges, v->nranges, a);
	node = ri >= 0 ? v->ranges[ri].node : SYMIDX_NONE;

	while (node < v->nnodes && n < max) {
		const struct symidx_node *nd = &v->nodes[node];
		struct sym_frame *f = &out[n++];

		memset(f, 0, sizeof(*f));
		set_func(v, nd->func, f);
		f->file = file;
		f->line = line;
		f->column = col;
		f->source = SYM_SRC_DWARF;
		f->inlined = (nd->flags & SYMIDX_NODE_INLINED) && nd->parent < v->nnodes;
		if (!f->inlined)
			break;
		file = view_str(v, nd->call_file);
		line = nd->call_line;
		col = nd->call_col;
		node = nd->parent;
	}
	if (n > 0)
		return n;

	symview_lookup_symtab(v, addr, out);
	out->file = file;
	out->line = line;
	out->column = col;
	return 1;
}

/* --- the file -------------------------------------------------------------------------- */

static uLong crc_update(uLong crc, const void *buf, size_t len)
{
	const Bytef *p = buf;

	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		crc = crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
}

static size_t align8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void view_sections(const struct symview *v, const void *ptr[SYMIDX_NSECT],
			  size_t count[SYMIDX_NSECT], size_t esize[SYMIDX_NSECT])
{
	ptr[0] = v->ranges, count[0] = v->nranges, esize[0] = sizeof(*v->ranges);
	ptr[1] = v->nodes, count[1] = v->nnodes, esize[1] = sizeof(*v->nodes);
	ptr[2] = v->funcs, count[2] = v->nfuncs, esize[2] = sizeof(*v->funcs);
	ptr[3] = v->lines, count[3] = v->nlines, esize[3] = sizeof(*v->lines);
	ptr[4] = v->syms, count[4] = v->nsyms, esize[4] = sizeof(*v->syms);
	ptr[5] = v->strs, count[5] = v->strs_size, esize[5] = 1;
}

int symindex_write(const struct symview *v, const char *build_id, const char *path)
{
	static const char zeros[8];
	const void *ptr[SYMIDX_NSECT];
	size_t count[SYMIDX_NSECT], esize[SYMIDX_NSECT];
	struct symidx_header h;
	char *tmp = NULL;
	uLong crc = crc32(0, Z_NULL, 0);
	uint64_t off = sizeof(h);
	int fd = -1, err;

	if (strlen(build_id) >= sizeof(h.build_id))
		return -ERR_BADBUILDID;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SYMIDX_MAGIC, sizeof(SYMIDX_MAGIC));
	h.version = SYMIDX_VERSION;
	h.base = v->base;
	strcpy(h.build_id, build_id);
	view_sections(v, ptr, count, esize);
	for (int i = 0; i < SYMIDX_NSECT; i++) {
		size_t len = count[i] * esize[i];

		h.sect[i].off = off;
		h.sect[i].count = count[i];
		if (len)
			crc = crc_update(crc, ptr[i], len);
		if (align8(len) != len)
			crc = crc_update(crc, zeros, align8(len) - len);
		off += align8(len);
	}
	h.size = off;
	h.crc = (uint32_t)crc;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = write_all(fd, &h, sizeof(h));
	for (int i = 0; i < SYMIDX_NSECT && !err; i++) {
		size_t len = count[i] * esize[i];

		if (len)
			err = write_all(fd, ptr[i], len);
		if (!err && align8(len) != len)
			err = write_all(fd, zeros, align8(len) - len);
	}
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	fd = -1;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (err && tmp)
		unlink(tmp);
	free(tmp);
	return err;
}

static int check_header(const struct symidx_header *h, size_t size, const char *build_id)
{
	static const size_t esize[SYMIDX_NSECT] = {
		sizeof(struct symidx_range), sizeof(struct symidx_node), sizeof(struct symidx_func),
		sizeof(struct symidx_line),  sizeof(struct symidx_sym),	 1,
	};

	if (memcmp(h->magic, SYMIDX_MAGIC, sizeof(SYMIDX_MAGIC)) != 0 ||
	    h->version != SYMIDX_VERSION || h->size != size ||
	    memchr(h->build_id, 0, sizeof(h->build_id)) == NULL)
		return -ERR_BADINDEX;
	if (build_id && strcmp(h->build_id, build_id) != 0)
		return -ERR_BADINDEX;
	for (int i = 0; i < SYMIDX_NSECT; i++) {
		uint64_t off = h->sect[i].off, cnt = h->sect[i].count;

		if (off % 8 || off < sizeof(*h) || off > size || cnt > (size - off) / esize[i])
			return -ERR_BADINDEX;
	}
	return 0;
}

int symindex_open(const char *path, const char *build_id, struct symindex **out)
{
	const struct symidx_header *h;
	struct symindex *idx = NULL;
	struct stat st;
	uLong crc;
	int fd, err;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if ((size_t)st.st_size < sizeof(*h)) {
		err = -ERR_BADINDEX;
		goto out;
	}
	idx = calloc(1, sizeof(*idx));
	if (!idx) {
		err = -ENOMEM;
		goto out;
	}
	idx->size = (size_t)st.st_size;
	idx->map = mmap(NULL, idx->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (idx->map == MAP_FAILED) {
		idx->map = NULL;
		err = -errno;
		goto out;
	}
	h = idx->map;
	err = check_header(h, idx->size, build_id);
	if (err)
		goto out;
	crc = crc_update(crc32(0, Z_NULL, 0), (const char *)idx->map + sizeof(*h),
			 idx->size - sizeof(*h));
	if ((uint32_t)crc != h->crc) {
		err = -ERR_BADINDEX;
		goto out;
	}
	{
		const char *b = idx->map;
		struct symview *v = &idx->view;

		v->base = h->base;
		v->ranges = (const void *)(b + h->sect[0].off), v->nranges = h->sect[0].count;
		v->nodes = (const void *)(b + h->sect[1].off), v->nnodes = h->sect[1].count;
		v->funcs = (const void *)(b + h->sect[2].off), v->nfuncs = h->sect[2].count;
		v->lines = (const void *)(b + h->sect[3].off), v->nlines = h->sect[3].count;
		v->syms = (const void *)(b + h->sect[4].off), v->nsyms = h->sect[4].count;
		v->strs = b + h->sect[5].off, v->strs_size = h->sect[5].count;
		if (v->strs_size && v->strs[v->strs_size - 1] != '\0')
			err = -ERR_BADINDEX;
	}
out:
	close(fd);
	if (err) {
		if (err == -ERR_BADINDEX)
			log_msg(LOG_WARN, "symbol index %s: %s", path, err_str(err));
		symindex_close(idx);
		return err;
	}
	*out = idx;
	return 0;
}

const struct symview *symindex_view(const struct symindex *idx)
{
	return &idx->view;
}

void symindex_close(struct symindex *idx)
{
	if (!idx)
		return;
	if (idx->map)
		munmap(idx->map, idx->size);
	free(idx);
}
