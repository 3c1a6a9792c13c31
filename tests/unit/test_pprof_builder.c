/*
 * test_pprof_builder - interning, sample merging, encoding (decoded back with protobuf-c),
 * gzip and the byte cap.
 */
#include "tests/t.h"

#include "lib/pprof_builder.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <zlib.h>

static const char *str(const Perftools__Profiles__Profile *p, int64_t i)
{
	return i >= 0 && (size_t)i < p->n_string_table ? p->string_table[i] : "(bad index)";
}

TEST(intern_and_encode)
{
	struct pprofb *b = NULL;
	struct pprofb_mapping m = {.memory_start = 0x1000,
				   .memory_limit = 0x2000,
				   .file_offset = 0x0,
				   .filename = "/bin/x",
				   .build_id = "abcd"};
	struct pprofb_label lab[2] = {{.key = "comm", .str = "x"}, {.key = "pid", .num = 42}};
	struct pprofb_line line;
	uint64_t mid, f1, f2, l1, l2, l3, locs[2];
	int64_t s1, s2, v = 10;
	uint8_t *buf = NULL;
	size_t len = 0;
	Perftools__Profiles__Profile *p;

	CHECK_INT(pprofb_new(NULL, &b), 0);
	CHECK_INT(pprofb_string(b, "hello", &s1), 0);
	CHECK_INT(pprofb_string(b, "hello", &s2), 0);
	CHECK_INT(s1, s2);
	CHECK_INT(pprofb_add_sample(b, locs, 0, &v, NULL, 0), -EINVAL);
	CHECK_INT(pprofb_add_sample_type(b, "cpu", "nanoseconds"), 0);
	CHECK_INT(pprofb_set_period(b, "cpu", "nanoseconds", 1000), 0);
	CHECK_INT(pprofb_add_comment(b, "a comment"), 0);
	pprofb_set_time(b, 123, 456);
	CHECK_INT(pprofb_add_mapping(b, &m, &mid), 0);
	CHECK_INT(mid, 1);
	CHECK_INT(pprofb_extend_mapping(b, mid, 0x3000), 0);
	CHECK_INT(pprofb_extend_mapping(b, 7, 0x3000), -ENOENT);
	CHECK_INT(pprofb_function(b, "f", "f", "", 0, &f1), 0);
	CHECK_INT(pprofb_function(b, "f", "f", "", 0, &f2), 0);
	CHECK_INT(f1, f2);
	CHECK_INT(pprofb_function(b, "g", NULL, NULL, 0, &f2), 0);
	CHECK(f1 != f2);
	line = (struct pprofb_line){.function_id = f1};
	CHECK_INT(pprofb_location(b, mid, 0x1234, &line, 1, &l1), 0);
	CHECK_INT(pprofb_location(b, mid, 0x1234, &line, 1, &l2), 0);
	CHECK_INT(l1, l2);
	CHECK_INT(pprofb_location(b, mid, 0x1235, NULL, 0, &l3), 0);
	CHECK(l3 != l1);
	locs[0] = l1;
	locs[1] = l3;
	CHECK_INT(pprofb_add_sample(b, locs, 2, &v, lab, 2), 0);
	CHECK_INT(pprofb_add_sample(b, locs, 2, &v, lab, 2), 0);
	lab[1].num = 43;
	CHECK_INT(pprofb_add_sample(b, locs, 2, &v, lab, 2), 0);
	CHECK_INT(pprofb_sample_count(b), 2);
	CHECK_INT(pprofb_value_total(b), 30);
	CHECK_INT(pprofb_encode(b, &buf, &len), 0);
	pprofb_free(b);

	p = perftools__profiles__profile__unpack(NULL, len, buf);
	CHECK(p != NULL);
	CHECK_INT(p->n_sample, 2);
	CHECK_INT(p->sample[0]->value[0], 20);
	CHECK_INT(p->sample[1]->value[0], 10);
	CHECK_INT(p->sample[0]->n_location_id, 2);
	CHECK_INT(p->sample[0]->location_id[0], l1);
	CHECK_INT(p->sample[0]->n_label, 2);
	CHECK_STR(str(p, p->sample[0]->label[0]->key), "comm");
	CHECK_STR(str(p, p->sample[0]->label[0]->str), "x");
	CHECK_INT(p->sample[1]->label[1]->num, 43);
	CHECK_INT(p->n_mapping, 1);
	CHECK_INT(p->mapping[0]->memory_limit, 0x3000);
	CHECK_STR(str(p, p->mapping[0]->build_id), "abcd");
	CHECK_INT(p->n_location, 2);
	CHECK_INT(p->location[0]->address, 0x1234);
	CHECK_INT(p->location[0]->n_line, 1);
	CHECK_INT(p->location[1]->n_line, 0);
	CHECK_INT(p->n_function, 2);
	CHECK_STR(str(p, p->function[1]->name), "g");
	CHECK_STR(str(p, p->sample_type[0]->unit), "nanoseconds");
	CHECK_INT(p->period, 1000);
	CHECK_INT(p->time_nanos, 123);
	CHECK_INT(p->duration_nanos, 456);
	CHECK_STR(str(p, p->comment[0]), "a comment");
	CHECK_STR(p->string_table[0], "");
	perftools__profiles__profile__free_unpacked(p, NULL);
	free(buf);
}

TEST(gzip_roundtrip)
{
	char in[5000], back[6000];
	uint8_t *gz = NULL;
	size_t gzlen = 0;
	z_stream zs = {0};

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (char)(i % 7);
	CHECK_INT(pprofb_gzip(in, sizeof(in), 1 << 20, &gz, &gzlen), 0);
	CHECK(gzlen > 18 && gzlen < sizeof(in));
	CHECK(gz[0] == 0x1f && gz[1] == 0x8b);
	CHECK_INT(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = gz;
	zs.avail_in = (uInt)gzlen;
	zs.next_out = (Bytef *)back;
	zs.avail_out = sizeof(back);
	CHECK_INT(inflate(&zs, Z_FINISH), Z_STREAM_END);
	CHECK_INT(zs.total_out, sizeof(in));
	CHECK(memcmp(in, back, sizeof(in)) == 0);
	inflateEnd(&zs);
	free(gz);
	CHECK_INT(pprofb_gzip(in, sizeof(in), 10, &gz, &gzlen), -E2BIG);
}

TEST(byte_cap)
{
	struct pprofb_opts o = {.max_bytes = 4096};
	struct pprofb *b = NULL;
	char name[32];
	int64_t idx;
	int err = 0;

	CHECK_INT(pprofb_new(&o, &b), 0);
	for (int i = 0; i < 100000 && !err; i++) {
		snprintf(name, sizeof(name), "string-%d", i);
		err = pprofb_string(b, name, &idx);
	}
	CHECK_INT(err, -E2BIG);
	pprofb_free(b);
}
