/*
 * render - a merged, symbolized profile (a pstore_result and its qsym_result) into what people
 * and tools read: pprof, folded stacks, a JSON call tree, a top table; the diff of two such
 * profiles (JSON tree or folded); and the ranking of build IDs that left samples unsymbolized.
 *
 * Every format sees the same frames: a location expands into its inline chain, each inlined
 * function its own frame. A location without an answer becomes one frame named
 * "FILE+0xOFFSET" (the base name of the file the agent saw, the offset in it); it keeps its
 * build ID (JSON: "build_id"; pprof: its mapping's) and is never merged with another unknown
 * location. Functions are told apart by (name, file), unknown ones by (name, build ID).
 *
 * The tree formats share one call tree (nodes keyed by parent, function and inlined), built
 * root first. Folded lines are its paths with self values, so they sum to the total. JSON
 * pruning (max_nodes) keeps the highest-total nodes (ancestors always rank above their
 * descendants) and sums each kept node's cut children into one "other" child, so every total
 * still equals self plus the children's totals. A stack of more than RENDER_MAX_FRAMES frames
 * once expanded keeps its innermost RENDER_MAX_FRAMES - 1 under a "[truncated]" root frame, so
 * that a few hostile locations with deep inline chains cannot make an answer of gigabytes.
 */
#ifndef FLEETSYM_RENDER_H
#define FLEETSYM_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/jsonw.h"
#include "symbolizer/store/profstore.h"
#include "symbolizer/query/qsym.h"

#define RENDER_MAX_FRAMES 2048

/* One side: borrowed for the call. */
struct render_input {
	const struct pstore_result *r;
	const struct qsym_result *s;
	int64_t from_ns, to_ns; /* the window: JSON's echo; pprof's time when nothing merged */
	const char *query;	/* the selector as asked; NULL = all */
};

struct render_opts {
	size_t max_nodes; /* json/diff tree: nodes kept besides the root; 0 = all. top: rows */
	int normalize;	  /* diff folded: scale the base to the new total (difffolded.pl -n) */
	size_t max_bytes; /* pprof output cap; 0 = 256 MiB */
};

/* Each writes into W (text formats) and returns 0, -ENOMEM or -E2BIG (also W's sticky
 * error). */
int render_folded(const struct render_input *in, const struct render_opts *o, struct jsonw *w)
    __attribute__((warn_unused_result));
int render_json(const struct render_input *in, const struct render_opts *o, struct jsonw *w)
    __attribute__((warn_unused_result));
int render_top(const struct render_input *in, const struct render_opts *o, struct jsonw *w)
    __attribute__((warn_unused_result));

/* gzip'd profile.proto into *OUT (malloc'd, owned by the caller), *LEN bytes. */
int render_pprof(const struct render_input *in, const struct render_opts *o, uint8_t **out,
		 size_t *len) __attribute__((warn_unused_result));

/*
 * BASE against IN. JSON: one tree over both sides; each node has its values on both sides,
 * each side's share of its own total and the change of share ("delta"), so a change of
 * traffic alone shows no delta; both totals are reported. Folded: "path base new" lines
 * (difffolded.pl's format); with o->normalize the base values are scaled by
 * new_total / base_total.
 */
int render_diff_json(const struct render_input *base, const struct render_input *in,
		     const struct render_opts *o, struct jsonw *w)
    __attribute__((warn_unused_result));
int render_diff_folded(const struct render_input *base, const struct render_input *in,
		       const struct render_opts *o, struct jsonw *w)
    __attribute__((warn_unused_result));

/*
 * The build IDs that were not FOUND (missing, pending, failed), ranked by the samples they
 * left with an unknown frame (a sample counts once per build ID), with their share of all
 * samples, the file names seen, why, and the command that fixes it: "fleetsym-upload
 * --server SERVER FILE" (SERVER: the URL clients use for this service).
 */
int render_missing(const struct render_input *in, const char *server, struct jsonw *w)
    __attribute__((warn_unused_result));

#endif
