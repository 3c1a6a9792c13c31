// unw_cxx - C++ at -O2 without frame pointers for tests/run-agent-unwind.sh: a template
// instantiation calls a lambda through std::function, which burns CPU and throws; the throw
// is caught two frames up. Chain while burning (leaf first):
//   burn_cxx <- lambda in run_lambda <- std::function invoker <- Worker<int>::step <- main
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>

#define NOINLINE __attribute__((noinline))

static volatile unsigned long sink;

extern "C" NOINLINE unsigned long burn_cxx(unsigned long n)
{
	unsigned long x = n;

	for (unsigned long i = 0; i < 300000; i++)
		x = x * 6364136223846793005UL + i;
	if ((x & 0xff) == 7)
		throw std::runtime_error("odd");
	return x;
}

template <typename T> struct Worker {
	T acc{};

	NOINLINE T step(const std::function<T(T)> &f, T v)
	{
		T r;

		try {
			r = f(v);
		} catch (const std::exception &) {
			r = v + 1;
		}
		acc += r;
		return r;
	}
};

NOINLINE int run_lambda(Worker<int> &w, int v)
{
	std::function<int(int)> f = [](int x) NOINLINE {
		unsigned long r = burn_cxx((unsigned long)x);

		sink += r;
		return (int)(r & 0xffff) ^ x;
	};
	int r = w.step(f, v);

	sink += (unsigned long)r;
	return r;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
	Worker<int> w;
	int v = 1;

	while (std::chrono::steady_clock::now() < until)
		v = run_lambda(w, v);
	std::printf("%d\n", (int)(sink & 1) + (w.acc & 1));
	return 0;
}
