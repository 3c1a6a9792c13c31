/*
 * test_demangle - lib/demangle against names rustc 1.95 wrote for a crate "mycrate" (legacy
 * and v0 mangling of the same functions) and g++ C++ names. The expected names are what the
 * source declares (for Rust, as rustfilt prints them), not another demangler's output.
 */
#include "tests/t.h"

#include "lib/demangle.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	const char *mangled, *want;
} cases[] = {
    /* legacy: the hash goes */
    {"_ZN7mycrate11entry_point17h4f58c16effcb3eaaE", "mycrate::entry_point"},
    {"_ZN7mycrate3foo3bar17heaa0797cf026615fE", "mycrate::foo::bar"},
    {"_ZN7mycrate3foo6Widget4spin17h73d445489a7d26c3E", "mycrate::foo::Widget::spin"},
    /* v0: the crate disambiguators go */
    {"_RNvCs9ouqcdLKNTu_7mycrate11entry_point", "mycrate::entry_point"},
    {"_RNvNtCs9ouqcdLKNTu_7mycrate3foo3bar", "mycrate::foo::bar"},
    {"_RNvMNtCs9ouqcdLKNTu_7mycrate3fooNtB2_6Widget4spin", "<mycrate::foo::Widget>::spin"},
    {"_RINvNtCsgEmfK2I1SDS_4core3ptr13drop_in_placeNtNtCsjrHSEGnQ3l9_3std3env4ArgsECs9ouqcdLKN"
     "Tu_7mycrate",
     "core::ptr::drop_in_place::<std::env::Args>"},
    {"_RNCINvNtCsjrHSEGnQ3l9_3std2rt10lang_startuE0Cs9ouqcdLKNTu_7mycrate",
     "std::rt::lang_start::<()>::{closure#0}"},
    /* C++ as eu-addr2line -C and c++filt print it */
    {"_ZNSt6vectorIiSaIiEE9push_backERKi",
     "std::vector<int, std::allocator<int> >::push_back(int const&)"},
    {"_ZN12_GLOBAL__N_14workEv", "(anonymous namespace)::work()"},
    /* a C++ name ending in what looks like a Rust hash but is not one stays C++ */
    {"_ZN3foo3barEv", "foo::bar()"},
};

TEST(rust_and_cxx)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = demangle(cases[i].mangled);

		if (!got || strcmp(got, cases[i].want) != 0)
			T_FAIL_("%s: got %s, want %s", cases[i].mangled, got ? got : "NULL",
				cases[i].want);
		free(got);
	}
}

TEST(not_mangled_or_broken)
{
	static const char *const plain[] = {"main",	   "_start", "",
					    "_Z",	   "_R",     "_ZN3foo",
					    "_RNv",	   "_Zfoo",  "__vdso_clock_gettime",
					    "runtime.main"};

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char *got = demangle(plain[i]);

		if (got)
			T_FAIL_("%s: got %s, want NULL", plain[i], got);
	}
}
