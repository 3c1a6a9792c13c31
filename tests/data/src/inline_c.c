/*
 * Fixture for tests/run-compare-c.sh and run-compare-split.sh: a small C program whose -O2 -g
 * build has inline chains 2-3 deep, loops, a switch (jump table) and a hot/cold split
 * (__builtin_expect + a cold function => GCC emits a FUNC.cold part). Compiled at test time;
 * VARIANT (-DVARIANT=n) changes code so that two builds differ for the dwz case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VARIANT
#define VARIANT 0
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

struct acc {
	unsigned long sum;
	unsigned long xor;
	unsigned int n;
	unsigned char hist[16];
};

ALWAYS_INLINE unsigned long mix(unsigned long x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdUL;
	x ^= x >> 33;
	return x + VARIANT;
}

ALWAYS_INLINE void bump(struct acc *a, unsigned long v)
{
	a->hist[v & 15]++;
	a->xor ^= mix(v);
}

ALWAYS_INLINE void add(struct acc *a, unsigned long v)
{
	{
		unsigned long t = v * 3 + a->n;

		a->sum += t;
		bump(a, t);
	}
	a->n++;
}

__attribute__((cold, noinline)) static void report_overflow(const struct acc *a, const char *why)
{
	fprintf(stderr, "overflow after %u items (%s): sum=%lu\n", a->n, why, a->sum);
	for (int i = 0; i < 16; i++)
		fprintf(stderr, " %u", a->hist[i]);
	fputc('\n', stderr);
}

__attribute__((noinline)) int consume(struct acc *a, const unsigned long *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		add(a, v[i]);
		if (__builtin_expect(a->sum > (1UL << 62), 0)) {
			report_overflow(a, "sum");
			a->sum = 0;
			return -1;
		}
	}
	return 0;
}

ALWAYS_INLINE int classify_one(int c)
{
	switch (c) {
	case 'a': case 'e': case 'i': case 'o': case 'u':
		return 1;
	case '0': case '1': case '2': case '3': case '4':
		return 2 + (c & 1);
	case ' ': return 4;
	case '\t': return 5;
	case '\n': return 6;
	case ',': return 7;
	case '.': return 8;
	case ';': return 9;
	default:
		return c > 127 ? 10 : 0;
	}
}

__attribute__((noinline)) int classify(const char *s, int *counts)
{
	int total = 0;

	while (*s) {
		int k = classify_one((unsigned char)*s++);

		counts[k]++;
		total += k;
	}
	return total;
}

ALWAYS_INLINE unsigned long fold3(unsigned long a, unsigned long b)
{
	return mix(a) ^ mix(b + 1);
}

ALWAYS_INLINE unsigned long fold2(const unsigned long *v, size_t n)
{
	unsigned long h = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		h += fold3(v[i], v[i + 1]);
	return h;
}

__attribute__((noinline)) unsigned long digest(const unsigned long *v, size_t n)
{
	unsigned long h = fold2(v, n);

	if (n & 1)
		h ^= mix(v[n - 1]);
	return h;
}

static int cmp_ul(const void *x, const void *y)
{
	unsigned long a = *(const unsigned long *)x, b = *(const unsigned long *)y;

	return a < b ? -1 : a > b;
}

__attribute__((noinline)) static char *render(const struct acc *a, char *buf, size_t cap)
{
	size_t off = 0;

	off += snprintf(buf + off, cap - off, "n=%u sum=%lu", a->n, a->sum);
	for (int i = 0; i < 16 && off < cap; i++) {
		if (__builtin_expect(off + 8 >= cap, 0)) {
			report_overflow(a, "render");
			break;
		}
		off += snprintf(buf + off, cap - off, " %u", a->hist[i]);
	}
	return buf;
}


/* A small open-addressing hash table: inline probing helpers two and three levels deep. */
#define TABLE_BITS 8
struct slot {
	unsigned long key;
	long val;
	int used;
};
struct table {
	struct slot s[1 << TABLE_BITS];
	unsigned int n, probes;
};

ALWAYS_INLINE unsigned int slot_of(unsigned long key, unsigned int i)
{
	return (unsigned int)(mix(key) + i * i) & ((1u << TABLE_BITS) - 1);
}

ALWAYS_INLINE struct slot *probe(struct table *t, unsigned long key, int insert)
{
	for (unsigned int i = 0; i < (1u << TABLE_BITS); i++) {
		struct slot *s = &t->s[slot_of(key, i)];

		t->probes++;
		if (s->used && s->key == key)
			return s;
		if (!s->used)
			return insert ? s : NULL;
	}
	return NULL;
}

__attribute__((noinline)) int table_put(struct table *t, unsigned long key, long val)
{
	struct slot *s = probe(t, key, 1);

	if (__builtin_expect(!s, 0)) {
		fprintf(stderr, "table full at %u entries\n", t->n);
		return -1;
	}
	if (!s->used) {
		s->used = 1;
		s->key = key;
		t->n++;
	}
	s->val += val;
	return 0;
}

__attribute__((noinline)) long table_get(struct table *t, unsigned long key)
{
	struct slot *s = probe(t, key, 0);

	return s ? s->val : -1;
}

/* A scope with an address-taken array inside an always_inline function: its lexical block
 * has code of its own between the inlined calls, the case where eu-addr2line loses callers. */
__attribute__((noinline)) void fill(char *buf, size_t n, unsigned long seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (mix(seed + i) % 26));
}

ALWAYS_INLINE unsigned long scoped_sum(unsigned long seed, int rounds)
{
	unsigned long h = seed;

	for (int r = 0; r < rounds; r++) {
		char tmp[32];

		fill(tmp, sizeof(tmp), h + r);
		for (int i = 0; i < (int)sizeof(tmp); i++)
			h = h * 31 + (unsigned char)tmp[i];
		h ^= (unsigned long)classify_one(tmp[r & 31]);
	}
	return h;
}

ALWAYS_INLINE unsigned long scoped_twice(unsigned long seed)
{
	unsigned long a = scoped_sum(seed, 3);

	{
		char note[48];

		snprintf(note, sizeof(note), "%lx", a);
		a += (unsigned long)classify(note, (int[11]){ 0 });
	}
	return a ^ scoped_sum(a, 2);
}

__attribute__((noinline)) unsigned long scoped(unsigned long seed)
{
	return scoped_twice(seed) + scoped_sum(seed * 7, 1);
}

/* Tokenizer: a state machine in one function, with an inlined character-class helper. */
enum tok { T_END, T_WORD, T_NUM, T_PUNCT, T_SPACE };

ALWAYS_INLINE int is_word(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

ALWAYS_INLINE int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

ALWAYS_INLINE enum tok next_tok(const char **p, size_t *len)
{
	const char *s = *p, *b;

	if (!*s)
		return T_END;
	b = s;
	if (is_word(*s)) {
		while (is_word(*s) || is_digit(*s))
			s++;
		*len = (size_t)(s - b);
		*p = s;
		return T_WORD;
	}
	if (is_digit(*s)) {
		while (is_digit(*s) || *s == '.')
			s++;
		*len = (size_t)(s - b);
		*p = s;
		return T_NUM;
	}
	if (*s == ' ' || *s == '\t' || *s == '\n') {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		*len = (size_t)(s - b);
		*p = s;
		return T_SPACE;
	}
	*len = 1;
	*p = s + 1;
	return T_PUNCT;
}

__attribute__((noinline)) int tokenize(const char *s, struct table *t)
{
	size_t len;
	enum tok k;
	int n = 0;

	while ((k = next_tok(&s, &len)) != T_END) {
		switch (k) {
		case T_WORD:
			table_put(t, mix(len) ^ (unsigned long)s[-1], 1);
			break;
		case T_NUM:
			table_put(t, strtoul(s - len, NULL, 10), 2);
			break;
		case T_PUNCT:
			n += s[-1] == ';' ? 10 : 1;
			break;
		default:
			break;
		}
		n++;
	}
	return n;
}

/* A family of similar functions, each with its own inlined copies of the helpers. */
#define STAGE(N)                                                                          \
	__attribute__((noinline)) unsigned long stage##N(struct acc *a, const unsigned long *v, \
							 size_t n)                               \
	{                                                                                 \
		unsigned long h = N;                                                      \
		for (size_t i = 0; i < n; i++) {                                          \
			if (v[i] % (N + 2) == 0)                                          \
				add(a, v[i] + N);                                         \
			else                                                              \
				h ^= fold3(v[i], h * N);                                  \
		}                                                                         \
		if (__builtin_expect(h == 0, 0))                                          \
			report_overflow(a, "stage" #N);                                   \
		return h + digest(v, n & N);                                              \
	}
STAGE(1)
STAGE(2)
STAGE(3)
STAGE(4)
STAGE(5)
STAGE(6)
STAGE(7)
STAGE(8)

typedef unsigned long (*stage_fn)(struct acc *, const unsigned long *, size_t);
static const stage_fn stages[] = { stage1, stage2, stage3, stage4,
				   stage5, stage6, stage7, stage8 };

int main(int argc, char **argv)
{
	unsigned long v[64];
	int counts[11] = { 0 };
	struct acc a;
	char buf[256];

	memset(&a, 0, sizeof(a));
	for (int i = 0; i < 64; i++)
		v[i] = mix((unsigned long)i * (argc + 1)) & 0xffffffffUL;
	qsort(v, 64, sizeof(v[0]), cmp_ul);
	if (consume(&a, v, 64) < 0)
		return 1;
	printf("%s digest=%lx classes=%d\n", render(&a, buf, sizeof(buf)), digest(v, 64),
	       classify(argc > 1 ? argv[1] : "hello, world.\n", counts));
	{
		static struct table t;
		unsigned long h = 0;

		for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
			h += stages[i](&a, v, 64 - i);
		printf("tokens=%d scoped=%lx stages=%lx get=%ld\n",
		       tokenize("int x = 42; y_1 += x * 3.5;\n", &t), scoped(h), h,
		       table_get(&t, 42));
	}
	return 0;
}
