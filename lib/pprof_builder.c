/*
 * pprof_builder - the interned tables of a profile under construction.
 *
 * Each table is a growable array (ids are index + 1, strings are plain indexes) plus an
 * open-addressing index of (hash, index + 1) slots at load factor <= 1/2. Variable-length parts
 * (a location's lines, a sample's location ids, labels and values) live in shared pools and
 * are referenced by (first, count). All growth is charged to b->bytes against b->max_bytes, so
 * a caller fed untrusted input gets -E2BIG instead of unbounded memory. Encoding builds the
 * protobuf-c structs in a few flat arrays that point into these pools: nothing is copied twice.
 */
#include "lib/pprof_builder.h"

#include "profile.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct islot {
	uint32_t hash;
	uint32_t idx1; /* index + 1; 0 = empty */
};

struct itab {
	struct islot *s;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

struct pmapping {
	uint64_t start, limit, offset;
	int64_t filename, build_id;
	bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct pfunction {
	int64_t name, system_name, filename, start_line;
};

struct plocation {
	uint64_t mapping_id, address;
	uint32_t line0, nlines;
};

struct plabel {
	int64_t key, str, num, unit;
};

struct psample {
	uint32_t loc0, nlocs, label0, nlabels, value0;
};

struct pprofb {
	size_t bytes, max_bytes;

	char **strs;
	size_t nstrs, capstrs;
	struct itab str_idx;

	int64_t *sample_types; /* pairs (type, unit) */
	size_t nsample_types, capsample_types;
	int64_t period_type[2], period, time_nanos, duration_nanos;
	int64_t *comments;
	size_t ncomments, capcomments;

	struct pmapping *mappings;
	size_t nmappings, capmappings;

	struct pfunction *functions;
	size_t nfunctions, capfunctions;
	struct itab function_idx;

	struct plocation *locations;
	size_t nlocations, caplocations;
	struct itab location_idx;
	struct pprofb_line *lines;
	size_t nlines, caplines;

	struct psample *samples;
	size_t nsamples, capsamples;
	struct itab sample_idx;
	uint64_t *sample_locs;
	size_t nsample_locs, capsample_locs;
	struct plabel *labels;
	size_t nlabels, caplabels;
	int64_t *values;
	size_t nvalues, capvalues;
	int64_t value_total;
};

/* Grow *P (capacity *CAP elements of ESIZE) to hold NEED, charging b->bytes. Not lib/vec.h:
 * every array of one builder draws on one byte budget (b->max_bytes), vec's cap is per array. */
static int reserve(struct pprofb *b, void **p, size_t *cap, size_t need, size_t esize)
{
	size_t ncap, add;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > b->max_bytes / esize / 2)
			return -E2BIG;
		ncap *= 2;
	}
	add = (ncap - *cap) * esize;
	if (add > b->max_bytes - b->bytes)
		return -E2BIG;
	np = realloc(*p, ncap * esize);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	b->bytes += add;
	return 0;
}

#define RESERVE(b, arr, n, cap, more)                                                              \
	reserve((b), (void **)&(arr), &(cap), (n) + (more), sizeof(*(arr)))

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static uint32_t fold(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

typedef bool (*eq_fn)(const struct pprofb *b, size_t idx, const void *key);

/* The slot holding KEY, or the empty slot where it would go. The table must have room. */
static struct islot *itab_find(const struct pprofb *b, const struct itab *t, uint32_t hash,
			       eq_fn eq, const void *key)
{
	size_t mask = t->cap - 1, i = hash & mask;

	for (;; i = (i + 1) & mask) {
		struct islot *s = &t->s[i];

		if (!s->idx1 || (s->hash == hash && eq(b, s->idx1 - 1, key)))
			return s;
	}
}

/* Make room for one more entry (load factor <= 1/2). */
static int itab_grow(struct pprofb *b, struct itab *t)
{
	struct islot *ns;
	size_t ncap, add;

	if ((t->n + 1) * 2 <= t->cap)
		return 0;
	ncap = t->cap ? t->cap * 2 : 64;
	add = ncap * sizeof(*ns);
	if (add > b->max_bytes - b->bytes)
		return -E2BIG;
	ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		size_t j;

		if (!t->s[i].idx1)
			continue;
		for (j = t->s[i].hash & (ncap - 1); ns[j].idx1; j = (j + 1) & (ncap - 1))
			;
		ns[j] = t->s[i];
	}
	b->bytes += add;
	b->bytes -= t->cap * sizeof(*ns);
	free(t->s);
	t->s = ns;
	t->cap = ncap;
	return 0;
}

static bool str_eq(const struct pprofb *b, size_t idx, const void *key)
{
	return strcmp(b->strs[idx], key) == 0;
}

int pprofb_string(struct pprofb *b, const char *s, int64_t *idx)
{
	struct islot *slot;
	uint32_t h;
	size_t len;
	char *copy;
	int err;

	if (!s)
		s = "";
	len = strlen(s);
	h = fold(fnv(FNV_INIT, s, len));
	err = itab_grow(b, &b->str_idx);
	if (err)
		return err;
	slot = itab_find(b, &b->str_idx, h, str_eq, s);
	if (slot->idx1) {
		*idx = slot->idx1 - 1;
		return 0;
	}
	if (len + 1 > b->max_bytes - b->bytes)
		return -E2BIG;
	err = RESERVE(b, b->strs, b->nstrs, b->capstrs, 1);
	if (err)
		return err;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s, len + 1);
	b->bytes += len + 1;
	b->strs[b->nstrs] = copy;
	slot->hash = h;
	slot->idx1 = (uint32_t)++b->nstrs;
	b->str_idx.n++;
	*idx = (int64_t)b->nstrs - 1;
	return 0;
}

int pprofb_new(const struct pprofb_opts *opts, struct pprofb **out)
{
	struct pprofb *b;
	int64_t idx;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->max_bytes = opts && opts->max_bytes ? opts->max_bytes : PPROFB_DEFAULT_MAX_BYTES;
	err = pprofb_string(b, "", &idx);
	if (err) {
		pprofb_free(b);
		return err;
	}
	*out = b;
	return 0;
}

void pprofb_free(struct pprofb *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nstrs; i++)
		free(b->strs[i]);
	free(b->strs);
	free(b->str_idx.s);
	free(b->sample_types);
	free(b->comments);
	free(b->mappings);
	free(b->functions);
	free(b->function_idx.s);
	free(b->locations);
	free(b->location_idx.s);
	free(b->lines);
	free(b->samples);
	free(b->sample_idx.s);
	free(b->sample_locs);
	free(b->labels);
	free(b->values);
	free(b);
}

int pprofb_add_sample_type(struct pprofb *b, const char *type, const char *unit)
{
	int64_t t, u;
	int err;

	if (b->nsamples)
		return -EINVAL;
	if (b->nsample_types >= PPROFB_MAX_TYPES)
		return -E2BIG;
	err = pprofb_string(b, type, &t) ?: pprofb_string(b, unit, &u) ?:
	      RESERVE(b, b->sample_types, b->nsample_types * 2, b->capsample_types, 2);
	if (err)
		return err;
	b->sample_types[b->nsample_types * 2] = t;
	b->sample_types[b->nsample_types * 2 + 1] = u;
	b->nsample_types++;
	return 0;
}

int pprofb_set_period(struct pprofb *b, const char *type, const char *unit, int64_t period)
{
	int err;

	err = pprofb_string(b, type, &b->period_type[0])
		  ?: pprofb_string(b, unit, &b->period_type[1]);
	if (err)
		return err;
	b->period = period;
	return 0;
}

void pprofb_set_time(struct pprofb *b, int64_t time_nanos, int64_t duration_nanos)
{
	b->time_nanos = time_nanos;
	b->duration_nanos = duration_nanos;
}

int pprofb_add_comment(struct pprofb *b, const char *text)
{
	int64_t idx;
	int err;

	err = pprofb_string(b, text, &idx)
		  ?: RESERVE(b, b->comments, b->ncomments, b->capcomments, 1);
	if (err)
		return err;
	b->comments[b->ncomments++] = idx;
	return 0;
}

int pprofb_add_mapping(struct pprofb *b, const struct pprofb_mapping *m, uint64_t *id)
{
	struct pmapping pm = {
	    .start = m->memory_start,
	    .limit = m->memory_limit,
	    .offset = m->file_offset,
	    .has_functions = m->has_functions,
	    .has_filenames = m->has_filenames,
	    .has_line_numbers = m->has_line_numbers,
	    .has_inline_frames = m->has_inline_frames,
	};
	int err;

	err = pprofb_string(b, m->filename, &pm.filename) ?:
	      pprofb_string(b, m->build_id, &pm.build_id) ?:
	      RESERVE(b, b->mappings, b->nmappings, b->capmappings, 1);
	if (err)
		return err;
	b->mappings[b->nmappings++] = pm;
	*id = b->nmappings;
	return 0;
}

int pprofb_extend_mapping(struct pprofb *b, uint64_t id, uint64_t limit)
{
	if (id < 1 || id > b->nmappings)
		return -ENOENT;
	if (b->mappings[id - 1].limit < limit)
		b->mappings[id - 1].limit = limit;
	return 0;
}

static bool function_eq(const struct pprofb *b, size_t idx, const void *key)
{
	return memcmp(&b->functions[idx], key, sizeof(struct pfunction)) == 0;
}

int pprofb_function(struct pprofb *b, const char *name, const char *system_name,
		    const char *filename, int64_t start_line, uint64_t *id)
{
	struct pfunction f = {.start_line = start_line};
	struct islot *slot;
	uint32_t h;
	int err;

	err = pprofb_string(b, name, &f.name) ?: pprofb_string(b, system_name, &f.system_name) ?:
	      pprofb_string(b, filename, &f.filename) ?: itab_grow(b, &b->function_idx);
	if (err)
		return err;
	h = fold(fnv(FNV_INIT, &f, sizeof(f)));
	slot = itab_find(b, &b->function_idx, h, function_eq, &f);
	if (!slot->idx1) {
		err = RESERVE(b, b->functions, b->nfunctions, b->capfunctions, 1);
		if (err)
			return err;
		b->functions[b->nfunctions++] = f;
		slot->hash = h;
		slot->idx1 = (uint32_t)b->nfunctions;
		b->function_idx.n++;
	}
	*id = slot->idx1;
	return 0;
}

struct location_key {
	uint64_t mapping_id, address;
	const struct pprofb_line *lines;
	size_t n;
};

static bool location_eq(const struct pprofb *b, size_t idx, const void *key)
{
	const struct plocation *l = &b->locations[idx];
	const struct location_key *k = key;

	if (l->mapping_id != k->mapping_id || l->address != k->address || l->nlines != k->n)
		return false;
	for (size_t i = 0; i < k->n; i++) {
		const struct pprofb_line *a = &b->lines[l->line0 + i], *c = &k->lines[i];

		if (a->function_id != c->function_id || a->line != c->line ||
		    a->column != c->column)
			return false;
	}
	return true;
}

int pprofb_location(struct pprofb *b, uint64_t mapping_id, uint64_t address,
		    const struct pprofb_line *lines, size_t n, uint64_t *id)
{
	struct location_key k = {mapping_id, address, lines, n};
	struct islot *slot;
	uint64_t h;
	int err;

	if (n > UINT32_MAX || b->nlines + n > UINT32_MAX)
		return -E2BIG;
	h = fnv(FNV_INIT, &mapping_id, sizeof(mapping_id));
	h = fnv(h, &address, sizeof(address));
	for (size_t i = 0; i < n; i++) {
		h = fnv(h, &lines[i].function_id, sizeof(lines[i].function_id));
		h = fnv(h, &lines[i].line, sizeof(lines[i].line));
		h = fnv(h, &lines[i].column, sizeof(lines[i].column));
	}
	err = itab_grow(b, &b->location_idx);
	if (err)
		return err;
	slot = itab_find(b, &b->location_idx, fold(h), location_eq, &k);
	if (!slot->idx1) {
		err = RESERVE(b, b->locations, b->nlocations, b->caplocations, 1)
			  ?: RESERVE(b, b->lines, b->nlines, b->caplines, n);
		if (err)
			return err;
		b->locations[b->nlocations++] = (struct plocation){
		    .mapping_id = mapping_id,
		    .address = address,
		    .line0 = (uint32_t)b->nlines,
		    .nlines = (uint32_t)n,
		};
		if (n)
			memcpy(&b->lines[b->nlines], lines, n * sizeof(*lines));
		b->nlines += n;
		slot->hash = fold(h);
		slot->idx1 = (uint32_t)b->nlocations;
		b->location_idx.n++;
	}
	*id = slot->idx1;
	return 0;
}

struct sample_key {
	const uint64_t *locs;
	size_t nlocs;
	const struct plabel *labels;
	size_t nlabels;
};

static bool sample_eq(const struct pprofb *b, size_t idx, const void *key)
{
	const struct psample *s = &b->samples[idx];
	const struct sample_key *k = key;

	return s->nlocs == k->nlocs && s->nlabels == k->nlabels &&
	       !memcmp(&b->sample_locs[s->loc0], k->locs, k->nlocs * sizeof(*k->locs)) &&
	       (!k->nlabels || /* memcmp of a NULL table, even for 0 bytes, is undefined */
		!memcmp(&b->labels[s->label0], k->labels, k->nlabels * sizeof(*k->labels)));
}

/* Sample label limit per sample: pprof labels are a handful; more is a caller bug or abuse. */
#define PPROFB_MAX_LABELS 64

int pprofb_add_sample(struct pprofb *b, const uint64_t *locs, size_t nlocs, const int64_t *values,
		      const struct pprofb_label *labels, size_t nlabels)
{
	struct plabel pl[PPROFB_MAX_LABELS];
	struct sample_key k = {locs, nlocs, pl, nlabels};
	size_t nv = b->nsample_types;
	struct islot *slot;
	uint64_t h;
	int err;

	if (!nv)
		return -EINVAL;
	if (nlabels > PPROFB_MAX_LABELS || nlocs > UINT32_MAX ||
	    b->nsample_locs + nlocs > UINT32_MAX)
		return -E2BIG;
	for (size_t i = 0; i < nlabels; i++) {
		pl[i] = (struct plabel){.num = labels[i].str ? 0 : labels[i].num};
		err = pprofb_string(b, labels[i].key, &pl[i].key);
		if (!err && labels[i].str)
			err = pprofb_string(b, labels[i].str, &pl[i].str);
		if (!err && !labels[i].str && labels[i].num_unit)
			err = pprofb_string(b, labels[i].num_unit, &pl[i].unit);
		if (err)
			return err;
	}
	h = fnv(FNV_INIT, locs, nlocs * sizeof(*locs));
	h = fnv(h, pl, nlabels * sizeof(*pl));
	err = itab_grow(b, &b->sample_idx);
	if (err)
		return err;
	slot = itab_find(b, &b->sample_idx, fold(h), sample_eq, &k);
	if (!slot->idx1) {
		err = RESERVE(b, b->samples, b->nsamples, b->capsamples, 1) ?:
		      RESERVE(b, b->sample_locs, b->nsample_locs, b->capsample_locs, nlocs) ?:
		      RESERVE(b, b->labels, b->nlabels, b->caplabels, nlabels) ?:
		      RESERVE(b, b->values, b->nvalues, b->capvalues, nv);
		if (err)
			return err;
		b->samples[b->nsamples++] = (struct psample){
		    .loc0 = (uint32_t)b->nsample_locs,
		    .nlocs = (uint32_t)nlocs,
		    .label0 = (uint32_t)b->nlabels,
		    .nlabels = (uint32_t)nlabels,
		    .value0 = (uint32_t)b->nvalues,
		};
		if (nlocs)
			memcpy(&b->sample_locs[b->nsample_locs], locs, nlocs * sizeof(*locs));
		if (nlabels)
			memcpy(&b->labels[b->nlabels], pl, nlabels * sizeof(*pl));
		memset(&b->values[b->nvalues], 0, nv * sizeof(*b->values));
		b->nsample_locs += nlocs;
		b->nlabels += nlabels;
		b->nvalues += nv;
		slot->hash = fold(h);
		slot->idx1 = (uint32_t)b->nsamples;
		b->sample_idx.n++;
	}
	{
		int64_t *dst = &b->values[b->samples[slot->idx1 - 1].value0], sum[PPROFB_MAX_TYPES];

		/* all or nothing: a sum past 64 bits changes no value */
		for (size_t i = 0; i < nv; i++)
			if (__builtin_add_overflow(dst[i], values[i], &sum[i]))
				return -ERANGE;
		memcpy(dst, sum, nv * sizeof(*dst));
		/* only a figure for reports: it saturates */
		if (nv && __builtin_add_overflow(b->value_total, values[0], &b->value_total))
			b->value_total = values[0] < 0 ? INT64_MIN : INT64_MAX;
	}
	return 0;
}

size_t pprofb_sample_count(const struct pprofb *b)
{
	return b->nsamples;
}

int64_t pprofb_value_total(const struct pprofb *b)
{
	return b->value_total;
}

/* The protobuf-c view of a profile: flat arrays pointing into the builder's pools. */
struct pbview {
	Perftools__Profiles__Profile p;
	Perftools__Profiles__ValueType *vt, period_type;
	Perftools__Profiles__Sample *s;
	Perftools__Profiles__Label *l;
	Perftools__Profiles__Mapping *m;
	Perftools__Profiles__Location *loc;
	Perftools__Profiles__Line *ln;
	Perftools__Profiles__Function *f;
	void **ptrs; /* every repeated message field's pointer array, one after the other */
};

static void pbview_free(struct pbview *v)
{
	free(v->vt);
	free(v->s);
	free(v->l);
	free(v->m);
	free(v->loc);
	free(v->ln);
	free(v->f);
	free(v->ptrs);
}

static int pbview_alloc(const struct pprofb *b, struct pbview *v)
{
	size_t nptrs = b->nsample_types + b->nsamples + b->nlabels + b->nmappings + b->nlocations +
		       b->nlines + b->nfunctions;

	v->vt = calloc(b->nsample_types + 1, sizeof(*v->vt));
	v->s = calloc(b->nsamples + 1, sizeof(*v->s));
	v->l = calloc(b->nlabels + 1, sizeof(*v->l));
	v->m = calloc(b->nmappings + 1, sizeof(*v->m));
	v->loc = calloc(b->nlocations + 1, sizeof(*v->loc));
	v->ln = calloc(b->nlines + 1, sizeof(*v->ln));
	v->f = calloc(b->nfunctions + 1, sizeof(*v->f));
	v->ptrs = calloc(nptrs + 1, sizeof(*v->ptrs));
	if (!v->vt || !v->s || !v->l || !v->m || !v->loc || !v->ln || !v->f || !v->ptrs)
		return -ENOMEM;
	return 0;
}

static void pbview_fill(const struct pprofb *b, struct pbview *v)
{
	void **p = v->ptrs;

	v->p = (Perftools__Profiles__Profile)PERFTOOLS__PROFILES__PROFILE__INIT;
	v->p.sample_type = (Perftools__Profiles__ValueType **)p;
	v->p.n_sample_type = b->nsample_types;
	for (size_t i = 0; i < b->nsample_types; i++) {
		v->vt[i] = (Perftools__Profiles__ValueType)PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
		v->vt[i].type = b->sample_types[2 * i];
		v->vt[i].unit = b->sample_types[2 * i + 1];
		*p++ = &v->vt[i];
	}
	for (size_t i = 0; i < b->nlabels; i++) {
		v->l[i] = (Perftools__Profiles__Label)PERFTOOLS__PROFILES__LABEL__INIT;
		v->l[i].key = b->labels[i].key;
		v->l[i].str = b->labels[i].str;
		v->l[i].num = b->labels[i].num;
		v->l[i].num_unit = b->labels[i].unit;
	}
	v->p.sample = (Perftools__Profiles__Sample **)p;
	v->p.n_sample = b->nsamples;
	for (size_t i = 0; i < b->nsamples; i++) {
		const struct psample *s = &b->samples[i];

		v->s[i] = (Perftools__Profiles__Sample)PERFTOOLS__PROFILES__SAMPLE__INIT;
		v->s[i].location_id = &b->sample_locs[s->loc0];
		v->s[i].n_location_id = s->nlocs;
		v->s[i].value = &b->values[s->value0];
		v->s[i].n_value = b->nsample_types;
		*p++ = &v->s[i];
	}
	/* each sample's label pointers, after all sample pointers */
	for (size_t i = 0; i < b->nsamples; i++) {
		const struct psample *s = &b->samples[i];

		v->s[i].label = (Perftools__Profiles__Label **)p;
		v->s[i].n_label = s->nlabels;
		for (size_t j = 0; j < s->nlabels; j++)
			*p++ = &v->l[s->label0 + j];
	}
	v->p.mapping = (Perftools__Profiles__Mapping **)p;
	v->p.n_mapping = b->nmappings;
	for (size_t i = 0; i < b->nmappings; i++) {
		const struct pmapping *m = &b->mappings[i];

		v->m[i] = (Perftools__Profiles__Mapping)PERFTOOLS__PROFILES__MAPPING__INIT;
		v->m[i].id = i + 1;
		v->m[i].memory_start = m->start;
		v->m[i].memory_limit = m->limit;
		v->m[i].file_offset = m->offset;
		v->m[i].filename = m->filename;
		v->m[i].build_id = m->build_id;
		v->m[i].has_functions = m->has_functions;
		v->m[i].has_filenames = m->has_filenames;
		v->m[i].has_line_numbers = m->has_line_numbers;
		v->m[i].has_inline_frames = m->has_inline_frames;
		*p++ = &v->m[i];
	}
	for (size_t i = 0; i < b->nlines; i++) {
		v->ln[i] = (Perftools__Profiles__Line)PERFTOOLS__PROFILES__LINE__INIT;
		v->ln[i].function_id = b->lines[i].function_id;
		v->ln[i].line = b->lines[i].line;
		v->ln[i].column = b->lines[i].column;
	}
	v->p.location = (Perftools__Profiles__Location **)p;
	v->p.n_location = b->nlocations;
	for (size_t i = 0; i < b->nlocations; i++) {
		v->loc[i] = (Perftools__Profiles__Location)PERFTOOLS__PROFILES__LOCATION__INIT;
		v->loc[i].id = i + 1;
		v->loc[i].mapping_id = b->locations[i].mapping_id;
		v->loc[i].address = b->locations[i].address;
		*p++ = &v->loc[i];
	}
	for (size_t i = 0; i < b->nlocations; i++) {
		v->loc[i].line = (Perftools__Profiles__Line **)p;
		v->loc[i].n_line = b->locations[i].nlines;
		for (size_t j = 0; j < b->locations[i].nlines; j++)
			*p++ = &v->ln[b->locations[i].line0 + j];
	}
	v->p.function = (Perftools__Profiles__Function **)p;
	v->p.n_function = b->nfunctions;
	for (size_t i = 0; i < b->nfunctions; i++) {
		v->f[i] = (Perftools__Profiles__Function)PERFTOOLS__PROFILES__FUNCTION__INIT;
		v->f[i].id = i + 1;
		v->f[i].name = b->functions[i].name;
		v->f[i].system_name = b->functions[i].system_name;
		v->f[i].filename = b->functions[i].filename;
		v->f[i].start_line = b->functions[i].start_line;
		*p++ = &v->f[i];
	}
	v->p.string_table = b->strs;
	v->p.n_string_table = b->nstrs;
	v->p.time_nanos = b->time_nanos;
	v->p.duration_nanos = b->duration_nanos;
	v->period_type = (Perftools__Profiles__ValueType)PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	v->period_type.type = b->period_type[0];
	v->period_type.unit = b->period_type[1];
	v->p.period_type = &v->period_type;
	v->p.period = b->period;
	v->p.comment = b->comments;
	v->p.n_comment = b->ncomments;
}

int pprofb_encode(struct pprofb *b, uint8_t **out, size_t *len)
{
	struct pbview v = {0};
	uint8_t *buf = NULL;
	size_t n;
	int err;

	err = pbview_alloc(b, &v);
	if (err)
		goto out;
	pbview_fill(b, &v);
	n = perftools__profiles__profile__get_packed_size(&v.p);
	if (n > b->max_bytes) {
		err = -E2BIG;
		goto out;
	}
	buf = malloc(n ? n : 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	*len = perftools__profiles__profile__pack(&v.p, buf);
	*out = buf;
	buf = NULL;
out:
	free(buf);
	pbview_free(&v);
	return err;
}

int pprofb_gzip(const void *in, size_t n, size_t max, uint8_t **out, size_t *outlen)
{
	z_stream zs = {0};
	uint8_t *buf = NULL;
	size_t cap;
	int zerr, err = 0;

	if (n > UINT32_MAX)
		return -E2BIG;
	if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&zs, (uLong)n);
	if (cap > max)
		cap = max;
	buf = malloc(cap ? cap : 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	zs.next_out = buf;
	zs.avail_out = (uInt)cap;
	zerr = deflate(&zs, Z_FINISH);
	if (zerr != Z_STREAM_END) {
		err = zerr == Z_OK || zerr == Z_BUF_ERROR ? -E2BIG : -EIO;
		goto out;
	}
	*outlen = zs.total_out;
	*out = buf;
	buf = NULL;
out:
	deflateEnd(&zs);
	free(buf);
	return err;
}
