// inl - a fixture for gopclntab: small functions the compiler inlines into each other (leaf into
// mid into top into a non-inlined driver), each calling report(), which prints the program's own
// view of its stack through runtime.CallersFrames, one line per frame:
//
//	frame PC FUNCTION FILE LINE
//
// and "end" after each stack. The test symbolizes each PC from the binary's .gopclntab and
// expects the same chains. Built with Debian's golang-go at test time.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
)

var sink int

//go:noinline
func report(tag string) {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(1, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	fmt.Printf("stack %s\n", tag)
	for {
		f, more := frames.Next()
		fmt.Printf("frame %x %s %s %d\n", f.PC, f.Function, f.File, f.Line)
		if !more {
			break
		}
	}
	fmt.Println("end")
}

func leaf(x int) int {
	if x > 2 {
		report("leaf")
	}
	return x*3 + 1
}

func mid(x int) int {
	return leaf(x+1) * 2
}

func top(x int) int {
	return mid(x) - 1
}

type counter struct{ n int }

func (c *counter) bump(k int) {
	c.n += k
	if c.n > 5 {
		report("method")
	}
}

//go:noinline
func driver(xs []int) int {
	total := 0
	c := &counter{}
	for _, x := range xs {
		total += top(x)
		c.bump(x)
	}
	total += mid(7)
	return total + c.n
}

// work gives the binary some more code of its own: sorting, strings, closures.
//
//go:noinline
func work(words []string) string {
	sort.Slice(words, func(i, j int) bool { return len(words[i]) < len(words[j]) })
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ToUpper(w))
	}
	return b.String()
}

func main() {
	sink = driver([]int{1, 2, 3, 4})
	fmt.Fprintln(os.Stderr, work(os.Args[1:]), sink)
}
