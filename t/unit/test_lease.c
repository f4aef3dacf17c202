/*
 * The renew and release commands of concurrency leases
 * (rl_core_lease_size/build): exact RESP, exact sizing, refusals.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rl_core_test.h"


static const rl_core_limit_t  cc30 = { 3, 30, 0, 0, RL_CORE_ALG_CONCURRENCY,
                                       0, 0 };
static const rl_core_limit_t  gcra = { 3, 1, 0, 0, RL_CORE_ALG_GCRA, 0, 0 };

static rl_core_zone_request_t  zones[2] = {
    { "rl", 2, "dl", 2, "1.2.3.4", 7, &cc30, 0 },
    { "p", 1, "z", 1, "k", 1, &cc30, 0 },
};


static void
test_lease_command(void **state)
{
    char              buf[1024], want[1024];
    size_t            bytes, len;
    rl_core_lease_t   leases[2] = {
        { &zones[0], "m-1", 3 },
        { &zones[1], "m-22", 4 },
    };

    (void) state;

    snprintf(want, sizeof(want),
             "*23\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n2\r\n"
             "$18\r\nrl:{dl:1.2.3.4}:cc\r\n$10\r\np:{z:k}:cc\r\n"
             "$1\r\n0\r\n$5\r\nrenew\r\n$0\r\n\r\n$1\r\n2\r\n"
             "$11\r\nconcurrency\r\n$3\r\nm-1\r\n$8\r\n30000000\r\n"
             "$1\r\n0\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n0\r\n"
             "$11\r\nconcurrency\r\n$4\r\nm-22\r\n$8\r\n30000000\r\n"
             "$1\r\n0\r\n$1\r\n0\r\n$1\r\n1\r\n$1\r\n0\r\n",
             rl_core_script_sha1());

    assert_int_equal(rl_core_lease_size(leases, 2, &bytes), RL_CORE_OK);
    assert_int_equal(rl_core_lease_build(leases, 2, RL_CORE_MODE_RENEW, buf,
                                         sizeof(buf), &len), RL_CORE_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    assert_true(bytes >= len);
    assert_true(bytes <= len + 2);  /* "release" is two bytes longer */

    /* exactly the size is enough for release, a byte less is not */
    assert_int_equal(rl_core_lease_build(leases, 2, RL_CORE_MODE_RELEASE,
                                         buf, bytes, &len), RL_CORE_OK);
    assert_int_equal(len, bytes);
    assert_int_equal(rl_core_lease_build(leases, 2, RL_CORE_MODE_RELEASE,
                                         buf, bytes - 1, &len),
                     RL_CORE_EINVAL);
}


static void
test_lease_refusals(void **state)
{
    char                    buf[1024];
    size_t                  len;
    rl_core_zone_request_t  rate = zones[0];
    rl_core_lease_t         l = { &zones[0], "m", 1 };
    char                    longm[RL_CORE_LEASE_MAX + 1];

    (void) state;

    rate.limit = &gcra;
    memset(longm, 'x', sizeof(longm));

    assert_int_equal(rl_core_lease_build(&l, 1, RL_CORE_MODE_CHECK, buf,
                                         sizeof(buf), &len), RL_CORE_EINVAL);
    assert_int_equal(rl_core_lease_build(&l, 0, RL_CORE_MODE_RENEW, buf,
                                         sizeof(buf), &len), RL_CORE_EINVAL);

    l.member_len = 0;
    assert_int_equal(rl_core_lease_size(&l, 1, &len), RL_CORE_EINVAL);

    l.member = longm;
    l.member_len = sizeof(longm);
    assert_int_equal(rl_core_lease_size(&l, 1, &len), RL_CORE_EINVAL);

    l.member = "m";
    l.member_len = 1;
    l.zone = &rate;
    assert_int_equal(rl_core_lease_size(&l, 1, &len), RL_CORE_EINVAL);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_lease_command),
        cmocka_unit_test(test_lease_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
