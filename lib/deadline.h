/*
 * deadline - a deadline for the work the calling thread does now, checked by code deep below
 * the request that set it (the profile store's sqlite progress handler) without passing it
 * through every call. One per thread; a request sets it on entry and clears it on exit.
 */
#ifndef FLEETSYM_DEADLINE_H
#define FLEETSYM_DEADLINE_H

#include <stdint.h>

/* Set the calling thread's deadline to MS milliseconds from now; MS <= 0 clears it. */
void deadline_set_in(int64_t ms);

/* Has the calling thread's deadline passed? 0 when none is set. */
int deadline_passed(void);

#endif
