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
#include "rl_core_test.h"


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


/*
 * Every key of the RESP request the core builds for the zone is in slot:
 * "*ARGC", then EVALSHA, the SHA-1, the key count and the keys, each as
 * "$LEN" and its bytes.
 */
static void
check_built_keys(const rl_core_zone_request_t *zone, uint16_t slot)
{
    char        *buf, *p, *end;
    size_t       bytes, len, i, arg, nkeys, alen;

    assert_int_equal(rl_core_request_size(zone, 1, 0, &bytes), RL_CORE_OK);

    buf = malloc(bytes);
    assert_non_null(buf);

    assert_int_equal(rl_core_request_build(zone, 1, RL_CORE_MODE_CHECK, NULL,
                                           0, 1700000000123ULL, buf, bytes,
                                           &len), RL_CORE_OK);

    nkeys = rl_core_zone_key_count(zone->limit->algorithm);
    assert_true(nkeys >= 1);

    p = buf;
    end = buf + len;

    assert_true(*p == '*');
    p = memchr(p, '\n', (size_t) (end - p));
    assert_non_null(p);
    p++;

    for (arg = 0; arg < 3 + nkeys; arg++) {
        assert_true(p < end && *p == '$');
        alen = (size_t) strtoul(p + 1, &p, 10);
        assert_true(p + 2 + alen + 2 <= end && p[0] == '\r' && p[1] == '\n');
        p += 2;

        if (arg >= 3) {
            i = arg - 3;

            if (rl_core_key_slot(p, alen) != slot) {
                fail_msg("key %zu \"%.*s\" not in slot %u", i, (int) alen, p,
                         slot);
            }
        }

        p += alen + 2;
    }

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
            z.cost = RL_CORE_COST_DEFAULT;

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
    z.cost = RL_CORE_COST_DEFAULT;
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


static rl_core_cluster_range_t
range(int64_t start, int64_t end, const char *host, int64_t port)
{
    rl_core_cluster_range_t  r;

    r.start = start;
    r.end = end;
    r.host = host;
    r.host_len = host != NULL ? strlen(host) : 0;
    r.port = port;

    return r;
}


static void
check_node(const rl_core_cluster_map_t *map, uint32_t index,
    const char *host, uint16_t port)
{
    rl_core_cluster_node_t  node;

    assert_int_equal(rl_core_cluster_map_node(map, index, &node), RL_CORE_OK);
    assert_int_equal(node.host_len, strlen(host));
    assert_string_equal(node.host, host);
    assert_int_equal(node.port, port);
}


/* The spec's example of CLUSTER SLOTS: three masters, replicas dropped. */
static void
test_map_basic(void **unused)
{
    rl_core_cluster_range_t   r[3];
    rl_core_cluster_map_t    *map;
    char                      err[128];
    uint32_t                  s;

    (void) unused;

    r[0] = range(5461, 10922, "127.0.0.1", 7001);
    r[1] = range(0, 5460, "127.0.0.1", 7000);
    r[2] = range(10923, 16383, "127.0.0.1", 7002);

    map = NULL;
    assert_int_equal(rl_core_cluster_map_create(r, 3, S("127.0.0.1"), &map,
                                                err, sizeof(err)),
                     RL_CORE_OK);
    assert_non_null(map);

    assert_int_equal(rl_core_cluster_map_node_count(map), 3);
    assert_int_equal(rl_core_cluster_map_unassigned(map), 0);

    /* Numbered in order of first appearance. */
    check_node(map, 0, "127.0.0.1", 7001);
    check_node(map, 1, "127.0.0.1", 7000);
    check_node(map, 2, "127.0.0.1", 7002);

    assert_int_equal(rl_core_cluster_map_lookup(map, 0), 1);
    assert_int_equal(rl_core_cluster_map_lookup(map, 5460), 1);
    assert_int_equal(rl_core_cluster_map_lookup(map, 5461), 0);
    assert_int_equal(rl_core_cluster_map_lookup(map, 10922), 0);
    assert_int_equal(rl_core_cluster_map_lookup(map, 10923), 2);
    assert_int_equal(rl_core_cluster_map_lookup(map, 16383), 2);
    assert_int_equal(rl_core_cluster_map_lookup(map, 16384), NO_NODE);
    assert_int_equal(rl_core_cluster_map_lookup(map, 0xffff), NO_NODE);

    /* The slot of a key, then its node. */
    s = rl_core_cluster_map_lookup(map, rl_core_key_slot(S("somekey")));
    assert_int_equal(s, 2);                         /* 11058 */

    assert_int_equal(rl_core_cluster_map_find(map, S("127.0.0.1"), 7000), 1);
    assert_int_equal(rl_core_cluster_map_find(map, S("127.0.0.1"), 7003),
                     NO_NODE);
    assert_int_equal(rl_core_cluster_map_find(map, S("127.0.0.2"), 7000),
                     NO_NODE);
    assert_int_equal(rl_core_cluster_map_find(map, S("localhost"), 7000),
                     NO_NODE);
    assert_int_equal(rl_core_cluster_map_find(map, NULL, 0, 7000), NO_NODE);

    assert_int_equal(rl_core_cluster_map_node(map, 3, &(rl_core_cluster_node_t)
                                              { NULL, 0, 0 }),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_cluster_map_node(map, 0, NULL), RL_CORE_EINVAL);

    rl_core_cluster_map_destroy(map);
    rl_core_cluster_map_destroy(NULL);

    assert_int_equal(rl_core_cluster_map_lookup(NULL, 0), NO_NODE);
    assert_int_equal(rl_core_cluster_map_node_count(NULL), 0);
    assert_int_equal(rl_core_cluster_map_unassigned(NULL),
                     RL_CORE_CLUSTER_SLOTS);
}


/*
 * One master per address and port: non-contiguous ranges (the spec's
 * "1-400,900,1800-6000"), IPv6 spellings, brackets, and empty hosts
 * standing for the node that answered.
 */
static void
test_map_dedup(void **unused)
{
    rl_core_cluster_range_t   r[9];
    rl_core_cluster_map_t    *map;
    char                      err[128];
    size_t                    s;

    (void) unused;

    r[0] = range(1, 400, "10.0.0.1", 6379);
    r[1] = range(900, 900, "10.0.0.1", 6379);
    r[2] = range(1800, 6000, "10.0.0.1", 6379);
    r[3] = range(6001, 7000, "::1", 6379);
    r[4] = range(7001, 8000, "0:0:0:0:0:0:0:1", 6379);
    r[5] = range(8001, 9000, "[::1]", 6379);
    r[6] = range(9001, 10000, "::1", 6380);         /* another port */
    r[7] = range(10001, 11000, "", 7000);           /* "" and NULL: the */
    r[8] = range(11001, 12000, NULL, 7000);         /* origin, 10.0.0.9 */

    map = NULL;
    assert_int_equal(rl_core_cluster_map_create(r, 9, S("10.0.0.9"), &map,
                                                err, sizeof(err)),
                     RL_CORE_OK);

    assert_int_equal(rl_core_cluster_map_node_count(map), 4);
    check_node(map, 0, "10.0.0.1", 6379);
    check_node(map, 1, "::1", 6379);
    check_node(map, 2, "::1", 6380);
    check_node(map, 3, "10.0.0.9", 7000);

    assert_int_equal(rl_core_cluster_map_unassigned(map),
                     16384 - (400 + 1 + 4201 + 6 * 1000));

    for (s = 0; s < RL_CORE_CLUSTER_SLOTS; s++) {
        uint32_t  want;

        want = NO_NODE;

        if ((s >= 1 && s <= 400) || s == 900 || (s >= 1800 && s <= 6000)) {
            want = 0;
        } else if (s >= 6001 && s <= 9000) {
            want = 1;
        } else if (s >= 9001 && s <= 10000) {
            want = 2;
        } else if (s >= 10001 && s <= 12000) {
            want = 3;
        }

        if (rl_core_cluster_map_lookup(map, (uint16_t) s) != want) {
            fail_msg("slot %zu: node %u, want %u", s,
                     rl_core_cluster_map_lookup(map, (uint16_t) s), want);
        }
    }

    assert_int_equal(rl_core_cluster_map_find(map, S("0::1"), 6379), 1);
    assert_int_equal(rl_core_cluster_map_find(map, S("[::1]"), 6380), 2);
    assert_int_equal(rl_core_cluster_map_find(map, S("10.0.0.9"), 7000), 3);

    rl_core_cluster_map_destroy(map);

    /* The origin and its own address listed are one node. */
    r[0] = range(0, 99, "", 7000);
    r[1] = range(100, 16383, "[fe80::1]", 7000);
    map = NULL;
    assert_int_equal(rl_core_cluster_map_create(r, 2, S("fe80:0::1"), &map,
                                                NULL, 0),
                     RL_CORE_OK);
    assert_int_equal(rl_core_cluster_map_node_count(map), 1);
    check_node(map, 0, "fe80:0::1", 7000);
    assert_int_equal(rl_core_cluster_map_unassigned(map), 0);
    rl_core_cluster_map_destroy(map);

    /* No ranges: a map where no slot has a node (the glue refreshes). */
    map = NULL;
    assert_int_equal(rl_core_cluster_map_create(NULL, 0, NULL, 0, &map,
                                                NULL, 0),
                     RL_CORE_OK);
    assert_non_null(map);
    assert_int_equal(rl_core_cluster_map_node_count(map), 0);
    assert_int_equal(rl_core_cluster_map_unassigned(map), 16384);
    assert_int_equal(rl_core_cluster_map_lookup(map, 42), NO_NODE);
    rl_core_cluster_map_destroy(map);
}


static void
test_map_errors(void **unused)
{
    static const struct {
        int64_t           s0, e0;
        const char       *h0;
        int64_t           p0;
        int64_t           s1, e1;   /* a second range when e1 >= 0 */
        const char       *h1;
        const char       *origin;
        rl_core_status_e  rc;
    } cases[] = {
        { -1, 10, "1.2.3.4", 1, 0, -1, NULL, "", RL_CORE_ERANGE },
        { 0, 16384, "1.2.3.4", 1, 0, -1, NULL, "", RL_CORE_ERANGE },
        { 16384, 16384, "1.2.3.4", 1, 0, -1, NULL, "", RL_CORE_ERANGE },
        { 0, -5, "1.2.3.4", 1, 0, -1, NULL, "", RL_CORE_ERANGE },
        { 10, 9, "1.2.3.4", 1, 0, -1, NULL, "", RL_CORE_ERANGE },
        { 0, 10, "1.2.3.4", 0, 0, -1, NULL, "", RL_CORE_ERANGE },
        { 0, 10, "1.2.3.4", 65536, 0, -1, NULL, "", RL_CORE_ERANGE },
        { 0, 10, "1.2.3.4", -6379, 0, -1, NULL, "", RL_CORE_ERANGE },
        { 0, 10, "redis-0.example", 6379, 0, -1, NULL, "", RL_CORE_EINVAL },
        { 0, 10, "?", 6379, 0, -1, NULL, "", RL_CORE_EINVAL },
        { 0, 10, "1.2.3", 6379, 0, -1, NULL, "", RL_CORE_EINVAL },
        { 0, 10, "[1.2.3.4]", 6379, 0, -1, NULL, "", RL_CORE_EINVAL },
        { 0, 10, "::1%lo", 6379, 0, -1, NULL, "", RL_CORE_EINVAL },
        { 0, 10, "", 6379, 0, -1, NULL, "", RL_CORE_EINVAL },
        { 0, 10, "", 6379, 0, -1, NULL, "localhost", RL_CORE_EINVAL },
        { 0, 10, NULL, 6379, 0, -1, NULL, "?", RL_CORE_EINVAL },
        /* Overlaps, whatever the nodes. */
        { 0, 10, "1.2.3.4", 1, 10, 20, "1.2.3.5", "", RL_CORE_ERANGE },
        { 0, 10, "1.2.3.4", 1, 0, 10, "1.2.3.4", "", RL_CORE_ERANGE },
        { 5, 10, "1.2.3.4", 1, 0, 16383, "1.2.3.4", "", RL_CORE_ERANGE },
        /* The second range is bad after a good first one. */
        { 0, 10, "1.2.3.4", 1, 11, 16384, "1.2.3.4", "", RL_CORE_ERANGE },
        { 0, 10, "1.2.3.4", 1, 11, 20, "host", "", RL_CORE_EINVAL },
    };

    rl_core_cluster_range_t   r[2];
    rl_core_cluster_map_t    *map;
    char                      err[128], tiny[8];
    size_t                    i, n;

    (void) unused;

    for (i = 0; i < COUNT_OF(cases); i++) {
        r[0] = range(cases[i].s0, cases[i].e0, cases[i].h0, cases[i].p0);
        r[1] = range(cases[i].s1, cases[i].e1, cases[i].h1, 7000);
        n = cases[i].e1 >= 0 ? 2 : 1;

        map = (rl_core_cluster_map_t *) &r;
        err[0] = '\0';

        if (rl_core_cluster_map_create(r, n, cases[i].origin,
                                       strlen(cases[i].origin), &map, err,
                                       sizeof(err))
            != cases[i].rc)
        {
            fail_msg("case %zu: wrong status (%s)", i, err);
        }

        assert_null(map);
        assert_true(strlen(err) > 0);
    }

    /* The message is cut to errlen, NUL included. */
    r[0] = range(0, 16384, "1.2.3.4", 1);
    memset(tiny, 'x', sizeof(tiny));
    assert_int_equal(rl_core_cluster_map_create(r, 1, NULL, 0, &map, tiny,
                                                sizeof(tiny)),
                     RL_CORE_ERANGE);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);

    assert_int_equal(rl_core_cluster_map_create(r, 1, NULL, 0, NULL, NULL,
                                                0),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_cluster_map_create(NULL, 1, NULL, 0, &map, NULL,
                                                0),
                     RL_CORE_EINVAL);
    assert_null(map);
}


static void
test_redirect(void **unused)
{
    static const struct {
        const char               *msg;
        rl_core_status_e          rc;
        rl_core_redirect_kind_e   kind;
        uint16_t                  slot;
        uint16_t                  port;
        rl_core_host_kind_e       host_kind;
        const char               *host;
    } cases[] = {
        /* The specification's examples. */
        { "MOVED 3999 127.0.0.1:6381", RL_CORE_OK, RL_CORE_REDIRECT_MOVED,
          3999, 6381, RL_CORE_HOST_NUMERIC, "127.0.0.1" },
        { "ASK 3999 127.0.0.1:6381", RL_CORE_OK, RL_CORE_REDIRECT_ASK,
          3999, 6381, RL_CORE_HOST_NUMERIC, "127.0.0.1" },
        { "-MOVED 3999 127.0.0.1:6381", RL_CORE_OK, RL_CORE_REDIRECT_MOVED,
          3999, 6381, RL_CORE_HOST_NUMERIC, "127.0.0.1" },
        { "MOVED 3999 :6380", RL_CORE_OK, RL_CORE_REDIRECT_MOVED,
          3999, 6380, RL_CORE_HOST_SAME, "" },
        /* What redis-server 7.0.15 sent from a node on ::1, with
         * cluster-preferred-endpoint-type ip, unknown-endpoint and
         * hostname (no hostname set). */
        { "MOVED 12182 ::1:30756", RL_CORE_OK, RL_CORE_REDIRECT_MOVED,
          12182, 30756, RL_CORE_HOST_NUMERIC, "::1" },
        { "MOVED 12182 :30756", RL_CORE_OK, RL_CORE_REDIRECT_MOVED,
          12182, 30756, RL_CORE_HOST_SAME, "" },
        { "MOVED 12182 ?:30756", RL_CORE_OK, RL_CORE_REDIRECT_MOVED,
          12182, 30756, RL_CORE_HOST_UNKNOWN, "?" },
        /* Other spellings. */
        { "MOVED 1 [::1]:6379", RL_CORE_OK, RL_CORE_REDIRECT_MOVED,
          1, 6379, RL_CORE_HOST_NUMERIC, "::1" },
        { "ASK 0 2001:db8::7:1", RL_CORE_OK, RL_CORE_REDIRECT_ASK,
          0, 1, RL_CORE_HOST_NUMERIC, "2001:db8::7" },
        { "ASK 16383 10.0.0.1:65535", RL_CORE_OK, RL_CORE_REDIRECT_ASK,
          16383, 65535, RL_CORE_HOST_NUMERIC, "10.0.0.1" },
        { "MOVED 5 redis-0.redis.svc:6379", RL_CORE_OK,
          RL_CORE_REDIRECT_MOVED, 5, 6379, RL_CORE_HOST_NAME,
          "redis-0.redis.svc" },
        { "MOVED 5 ::ffff:1.2.3.4:6379", RL_CORE_OK, RL_CORE_REDIRECT_MOVED,
          5, 6379, RL_CORE_HOST_NUMERIC, "::ffff:1.2.3.4" },
        /* Not cluster redirects. */
        { "TRYAGAIN Multiple keys request during rehashing of slot",
          RL_CORE_OK, RL_CORE_REDIRECT_TRYAGAIN, 0, 0, RL_CORE_HOST_SAME,
          "" },
        { "-TRYAGAIN Slot is being trimmed", RL_CORE_OK,
          RL_CORE_REDIRECT_TRYAGAIN, 0, 0, RL_CORE_HOST_SAME, "" },
        { "TRYAGAIN", RL_CORE_OK, RL_CORE_REDIRECT_TRYAGAIN, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "CLUSTERDOWN The cluster is down", RL_CORE_OK,
          RL_CORE_REDIRECT_CLUSTERDOWN, 0, 0, RL_CORE_HOST_SAME, "" },
        { "CLUSTERDOWN Hash slot not served", RL_CORE_OK,
          RL_CORE_REDIRECT_CLUSTERDOWN, 0, 0, RL_CORE_HOST_SAME, "" },
        { "CLUSTERDOWN The cluster is down and only accepts read commands",
          RL_CORE_OK, RL_CORE_REDIRECT_CLUSTERDOWN, 0, 0, RL_CORE_HOST_SAME,
          "" },
        { "CROSSSLOT Keys in request don't hash to the same slot",
          RL_CORE_OK, RL_CORE_REDIRECT_CROSSSLOT, 0, 0, RL_CORE_HOST_SAME,
          "" },
        { "ERR unknown command", RL_CORE_OK, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "NOSCRIPT No matching script", RL_CORE_OK, RL_CORE_REDIRECT_NONE,
          0, 0, RL_CORE_HOST_SAME, "" },
        { "READONLY You can't write against a read only replica.",
          RL_CORE_OK, RL_CORE_REDIRECT_NONE, 0, 0, RL_CORE_HOST_SAME, "" },
        { "ASKING", RL_CORE_OK, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "MOVEDX 1 1.2.3.4:5", RL_CORE_OK, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "moved 1 1.2.3.4:5", RL_CORE_OK, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "TRYAGAINX", RL_CORE_OK, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "", RL_CORE_OK, RL_CORE_REDIRECT_NONE, 0, 0, RL_CORE_HOST_SAME,
          "" },
        { "-", RL_CORE_OK, RL_CORE_REDIRECT_NONE, 0, 0, RL_CORE_HOST_SAME,
          "" },
        /* MOVED or ASK, malformed. */
        { "MOVED", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "MOVED ", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "ASK 3999", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "MOVED 3999 127.0.0.1", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0,
          0, RL_CORE_HOST_SAME, "" },
        { "MOVED 3999 127.0.0.1:", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0,
          0, RL_CORE_HOST_SAME, "" },
        { "MOVED 3999 127.0.0.1:0", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE,
          0, 0, RL_CORE_HOST_SAME, "" },
        { "MOVED 3999 127.0.0.1:65536", RL_CORE_EREPLY,
          RL_CORE_REDIRECT_NONE, 0, 0, RL_CORE_HOST_SAME, "" },
        { "MOVED 3999 127.0.0.1:6381x", RL_CORE_EREPLY,
          RL_CORE_REDIRECT_NONE, 0, 0, RL_CORE_HOST_SAME, "" },
        { "MOVED 3999 127.0.0.1:6381 x", RL_CORE_EREPLY,
          RL_CORE_REDIRECT_NONE, 0, 0, RL_CORE_HOST_SAME, "" },
        { "MOVED 3999 127.0.0.1:6381\r\n", RL_CORE_EREPLY,
          RL_CORE_REDIRECT_NONE, 0, 0, RL_CORE_HOST_SAME, "" },
        { "MOVED 16384 1.2.3.4:5", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0,
          0, RL_CORE_HOST_SAME, "" },
        { "MOVED -1 1.2.3.4:5", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "MOVED 39a9 1.2.3.4:5", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0,
          0, RL_CORE_HOST_SAME, "" },
        { "MOVED  3999 1.2.3.4:5", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0,
          0, RL_CORE_HOST_SAME, "" },
        { "MOVED 000001 1.2.3.4:5", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE,
          0, 0, RL_CORE_HOST_SAME, "" },
        { "MOVED 1 []:5", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
        { "MOVED 1 [name]:5", RL_CORE_EREPLY, RL_CORE_REDIRECT_NONE, 0, 0,
          RL_CORE_HOST_SAME, "" },
    };

    rl_core_redirect_t  out;
    size_t              i;

    (void) unused;

    for (i = 0; i < COUNT_OF(cases); i++) {
        memset(&out, 0x5a, sizeof(out));

        if (rl_core_parse_redirect(cases[i].msg, strlen(cases[i].msg), &out)
            != cases[i].rc)
        {
            fail_msg("case %zu \"%s\": wrong status", i, cases[i].msg);
        }

        if (out.kind != cases[i].kind) {
            fail_msg("case %zu \"%s\": kind %d", i, cases[i].msg,
                     (int) out.kind);
        }

        if (out.kind != RL_CORE_REDIRECT_MOVED
            && out.kind != RL_CORE_REDIRECT_ASK)
        {
            continue;
        }

        assert_int_equal(out.slot, cases[i].slot);
        assert_int_equal(out.port, cases[i].port);
        assert_int_equal(out.host_kind, cases[i].host_kind);
        assert_int_equal(out.host_len, strlen(cases[i].host));

        if (out.host_len > 0) {
            assert_memory_equal(out.host, cases[i].host, out.host_len);
            /* It points into the message. */
            assert_true(out.host >= cases[i].msg
                        && out.host < cases[i].msg + strlen(cases[i].msg));
        }
    }

    /* Binary-safe: a NUL ends nothing, and is not a host byte. */
    assert_int_equal(rl_core_parse_redirect(S("MOVED 1 1.2.3.4:5\0"), &out),
                     RL_CORE_EREPLY);
    assert_int_equal(rl_core_parse_redirect(S("MOVED 1 1.2\0.3.4:5"), &out),
                     RL_CORE_OK);
    assert_int_equal(out.host_kind, RL_CORE_HOST_NAME);

    assert_int_equal(rl_core_parse_redirect(NULL, 0, &out), RL_CORE_OK);
    assert_int_equal(out.kind, RL_CORE_REDIRECT_NONE);
    assert_int_equal(rl_core_parse_redirect(NULL, 3, &out), RL_CORE_EINVAL);
    assert_int_equal(rl_core_parse_redirect(S("ASK 1 a:1"), NULL),
                     RL_CORE_EINVAL);
}


/* Checks what must hold of any grouping of slots[0..n). */
static void
check_grouping(const uint16_t *slots, size_t n, const size_t *order,
    const rl_core_cluster_group_t *groups, size_t ngroups)
{
    size_t  g, h, k, i, seen;
    char    used[64];

    assert_true(n <= sizeof(used));
    memset(used, 0, sizeof(used));
    seen = 0;

    for (g = 0; g < ngroups; g++) {
        assert_int_equal(groups[g].first, seen);
        assert_true(groups[g].count >= 1);

        for (h = 0; h < g; h++) {
            assert_int_not_equal(groups[h].slot, groups[g].slot);
            /* In order of their first zone. */
            assert_true(order[groups[h].first] < order[groups[g].first]);
        }

        for (k = 0; k < groups[g].count; k++) {
            i = order[groups[g].first + k];
            assert_true(i < n);
            assert_false(used[i]);
            used[i] = 1;
            assert_int_equal(slots[i], groups[g].slot);

            /* rate_limit order within the group. */
            if (k > 0) {
                assert_true(order[groups[g].first + k - 1] < i);
            }
        }

        seen += groups[g].count;
    }

    assert_int_equal(seen, n);
}


static void
test_group(void **unused)
{
    static const uint16_t  a[] = { 7, 7, 7 };
    static const uint16_t  b[] = { 1, 2, 1, 3, 2 };
    static const uint16_t  c[] = { 16383, 0, 5, 0, 16383, 5, 9 };

    rl_core_cluster_group_t  groups[8];
    size_t                   order[8], ngroups;

    (void) unused;

    assert_int_equal(rl_core_cluster_group(a, 3, order, groups, &ngroups),
                     RL_CORE_OK);
    assert_int_equal(ngroups, 1);
    check_grouping(a, 3, order, groups, ngroups);

    assert_int_equal(rl_core_cluster_group(b, 5, order, groups, &ngroups),
                     RL_CORE_OK);
    assert_int_equal(ngroups, 3);
    check_grouping(b, 5, order, groups, ngroups);
    assert_int_equal(groups[0].slot, 1);
    assert_int_equal(groups[1].slot, 2);
    assert_int_equal(groups[2].slot, 3);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);
    assert_int_equal(order[3], 4);
    assert_int_equal(order[4], 3);

    assert_int_equal(rl_core_cluster_group(c, 7, order, groups, &ngroups),
                     RL_CORE_OK);
    assert_int_equal(ngroups, 4);
    check_grouping(c, 7, order, groups, ngroups);

    assert_int_equal(rl_core_cluster_group(NULL, 0, NULL, NULL, &ngroups),
                     RL_CORE_OK);
    assert_int_equal(ngroups, 0);

    assert_int_equal(rl_core_cluster_group(a, 3, order, groups, NULL),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_cluster_group(a, 3, NULL, groups, &ngroups),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_cluster_group((const uint16_t[]) { 1, 16384 },
                                           2, order, groups, &ngroups),
                     RL_CORE_EINVAL);
}


static void
test_outcome(void **unused)
{
    /* Zones 0 and 2 in slot 1, zone 1 in slot 2, zone 3 in slot 3. */
    static const uint16_t  slots[] = { 1, 2, 1, 3 };

    static const struct {
        rl_core_group_state_e  states[3];   /* slots 1, 2, 3 */
        int                    allowed[4];  /* zones 0..3 */
        rl_core_outcome_e      outcome;
        size_t                 nrefunds;
        size_t                 zones[4];    /* refunded, in order */
    } cases[] = {
        { { RL_CORE_GROUP_ANSWERED, RL_CORE_GROUP_ANSWERED,
            RL_CORE_GROUP_ANSWERED }, { 1, 1, 1, 1 },
          RL_CORE_OUTCOME_ADMIT, 0, { 0 } },
        /* Slot 2 rejects: slots 1 and 3 consumed, refunded. */
        { { RL_CORE_GROUP_ANSWERED, RL_CORE_GROUP_ANSWERED,
            RL_CORE_GROUP_ANSWERED }, { 1, 0, 1, 1 },
          RL_CORE_OUTCOME_REJECT, 3, { 0, 2, 3 } },
        /* Zone 2 rejects: slot 1 consumed nothing (zone 0 neither). */
        { { RL_CORE_GROUP_ANSWERED, RL_CORE_GROUP_ANSWERED,
            RL_CORE_GROUP_ANSWERED }, { 1, 1, 0, 1 },
          RL_CORE_OUTCOME_REJECT, 2, { 1, 3 } },
        { { RL_CORE_GROUP_ANSWERED, RL_CORE_GROUP_ANSWERED,
            RL_CORE_GROUP_ANSWERED }, { 0, 0, 0, 0 },
          RL_CORE_OUTCOME_REJECT, 0, { 0 } },
        /* An error, none rejected: the fail policy decides; the refund
         * is there in case it rejects. */
        { { RL_CORE_GROUP_ANSWERED, RL_CORE_GROUP_NOT_RUN,
            RL_CORE_GROUP_ANSWERED }, { 1, 0, 1, 1 },
          RL_CORE_OUTCOME_ERROR, 3, { 0, 2, 3 } },
        /* Unknown: never refunded, whatever it did. */
        { { RL_CORE_GROUP_ANSWERED, RL_CORE_GROUP_UNKNOWN,
            RL_CORE_GROUP_ANSWERED }, { 1, 1, 1, 0 },
          RL_CORE_OUTCOME_REJECT, 2, { 0, 2 } },
        { { RL_CORE_GROUP_UNKNOWN, RL_CORE_GROUP_UNKNOWN,
            RL_CORE_GROUP_NOT_RUN }, { 1, 1, 1, 1 },
          RL_CORE_OUTCOME_ERROR, 0, { 0 } },
        /* A rejection beats an error. */
        { { RL_CORE_GROUP_NOT_RUN, RL_CORE_GROUP_ANSWERED,
            RL_CORE_GROUP_ANSWERED }, { 1, 0, 1, 1 },
          RL_CORE_OUTCOME_REJECT, 1, { 3 } },
    };

    rl_core_cluster_group_t   groups[4];
    rl_core_cluster_refund_t  refunds[4];
    rl_core_outcome_e         outcome;
    size_t                    order[4], ngroups, nrefunds, i, k;

    (void) unused;

    assert_int_equal(rl_core_cluster_group(slots, 4, order, groups,
                                           &ngroups), RL_CORE_OK);
    assert_int_equal(ngroups, 3);

    for (i = 0; i < COUNT_OF(cases); i++) {
        assert_int_equal(rl_core_cluster_outcome(groups, ngroups, order, 4,
                                                 cases[i].states,
                                                 cases[i].allowed, &outcome,
                                                 refunds, &nrefunds),
                         RL_CORE_OK);

        if (outcome != cases[i].outcome || nrefunds != cases[i].nrefunds) {
            fail_msg("case %zu: outcome %d, %zu refunds", i, (int) outcome,
                     nrefunds);
        }

        for (k = 0; k < nrefunds; k++) {
            assert_int_equal(refunds[k].zone, cases[i].zones[k]);
            assert_int_equal(slots[refunds[k].zone],
                             groups[refunds[k].group].slot);
            assert_int_equal(refunds[k].cost, 1);
        }
    }

    /* Not a partition. */
    {
        rl_core_group_state_e  st[3] = { RL_CORE_GROUP_ANSWERED,
                                         RL_CORE_GROUP_ANSWERED,
                                         RL_CORE_GROUP_ANSWERED };
        int                    al[4] = { 1, 1, 1, 1 };
        rl_core_cluster_group_t  bad[3];
        size_t                 bad_order[4];

        memcpy(bad, groups, sizeof(bad));
        bad[1].count = 2;               /* overruns n */
        assert_int_equal(rl_core_cluster_outcome(bad, 3, order, 4, st, al,
                                                 &outcome, refunds,
                                                 &nrefunds),
                         RL_CORE_EINVAL);

        memcpy(bad, groups, sizeof(bad));
        bad[2].count = 0;
        assert_int_equal(rl_core_cluster_outcome(bad, 3, order, 4, st, al,
                                                 &outcome, refunds,
                                                 &nrefunds),
                         RL_CORE_EINVAL);

        /* Too few zones covered. */
        assert_int_equal(rl_core_cluster_outcome(groups, 2, order, 4, st, al,
                                                 &outcome, refunds,
                                                 &nrefunds),
                         RL_CORE_EINVAL);

        memcpy(bad_order, order, sizeof(bad_order));
        bad_order[3] = bad_order[0];    /* a zone twice */
        assert_int_equal(rl_core_cluster_outcome(groups, 3, bad_order, 4, st,
                                                 al, &outcome, refunds,
                                                 &nrefunds),
                         RL_CORE_EINVAL);

        bad_order[3] = 4;               /* out of range */
        assert_int_equal(rl_core_cluster_outcome(groups, 3, bad_order, 4, st,
                                                 al, &outcome, refunds,
                                                 &nrefunds),
                         RL_CORE_EINVAL);

        st[1] = (rl_core_group_state_e) 7;
        assert_int_equal(rl_core_cluster_outcome(groups, 3, order, 4, st, al,
                                                 &outcome, refunds,
                                                 &nrefunds),
                         RL_CORE_EINVAL);

        assert_int_equal(rl_core_cluster_outcome(groups, 3, order, 4, st, al,
                                                 NULL, refunds, &nrefunds),
                         RL_CORE_EINVAL);
        assert_int_equal(rl_core_cluster_outcome(groups, 3, order, 4, st, al,
                                                 &outcome, NULL, &nrefunds),
                         RL_CORE_EINVAL);
    }

    /* No zones: nothing to decide, admitted. */
    assert_int_equal(rl_core_cluster_outcome(NULL, 0, NULL, 0, NULL, NULL,
                                             &outcome, NULL, &nrefunds),
                     RL_CORE_OK);
    assert_int_equal(outcome, RL_CORE_OUTCOME_ADMIT);
    assert_int_equal(nrefunds, 0);
}


/*
 * The model: zones with quotas in a simulated Redis, random slots (few,
 * so that groups form) and random answers.  A group's call consumes one
 * unit from each of its zones iff it ran and all of them allowed (the
 * script's all-or-nothing); an unknown call did or did not, at random.
 * Then the request is admitted or not (for ERROR, by a random fail
 * policy) and, if not, its refunds are applied.  What must hold:
 *   - admitted by the outcome only if every group ran and allowed;
 *   - a refund never gives back what was not consumed (no zone's
 *     consumption below zero: no over-admission);
 *   - once refunded, a request that is not admitted has consumed nothing
 *     on any slot that answered (never admitted by one slot and
 *     rejected by another with both consuming), only what unknown calls
 *     may have taken;
 *   - an admitted request consumed exactly one unit per zone;
 *   - refunds come group by group, each zone once, cost 1.
 */
static void
test_model(void **unused)
{
    rl_core_cluster_group_t   groups[16];
    rl_core_cluster_refund_t  refunds[16];
    rl_core_group_state_e     states[16];
    rl_core_outcome_e         outcome;
    uint64_t                  seed;
    uint16_t                  slots[16];
    size_t                    order[16], ngroups, nrefunds, n, i, g, k;
    size_t                    round, last_group;
    int                       allowed[16], consumed[16], group_ok;
    int                       admitted, unknown_took[16], refunded[16];
    unsigned                  counts[3] = { 0, 0, 0 };

    (void) unused;

    seed = 0x243f6a8885a308d3ULL;

    for (round = 0; round < 50000; round++) {
        n = 1 + (size_t) (next_random(&seed) % 16);

        for (i = 0; i < n; i++) {
            slots[i] = (uint16_t) (next_random(&seed) % 5) * 4095;
            /* Mostly allowed, so that mixed outcomes are common. */
            allowed[i] = next_random(&seed) % 6 != 0;
            consumed[i] = 0;
            refunded[i] = 0;
        }

        assert_int_equal(rl_core_cluster_group(slots, n, order, groups,
                                               &ngroups), RL_CORE_OK);
        check_grouping(slots, n, order, groups, ngroups);

        for (g = 0; g < ngroups; g++) {
            uint64_t  r = next_random(&seed) % 10;

            states[g] = r < 8 ? RL_CORE_GROUP_ANSWERED
                        : r == 8 ? RL_CORE_GROUP_NOT_RUN
                                 : RL_CORE_GROUP_UNKNOWN;
            unknown_took[g] = (int) (next_random(&seed) & 1);

            group_ok = 1;

            for (k = 0; k < groups[g].count; k++) {
                group_ok &= allowed[order[groups[g].first + k]];
            }

            /* What Redis did. */
            if ((states[g] == RL_CORE_GROUP_ANSWERED && group_ok)
                || (states[g] == RL_CORE_GROUP_UNKNOWN && unknown_took[g]))
            {
                for (k = 0; k < groups[g].count; k++) {
                    consumed[order[groups[g].first + k]]++;
                }
            }
        }

        assert_int_equal(rl_core_cluster_outcome(groups, ngroups, order, n,
                                                 states, allowed, &outcome,
                                                 refunds, &nrefunds),
                         RL_CORE_OK);
        counts[outcome]++;

        if (outcome == RL_CORE_OUTCOME_ADMIT) {
            assert_int_equal(nrefunds, 0);

            for (g = 0; g < ngroups; g++) {
                assert_int_equal(states[g], RL_CORE_GROUP_ANSWERED);
            }

            for (i = 0; i < n; i++) {
                assert_true(allowed[i]);
                assert_int_equal(consumed[i], 1);
            }

            continue;
        }

        /* Refunds: group by group, each zone once, of its group. */
        last_group = 0;

        for (k = 0; k < nrefunds; k++) {
            assert_true(refunds[k].group < ngroups);
            assert_true(refunds[k].group >= last_group);
            last_group = refunds[k].group;
            assert_true(refunds[k].zone < n);
            assert_int_equal(slots[refunds[k].zone],
                             groups[refunds[k].group].slot);
            assert_int_equal(refunds[k].cost, 1);
            assert_false(refunded[refunds[k].zone]);
            refunded[refunds[k].zone] = 1;
        }

        admitted = outcome == RL_CORE_OUTCOME_ERROR
                   && (next_random(&seed) & 1);     /* fail open */

        if (admitted) {
            /* Only for ERROR: the glue drops the refunds.  Nothing was
             * rejected; what consumed stays consumed. */
            continue;
        }

        for (k = 0; k < nrefunds; k++) {
            consumed[refunds[k].zone] -= (int) refunds[k].cost;
        }

        for (g = 0; g < ngroups; g++) {
            for (k = 0; k < groups[g].count; k++) {
                i = order[groups[g].first + k];

                /* Never a refund of what was not consumed. */
                assert_true(consumed[i] >= 0);

                if (states[g] != RL_CORE_GROUP_UNKNOWN) {
                    /* Nothing left consumed on a slot that answered. */
                    assert_int_equal(consumed[i], 0);
                } else {
                    assert_false(refunded[i]);
                }
            }
        }
    }

    /* The model reached every outcome often. */
    assert_true(counts[RL_CORE_OUTCOME_ADMIT] > 1000);
    assert_true(counts[RL_CORE_OUTCOME_REJECT] > 1000);
    assert_true(counts[RL_CORE_OUTCOME_ERROR] > 1000);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_crc16),
        cmocka_unit_test(test_key_slot_vectors),
        cmocka_unit_test(test_key_slot_tags),
        cmocka_unit_test(test_zone_slot),
        cmocka_unit_test(test_map_basic),
        cmocka_unit_test(test_map_dedup),
        cmocka_unit_test(test_map_errors),
        cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_group),
        cmocka_unit_test(test_outcome),
        cmocka_unit_test(test_model),
    };

    return cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
}
