// A header class that every TU including it emits: its out-of-line virtual destructor and
// method are COMDAT, the linker keeps one copy and both TUs' DWARF describe the same range.
struct Widget {
	virtual ~Widget() {}
	__attribute__((noinline)) int get(int x) { return x * 3 + v; }
	int v = 1;
};
