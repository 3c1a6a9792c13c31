/*
 * unwreplay - the unwinder's correctness check without BPF in the loop: recorded stack
 * snapshots (registers + stack bytes + the process's executable mappings, as
 * tests/data/src/unw_snap.c writes them) are walked with the agent's own tables (unwtab) and
 * step rules (bpf/unwind.h, the header the BPF program compiles), and each walk is compared
 * frame by frame with the reference recorded beside it.
 */
#ifndef FLEETSYM_AGENT_UNWREPLAY_H
#define FLEETSYM_AGENT_UNWREPLAY_H

#include <stdio.h>

struct unwreplay_result {
	int snapshots;	 /* snapshots replayed */
	int agree;	 /* ... whose walk equals the reference frame by frame */
	int frames;	 /* reference frames compared */
	int frames_same; /* ... equal in the walk */
};

/* Replay every snapshot in the file at PATH, printing one line per disagreement to LOG.
 * 0, or a negative errno (-EINVAL: malformed file). */
int unwreplay_file(const char *path, FILE *log, struct unwreplay_result *res)
    __attribute__((warn_unused_result));

#endif
