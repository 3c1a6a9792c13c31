/* unw_lib - the library unw_work dlopens: lib_burn -> lib_inner -> the caller's callback. */
#define NOINLINE __attribute__((noinline))

static volatile unsigned long sink;

NOINLINE unsigned long lib_inner(unsigned long (*cb)(unsigned long), unsigned long n)
{
	unsigned long r = cb(n + 1);

	sink += r;
	return r ^ n;
}

NOINLINE unsigned long lib_burn(unsigned long (*cb)(unsigned long), unsigned long n)
{
	unsigned long r = lib_inner(cb, n + 1);

	sink += r;
	return r ^ n;
}
