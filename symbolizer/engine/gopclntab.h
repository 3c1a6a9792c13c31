/*
 * gopclntab - symbolizes Go binaries from the runtime's own tables (.gopclntab and the inline
 * trees in go:func.*), with no DWARF: function, file:line and the chain of inlined calls.
 *
 * Go's linker keeps .gopclntab even with -ldflags='-s -w', because the runtime needs it for
 * tracebacks. It holds a header, the function table (entry offset, _func record, sorted by
 * entry), the names, per-compilation-unit file tables and the pc-value tables: varint-coded
 * (zig-zag value delta, pc delta) runs that give, per function, the file index, the line and
 * PCDATA_InlTreeIndex for every PC. The inline tree of a function (FUNCDATA_InlTree) lives
 * outside .gopclntab, in go:func.* data, found through runtime.firstmoduledata (which points at
 * the pclntab header), so a lookup follows the runtime's own unwinder: the inline-tree index at
 * PC names the innermost inlined function; its parentPc, looked up again, gives the caller's
 * index; -1 is the physical function. File:line of each frame is the pc-value answer at that PC.
 *
 * Layouts read: Go 1.18/1.19 (magic 0xfffffff0) and Go 1.20 and later (0xfffffff1), 32- and
 * 64-bit, either byte order. Everything in the file is untrusted: every offset is checked
 * against the section it points into and every count against the bytes that hold it; a damaged
 * table gives -ERR_BADINPUT or fewer frames, never a read outside the file.
 *
 * Lookups only read the mmap'd file and keep no state: one handle serves any number of threads.
 */
#ifndef FLEETSYM_GOPCLNTAB_H
#define FLEETSYM_GOPCLNTAB_H

#include <gelf.h>
#include <stddef.h>
#include <stdint.h>

struct gopcln;

/* One frame of an answer, the shape of struct sym_frame (cache/symindex.h). Strings point into
 * the mapped file: borrowed until gopcln_close(). */
struct gopcln_frame {
	const char *function; /* Go's full name, e.g. "main.(*T).m"; never NULL in an answer */
	const char *file;     /* as the linker wrote it; NULL when the table has none */
	uint32_t line;	      /* 0 when unknown */
	uint8_t inlined;      /* this frame was inlined into the next one */
};

/* Open the Go tables of the ELF file at PATH (mmap'd, checked with elfutil). Sets *OUT (owned
 * by the caller; free with gopcln_close()) and returns 0. Errors: -errno from open, -ERR_NOTELF,
 * -ERR_BADELF, -ENODATA when the file has no pclntab (not Go, or a Go older than 1.18),
 * -ERR_BADINPUT when the header or function table is damaged, -ERR_TOOBIG past the caps.
 * A file whose inline trees cannot be found still opens: lookups then give no inline frames
 * (gopcln_has_inline() says which). */
int gopcln_open(const char *path, struct gopcln **out) __attribute__((warn_unused_result));

/* Resolve ADDR (ELF virtual address) into at most MAX frames, innermost first; the last one
 * written is the physical function unless MAX cut the chain. Returns the number of frames, 0
 * when ADDR lies in no Go function, or -ERR_BADINPUT when the tables for ADDR are damaged.
 * MAX must be >= 1. Safe to call from several threads at once. */
int gopcln_lookup(const struct gopcln *g, uint64_t addr, struct gopcln_frame *out, int max);

/* The function table: COUNT functions, sorted by entry. For i < COUNT sets *ENTRY, *END (the
 * next function's entry, or the end of the text the table covers) and *NAME (borrowed until
 * gopcln_close()). -ERANGE for a bad index, -ERR_BADINPUT for a damaged record. */
size_t gopcln_func_count(const struct gopcln *g);
int gopcln_func_at(const struct gopcln *g, size_t i, uint64_t *entry, uint64_t *end,
		   const char **name) __attribute__((warn_unused_result));

/* For index builders: the runs of function I (from gopcln_func_at()) over which the answer is
 * constant, in address order, each as [LO, HI) and its frames as gopcln_lookup() gives them
 * (at most GOPCLN_RANGE_FRAMES; borrowed for the call). The runs cover the function's code,
 * not the padding after it. FN returning non-zero stops the walk and that value is returned;
 * else 0, -ERANGE for a bad index, -ERR_BADINPUT for damaged tables. */
#define GOPCLN_RANGE_FRAMES 64
typedef int (*gopcln_range_fn)(void *ctx, uint64_t lo, uint64_t hi,
			       const struct gopcln_frame *frames, int n);
int gopcln_func_ranges(const struct gopcln *g, size_t i, gopcln_range_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/* 1 when the inline trees were found (inline frames are answered), else 0. */
int gopcln_has_inline(const struct gopcln *g);

/* 118 for the Go 1.18/1.19 layout, 120 for Go 1.20 and later. */
int gopcln_version(const struct gopcln *g);

/* Go build ID of the open file ("" when it has no .note.go.buildid). Borrowed until
 * gopcln_close(). */
const char *gopcln_build_id(const struct gopcln *g);

/* Bytes of heap the handle holds (the file itself is mmap'd, not counted). */
size_t gopcln_heap_bytes(const struct gopcln *g);

void gopcln_close(struct gopcln *g);

/* Longest Go build ID we return, NUL included. The linker writes
 * actionID/contentID (83 characters); the cap leaves room and refuses the absurd. */
#define GOPCLN_BUILDID_MAX 256

/* Read the Go build ID from ELF's .note.go.buildid (name "Go", type 4) into BUF (LEN bytes, at
 * most GOPCLN_BUILDID_MAX needed). Go writes a GNU build ID only with -B, so this is often
 * the only identity a Go binary has. -ENOENT without the note, -ERR_BADINPUT when it is
 * malformed or holds bytes outside printable ASCII, -ENAMETOOLONG when LEN is too small. */
int gopcln_go_buildid(Elf *elf, char *buf, size_t len) __attribute__((warn_unused_result));

#endif
