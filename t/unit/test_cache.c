/*
 * The deny cache: hits counted from the time left, expiry, LRU eviction
 * order, replacement keeping the later time, binary and long keys, a
 * random run against a simple model, no allocation on lookup, and a
 * failed allocation leaving the cache as it was.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rl_core_test.h"


#define COUNT_OF(a)  (sizeof(a) / sizeof((a)[0]))
#define S(s)  s, sizeof(s) - 1


/*
 * malloc, interposed to count allocations and to make them fail on
 * demand: the core's operator new ends here too.  glibc's own allocator
 * does the work.  Under a tool that replaces malloc itself (valgrind),
 * this may never be called; the tests that need it then skip.
 */
extern void *__libc_malloc(size_t size);

static unsigned long  mallocs;
static long           malloc_budget = -1;   /* successes left; -1: all */

void *
malloc(size_t size)
{
    mallocs++;

    if (malloc_budget == 0) {
        return NULL;
    }

    if (malloc_budget > 0) {
        malloc_budget--;
    }

    return __libc_malloc(size);
}


/* Whether the interposed malloc is the one in use. */
static int
malloc_interposed(void)
{
    void           *p;
    unsigned long   before = mallocs;

    p = malloc(16);
    free(p);

    return mallocs != before;
}


/*
 * Most tests below speak in whole ms: a key "rejected until until_ms" is
 * an answer whose retry_after_ms, rounded down by the cache, ends there
 * (one more ms than the distance, as the reply rounds up), and times are
 * handed to the cache in us.
 */

static rl_core_status_e
insert_ms(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t sent_ms, uint64_t until_ms, const rl_core_zone_result_t *r)
{
    rl_core_zone_result_t  x;

    if (r == NULL) {
        return rl_core_cache_insert(cache, key, len, sent_ms * 1000, NULL);
    }

    x = *r;
    x.retry_after_ms = until_ms > sent_ms
                       ? (int64_t) (until_ms - sent_ms) + 1 : 0;

    return rl_core_cache_insert(cache, key, len, sent_ms * 1000, &x);
}


static int
lookup_ms(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t now_ms, rl_core_zone_result_t *out)
{
    return rl_core_cache_lookup(cache, key, len, now_ms * 1000, out);
}


static rl_core_zone_result_t
rejected(int64_t limit, int64_t reset_ms, int64_t retry_ms)
{
    rl_core_zone_result_t  r;

    r.allowed = 0;
    r.limit = limit;
    r.remaining = 0;
    r.reset_after_ms = reset_ms;
    r.retry_after_ms = retry_ms;

    return r;
}


static void
assert_hit_us(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t now, int64_t limit, int64_t reset_ms, int64_t retry_ms)
{
    rl_core_zone_result_t  out;

    memset(&out, 0xa5, sizeof(out));

    if (!rl_core_cache_lookup(cache, key, len, now, &out)) {
        fail_msg("\"%.*s\" at %llu us: a miss", (int) len, key,
                 (unsigned long long) now);
    }

    assert_int_equal(out.allowed, 0);
    assert_int_equal(out.remaining, 0);
    assert_int_equal(out.limit, limit);
    assert_int_equal(out.retry_after_ms, retry_ms);
    assert_int_equal(out.reset_after_ms, reset_ms);
}


static void
assert_miss_us(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t now)
{
    rl_core_zone_result_t  out;

    if (rl_core_cache_lookup(cache, key, len, now, &out)) {
        fail_msg("\"%.*s\" at %llu us: a hit", (int) len, key,
                 (unsigned long long) now);
    }
}


static void
assert_hit(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t now, int64_t limit, int64_t reset_ms, int64_t retry_ms)
{
    assert_hit_us(cache, key, len, now * 1000, limit, reset_ms, retry_ms);
}


static void
assert_miss(rl_core_cache_t *cache, const char *key, size_t len,
    uint64_t now)
{
    assert_miss_us(cache, key, len, now * 1000);
}


static void
test_create(void **state)
{
    rl_core_cache_t  *cache;

    (void) state;

    assert_null(rl_core_cache_create(0));
    assert_null(rl_core_cache_create((size_t) 1 << 31));
    assert_null(rl_core_cache_create(RL_CORE_CACHE_MAX + 1));
    cache = rl_core_cache_create(RL_CORE_CACHE_MAX);
    assert_non_null(cache);
    rl_core_cache_destroy(cache);
    rl_core_cache_destroy(NULL);
    assert_int_equal(rl_core_cache_size(NULL), 0);

    cache = rl_core_cache_create(1);
    assert_non_null(cache);
    assert_int_equal(rl_core_cache_size(cache), 0);
    assert_miss(cache, S("k"), 0);
    rl_core_cache_destroy(cache);
}


/*
 * The reply's retry_after_ms is rounded up: the cache rounds it down and
 * counts in us from the send, so it never rejects a request Redis would
 * admit.  A wait of 1 ms or less (a fast key: 10000r/s waits 100 us) is
 * not remembered at all.
 */

static void
test_rounding(void **state)
{
    rl_core_cache_t        *cache;
    rl_core_zone_result_t   r;

    (void) state;

    cache = rl_core_cache_create(4);
    assert_non_null(cache);

    /* sent at 1000 us, "retry after 5 ms": rejected until 5000 us */
    r = rejected(10, 7, 5);
    assert_int_equal(rl_core_cache_insert(cache, S("k"), 1000, &r),
                     RL_CORE_OK);
    assert_hit_us(cache, S("k"), 1000, 10, 7, 4);
    assert_hit_us(cache, S("k"), 4001, 10, 4, 1);
    assert_hit_us(cache, S("k"), 4999, 10, 4, 1);
    assert_miss_us(cache, S("k"), 5000);
    assert_int_equal(rl_core_cache_size(cache), 0);

    /* 1 ms or less, or nothing: Redis may admit at once */
    r = rejected(10, 1, 1);
    assert_int_equal(rl_core_cache_insert(cache, S("fast"), 0, &r),
                     RL_CORE_OK);
    r = rejected(10, 0, 0);
    assert_int_equal(rl_core_cache_insert(cache, S("zero"), 0, &r),
                     RL_CORE_OK);
    assert_int_equal(rl_core_cache_size(cache), 0);
    assert_miss_us(cache, S("fast"), 0);

    /* a short answer leaves a known longer wait as it is */
    r = rejected(10, 9, 9);
    assert_int_equal(rl_core_cache_insert(cache, S("k"), 0, &r), RL_CORE_OK);
    r = rejected(10, 1, 1);
    assert_int_equal(rl_core_cache_insert(cache, S("k"), 500, &r),
                     RL_CORE_OK);
    assert_hit_us(cache, S("k"), 7999, 10, 2, 1);
    assert_miss_us(cache, S("k"), 8000);

    /* 64-bit us: no wrap after 49 days (2^32 ms) of a clock */
    r = rejected(10, 3, 3);
    assert_int_equal(rl_core_cache_insert(cache, S("late"),
                                          (uint64_t) 1 << 45, &r),
                     RL_CORE_OK);
    assert_hit_us(cache, S("late"), ((uint64_t) 1 << 45) + 1, 10, 3, 2);
    assert_miss_us(cache, S("late"), ((uint64_t) 1 << 45) + 2000);

    rl_core_cache_destroy(cache);
}


/* A hit at each time, counted from the time left. */

typedef struct {
    uint64_t  now;
    int       hit;
    int64_t   reset_ms;
    int64_t   retry_ms;
} hit_case_t;


static void
test_hit_and_expiry(void **state)
{
    /* Sent at 1000, rejected until 3000, fresh at 1000 + 5000. */
    static const hit_case_t  cases[] = {
        { 1000, 1, 5000, 2000 },
        { 2500, 1, 3500, 500 },
        { 2999, 1, 3001, 1 },
        { 3000, 0, 0, 0 },
        { 2000, 0, 0, 0 },      /* expired entries are dropped */
    };
    size_t                  i;
    rl_core_cache_t        *cache;
    rl_core_zone_result_t   r = rejected(10, 5000, 2000);

    (void) state;

    cache = rl_core_cache_create(8);
    assert_non_null(cache);
    assert_int_equal(insert_ms(cache, S("k"), 1000, 3000, &r),
                     RL_CORE_OK);
    assert_int_equal(rl_core_cache_size(cache), 1);

    for (i = 0; i < COUNT_OF(cases); i++) {
        if (cases[i].hit) {
            assert_hit(cache, S("k"), cases[i].now, 10, cases[i].reset_ms,
                       cases[i].retry_ms);
        } else {
            assert_miss(cache, S("k"), cases[i].now);
        }
    }

    assert_int_equal(rl_core_cache_size(cache), 0);

    /* The reset is never before the retry. */
    r = rejected(3, 1000, 2000);
    assert_int_equal(insert_ms(cache, S("k"), 1000, 3000, &r),
                     RL_CORE_OK);
    assert_hit(cache, S("k"), 1500, 3, 1500, 1500);

    /* An entry already over when inserted is never a hit. */
    assert_int_equal(insert_ms(cache, S("old"), 5000, 5000, &r),
                     RL_CORE_OK);
    assert_miss(cache, S("old"), 5000);

    /* Before it was sent (clock steps): counted from until. */
    r = rejected(3, 4000, 2000);
    assert_int_equal(insert_ms(cache, S("early"), 1000, 3000, &r),
                     RL_CORE_OK);
    assert_hit(cache, S("early"), 500, 3, 4500, 2500);

    rl_core_cache_destroy(cache);
}


static void
test_lru_order(void **state)
{
    rl_core_cache_t        *cache;
    rl_core_zone_result_t   r = rejected(1, 100000, 100000);

    (void) state;

    cache = rl_core_cache_create(3);
    assert_non_null(cache);

    /* Most recent first: c b a. */
    assert_int_equal(insert_ms(cache, S("a"), 0, 100000, &r), 0);
    assert_int_equal(insert_ms(cache, S("b"), 0, 100000, &r), 0);
    assert_int_equal(insert_ms(cache, S("c"), 0, 100000, &r), 0);

    /* A hit promotes: a c b; d evicts b: d a c. */
    assert_hit(cache, S("a"), 0, 1, 100000, 100000);
    assert_int_equal(insert_ms(cache, S("d"), 0, 100000, &r), 0);
    assert_int_equal(rl_core_cache_size(cache), 3);
    assert_miss(cache, S("b"), 0);

    /* e evicts c: e d a. */
    assert_int_equal(insert_ms(cache, S("e"), 0, 100000, &r), 0);
    assert_miss(cache, S("c"), 0);

    /* An insert of a key present promotes it: a e d; f evicts d. */
    assert_int_equal(insert_ms(cache, S("a"), 0, 100000, &r), 0);
    assert_int_equal(rl_core_cache_size(cache), 3);
    assert_int_equal(insert_ms(cache, S("f"), 0, 100000, &r), 0);
    assert_miss(cache, S("d"), 0);
    assert_hit(cache, S("a"), 0, 1, 100000, 100000);
    assert_hit(cache, S("e"), 0, 1, 100000, 100000);
    assert_hit(cache, S("f"), 0, 1, 100000, 100000);
    assert_int_equal(rl_core_cache_size(cache), 3);

    rl_core_cache_destroy(cache);
}


static void
test_replace_keeps_later(void **state)
{
    rl_core_cache_t        *cache;
    rl_core_zone_result_t   r;

    (void) state;

    cache = rl_core_cache_create(4);
    assert_non_null(cache);

    r = rejected(10, 5000, 5000);
    assert_int_equal(insert_ms(cache, S("k"), 0, 5000, &r), 0);

    /* An earlier time does not shorten the wait; the limit is the new. */
    r = rejected(20, 3000, 3000);
    assert_int_equal(insert_ms(cache, S("k"), 0, 3000, &r), 0);
    assert_int_equal(rl_core_cache_size(cache), 1);
    assert_hit(cache, S("k"), 4000, 20, 1000, 1000);

    /* A later one lengthens it. */
    r = rejected(20, 9000, 4000);
    assert_int_equal(insert_ms(cache, S("k"), 4000, 8000, &r), 0);
    assert_hit(cache, S("k"), 6000, 20, 7000, 2000);
    assert_int_equal(rl_core_cache_size(cache), 1);

    /* After expiry it starts afresh. */
    assert_miss(cache, S("k"), 8000);
    r = rejected(5, 100, 100);
    assert_int_equal(insert_ms(cache, S("k"), 8000, 8100, &r), 0);
    assert_hit(cache, S("k"), 8000, 5, 100, 100);

    rl_core_cache_destroy(cache);
}


typedef struct {
    const char  *key;
    size_t       len;
} cache_key_t;


static void
test_binary_keys(void **state)
{
    static const cache_key_t      keys[] = {
        { S("a") },
        { S("a\0") },
        { S("a\0b") },
        { S("a\0c") },
        { S("\0") },
        { S("\r\n") },
        { S("{}") },
        { S("\xff\xfe") },
        { S("#") },
        { S("") },
    };
    char                     long1[300], long2[300];
    size_t                   i;
    rl_core_cache_t         *cache;
    rl_core_zone_result_t    r;

    (void) state;

    cache = rl_core_cache_create(64);
    assert_non_null(cache);

    for (i = 0; i < COUNT_OF(keys); i++) {
        r = rejected((int64_t) i + 1, 10000, 10000);
        assert_int_equal(insert_ms(cache, keys[i].key,
                                              keys[i].len, 0, 10000, &r),
                         RL_CORE_OK);
    }

    assert_int_equal(rl_core_cache_size(cache), COUNT_OF(keys));

    /* Each key finds its own entry: the limit says which. */
    for (i = 0; i < COUNT_OF(keys); i++) {
        assert_hit(cache, keys[i].key, keys[i].len, 0, (int64_t) i + 1,
                   10000, 10000);
    }

    assert_miss(cache, S("b"), 0);
    assert_miss(cache, S("a\0d"), 0);

    /* Long keys that differ only after 128 bytes, or in the last byte. */
    memset(long1, 'x', sizeof(long1));
    memset(long2, 'x', sizeof(long2));
    long2[sizeof(long2) - 1] = 'y';
    r = rejected(100, 10000, 10000);
    assert_int_equal(insert_ms(cache, long1, sizeof(long1), 0,
                                          10000, &r), RL_CORE_OK);
    r = rejected(200, 10000, 10000);
    assert_int_equal(insert_ms(cache, long2, sizeof(long2), 0,
                                          10000, &r), RL_CORE_OK);
    assert_hit(cache, long1, sizeof(long1), 0, 100, 10000, 10000);
    assert_hit(cache, long2, sizeof(long2), 0, 200, 10000, 10000);
    assert_miss(cache, long1, 129, 0);

    /* A long key's rl_core_client_key() form, sent as a key, is another. */
    {
        char         hashed[RL_CORE_HASHED_KEY_LEN];
        size_t       out_len;
        const char  *out;

        rl_core_client_key(long1, sizeof(long1), hashed, &out, &out_len);
        assert_miss(cache, out, out_len, 0);
    }

    rl_core_cache_destroy(cache);
}


/*
 * A random run against a model: an array with a use stamp per key.
 * Expired entries stay (and count, and age) until a lookup drops them or
 * they are evicted, as in the cache.
 */

#define MODEL_KEYS  200

typedef struct {
    int       present;
    uint64_t  until;
    uint64_t  reset_at;
    int64_t   limit;
    uint64_t  stamp;
} model_entry_t;


static uint64_t  rng_state = 0x853c49e6748fea9bULL;

static uint64_t
rng(void)
{
    /* xorshift64*: deterministic, so a failure replays. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}


/* Key i: short binary keys with NULs, and every tenth a long one. */
static size_t
model_key(unsigned i, char *buf)
{
    size_t  len;

    if (i % 10 == 0) {
        memset(buf, 'L', 150);
        memcpy(buf + 146, &i, sizeof(i));
        return 150;
    }

    buf[0] = 'k';
    buf[1] = '\0';
    memcpy(buf + 2, &i, sizeof(i));
    len = 2 + sizeof(i);

    return len;
}


static void
model_run(size_t capacity, unsigned ops)
{
    char                    key[160];
    size_t                  len, count = 0, j, victim;
    unsigned                op, i;
    uint64_t                now = 1000000, stamp = 0;
    model_entry_t           model[MODEL_KEYS];
    rl_core_cache_t        *cache;
    rl_core_zone_result_t   r, out;

    memset(model, 0, sizeof(model));
    cache = rl_core_cache_create(capacity);
    assert_non_null(cache);

    for (op = 0; op < ops; op++) {
        i = (unsigned) (rng() % MODEL_KEYS);
        len = model_key(i, key);
        now += rng() % 40;

        if (rng() % 10 < 6) {
            uint64_t  until = now + 1 + rng() % 500;
            int64_t   reset = (int64_t) (rng() % 800);

            r = rejected((int64_t) (rng() % 1000) + 1, reset,
                         (int64_t) (until - now));
            assert_int_equal(insert_ms(cache, key, len, now,
                                                  until, &r), RL_CORE_OK);

            if (!model[i].present) {
                if (count == capacity) {
                    victim = MODEL_KEYS;

                    for (j = 0; j < MODEL_KEYS; j++) {
                        if (model[j].present
                            && (victim == MODEL_KEYS
                                || model[j].stamp < model[victim].stamp))
                        {
                            victim = j;
                        }
                    }

                    model[victim].present = 0;
                    count--;
                }

                model[i].present = 1;
                model[i].until = until;
                model[i].reset_at = now + (uint64_t) reset;
                count++;

            } else {
                if (until > model[i].until) {
                    model[i].until = until;
                }
                if (now + (uint64_t) reset > model[i].reset_at) {
                    model[i].reset_at = now + (uint64_t) reset;
                }
            }

            model[i].limit = r.limit;
            model[i].stamp = ++stamp;

        } else {
            int  hit = lookup_ms(cache, key, len, now, &out);
            int  expect = model[i].present && now < model[i].until;

            if (hit != expect) {
                fail_msg("op %u key %u at %llu: hit %d, expected %d", op, i,
                         (unsigned long long) now, hit, expect);
            }

            if (model[i].present && !expect) {
                model[i].present = 0;
                count--;
            }

            if (expect) {
                uint64_t  retry = model[i].until - now;
                uint64_t  reset = model[i].reset_at > now
                                  ? model[i].reset_at - now : 0;

                assert_int_equal(out.limit, model[i].limit);
                assert_int_equal(out.retry_after_ms, retry);
                assert_int_equal(out.reset_after_ms,
                                 reset > retry ? reset : retry);
                model[i].stamp = ++stamp;
            }
        }

        if (rl_core_cache_size(cache) != count) {
            fail_msg("op %u: size %zu, expected %zu", op,
                     rl_core_cache_size(cache), count);
        }
    }

    rl_core_cache_destroy(cache);
}


static void
test_model(void **state)
{
    (void) state;

    model_run(1, 20000);
    model_run(7, 50000);
    model_run(50, 100000);
    model_run(MODEL_KEYS, 50000);
}


static void
test_full_cache(void **state)
{
    char                    key[16];
    unsigned                i;
    rl_core_cache_t        *cache;
    rl_core_zone_result_t   r = rejected(1, 60000, 60000), out;

    (void) state;

    cache = rl_core_cache_create(10000);
    assert_non_null(cache);

    for (i = 0; i < 20000; i++) {
        memcpy(key, &i, sizeof(i));
        assert_int_equal(insert_ms(cache, key, sizeof(i), 0,
                                              60000, &r), RL_CORE_OK);
    }

    assert_int_equal(rl_core_cache_size(cache), 10000);

    for (i = 0; i < 20000; i++) {
        memcpy(key, &i, sizeof(i));
        assert_int_equal(lookup_ms(cache, key, sizeof(i), 1,
                                              &out), i >= 10000);
    }

    /* Expiry empties it. */
    for (i = 10000; i < 20000; i++) {
        memcpy(key, &i, sizeof(i));
        assert_int_equal(lookup_ms(cache, key, sizeof(i), 60000,
                                              &out), 0);
    }

    assert_int_equal(rl_core_cache_size(cache), 0);
    rl_core_cache_destroy(cache);
}


static void
test_lookup_allocates_nothing(void **state)
{
    char                    key[160];
    size_t                  len;
    unsigned                i;
    unsigned long           before;
    rl_core_cache_t        *cache;
    rl_core_zone_result_t   r = rejected(1, 1000, 1000), out;

    (void) state;

    if (!malloc_interposed()) {
        skip();
    }

    cache = rl_core_cache_create(1000);
    assert_non_null(cache);

    for (i = 0; i < MODEL_KEYS; i++) {
        len = model_key(i, key);
        assert_int_equal(insert_ms(cache, key, len, 0,
                                              1000 + i, &r), RL_CORE_OK);
    }

    before = mallocs;

    /* Hits, misses, long keys hashed, and expired entries dropped. */
    for (i = 0; i < 100000; i++) {
        len = model_key(i % (2 * MODEL_KEYS), key);
        (void) lookup_ms(cache, key, len, i / 50, &out);
    }

    assert_int_equal(mallocs, before);
    assert_int_equal(rl_core_cache_size(cache), 0);

    rl_core_cache_destroy(cache);
}


static void
test_insert_enomem(void **state)
{
    char                    key[8];
    long                    budget;
    unsigned                i;
    rl_core_status_e        rc;
    rl_core_cache_t        *cache, *full;
    rl_core_zone_result_t   r = rejected(1, 1000, 1000), out;

    (void) state;

    if (!malloc_interposed()) {
        skip();
    }

    cache = rl_core_cache_create(100);
    full = rl_core_cache_create(8);
    assert_non_null(cache);
    assert_non_null(full);

    for (i = 0; i < 8; i++) {
        memcpy(key, &i, sizeof(i));
        assert_int_equal(insert_ms(cache, key, sizeof(i), 0,
                                              1000, &r), RL_CORE_OK);
        assert_int_equal(insert_ms(full, key, sizeof(i), 0,
                                              1000, &r), RL_CORE_OK);
    }

    /*
     * The ninth entry needs the key's bytes, a larger table and a larger
     * slab: whichever fails, the cache is as it was.
     */
    i = 8;
    memcpy(key, &i, sizeof(i));

    for (budget = 0; ; budget++) {
        malloc_budget = budget;
        rc = insert_ms(cache, key, sizeof(i), 0, 1000, &r);
        malloc_budget = -1;

        if (rc == RL_CORE_OK) {
            break;
        }

        assert_int_equal(rc, RL_CORE_ENOMEM);
        assert_int_equal(rl_core_cache_size(cache), 8);
        assert_int_equal(lookup_ms(cache, key, sizeof(i), 0,
                                              &out), 0);

        for (i = 0; i < 8; i++) {
            memcpy(key, &i, sizeof(i));
            assert_int_equal(lookup_ms(cache, key, sizeof(i), 0,
                                                  &out), 1);
        }

        i = 8;
        memcpy(key, &i, sizeof(i));
    }

    /* Three allocations could fail: key bytes, table, slab. */
    assert_int_equal(budget, 3);
    assert_int_equal(rl_core_cache_size(cache), 9);

    /* A full cache evicts nothing when the new key cannot be stored. */
    malloc_budget = 0;
    rc = insert_ms(full, key, sizeof(i), 0, 1000, &r);
    malloc_budget = -1;
    assert_int_equal(rc, RL_CORE_ENOMEM);
    assert_int_equal(rl_core_cache_size(full), 8);

    for (i = 0; i < 8; i++) {
        memcpy(key, &i, sizeof(i));
        assert_int_equal(lookup_ms(full, key, sizeof(i), 0, &out),
                         1);
    }

    /* Nor does the core's create hand out a half-made cache. */
    malloc_budget = 0;
    assert_null(rl_core_cache_create(10));
    malloc_budget = -1;

    rl_core_cache_destroy(cache);
    rl_core_cache_destroy(full);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_hit_and_expiry),
        cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_replace_keeps_later),
        cmocka_unit_test(test_binary_keys),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_full_cache),
        cmocka_unit_test(test_lookup_allocates_nothing),
        cmocka_unit_test(test_insert_enomem),
    };

    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
