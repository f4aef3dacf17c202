/*
 * Redis Cluster routing: CRC16 and the key slot against the
 * specification's vector and against slots a real Redis computed, the
 * slot of the module's own keys (client keys with braces and binary
 * bytes), the slot map, MOVED / ASK / TRYAGAIN / CLUSTERDOWN replies, and
 * the per-slot grouping and refund plan, with a model test of its
 * invariant.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rl_core.h"


#define COUNT_OF(a)  (sizeof(a) / sizeof((a)[0]))
#define S(s)  s, sizeof(s) - 1

#define NO_NODE  RL_CORE_CLUSTER_NO_NODE


/* CRC-16/XMODEM bit by bit, as the specification defines it. */
static uint16_t
crc16_bitwise(const unsigned char *p, size_t len)
{
    size_t    i;
    int       bit;
    uint16_t  crc;

    crc = 0;

    for (i = 0; i < len; i++) {
        crc ^= (uint16_t) (p[i] << 8);

        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }
    }

    return crc;
}


/* A small deterministic generator: every run tests the same cases. */
static uint64_t
next_random(uint64_t *state)
{
    uint64_t  x;

    x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;

    return x;
}


static void
test_crc16(void **unused)
{
    unsigned char  buf[64];
    uint64_t       seed;
    size_t         i, len, round;

    (void) unused;

    /* The specification's check value. */
    assert_int_equal(rl_core_crc16(S("123456789")), 0x31c3);
    assert_int_equal(rl_core_crc16(S("")), 0);
    assert_int_equal(rl_core_crc16(NULL, 0), 0);

    seed = 0x9e3779b97f4a7c15ULL;

    for (round = 0; round < 2000; round++) {
        len = (size_t) (next_random(&seed) % sizeof(buf));

        for (i = 0; i < len; i++) {
            buf[i] = (unsigned char) next_random(&seed);
        }

        assert_int_equal(rl_core_crc16((const char *) buf, len),
                         crc16_bitwise(buf, len));
    }
}


/*
 * Slots from CLUSTER KEYSLOT of redis-server 7.0.15 (cluster-enabled, on
 * loopback), and the examples of the specification's "Hash tags".
 */
static void
test_key_slot_vectors(void **unused)
{
    static const struct {
        const char  *key;
        size_t       len;
        uint16_t     slot;
    } cases[] = {
        { S("123456789"), 12739 },          /* 0x31c3 & 0x3fff */
        { S("somekey"), 11058 },
        { S("foo{hash_tag}"), 2515 },
        { S("bar{hash_tag}"), 2515 },
        { S("{user1000}.following"), 3443 },
        { S("{user1000}.followers"), 3443 },
        { S("foo{}{bar}"), 8363 },          /* "{}": the whole key */
        { S("foo{{bar}}zap"), 4015 },       /* "{bar" */
        { S("foo{bar}{zap}"), 5061 },       /* "bar" */
        { S("{}"), 15257 },
        { S("{{a}}"), 10276 },              /* "{a" */
        { S("{a"), 10276 },
        { S("a{b}c{d}"), 3300 },            /* "b" */
        { S("b"), 3300 },
        { S("a{b"), 13340 },                /* no '}': the whole key */
        { S("}{a}"), 15495 },               /* the '}' before counts not */
        { S("{"), 4092 },
        { S("}"), 12090 },
        { S(""), 0 },
        { S("rl:{per_ip:1.2.3.4}:g"), 3047 },
        { S("rl:{z:a}b}:g"), 2320 },        /* "z:a" */
        { S("z:a"), 2320 },
        { S("rl:{z:{x}:g"), 902 },          /* "z:{x" */
        { S("z:{x"), 902 },
        { S("rl:{z:}}:g"), 12427 },         /* "z:" */
        { S("z:"), 12427 },
        { S("\x00\xff{\x00}"), 0 },         /* "\0" */
        { S("\xff\xfe\xfd"), 287 },
        { S("\x00"), 0 },
        { S("{\x00\x01}\xff"), 4129 },
        { S("rl:{z:\xff{\x00}\x7f}:tb"), 1194 },
    };

    size_t  i;

    (void) unused;

    for (i = 0; i < COUNT_OF(cases); i++) {
        if (rl_core_key_slot(cases[i].key, cases[i].len) != cases[i].slot) {
            fail_msg("case %zu: slot %u, want %u", i,
                     rl_core_key_slot(cases[i].key, cases[i].len),
                     cases[i].slot);
        }
    }

    assert_int_equal(rl_core_key_slot(NULL, 0), 0);
}


/* The slot is the CRC of the tag alone: checked against its definition. */
static void
test_key_slot_tags(void **unused)
{
    static const struct {
        const char  *key;
        size_t       key_len;
        const char  *hashed;        /* what is hashed */
        size_t       hashed_len;
    } cases[] = {
        { S("{user1000}.following"), S("user1000") },
        { S("x{y}"), S("y") },
        { S("{y}x"), S("y") },
        { S("foo{}{bar}"), S("foo{}{bar}") },
        { S("{}bar"), S("{}bar") },         /* starts with "{}": all */
        { S("foo{{bar}}zap"), S("{bar") },
        { S("foo{bar}{zap}"), S("bar") },
        { S("a{b}c{d}"), S("b") },
        { S("a{b"), S("a{b") },
        { S("a}b{c"), S("a}b{c") },
        { S("{{}}"), S("{") },
        { S("{}}"), S("{}}") },
        { S("{\x00}x"), S("\x00") },
        { S("\x80{\xff\xfe}"), S("\xff\xfe") },
    };

    size_t  i;

    (void) unused;

    for (i = 0; i < COUNT_OF(cases); i++) {
        if (rl_core_key_slot(cases[i].key, cases[i].key_len)
            != (rl_core_crc16(cases[i].hashed, cases[i].hashed_len)
                & 16383))
        {
            fail_msg("case %zu", i);
        }
    }
}


static rl_core_limit_t
make_limit(rl_core_algorithm_e alg)
{
    rl_core_limit_t  limit;

    memset(&limit, 0, sizeof(limit));
    limit.algorithm = alg;
    limit.count = 10;
    limit.period_s = 60;
    assert_int_equal(rl_core_check_limit(&limit, NULL, 0), RL_CORE_OK);

    return limit;
}


/* Every key the command builder writes for the zone is in slot. */
static void
check_built_keys(const rl_core_zone_request_t *zone, uint16_t slot)
{
    const char  **argv;
    size_t       *argvlen;
    size_t        argc, bytes, i, nkeys;
    char         *buf;

    assert_int_equal(rl_core_command_size(zone, 1, &argc, &bytes),
                     RL_CORE_OK);

    argv = calloc(argc, sizeof(char *));
    argvlen = calloc(argc, sizeof(size_t));
    buf = malloc(bytes);
    assert_non_null(argv);
    assert_non_null(argvlen);
    assert_non_null(buf);

    assert_int_equal(rl_core_command_build(zone, 1, 1700000000123ULL, argv,
                                           argvlen, buf, bytes), RL_CORE_OK);

    nkeys = rl_core_zone_key_count(zone->limit->algorithm);
    assert_true(nkeys >= 1 && 3 + nkeys <= argc);

    for (i = 0; i < nkeys; i++) {
        if (rl_core_key_slot(argv[3 + i], argvlen[3 + i]) != slot) {
            fail_msg("key %zu \"%.*s\" not in slot %u", i,
                     (int) argvlen[3 + i], argv[3 + i], slot);
        }
    }

    free(argv);
    free(argvlen);
    free(buf);
}


static void
test_zone_slot(void **unused)
{
    static const struct {
        const char  *prefix;
        const char  *zone;
        const char  *key;
        size_t       key_len;
        int          slot;          /* -1: only checked against the keys */
    } cases[] = {
        { "rl", "per_ip", S("1.2.3.4"), 3047 },
        { "rl", "z", S("a}b"), 2320 },      /* tag ends in the client key */
        { "rl", "z", S("{x"), 902 },        /* a '{' in it changes nothing */
        { "rl", "z", S("}"), 12427 },       /* tag "z:" */
        { "rl", "z", S("\xff{\x00}\x7f"), 1194 },
        { "rl", "z", S("}}}{{{"), -1 },
        { "rl", "z", S("{}"), -1 },
        { "rl", "z", S("#looks-hashed"), -1 },
        { "", "z", S("k"), -1 },
        { "a{", "z", S("k"), -1 },          /* tag ":{z:k" still inside */
        { "a{b", "z", S("k"), -1 },
        { "rl", "z",
          S("0123456789012345678901234567890123456789012345678901234567890"
            "1234567890123456789012345678901234567890123456789012345678901"
            "234567890}"), -1 },            /* longer than 128: hashed */
    };

    static const rl_core_algorithm_e  algs[] = {
        RL_CORE_ALG_GCRA, RL_CORE_ALG_TOKEN_BUCKET, RL_CORE_ALG_FIXED_WINDOW,
        RL_CORE_ALG_SLIDING_WINDOW, RL_CORE_ALG_SLIDING_LOG
    };

    rl_core_zone_request_t  z;
    rl_core_limit_t         limit;
    uint16_t                slot, first;
    size_t                  i, a;

    (void) unused;

    for (i = 0; i < COUNT_OF(cases); i++) {
        for (a = 0; a < COUNT_OF(algs); a++) {
            limit = make_limit(algs[a]);
            z.prefix = cases[i].prefix;
            z.prefix_len = strlen(cases[i].prefix);
            z.zone = cases[i].zone;
            z.zone_len = strlen(cases[i].zone);
            z.key = cases[i].key;
            z.key_len = cases[i].key_len;
            z.limit = &limit;

            slot = 0xffff;
            assert_int_equal(rl_core_zone_slot(&z, &slot), RL_CORE_OK);

            if (a == 0) {
                first = slot;
            }

            /* The algorithm (the TAG) never changes the slot. */
            assert_int_equal(slot, first);

            if (cases[i].slot >= 0) {
                assert_int_equal(slot, cases[i].slot);
            }

            check_built_keys(&z, slot);
        }
    }

    /* Not a zone whose keys could share one slot, or not a zone. */
    limit = make_limit(RL_CORE_ALG_GCRA);
    z.prefix = "a{}";
    z.prefix_len = 3;
    z.zone = "z";
    z.zone_len = 1;
    z.key = "k";
    z.key_len = 1;
    z.limit = &limit;
    assert_int_equal(rl_core_zone_slot(&z, &slot), RL_CORE_EINVAL);

    z.prefix = "rl";
    z.prefix_len = 2;
    z.key_len = 0;
    assert_int_equal(rl_core_zone_slot(&z, &slot), RL_CORE_EINVAL);

    z.key_len = 1;
    z.zone_len = RL_CORE_ZONE_NAME_MAX + 1;
    assert_int_equal(rl_core_zone_slot(&z, &slot), RL_CORE_EINVAL);

    z.zone_len = 1;
    assert_int_equal(rl_core_zone_slot(NULL, &slot), RL_CORE_EINVAL);
    assert_int_equal(rl_core_zone_slot(&z, NULL), RL_CORE_EINVAL);
    assert_int_equal(rl_core_zone_slot(&z, &slot), RL_CORE_OK);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_crc16),
        cmocka_unit_test(test_key_slot_vectors),
        cmocka_unit_test(test_key_slot_tags),
        cmocka_unit_test(test_zone_slot),
    };

    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
