// Fixture for tests/run-compare-cxx.sh: a small C++ program whose g++ -O2 -g build has
// namespaces, class and function templates, methods (const, static, virtual, operators),
// lambdas (also inside templates), std::vector / std::map / std::string instantiations and
// forced inlining, so that demangled and mangled names of every kind appear in inline chains.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#define FORCE_INLINE inline __attribute__((always_inline))

namespace fleet {
namespace detail {

FORCE_INLINE unsigned long mix(unsigned long x)
{
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15UL;
	return x ^ (x >> 29);
}

template <typename T> FORCE_INLINE T clamp_add(T a, T b, T hi)
{
	T s = a + b;
	return s > hi ? hi : s;
}

} // namespace detail

struct Sample {
	unsigned long pc;
	int weight;
	bool operator<(const Sample &o) const { return pc < o.pc; }
};

class Shape {
public:
	virtual ~Shape() = default;
	virtual double area() const = 0;
	virtual const char *name() const { return "shape"; }
};

class Rect : public Shape {
public:
	Rect(double w, double h) : w_(w), h_(h) {}
	double area() const override { return scaled(w_) * h_; }
	const char *name() const override { return "rect"; }

private:
	FORCE_INLINE double scaled(double v) const { return v > 100 ? v / 2 : v; }
	double w_, h_;
};

class Circle : public Shape {
public:
	explicit Circle(double r) : r_(r) {}
	double area() const override { return 3.14159 * r_ * r_; }

private:
	double r_;
};

template <typename Key, typename Value> class Histogram {
public:
	FORCE_INLINE void add(const Key &k, Value v)
	{
		auto &slot = counts_[k];
		slot = detail::clamp_add<Value>(slot, v, limit_);
		total_ += v;
	}

	__attribute__((noinline)) Value get(const Key &k) const
	{
		auto it = counts_.find(k);
		return it == counts_.end() ? Value() : it->second;
	}

	template <typename F> void for_each(F f) const
	{
		for (const auto &kv : counts_)
			f(kv.first, kv.second);
	}

	Value total() const { return total_; }
	std::size_t size() const { return counts_.size(); }

private:
	std::map<Key, Value> counts_;
	Value total_ = 0;
	Value limit_ = 1000000;
};

class Profile {
public:
	__attribute__((noinline)) void record(unsigned long pc, int weight)
	{
		samples_.push_back(Sample{ pc, weight });
		by_pc_.add(pc & ~0xfUL, weight);
		by_bucket_.add(bucket_of(pc), weight);
	}

	__attribute__((noinline)) void normalise()
	{
		std::sort(samples_.begin(), samples_.end());
		auto last = std::unique(samples_.begin(), samples_.end(),
					[](const Sample &a, const Sample &b) { return a.pc == b.pc; });
		samples_.erase(last, samples_.end());
	}

	__attribute__((noinline)) std::string top(std::size_t n) const
	{
		std::vector<std::pair<int, std::string>> v;
		by_bucket_.for_each([&v](const std::string &k, int w) { v.emplace_back(w, k); });
		std::partial_sort(v.begin(), v.begin() + std::min(n, v.size()), v.end(),
				  [](const auto &a, const auto &b) { return a.first > b.first; });
		std::string out;
		for (std::size_t i = 0; i < n && i < v.size(); i++)
			out += v[i].second + "=" + std::to_string(v[i].first) + " ";
		return out;
	}

	static Profile *make() { return new Profile(); }
	std::size_t samples() const { return samples_.size(); }
	int weight_of(unsigned long pc) const { return by_pc_.get(pc & ~0xfUL); }

private:
	static FORCE_INLINE std::string bucket_of(unsigned long pc)
	{
		char buf[32];
		std::snprintf(buf, sizeof(buf), "b%lu", detail::mix(pc) % 17);
		return buf;
	}

	std::vector<Sample> samples_;
	Histogram<unsigned long, int> by_pc_;
	Histogram<std::string, int> by_bucket_;
};

template <typename It, typename Pred> __attribute__((noinline)) long count_where(It b, It e, Pred p)
{
	long n = 0;
	for (; b != e; ++b)
		if (p(*b))
			n++;
	return n;
}

__attribute__((noinline)) double total_area(const std::vector<std::unique_ptr<Shape>> &shapes)
{
	return std::accumulate(shapes.begin(), shapes.end(), 0.0,
			       [](double acc, const std::unique_ptr<Shape> &s) {
				       return acc + s->area();
			       });
}

} // namespace fleet

namespace {

struct Matrix {
	double m[4][4];

	FORCE_INLINE Matrix operator*(const Matrix &o) const
	{
		Matrix r{};
		for (int i = 0; i < 4; i++)
			for (int j = 0; j < 4; j++)
				for (int k = 0; k < 4; k++)
					r.m[i][j] += m[i][k] * o.m[k][j];
		return r;
	}
};

__attribute__((noinline)) Matrix power(Matrix a, int n)
{
	Matrix r{};
	for (int i = 0; i < 4; i++)
		r.m[i][i] = 1;
	while (n) {
		if (n & 1)
			r = r * a;
		a = a * a;
		n >>= 1;
	}
	return r;
}

} // namespace

int main(int argc, char **argv)
{
	std::unique_ptr<fleet::Profile> p(fleet::Profile::make());
	for (unsigned long i = 0; i < 1000; i++)
		p->record(fleet::detail::mix(i) % 4096 + 0x1000, (int)(i % 7) + argc);
	p->normalise();

	std::vector<std::unique_ptr<fleet::Shape>> shapes;
	shapes.emplace_back(new fleet::Rect(3, 4));
	shapes.emplace_back(new fleet::Circle(1.5));
	shapes.emplace_back(new fleet::Rect(300, 2));

	std::vector<int> v(100);
	std::iota(v.begin(), v.end(), argc);
	int threshold = argc > 1 ? std::atoi(argv[1]) : 50;
	long big = fleet::count_where(v.begin(), v.end(), [threshold](int x) { return x > threshold; });
	std::function<int(int)> twice = [](int x) { return 2 * x; };

	Matrix m{};
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			m.m[i][j] = (i + j) % 3 * 0.5;
	Matrix q = power(m, 5 + argc);

	std::printf("%zu samples, top: %s\narea %.2f, %ld big, %d, w=%d, q=%.3f, %s\n", p->samples(),
		    p->top(3).c_str(), fleet::total_area(shapes), big, twice(21),
		    p->weight_of(0x1234), q.m[1][2], shapes[0]->name());
	return 0;
}
