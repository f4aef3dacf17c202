/*
 * What comes back from Redis: the script's reply (good shapes accepted,
 * each kind of bad one refused), error replies by class, and the verdict
 * over the answered zones with its tie rules.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rl_core.h"


#define COUNT_OF(a)  (sizeof(a) / sizeof((a)[0]))
#define S(s)  s, sizeof(s) - 1


/* One zone's six integers, good or bad. */

typedef struct {
    const char  *what;
    int64_t      v[6];
    int          good;
} zone_reply_case_t;


static const zone_reply_case_t  zone_reply_cases[] = {
    { "allowed, some left", { 1, 10, 9, 1000, 0, 0 }, 1 },
    { "allowed, the last one", { 1, 10, 0, 6000, 100, 0 }, 1 },
    { "rejected", { 0, 10, 0, 6000, 100, 0 }, 1 },
    { "fresh", { 1, 1, 1, 0, 0, 0 }, 1 },
    { "limit 1 used", { 1, 1, 0, 60000, 60000, 0 }, 1 },
    { "largest values", { 1, INT64_MAX, INT64_MAX, INT64_MAX, 0, 0 }, 1 },
    { "largest wait", { 0, 1, 0, INT64_MAX, INT64_MAX, 0 }, 1 },

    { "allowed 2", { 2, 10, 9, 1000, 0, 0 }, 0 },
    { "allowed -1", { -1, 10, 9, 1000, 0, 0 }, 0 },
    { "limit 0", { 1, 0, 0, 1000, 10, 0 }, 0 },
    { "limit -1", { 1, -1, 0, 1000, 10, 0 }, 0 },
    { "remaining -1", { 1, 10, -1, 1000, 10, 0 }, 0 },
    { "remaining above limit", { 1, 10, 11, 1000, 0, 0 }, 0 },
    { "reset -1", { 1, 10, 9, -1, 0, 0 }, 0 },
    { "retry -1", { 0, 10, 0, 1000, -1, 0 }, 0 },
    { "nothing left, no wait", { 1, 10, 0, 1000, 0, 0 }, 0 },
    { "rejected, no wait", { 0, 10, 0, 1000, 0, 0 }, 0 },
    { "some left, a wait", { 1, 10, 3, 1000, 10, 0 }, 0 },
    { "rejected with some left (a cost above them)",
      { 0, 10, 3, 1000, 0, 0 }, 1 },
    { "rejected with some left and a wait", { 0, 10, 3, 1000, 10, 0 }, 0 },
    { "smallest values", { INT64_MIN, INT64_MIN, INT64_MIN, INT64_MIN,
                           INT64_MIN, INT64_MIN }, 0 },
    { "delay -1", { 1, 10, 9, 1000, 0, -1 }, 0 },
    { "delayed admission", { 1, 10, 0, 1000, 100, 300 }, 1 },
    { "rejected with a delay", { 0, 10, 0, 1000, 100, 300 }, 0 },
};


static void
test_decode_zone(void **state)
{
    size_t                  i;
    rl_core_status_e        rc;
    rl_core_zone_result_t   out;

    (void) state;

    for (i = 0; i < COUNT_OF(zone_reply_cases); i++) {
        const zone_reply_case_t  *c = &zone_reply_cases[i];

        rc = rl_core_decode_reply(c->v, 6, 1, &out);

        if (rc != (c->good ? RL_CORE_OK : RL_CORE_EREPLY)) {
            fail_msg("%s: status %d", c->what, (int) rc);
        }

        if (c->good) {
            assert_int_equal(out.allowed, c->v[0]);
            assert_int_equal(out.limit, c->v[1]);
            assert_int_equal(out.remaining, c->v[2]);
            assert_int_equal(out.reset_after_ms, c->v[3]);
            assert_int_equal(out.retry_after_ms, c->v[4]);
            assert_int_equal(out.delay_ms, c->v[5]);
        }
    }
}


/* The shape: exactly six integers per zone. */

typedef struct {
    const char        *what;
    size_t             n;
    size_t             nzones;
    rl_core_status_e   status;
} shape_case_t;


static const shape_case_t  shape_cases[] = {
    { "one zone", 6, 1, RL_CORE_OK },
    { "three zones", 18, 3, RL_CORE_OK },
    { "empty", 0, 1, RL_CORE_EREPLY },
    { "one short", 5, 1, RL_CORE_EREPLY },
    { "one more", 7, 1, RL_CORE_EREPLY },
    { "two zones' worth for one", 12, 1, RL_CORE_EREPLY },
    { "one zone's worth for two", 6, 2, RL_CORE_EREPLY },
    { "one short of three", 17, 3, RL_CORE_EREPLY },
    { "a count that wraps", 6, SIZE_MAX / 6 + 2, RL_CORE_EREPLY },
    { "no zone asked", 0, 0, RL_CORE_EINVAL },
};


static void
test_decode_shape(void **state)
{
    size_t                  i, j;
    int64_t                 values[24];
    rl_core_status_e        rc;
    rl_core_zone_result_t   out[4];

    (void) state;

    for (j = 0; j < COUNT_OF(values); j += 6) {
        values[j] = 1;
        values[j + 1] = 10;
        values[j + 2] = 5;
        values[j + 3] = 500;
        values[j + 4] = 0;
        values[j + 5] = 0;
    }

    for (i = 0; i < COUNT_OF(shape_cases); i++) {
        const shape_case_t  *c = &shape_cases[i];

        rc = rl_core_decode_reply(values, c->n, c->nzones, out);

        if (rc != c->status) {
            fail_msg("%s: status %d, expected %d", c->what, (int) rc,
                     (int) c->status);
        }
    }

    assert_int_equal(rl_core_decode_reply(NULL, 6, 1, out),
                     RL_CORE_EREPLY);
}


static void
test_decode_zones(void **state)
{
    int64_t                 values[18] = {
        1, 100, 20, 12000, 0, 0,
        0, 10, 0, 1000, 250, 0,
        1, 5, 5, 0, 0, 0,
    };
    rl_core_zone_result_t   out[3];

    (void) state;

    assert_int_equal(rl_core_decode_reply(values, 18, 3, out), RL_CORE_OK);
    assert_int_equal(out[0].remaining, 20);
    assert_int_equal(out[1].allowed, 0);
    assert_int_equal(out[1].retry_after_ms, 250);
    assert_int_equal(out[2].limit, 5);

    /* One bad zone spoils the reply, wherever it is. */
    values[14] = 6;
    assert_int_equal(rl_core_decode_reply(values, 18, 3, out),
                     RL_CORE_EREPLY);
    values[14] = 5;
    values[6] = 3;
    assert_int_equal(rl_core_decode_reply(values, 18, 3, out),
                     RL_CORE_EREPLY);
}


/* Error replies, by their first word. */

typedef struct {
    const char             *msg;
    size_t                  len;
    rl_core_redis_error_e   class;
} error_case_t;


#define NOSCRIPT   RL_CORE_REDIS_ERR_NOSCRIPT
#define RECONNECT  RL_CORE_REDIS_ERR_RECONNECT
#define REQUEST    RL_CORE_REDIS_ERR_REQUEST


static const error_case_t  error_cases[] = {
    { S("NOSCRIPT No matching script. Please use EVAL."), NOSCRIPT },
    { S("NOSCRIPT"), NOSCRIPT },
    { S("NOAUTH Authentication required."), RECONNECT },
    { S("NOAUTH"), RECONNECT },
    { S("WRONGPASS invalid username-password pair or user is disabled."),
      RECONNECT },
    { S("READONLY You can't write against a read only replica."),
      RECONNECT },
    { S("LOADING Redis is loading the dataset in memory"), RECONNECT },
    { S("MASTERDOWN Link with MASTER is down and replica-serve-stale-data "
        "is set to 'no'."), RECONNECT },
    { S("BUSY Redis is busy running a script. You can only call "
        "SCRIPT KILL or SHUTDOWN NOSAVE."), REQUEST },
    { S("OOM command not allowed when used memory > 'maxmemory'."),
      REQUEST },
    { S("ERR Error running script (call to f_0123): @user_script:1: "
        "user_script:1: attempt to compare nil with number"), REQUEST },
    { S("ERR rate_limit: zone 1: bad number"), REQUEST },
    { S("ERR unknown command 'EVALSHA'"), REQUEST },
    { S("WRONGTYPE Operation against a key holding the wrong kind of "
        "value"), REQUEST },
    { S(""), REQUEST },
    { S(" NOSCRIPT"), REQUEST },
    { S("noscript No matching script."), REQUEST },
    { S("NOSCRIPTS"), REQUEST },
    { S("NOSCRIP"), REQUEST },
    { S("LOADINGX now"), REQUEST },
    { S("READONLY\0 hidden"), REQUEST },
    { "NOAUTH Authentication required.", 6, RECONNECT },
    { "NOSCRIPT No matching script.", 5, REQUEST },
};


static void
test_classify_error(void **state)
{
    size_t                  i;
    rl_core_redis_error_e   class;

    (void) state;

    for (i = 0; i < COUNT_OF(error_cases); i++) {
        const error_case_t  *c = &error_cases[i];

        class = rl_core_classify_error(c->msg, c->len);

        if (class != c->class) {
            fail_msg("\"%.*s\": class %d, expected %d", (int) c->len,
                     c->msg, (int) class, (int) c->class);
        }
    }

    assert_int_equal(rl_core_classify_error(NULL, 0), REQUEST);
}


/* The verdict. */

#define ZONES_MAX  4

typedef struct {
    const char              *what;
    size_t                   n;
    rl_core_zone_result_t    r[ZONES_MAX];   /* allowed limit rem reset retry */
    unsigned char            answered[ZONES_MAX];
    rl_core_status_e         status;
    int                      rejected;
    size_t                   tightest;
    int64_t                  retry_after_s;
} verdict_case_t;


static const verdict_case_t  verdict_cases[] = {
    { "one zone passes", 1,
      { { 1, 10, 9, 1000, 0, 0 } }, { 1 },
      RL_CORE_OK, 0, 0, 0 },
    { "least remaining", 3,
      { { 1, 10, 5, 1000, 0, 0 }, { 1, 10, 3, 1000, 0, 0 },
        { 1, 10, 4, 1000, 0, 0 } }, { 1, 1, 1 },
      RL_CORE_OK, 0, 1, 0 },
    { "equal remaining, all pass: the first", 2,
      { { 1, 10, 3, 9000, 0, 0 }, { 1, 20, 3, 1000, 0, 0 } }, { 1, 1 },
      RL_CORE_OK, 0, 0, 0 },
    { "equal remaining: the rejecting zone", 2,
      { { 1, 10, 0, 5000, 5000, 0 }, { 0, 10, 0, 1500, 1500, 0 } }, { 1, 1 },
      RL_CORE_OK, 1, 1, 2 },
    { "rejecting zones: the longest wait", 3,
      { { 0, 10, 0, 1200, 1200, 0 }, { 0, 10, 0, 3001, 3001, 0 },
        { 0, 10, 0, 2000, 2000, 0 } }, { 1, 1, 1 },
      RL_CORE_OK, 1, 1, 4 },
    { "rejecting zones, equal waits: the first", 2,
      { { 0, 10, 0, 7000, 2000, 0 }, { 0, 10, 0, 9000, 2000, 0 } }, { 1, 1 },
      RL_CORE_OK, 1, 0, 2 },
    { "Retry-After rounds up", 1,
      { { 0, 10, 0, 1, 1, 0 } }, { 1 },
      RL_CORE_OK, 1, 0, 1 },
    { "Retry-After is at least 1", 1,
      { { 0, 10, 0, 0, 0, 0 } }, { 1 },
      RL_CORE_OK, 1, 0, 1 },
    { "Retry-After: whole seconds are not rounded", 2,
      { { 0, 10, 0, 999, 999, 0 }, { 0, 10, 0, 1000, 1000, 0 } }, { 1, 1 },
      RL_CORE_OK, 1, 1, 1 },
    { "Retry-After: the largest over rejecting zones only", 2,
      { { 1, 10, 0, 9000, 9000, 0 }, { 0, 10, 0, 2500, 2500, 0 } }, { 1, 1 },
      RL_CORE_OK, 1, 1, 3 },
    { "zones not asked are left out", 3,
      { { 0, 10, 0, 9000, 9000, 0 }, { 1, 10, 7, 100, 0, 0 },
        { 1, 10, 2, 100, 0, 0 } }, { 0, 1, 0 },
      RL_CORE_OK, 0, 1, 0 },
    { "a zone not asked does not win ties", 2,
      { { 0, 10, 0, 9000, 9000, 0 }, { 1, 10, 0, 100, 100, 0 } }, { 0, 1 },
      RL_CORE_OK, 0, 1, 0 },
    { "no zone answered", 2,
      { { 0, 10, 0, 9000, 9000, 0 }, { 1, 10, 0, 100, 100, 0 } }, { 0, 0 },
      RL_CORE_EINVAL, 0, 0, 0 },
    { "no zone at all", 0,
      { { 1, 10, 9, 1000, 0, 0 } }, { 1 },
      RL_CORE_EINVAL, 0, 0, 0 },
};


static void
test_verdict(void **state)
{
    size_t              i;
    rl_core_status_e    rc;
    rl_core_verdict_t   v;

    (void) state;

    for (i = 0; i < COUNT_OF(verdict_cases); i++) {
        const verdict_case_t  *c = &verdict_cases[i];

        memset(&v, 0xa5, sizeof(v));
        rc = rl_core_verdict(c->r, c->answered, c->n, &v);

        if (rc != c->status) {
            fail_msg("%s: status %d", c->what, (int) rc);
        }

        if (rc != RL_CORE_OK) {
            continue;
        }

        if (v.rejected != c->rejected || v.tightest != c->tightest
            || v.retry_after_s != c->retry_after_s)
        {
            fail_msg("%s: rejected %d tightest %zu retry %lld", c->what,
                     v.rejected, v.tightest, (long long) v.retry_after_s);
        }
    }
}


static void
test_verdict_all_answered(void **state)
{
    rl_core_zone_result_t   r[2] = {
        { 1, 10, 4, 1000, 0, 0 },
        { 0, 10, 0, 61000, 60001, 0 },
    };
    rl_core_verdict_t       v;

    (void) state;

    /* No answered array: every zone answered. */
    assert_int_equal(rl_core_verdict(r, NULL, 2, &v), RL_CORE_OK);
    assert_int_equal(v.rejected, 1);
    assert_int_equal(v.tightest, 1);
    assert_int_equal(v.retry_after_s, 61);

    assert_int_equal(rl_core_verdict(r, NULL, 2, NULL), RL_CORE_EINVAL);
    assert_int_equal(rl_core_verdict(NULL, NULL, 2, &v), RL_CORE_EINVAL);
}


static void
test_ceil_seconds(void **state)
{
    static const int64_t  cases[][2] = {
        { INT64_MIN, 0 },
        { -1000, 0 },
        { -1, 0 },
        { 0, 0 },
        { 1, 1 },
        { 999, 1 },
        { 1000, 1 },
        { 1001, 2 },
        { 59999, 60 },
        { 60000, 60 },
        { INT64_MAX, INT64_MAX / 1000 + 1 },
    };
    size_t  i;

    (void) state;

    for (i = 0; i < COUNT_OF(cases); i++) {
        if (rl_core_ceil_seconds(cases[i][0]) != cases[i][1]) {
            fail_msg("ceil(%lld / 1000) = %lld", (long long) cases[i][0],
                     (long long) rl_core_ceil_seconds(cases[i][0]));
        }
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_decode_zone),
        cmocka_unit_test(test_decode_shape),
        cmocka_unit_test(test_decode_zones),
        cmocka_unit_test(test_classify_error),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_verdict_all_answered),
        cmocka_unit_test(test_ceil_seconds),
    };

    return cmocka_run_group_tests_name("reply", tests, NULL, NULL);
}
