/*
 * Helpers shared by the ubench-* microbenchmarks (header only: build.rs
 * compiles the .c files of this folder, one image each).
 *
 * Every ubench does its setup first, then brackets only its measured loop
 * (inline asm, so the compiler cannot change the instruction mix) with
 * roi_begin()/roi_end() and rdtsc, checks the loop's result against a
 * value computed in C, and prints one line of results.
 */
#ifndef SMPSIM_UBENCH_COMMON_H
#define SMPSIM_UBENCH_COMMON_H
#include "rt.h"

/* x * m^e with wrapping 64-bit arithmetic (square and multiply). */
static inline u64 ubench_mul_pow(u64 x, u64 m, u64 e)
{
	while (e) {
		if (e & 1)
			x *= m;
		m *= m;
		e >>= 1;
	}
	return x;
}

/* num / den as hundredths, for printing "%lu.%02lu". */
static inline u64 ubench_hundredths(u64 num, u64 den)
{
	return den ? num * 100 / den : 0;
}

#define UBENCH_FIX(h) (h) / 100, (h) % 100

#endif
