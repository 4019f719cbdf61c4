/*
 * rng: random numbers for jitter. Not for secrets (ids use libuuid).
 */
#ifndef CR_RNG_H
#define CR_RNG_H

#include <stdint.h>

/* 64 random bits from the kernel (getrandom), falling back to a time/pid mix
 * if the kernel cannot give them. */
uint64_t rng_u64(void);

#endif
