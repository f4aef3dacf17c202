/*
 * The link's connection bookkeeping, driven without sockets: transitions,
 * the room max_pending leaves, the reconnect pace (handshake failures do
 * not reset it; an answered command does), the script loads after
 * NOSCRIPT, and the version check of the handshake.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rl_core.h"


#define COUNT_OF(a)  (sizeof(a) / sizeof((a)[0]))


static void
up(rl_core_conn_t *c)
{
    assert_int_equal(rl_core_conn_connect(c), RL_CORE_OK);
    assert_int_equal(rl_core_conn_connected(c), RL_CORE_OK);
    assert_int_equal(rl_core_conn_ready(c), RL_CORE_OK);
    assert_int_equal(c->state, RL_CORE_CONN_UP);
}


static void
test_transitions_in_order_only(void **state)
{
    rl_core_conn_t  c;

    (void) state;

    rl_core_conn_init(&c, 10);
    assert_int_equal(c.state, RL_CORE_CONN_DOWN);

    /* nothing skips a step */
    assert_int_equal(rl_core_conn_connected(&c), RL_CORE_EINVAL);
    assert_int_equal(rl_core_conn_ready(&c), RL_CORE_EINVAL);
    assert_int_equal(c.state, RL_CORE_CONN_DOWN);

    assert_int_equal(rl_core_conn_connect(&c), RL_CORE_OK);
    assert_int_equal(rl_core_conn_connect(&c), RL_CORE_EINVAL);
    assert_int_equal(rl_core_conn_ready(&c), RL_CORE_EINVAL);
    assert_int_equal(c.state, RL_CORE_CONN_CONNECTING);

    assert_int_equal(rl_core_conn_connected(&c), RL_CORE_OK);
    assert_int_equal(c.state, RL_CORE_CONN_HANDSHAKE);
    assert_int_equal(rl_core_conn_connected(&c), RL_CORE_EINVAL);

    assert_int_equal(rl_core_conn_ready(&c), RL_CORE_OK);
    assert_int_equal(c.state, RL_CORE_CONN_UP);

    (void) rl_core_conn_lost(&c);
    assert_int_equal(c.state, RL_CORE_CONN_DOWN);
}


static void
test_commands_wait_for_the_handshake(void **state)
{
    uint32_t        gen;
    rl_core_conn_t  c;

    (void) state;

    rl_core_conn_init(&c, 10);

    /* down: no queueing at all */
    assert_false(rl_core_conn_room(&c));
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_EINVAL);

    assert_int_equal(rl_core_conn_connect(&c), RL_CORE_OK);
    assert_true(rl_core_conn_room(&c));
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_OK);

    /* queued while connecting and during the handshake, never written */
    assert_false(rl_core_conn_write(&c, &gen));
    assert_int_equal(rl_core_conn_connected(&c), RL_CORE_OK);
    assert_false(rl_core_conn_write(&c, &gen));

    assert_int_equal(rl_core_conn_ready(&c), RL_CORE_OK);
    assert_true(rl_core_conn_write(&c, &gen));
    assert_int_equal(c.waiting, 0);
    assert_int_equal(c.sent, 1);

    /* nothing left to write */
    assert_false(rl_core_conn_write(&c, &gen));
}


static void
test_max_pending_counts_waiting_and_sent(void **state)
{
    uint32_t        i, gen;
    rl_core_conn_t  c;

    (void) state;

    rl_core_conn_init(&c, 3);
    up(&c);

    for (i = 0; i < 3; i++) {
        assert_int_equal(rl_core_conn_queue(&c), RL_CORE_OK);
    }

    assert_false(rl_core_conn_room(&c));
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_ERANGE);

    /* written commands still hold their room until answered */
    assert_true(rl_core_conn_write(&c, &gen));
    assert_true(rl_core_conn_write(&c, &gen));
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_ERANGE);

    rl_core_conn_replied(&c, 1);
    assert_true(rl_core_conn_room(&c));
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_OK);
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_ERANGE);

    /* a command taken back before it was written frees its room too */
    rl_core_conn_unqueue(&c);
    assert_int_equal(c.waiting, 1);
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_OK);
    assert_int_equal(c.waiting + c.sent, 3);
}


static void
test_handshake_failures_back_off_to_the_cap(void **state)
{
    size_t          i;
    uint32_t        gen;
    rl_core_conn_t  c;

    static const uint64_t  pace[] = {
        0, 100, 200, 400, 800, 1600, 2000, 2000, 2000
    };

    (void) state;

    rl_core_conn_init(&c, 10);

    /* a replica: every handshake fails, the pace slows to the cap */
    for (i = 0; i < COUNT_OF(pace); i++) {
        assert_int_equal(rl_core_conn_connect(&c), RL_CORE_OK);
        assert_int_equal(rl_core_conn_connected(&c), RL_CORE_OK);
        assert_int_equal(rl_core_conn_lost(&c), pace[i]);
    }

    /* a handshake that succeeds is not enough to reset it */
    up(&c);
    assert_int_equal(rl_core_conn_lost(&c), 2000);

    /* a connection lost with its command does not reset it either */
    up(&c);
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_OK);
    assert_true(rl_core_conn_write(&c, &gen));
    rl_core_conn_replied(&c, 0);
    assert_int_equal(rl_core_conn_lost(&c), 2000);

    /* an answered command does: the next drop is retried at once */
    up(&c);
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_OK);
    assert_true(rl_core_conn_write(&c, &gen));
    rl_core_conn_replied(&c, 1);
    assert_int_equal(rl_core_conn_lost(&c), 0);
    assert_int_equal(c.failures, 1);
}


static void
test_noscript_loads_once_per_flush(void **state)
{
    uint32_t        i, gen[4], g;
    rl_core_conn_t  c;

    (void) state;

    rl_core_conn_init(&c, 10);
    up(&c);

    for (i = 0; i < 4; i++) {
        assert_int_equal(rl_core_conn_queue(&c), RL_CORE_OK);
        assert_true(rl_core_conn_write(&c, &gen[i]));
        assert_int_equal(gen[i], 0);
    }

    /* a flush: the four written before it all get NOSCRIPT */
    assert_true(rl_core_conn_resend(&c, &gen[0]));
    assert_int_equal(gen[0], 1);

    for (i = 1; i < 4; i++) {
        assert_false(rl_core_conn_resend(&c, &gen[i]));
        assert_int_equal(gen[i], 1);
    }

    assert_int_equal(c.sent, 4);
    assert_int_equal(c.script_gen, 1);

    /* a second flush after the load: the resent ones need a new load */
    assert_true(rl_core_conn_resend(&c, &gen[2]));
    assert_int_equal(gen[2], 2);
    assert_false(rl_core_conn_resend(&c, &gen[3]));

    /* a command written after the load carries the new generation */
    assert_int_equal(rl_core_conn_queue(&c), RL_CORE_OK);
    assert_true(rl_core_conn_write(&c, &g));
    assert_int_equal(g, 2);

    /* a new connection starts from generation 0 */
    (void) rl_core_conn_lost(&c);
    up(&c);
    assert_int_equal(c.script_gen, 0);
}


typedef struct {
    const char  *info;
    int          ok;
    unsigned     major, minor, patch;
    int          supported;
} version_case_t;


static const version_case_t  version_cases[] = {
    { "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n",
      1, 7, 0, 15, 1 },
    { "redis_version:5.0.0\r\n", 1, 5, 0, 0, 1 },
    { "# Server\r\nredis_version:4.0.14\r\n", 1, 4, 0, 14, 0 },
    { "# Server\r\nredis_version:3.2.12\r\n", 1, 3, 2, 12, 0 },
    /* Valkey 8 reports the Redis version it forked from */
    { "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\n"
      "valkey_version:8.1.1\r\n", 1, 7, 2, 4, 1 },
    { "# Server\nredis_version:8.0.2\n", 1, 8, 0, 2, 1 },
    { "redis_version:6\r\n", 1, 6, 0, 0, 1 },
    /* not at the start of a line: another field's name */
    { "# Server\r\nxredis_version:9.0.0\r\n", 0, 0, 0, 0, 0 },
    { "# Server\r\nredis_version:\r\n", 0, 0, 0, 0, 0 },
    { "# Server\r\nredis_version:7.x\r\n", 0, 0, 0, 0, 0 },
    { "# Server\r\nredis_version:99999999.0.0\r\n", 0, 0, 0, 0, 0 },
    { "", 0, 0, 0, 0, 0 },
};


static void
test_redis_version(void **state)
{
    size_t             i;
    rl_core_version_t  v;

    (void) state;

    for (i = 0; i < COUNT_OF(version_cases); i++) {
        const version_case_t  *t = &version_cases[i];

        memset(&v, 0, sizeof(v));

        if (!t->ok) {
            assert_int_equal(rl_core_redis_version(t->info, strlen(t->info),
                                                   &v),
                             RL_CORE_EINVAL);
            continue;
        }

        assert_int_equal(rl_core_redis_version(t->info, strlen(t->info), &v),
                         RL_CORE_OK);
        assert_int_equal(v.major, t->major);
        assert_int_equal(v.minor, t->minor);
        assert_int_equal(v.patch, t->patch);
        assert_int_equal(rl_core_redis_version_supported(&v), t->supported);
    }

    assert_int_equal(rl_core_redis_version(NULL, 0, &v), RL_CORE_EINVAL);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_transitions_in_order_only),
        cmocka_unit_test(test_commands_wait_for_the_handshake),
        cmocka_unit_test(test_max_pending_counts_waiting_and_sent),
        cmocka_unit_test(test_handshake_failures_back_off_to_the_cap),
        cmocka_unit_test(test_noscript_loads_once_per_flush),
        cmocka_unit_test(test_redis_version),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
