/*
 * Configuration as the core checks it: rates, algorithm names, every
 * bound of rl_core_check_limit() at its edge, default bursts, zone names
 * and key prefixes.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rl_core_test.h"


#define COUNT_OF(a)  (sizeof(a) / sizeof((a)[0]))

/* A string literal with its length, embedded NULs included. */
#define S(s)  s, sizeof(s) - 1


typedef struct {
    const char        *text;
    size_t             len;
    rl_core_status_e   status;
    uint64_t           count;
    uint64_t           period_s;
} rate_case_t;


static const rate_case_t  rate_cases[] = {
    { S("1r/s"), RL_CORE_OK, 1, 1 },
    { S("100r/m"), RL_CORE_OK, 100, 60 },
    { S("10r/h"), RL_CORE_OK, 10, 3600 },
    { S("5r/d"), RL_CORE_OK, 5, 86400 },
    { S("007r/s"), RL_CORE_OK, 7, 1 },
    { S("1000000000r/d"), RL_CORE_OK, 1000000000, 86400 },
    { S("0001000000000r/h"), RL_CORE_OK, 1000000000, 3600 },
    { S("7r/w"), RL_CORE_OK, 7, 604800 },
    { S("1000r/M"), RL_CORE_OK, 1000, 2592000 },
    { S("10r/W"), RL_CORE_EINVAL, 0, 0 },

    { S("0r/s"), RL_CORE_ERANGE, 0, 0 },
    { S("000r/m"), RL_CORE_ERANGE, 0, 0 },
    { S("1000000001r/d"), RL_CORE_ERANGE, 0, 0 },
    { S("18446744073709551616r/s"), RL_CORE_ERANGE, 0, 0 },
    { S("99999999999999999999999999999r/s"), RL_CORE_ERANGE, 0, 0 },

    { S(""), RL_CORE_EINVAL, 0, 0 },
    { S("r/s"), RL_CORE_EINVAL, 0, 0 },
    { S("10"), RL_CORE_EINVAL, 0, 0 },
    { S("10r"), RL_CORE_EINVAL, 0, 0 },
    { S("10r/"), RL_CORE_EINVAL, 0, 0 },
    { S("10r/x"), RL_CORE_EINVAL, 0, 0 },
    { S("10r/ss"), RL_CORE_EINVAL, 0, 0 },
    { S("10r/S"), RL_CORE_EINVAL, 0, 0 },
    { S("10R/s"), RL_CORE_EINVAL, 0, 0 },
    { S("10/s"), RL_CORE_EINVAL, 0, 0 },
    { S(" 10r/s"), RL_CORE_EINVAL, 0, 0 },
    { S("10r/s "), RL_CORE_EINVAL, 0, 0 },
    { S("10 r/s"), RL_CORE_EINVAL, 0, 0 },
    { S("+10r/s"), RL_CORE_EINVAL, 0, 0 },
    { S("-1r/s"), RL_CORE_EINVAL, 0, 0 },
    { S("1.5r/s"), RL_CORE_EINVAL, 0, 0 },
    { S("0x10r/s"), RL_CORE_EINVAL, 0, 0 },
    { S("10r/sec"), RL_CORE_EINVAL, 0, 0 },
    { S("10r/s\0"), RL_CORE_EINVAL, 0, 0 },
    { S("1\0r/s"), RL_CORE_EINVAL, 0, 0 },
    { S("0r/x"), RL_CORE_EINVAL, 0, 0 },
};


static void
test_parse_rate(void **state)
{
    size_t             i;
    uint64_t           count, period_s;
    rl_core_status_e   rc;

    (void) state;

    for (i = 0; i < COUNT_OF(rate_cases); i++) {
        const rate_case_t  *c = &rate_cases[i];

        count = 12345;
        period_s = 12345;
        rc = rl_core_parse_rate(c->text, c->len, &count, &period_s);

        if (rc != c->status) {
            fail_msg("rate \"%s\": status %d, expected %d", c->text,
                     (int) rc, (int) c->status);
        }

        if (rc == RL_CORE_OK
            && (count != c->count || period_s != c->period_s))
        {
            fail_msg("rate \"%s\": %llu per %llu s", c->text,
                     (unsigned long long) count,
                     (unsigned long long) period_s);
        }

        if (rc != RL_CORE_OK && (count != 12345 || period_s != 12345)) {
            fail_msg("rate \"%s\": outputs written on failure", c->text);
        }
    }
}


typedef struct {
    const char           *name;
    size_t                len;
    rl_core_status_e      status;
    rl_core_algorithm_e   algorithm;
} algorithm_case_t;


static const algorithm_case_t  algorithm_cases[] = {
    { S("gcra"), RL_CORE_OK, RL_CORE_ALG_GCRA },
    { S("token_bucket"), RL_CORE_OK, RL_CORE_ALG_TOKEN_BUCKET },
    { S("fixed_window"), RL_CORE_OK, RL_CORE_ALG_FIXED_WINDOW },
    { S("sliding_window"), RL_CORE_OK, RL_CORE_ALG_SLIDING_WINDOW },
    { S("sliding_log"), RL_CORE_OK, RL_CORE_ALG_SLIDING_LOG },
    { S(""), RL_CORE_EINVAL, 0 },
    { S("GCRA"), RL_CORE_EINVAL, 0 },
    { S("gcr"), RL_CORE_EINVAL, 0 },
    { S("gcra "), RL_CORE_EINVAL, 0 },
    { S("gcra\0"), RL_CORE_EINVAL, 0 },
    { S("token-bucket"), RL_CORE_EINVAL, 0 },
    { S("leaky_bucket"), RL_CORE_EINVAL, 0 },
    /* a zone becomes one by concurrency=, never by algorithm= */
    { S("concurrency"), RL_CORE_EINVAL, 0 },
};


static void
test_parse_algorithm(void **state)
{
    size_t                i;
    rl_core_status_e      rc;
    rl_core_algorithm_e   alg;

    (void) state;

    for (i = 0; i < COUNT_OF(algorithm_cases); i++) {
        const algorithm_case_t  *c = &algorithm_cases[i];

        alg = (rl_core_algorithm_e) 99;
        rc = rl_core_parse_algorithm(c->name, c->len, &alg);

        if (rc != c->status) {
            fail_msg("algorithm \"%s\": status %d", c->name, (int) rc);
        }

        if (rc != RL_CORE_OK) {
            continue;
        }

        if (alg != c->algorithm) {
            fail_msg("algorithm \"%s\": %d", c->name, (int) alg);
        }

        /* The name round-trips. */
        assert_string_equal(rl_core_algorithm_name(alg), c->name);
    }

    assert_string_equal(rl_core_algorithm_name((rl_core_algorithm_e) 99),
                        "unknown");
}


typedef struct {
    rl_core_algorithm_e   algorithm;
    uint64_t              count;
    uint64_t              period_s;
    uint64_t              burst;
    int                   burst_set;
    rl_core_status_e      status;
    uint64_t              burst_after;  /* on success */
    const char           *message;      /* on failure: a part of it */
} limit_case_t;


#define GCRA  RL_CORE_ALG_GCRA
#define TB    RL_CORE_ALG_TOKEN_BUCKET
#define FW    RL_CORE_ALG_FIXED_WINDOW
#define SW    RL_CORE_ALG_SLIDING_WINDOW
#define SL    RL_CORE_ALG_SLIDING_LOG
#define CC    RL_CORE_ALG_CONCURRENCY
#define OK    RL_CORE_OK
#define RANGE RL_CORE_ERANGE
#define INVAL RL_CORE_EINVAL


static const limit_case_t  limit_cases[] = {
    /* Calendar months only with fixed_window; weeks with any. */
    { FW, 1000, RL_CORE_PERIOD_MONTH, 0, 0, OK, 0, NULL },
    { GCRA, 1000, RL_CORE_PERIOD_MONTH, 0, 0, INVAL, 0,
      "rate \"1000r/M\" counts calendar months, which only "
      "algorithm=fixed_window takes, not algorithm=gcra" },
    { TB, 1000, RL_CORE_PERIOD_MONTH, 0, 0, INVAL, 0,
      "not algorithm=token_bucket" },
    { SW, 1000, RL_CORE_PERIOD_MONTH, 0, 0, INVAL, 0,
      "not algorithm=sliding_window" },
    { SL, 1000, RL_CORE_PERIOD_MONTH, 0, 0, INVAL, 0,
      "not algorithm=sliding_log" },
    { GCRA, 1000, RL_CORE_PERIOD_WEEK, 0, 0, OK, 0, NULL },
    { SW, 7446, RL_CORE_PERIOD_WEEK, 0, 0, OK, 0, NULL },
    { SW, 7447, RL_CORE_PERIOD_WEEK, 0, 0, RANGE, 0,
      "N must not exceed 7446 for r/w" },
    { GCRA, 1, 1209600, 0, 0, INVAL, 0,
      "the period must be s, m, h, d, w or M" },

    /* Every algorithm: 1 <= N <= 10^9 and N <= period_us. */
    { GCRA, 1, 1, 0, 0, OK, 0, NULL },
    { GCRA, 0, 1, 0, 0, RANGE, 0,
      "rate \"0r/s\" is out of range: N must be at least 1" },
    { GCRA, 1000000, 1, 0, 0, OK, 0, NULL },
    { GCRA, 1000001, 1, 0, 0, RANGE, 0,
      "rate \"1000001r/s\" is out of range: "
      "N must not exceed 1000000 for r/s" },
    { FW, 1000001, 1, 0, 0, RANGE, 0, "N must not exceed 1000000 for r/s" },
    { TB, 60000000, 60, 1, 1, OK, 1, NULL },
    { TB, 60000001, 60, 1, 1, RANGE, 0,
      "N must not exceed 60000000 for r/m" },
    { GCRA, 1000000000, 3600, 0, 0, OK, 0, NULL },
    { GCRA, 1000000001, 3600, 0, 0, RANGE, 0,
      "rate \"1000000001r/h\" is out of range: "
      "N must not exceed 1000000000" },
    { FW, 1000000000, 86400, 0, 0, OK, 0, NULL },
    { FW, 1000000001, 86400, 0, 0, RANGE, 0, "N must not exceed 1000000000" },
    { GCRA, 10, 2, 0, 0, INVAL, 0, "invalid rate period" },
    { GCRA, 10, 0, 0, 0, INVAL, 0, "invalid rate period" },
    { (rl_core_algorithm_e) RL_CORE_ALG_COUNT, 10, 1, 0, 0, INVAL, 0,
      "unknown algorithm" },

    /* concurrency: 1 <= N <= 10^6, a lease of 1 s .. 1 h, no burst. */
    { CC, 1, 1, 0, 0, OK, 0, NULL },
    { CC, 1000000, 3600, 0, 0, OK, 0, NULL },
    { CC, 3, 7, 0, 0, OK, 0, NULL },                /* any whole seconds */
    { CC, 0, 30, 0, 0, RANGE, 0, "concurrency=0 is out of range" },
    { CC, 1000001, 30, 0, 0, RANGE, 0, "between 1 and 1000000" },
    { CC, 3, 0, 0, 0, RANGE, 0, "between 1 s and 3600 s" },
    { CC, 3, 3601, 0, 0, RANGE, 0, "lease of 3601 s is out of range" },
    { CC, 3, 30, 2, 1, INVAL, 0, "\"burst\" is not allowed" },

    /* gcra: 0 <= burst <= 10^9, (burst + 1) * T <= 10^15 us. */
    { GCRA, 10, 1, 0, 1, OK, 0, NULL },
    { GCRA, 10, 1, 7, 1, OK, 7, NULL },
    { GCRA, 10, 1, 99, 0, OK, 0, NULL },            /* unset: default */
    { GCRA, 1000000, 1, 1000000000, 1, OK, 1000000000, NULL },
    { GCRA, 1000000, 1, 1000000001, 1, RANGE, 0,
      "burst=1000000001 is out of range: burst must not exceed 1000000000" },
    { GCRA, 10, 1, UINT64_MAX, 1, RANGE, 0,
      "burst must not exceed 1000000000" },
    { GCRA, 1, 86400, 11573, 1, OK, 11573, NULL },  /* T = 86400 s */
    { GCRA, 1, 86400, 11574, 1, RANGE, 0,
      "burst=11574 is out of range for rate \"1r/d\": burst must not "
      "exceed 11573, as (burst + 1) * 86400000000 us" },
    { GCRA, 1, 3600, 277776, 1, OK, 277776, NULL },
    { GCRA, 1, 3600, 277777, 1, RANGE, 0, "must not exceed 277776" },
    /* T = ceil(60000000 / 7) = 8571429, not 8571428. */
    { GCRA, 7, 60, 116666659, 1, OK, 116666659, NULL },
    { GCRA, 7, 60, 116666660, 1, RANGE, 0,
      "burst must not exceed 116666659, as (burst + 1) * 8571429 us" },

    /* token_bucket: 1 <= C <= 10^9, C * period_us <= 2^52; default N. */
    { TB, 10, 1, 0, 0, OK, 10, NULL },
    { TB, 100, 60, 5, 0, OK, 100, NULL },           /* unset: default */
    { TB, 10, 1, 1, 1, OK, 1, NULL },
    { TB, 10, 1, 0, 1, RANGE, 0,
      "burst=0 is out of range: the capacity of algorithm=token_bucket "
      "must be at least 1" },
    { TB, 10, 1, 1000000000, 1, OK, 1000000000, NULL },
    { TB, 10, 1, 1000000001, 1, RANGE, 0,
      "burst=1000000001 is out of range: burst must not exceed 1000000000" },
    { TB, 10, 60, 75059993, 1, OK, 75059993, NULL },
    { TB, 10, 60, 75059994, 1, RANGE, 0,
      "burst=75059994 is out of range for rate \"10r/m\": burst must not "
      "exceed 75059993, as burst * 60000000 us (the period) must not "
      "exceed 2^52" },
    { TB, 52124, 86400, 0, 0, OK, 52124, NULL },
    { TB, 52125, 86400, 0, 0, RANGE, 0,
      "rate \"52125r/d\" is out of range for algorithm=token_bucket: "
      "the capacity (burst, N by default) must not exceed 52124" },
    { TB, 52125, 86400, 52124, 1, OK, 52124, NULL },
    { TB, 1000000, 1, 0, 0, OK, 1000000, NULL },

    /* fixed_window: no burst. */
    { FW, 10, 1, 0, 1, INVAL, 0,
      "\"burst\" is not allowed with algorithm=fixed_window" },
    { FW, 10, 1, 5, 0, OK, 0, NULL },               /* unset: 0 */

    /* sliding_window: no burst, N * period_us <= 2^52. */
    { SW, 10, 1, 3, 1, INVAL, 0,
      "\"burst\" is not allowed with algorithm=sliding_window" },
    { SW, 1000000, 1, 0, 0, OK, 0, NULL },
    { SW, 52124, 86400, 0, 0, OK, 0, NULL },
    { SW, 52125, 86400, 0, 0, RANGE, 0,
      "rate \"52125r/d\" is out of range for algorithm=sliding_window: "
      "N must not exceed 52124 for r/d" },
    { SW, 1250999, 3600, 0, 0, OK, 0, NULL },
    { SW, 1251000, 3600, 0, 0, RANGE, 0,
      "N must not exceed 1250999 for r/h" },
    { SW, 60000000, 60, 0, 0, OK, 0, NULL },

    /* sliding_log: no burst, N <= 10^6. */
    { SL, 10, 1, 0, 1, INVAL, 0,
      "\"burst\" is not allowed with algorithm=sliding_log" },
    { SL, 1000000, 60, 0, 0, OK, 0, NULL },
    { SL, 1000001, 60, 0, 0, RANGE, 0,
      "rate \"1000001r/m\" is out of range for algorithm=sliding_log: "
      "N must not exceed 1000000" },
};


static void
test_check_limit(void **state)
{
    char              err[512];
    size_t            i;
    rl_core_limit_t   limit, before;
    rl_core_status_e  rc;

    (void) state;

    for (i = 0; i < COUNT_OF(limit_cases); i++) {
        const limit_case_t  *c = &limit_cases[i];

        memset(&limit, 0, sizeof(limit));
        limit.algorithm = c->algorithm;
        limit.count = c->count;
        limit.period_s = c->period_s;
        limit.burst = c->burst;
        limit.burst_set = c->burst_set;
        before = limit;
        strcpy(err, "untouched");

        rc = rl_core_check_limit(&limit, err, sizeof(err));

        if (rc != c->status) {
            fail_msg("case %zu: status %d, expected %d: %s", i, (int) rc,
                     (int) c->status, err);
        }

        if (rc == RL_CORE_OK) {
            if (limit.burst != c->burst_after) {
                fail_msg("case %zu: burst %llu, expected %llu", i,
                         (unsigned long long) limit.burst,
                         (unsigned long long) c->burst_after);
            }

            assert_int_equal(limit.count, c->count);
            assert_int_equal(limit.period_s, c->period_s);
            assert_int_equal(limit.algorithm, c->algorithm);
            continue;
        }

        if (strstr(err, c->message) == NULL) {
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err,
                     c->message);
        }

        if (memcmp(&limit, &before, sizeof(limit)) != 0) {
            fail_msg("case %zu: limit changed on failure", i);
        }
    }
}


static void
test_check_limit_message_room(void **state)
{
    char              err[8];
    rl_core_limit_t   limit;

    (void) state;

    memset(&limit, 0, sizeof(limit));
    limit.algorithm = RL_CORE_ALG_GCRA;
    limit.count = 0;
    limit.period_s = 1;

    /* Truncated and terminated within errlen; no room at all is fine. */
    memset(err, 'x', sizeof(err));
    assert_int_equal(rl_core_check_limit(&limit, err, sizeof(err)),
                     RL_CORE_ERANGE);
    assert_string_equal(err, "rate \"0");

    assert_int_equal(rl_core_check_limit(&limit, NULL, 0), RL_CORE_ERANGE);
    assert_int_equal(rl_core_check_limit(NULL, err, sizeof(err)),
                     RL_CORE_EINVAL);
}


typedef struct {
    const char  *text;
    size_t       len;
    int          valid;
} name_case_t;


/* 64 bytes, every allowed kind. */
#define NAME64  "abcdefghijklmnopqrstuvwxyz" "ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
                "0123456789_-"


static const name_case_t  zone_name_cases[] = {
    { S("a"), 1 },
    { S("per_ip"), 1 },
    { S("per-key_2"), 1 },
    { S("Z9"), 1 },
    { S(NAME64), 1 },
    { S(NAME64 "x"), 0 },
    { S(""), 0 },
    { S("a b"), 0 },
    { S("a.b"), 0 },
    { S("a:b"), 0 },
    { S("a{b"), 0 },
    { S("a\"b"), 0 },
    { S("a\0b"), 0 },
    { S("caf\xc3\xa9"), 0 },
};


static const name_case_t  prefix_cases[] = {
    { S("rl"), 1 },
    { S("my:app"), 1 },
    { S("a.b-c_d/e"), 1 },
    { S("caf\xc3\xa9"), 1 },
    { S("~!@#$%^&*()[]"), 1 },
    { S(NAME64), 1 },
    { S(NAME64 "x"), 0 },
    { S(""), 0 },
    { S("a{b"), 0 },
    { S("a}b"), 0 },
    { S("{"), 0 },
    { S("a b"), 0 },
    { S("a\tb"), 0 },
    { S("a\rb"), 0 },
    { S("a\nb"), 0 },
    { S("a\0b"), 0 },
    { S("a\x7f"), 0 },
    { S("\x01"), 0 },
};


static void
check_names(const name_case_t *cases, size_t n,
    int (*valid)(const char *, size_t), const char *what)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (valid(cases[i].text, cases[i].len) != cases[i].valid) {
            fail_msg("%s case %zu \"%s\": expected %d", what, i,
                     cases[i].text, cases[i].valid);
        }
    }
}


/* The most units at once: the largest cost of a rate_limit. */
static void
test_limit_units(void **state)
{
    rl_core_limit_t  limit;

    (void) state;

    memset(&limit, 0, sizeof(limit));
    limit.count = 10;
    limit.period_s = 1;

    limit.algorithm = RL_CORE_ALG_GCRA;
    assert_int_equal(rl_core_check_limit(&limit, NULL, 0), RL_CORE_OK);
    assert_int_equal(rl_core_limit_units(&limit), 1);
    limit.burst = 4;
    limit.burst_set = 1;
    assert_int_equal(rl_core_check_limit(&limit, NULL, 0), RL_CORE_OK);
    assert_int_equal(rl_core_limit_units(&limit), 5);

    limit.algorithm = RL_CORE_ALG_TOKEN_BUCKET;
    assert_int_equal(rl_core_limit_units(&limit), 4);
    limit.burst = 0;
    limit.burst_set = 0;
    assert_int_equal(rl_core_check_limit(&limit, NULL, 0), RL_CORE_OK);
    assert_int_equal(rl_core_limit_units(&limit), 10);

    limit.burst = 0;
    limit.algorithm = RL_CORE_ALG_FIXED_WINDOW;
    assert_int_equal(rl_core_limit_units(&limit), 10);
    limit.algorithm = RL_CORE_ALG_SLIDING_LOG;
    assert_int_equal(rl_core_limit_units(&limit), 10);

    assert_int_equal(rl_core_limit_units(NULL), 0);
}


static void
test_zone_names(void **state)
{
    (void) state;

    check_names(zone_name_cases, COUNT_OF(zone_name_cases),
                rl_core_valid_zone_name, "zone name");
}


static void
test_prefixes(void **state)
{
    (void) state;

    check_names(prefix_cases, COUNT_OF(prefix_cases), rl_core_valid_prefix,
                "prefix");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse_rate),
        cmocka_unit_test(test_parse_algorithm),
        cmocka_unit_test(test_check_limit),
        cmocka_unit_test(test_check_limit_message_room),
        cmocka_unit_test(test_limit_units),
        cmocka_unit_test(test_zone_names),
        cmocka_unit_test(test_prefixes),
    };

    return cmocka_run_group_tests_name("limit", tests, NULL, NULL);
}
