/*
 * rl_core_test.h: entry points of the core that only the unit tests use.
 *
 * The module includes rl_core.h alone; these look inside what its
 * functions do (the client key's hashed form, the key count of an
 * algorithm, SHA-1, the deny cache's size) so the
 * tests can check them one by one.  Same rules as rl_core.h: C99,
 * noexcept, nothing unwinds.
 */

#ifndef RL_CORE_TEST_H
#define RL_CORE_TEST_H

#include "rl_core.h"

#ifdef __cplusplus
extern "C" {
#endif


/* The name as spelled in configuration; a static string. */
const char *rl_core_algorithm_name(rl_core_algorithm_e algorithm)
    RL_CORE_NOEXCEPT;

/*
 * The client key as it appears inside Redis keys: itself when at most
 * RL_CORE_CLIENT_KEY_MAX bytes and not beginning with '#' (then *out
 * points at key, nothing copied), else "#" and its SHA-1 in lowercase hex,
 * written into hashed (which must hold RL_CORE_HASHED_KEY_LEN bytes) and
 * *out points at hashed.  So no genuine key equals a hashed one, and the
 * result is not to be passed again: the command and the deny cache take
 * raw keys and apply this themselves.  With hashed NULL a key that must be
 * hashed gives *out NULL and *out_len 0.
 */
void rl_core_client_key(const char *key, size_t len,
    char hashed[RL_CORE_HASHED_KEY_LEN], const char **out, size_t *out_len)
    RL_CORE_NOEXCEPT;

/* How many KEYS the zone passes (gcra 1 ... sliding_window 4); 0 for an
 * unknown algorithm. */
size_t rl_core_zone_key_count(rl_core_algorithm_e algorithm) RL_CORE_NOEXCEPT;

/* SHA-1 of data in 40 lowercase hex digits and a NUL. */
void rl_core_sha1_hex(const void *data, size_t len, char out[41])
    RL_CORE_NOEXCEPT;

/* Entries in the deny cache, expired ones not yet dropped included. */
size_t rl_core_cache_size(const rl_core_cache_t *cache) RL_CORE_NOEXCEPT;


#ifdef __cplusplus
}
#endif

#endif /* RL_CORE_TEST_H */
