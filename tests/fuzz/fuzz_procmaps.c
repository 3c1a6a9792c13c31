/*
 * fuzz_procmaps - the agent's /proc/PID/maps reader (agent/procmaps.c) on the text of a maps
 * file: lines as proc_read() hands them over (fgets() into a PATH_MAX + 128 buffer, longer
 * lines skipped), each through parse_line(), the kept entries into a process's table and
 * looked up with proc_find() as the sampling thread does. The file's name is fixed
 * (/proc/PID/maps), so the harness includes procmaps.c to reach its line parser.
 */
#include "tests/fuzz/fuzz.h"

#include "agent/procmaps.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[PATH_MAX + 128];
	struct pm_proc p = {.pid = 1};
	struct pm_entry e;
	size_t off = 0;
	int kept;

	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) + 1 : size - off;

		off += len;
		if (len >= sizeof(line))
			continue; /* what proc_read() skips */
		memcpy(line, data + (off - len), len);
		line[len] = 0;
		kept = parse_line(line, &e);
		if (kept < 0)
			break;
		if (!kept)
			continue;
		if (e.m.start >= e.m.end || !e.m.path) {
			fprintf(stderr, "parse_line kept [%llx, %llx)\n",
				(unsigned long long)e.m.start, (unsigned long long)e.m.end);
			abort();
		}
		if (p.n >= PROCMAPS_MAX_MAPS || VEC_PUSH(p.e, p.n, p.cap, e)) {
			free((char *)e.m.path);
			break;
		}
	}
	/* as /proc gives them: sorted and disjoint; then every mapping must be found */
	bool sorted = true;
	for (size_t i = 1; i < p.n; i++)
		sorted &= p.e[i - 1].m.end <= p.e[i].m.start;
	for (size_t i = 0; i < p.n; i++) {
		struct pm_entry *f = proc_find(&p, p.e[i].m.start);

		(void)proc_find(&p, p.e[i].m.end - 1);
		(void)proc_find(&p, p.e[i].m.end);
		if (sorted && f != &p.e[i]) {
			fprintf(stderr, "the mapping at %llx is not found\n",
				(unsigned long long)p.e[i].m.start);
			abort();
		}
	}
	proc_clear(&p);
	free(p.e);
	return 0;
}
