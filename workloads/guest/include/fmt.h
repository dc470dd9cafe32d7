/* Console formatting: pure code shared by the guest and the host tests. */
#ifndef SMPSIM_FMT_H
#define SMPSIM_FMT_H
#include "types.h"

/*
 * snprintf-like formatting into buf (always NUL-terminated when size > 0).
 * Returns the length the full output would have. Supports %d %i %u %x %X
 * %o %s %c %p %% with flags '-' '0', a width (or '*'), a precision for %s,
 * and the length modifiers h, hh, l, ll, z.
 */
int smp_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int smp_snprintf(char *buf, size_t size, const char *fmt, ...);

#endif
