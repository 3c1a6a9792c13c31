/*
 * codec - the demo's shared library (libdemocodec.so): a toy run-length "compressor" for the
 * workload's replies. `make demo` ships it stripped and does NOT upload its debug info, so its
 * frames stay "libdemocodec.so+0x..." and the web UI's "Missing debug info" panel lists its
 * build ID with the command that fixes it.
 */
#include <stddef.h>
#include <stdint.h>

__attribute__((noinline)) size_t codec_compress(const uint8_t *in, size_t n, uint8_t *out,
						size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 2 <= cap;) {
		size_t run = 1;

		while (i + run < n && in[i + run] == in[i] && run < 255)
			run++;
		out[o++] = (uint8_t)run;
		out[o++] = in[i];
		i += run;
	}
	return o;
}
