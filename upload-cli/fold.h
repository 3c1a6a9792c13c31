/*
 * fold - `perf script` output to folded stacks (flamegraph.pl's and fleetsymd's /ingest
 * format=folded): one line per sample, "comm;root;...;leaf 1", as stackcollapse-perf.pl
 * folds them (spaces of comm as _, symbol offsets dropped), except that a frame perf could not
 * name ("[unknown] (/path)") becomes "/path@BUILDID+0xOFFSET" — the build ID read from the
 * file, the offset in it from perf's address and the file's PT_LOAD headers — so fleetsymd
 * symbolizes it centrally as it does agent frames. Frames of files without a build ID stay
 * "[unknown]".
 */
#ifndef FLEETSYM_FOLD_H
#define FLEETSYM_FOLD_H

#include <stdio.h>

/* Fold IN to OUT. 0, or a negative errno (-ERR_BADINPUT with the line number in ERRBUF for
 * input that is not perf script's). */
int fold_perf_script(FILE *in, FILE *out, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

#endif
