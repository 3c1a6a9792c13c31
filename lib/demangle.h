/*
 * demangle - linkage names as people read them: C++ (Itanium ABI) as eu-addr2line,
 * llvm-symbolizer and c++filt print them (libstdc++'s __cxa_demangle), and Rust, both the
 * legacy scheme (_ZN...17h<hash>E, the hash dropped) and v0 (_R...), as rustfilt prints them
 * (libiberty's rust_demangle).
 */
#ifndef FLEETSYM_DEMANGLE_H
#define FLEETSYM_DEMANGLE_H

/* NAME demangled, malloc'd (the caller frees it), or NULL when NAME is not a mangled name we
 * read (or memory ran out: the caller then keeps NAME). */
char *demangle(const char *name);

#endif
