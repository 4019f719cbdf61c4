/*
 * ledger_index: a hash index over the simulator's append-only arrays
 * (payments, idempotency entries), so that a lookup does not scan them.
 * A benchmark leaves 20,000 payments in the ledger: scanning them on every
 * call made the simulator the busiest process of the run (docs/benchmarks.md).
 * The arrays stay the truth; the index only says where to look, and is
 * rebuilt when an array shrinks.
 */
#ifndef CR_SIM_LEDGER_INDEX_H
#define CR_SIM_LEDGER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ledger_index_slot {
    uint64_t hash;
    size_t pos1; /* position + 1 in the array; 0: empty */
};

struct ledger_index {
    struct ledger_index_slot *slots; /* owned; cap is a power of two */
    size_t cap, n;
};

/* FNV-1a of tag and key: tag keeps two gateways' equal keys apart. */
uint64_t ledger_index_hash(int tag, const char *key);

/* Remember that the entry at pos has hash; false when out of memory (the
 * caller then fails the call, as for its own array). */
bool ledger_index_add(struct ledger_index *ix, uint64_t hash, size_t pos);

/* Candidates for hash, one per call: *probe starts at 0; returns a position
 * + 1 whose hash matches (the caller compares the key), 0 when there are no
 * more. */
size_t ledger_index_next(const struct ledger_index *ix, uint64_t hash, size_t *probe);

/* Forget every entry (a reset, or before a rebuild). */
void ledger_index_clear(struct ledger_index *ix);

void ledger_index_free(struct ledger_index *ix);

#endif
