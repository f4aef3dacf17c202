/*
 * The RateLimit-Policy and RateLimit field values, and the reconnect
 * backoff sequence.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>
#include <cmocka.h>

#include "rl_core_test.h"


#define COUNT_OF(a)  (sizeof(a) / sizeof((a)[0]))
#define ZONES_MAX  3


typedef struct {
    const char            *name;
    uint64_t               count;
    uint64_t               period_s;
    rl_core_zone_result_t  result;      /* allowed limit rem reset retry */
} zone_spec_t;


typedef struct {
    const char   *what;
    size_t        n;
    zone_spec_t   zones[ZONES_MAX];
    const char   *policy;
    const char   *ratelimit;
} field_case_t;


static const field_case_t  field_cases[] = {
    { "the design's example", 2,
      { { "per_key", 100, 60, { 1, 100, 20, 500, 0, 0 } },
        { "per_ip", 10, 1, { 1, 10, 9, 1500, 0, 0 } } },
      "\"per_key\";q=100;w=60, \"per_ip\";q=10;w=1",
      "\"per_key\";r=20;t=1, \"per_ip\";r=9;t=2" },
    { "nothing left: t counts to the retry", 1,
      { { "z", 5, 3600, { 0, 5, 0, 3600000, 1001, 0 } } },
      "\"z\";q=5;w=3600",
      "\"z\";r=0;t=2" },
    { "the last one passed: t counts to the retry", 1,
      { { "z", 5, 86400, { 1, 5, 0, 86400000, 17280000, 0 } } },
      "\"z\";q=5;w=86400",
      "\"z\";r=0;t=17280" },
    { "some left: t counts to the reset", 1,
      { { "z", 5, 60, { 1, 5, 4, 12000, 0, 0 } } },
      "\"z\";q=5;w=60",
      "\"z\";r=4;t=12" },
    { "fresh: t is 0", 1,
      { { "A-z_9", 1, 1, { 1, 1, 1, 0, 0, 0 } } },
      "\"A-z_9\";q=1;w=1",
      "\"A-z_9\";r=1;t=0" },
    { "three zones in order", 3,
      { { "a", 1, 1, { 1, 1, 1, 0, 0, 0 } },
        { "b", 2, 60, { 0, 2, 0, 30000, 30000, 0 } },
        { "c", 3, 3600, { 1, 3, 2, 2000, 0, 0 } } },
      "\"a\";q=1;w=1, \"b\";q=2;w=60, \"c\";q=3;w=3600",
      "\"a\";r=1;t=0, \"b\";r=0;t=30, \"c\";r=2;t=2" },
    { "concurrency (period_s 0): qu, no w, no t", 2,
      { { "cc", 3, 0, { 1, 3, 2, 30000, 0, 0 } },
        { "z", 5, 60, { 1, 5, 4, 12000, 0, 0 } } },
      "\"cc\";q=3;qu=\"concurrent-requests\", \"z\";q=5;w=60",
      "\"cc\";r=2, \"z\";r=4;t=12" },
    { "widest numbers", 1,
      { { "z", UINT64_MAX, UINT64_MAX,
          { 1, INT64_MAX, INT64_MAX, INT64_MAX, 0, 0 } } },
      "\"z\";q=18446744073709551615;w=18446744073709551615",
      "\"z\";r=9223372036854775807;t=9223372036854776" },
};


static size_t
fill(rl_core_field_zone_t *out, const field_case_t *c)
{
    size_t  i, room = 0;

    for (i = 0; i < c->n; i++) {
        out[i].name = c->zones[i].name;
        out[i].name_len = strlen(c->zones[i].name);
        out[i].count = c->zones[i].count;
        out[i].period_s = c->zones[i].period_s;
        out[i].result = c->zones[i].result;
        room += out[i].name_len + RL_CORE_FIELD_ITEM_MAX;
    }

    return room;
}


typedef size_t (*format_pt)(char *buf, size_t cap,
    const rl_core_field_zone_t *zones, size_t n);


static void
check_format(format_pt format, const char *what, const char *expect,
    const rl_core_field_zone_t *zones, size_t n, size_t room)
{
    char    buf[1024];
    size_t  len = strlen(expect), got;

    assert_true(room <= sizeof(buf));
    assert_true(len <= room);

    /* The documented room is enough, and exactly the value is written. */
    memset(buf, '~', sizeof(buf));
    got = format(buf, room, zones, n);

    if (got != len || memcmp(buf, expect, len) != 0) {
        fail_msg("%s: \"%.*s\", expected \"%s\"", what, (int) got, buf,
                 expect);
    }

    assert_int_equal(buf[len], '~');

    /* Exactly its length is enough; a byte less is not. */
    assert_int_equal(format(buf, len, zones, n), len);
    assert_int_equal(format(buf, len - 1, zones, n), 0);
    assert_int_equal(format(buf, 0, zones, n), 0);
}


static void
test_fields(void **state)
{
    size_t                  i, room;
    rl_core_field_zone_t    zones[ZONES_MAX];

    (void) state;

    for (i = 0; i < COUNT_OF(field_cases); i++) {
        const field_case_t  *c = &field_cases[i];

        room = fill(zones, c);
        check_format(rl_core_format_policy, c->what, c->policy, zones,
                     c->n, room);
        check_format(rl_core_format_ratelimit, c->what, c->ratelimit, zones,
                     c->n, room);
    }
}


static void
test_fields_empty(void **state)
{
    char                   buf[64];
    rl_core_field_zone_t   zone;

    (void) state;

    memset(&zone, 0, sizeof(zone));

    assert_int_equal(rl_core_format_policy(buf, sizeof(buf), &zone, 0), 0);
    assert_int_equal(rl_core_format_ratelimit(buf, sizeof(buf), &zone, 0),
                     0);
    assert_int_equal(rl_core_format_policy(NULL, 64, &zone, 1), 0);
    assert_int_equal(rl_core_format_ratelimit(buf, 64, NULL, 1), 0);
}


static void
test_backoff(void **state)
{
    static const struct {
        unsigned  attempt;
        uint64_t  ms;
    } cases[] = {
        { 0, 0 },
        { 1, 100 },
        { 2, 200 },
        { 3, 400 },
        { 4, 800 },
        { 5, 1600 },
        { 6, 2000 },
        { 7, 2000 },
        { 31, 2000 },
        { 32, 2000 },
        { 64, 2000 },
        { 65, 2000 },
        { 1000000, 2000 },
        { UINT_MAX - 1, 2000 },
        { UINT_MAX, 2000 },
    };
    size_t    i;
    unsigned  a;
    uint64_t  prev = 0;

    (void) state;

    for (i = 0; i < COUNT_OF(cases); i++) {
        if (rl_core_backoff_ms(cases[i].attempt) != cases[i].ms) {
            fail_msg("attempt %u: %llu ms", cases[i].attempt,
                     (unsigned long long)
                     rl_core_backoff_ms(cases[i].attempt));
        }
    }

    /* Never shrinking, never above the cap. */
    for (a = 0; a < 300; a++) {
        uint64_t  ms = rl_core_backoff_ms(a);

        assert_true(ms >= prev);
        assert_true(ms <= 2000);
        prev = ms;
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_fields_empty),
        cmocka_unit_test(test_backoff),
    };

    return cmocka_run_group_tests_name("fields", tests, NULL, NULL);
}
