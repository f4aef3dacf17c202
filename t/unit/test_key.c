/*
 * Redis keys and the script command: client key hashing, the keys of
 * every algorithm (window candidates included, across window and digit
 * boundaries), the command's RESP layout and the exactness of its sizing.
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

#define GCRA  RL_CORE_ALG_GCRA
#define TB    RL_CORE_ALG_TOKEN_BUCKET
#define FW    RL_CORE_ALG_FIXED_WINDOW
#define SW    RL_CORE_ALG_SLIDING_WINDOW
#define SL    RL_CORE_ALG_SLIDING_LOG


/*
 * A command built into memory the test owns and checks, and its RESP
 * read back into arguments (pointers into buf).
 */
typedef struct {
    size_t        argc;
    size_t        bytes;        /* rl_core_request_size() */
    size_t        len;          /* what rl_core_request_build() wrote */
    const char  **argv;
    size_t       *argvlen;
    char         *buf;
} command_t;


static rl_core_limit_t
make_limit(rl_core_algorithm_e alg, uint64_t count, uint64_t period_s)
{
    rl_core_limit_t  limit;

    memset(&limit, 0, sizeof(limit));
    limit.algorithm = alg;
    limit.count = count;
    limit.period_s = period_s;
    assert_int_equal(rl_core_check_limit(&limit, NULL, 0), RL_CORE_OK);

    return limit;
}


static rl_core_zone_request_t
make_zone(const char *prefix, const char *zone, const char *key,
    size_t key_len, const rl_core_limit_t *limit)
{
    rl_core_zone_request_t  z;

    z.prefix = prefix;
    z.prefix_len = strlen(prefix);
    z.zone = zone;
    z.zone_len = strlen(zone);
    z.key = key;
    z.key_len = key_len;
    z.limit = limit;
    z.cost = RL_CORE_COST_DEFAULT;

    return z;
}


/* Reads a decimal ended by "\r\n" at *p; advances *p past it. */
static size_t
read_number(const char **p, const char *end)
{
    size_t  n = 0;

    assert_true(*p < end && **p >= '0' && **p <= '9');

    while (*p < end && **p >= '0' && **p <= '9') {
        n = n * 10 + (size_t) (**p - '0');
        (*p)++;
    }

    assert_true(end - *p >= 2);
    assert_memory_equal(*p, "\r\n", 2);
    *p += 2;

    return n;
}


/*
 * The RESP array in buf, read the way a server reads it: "*" ARGC, then
 * ARGC bulk strings "$" LEN "\r\n" BYTES "\r\n", ending exactly at len.
 */
static void
parse(command_t *cmd)
{
    size_t       i;
    const char  *p, *end;

    p = cmd->buf;
    end = cmd->buf + cmd->len;

    assert_true(p < end && *p == '*');
    p++;
    cmd->argc = read_number(&p, end);
    assert_true(cmd->argc >= 3);

    cmd->argv = calloc(cmd->argc + 1, sizeof(char *));
    cmd->argvlen = calloc(cmd->argc + 1, sizeof(size_t));
    assert_non_null(cmd->argv);
    assert_non_null(cmd->argvlen);

    for (i = 0; i < cmd->argc; i++) {
        assert_true(p < end && *p == '$');
        p++;
        cmd->argvlen[i] = read_number(&p, end);
        assert_true((size_t) (end - p) >= cmd->argvlen[i] + 2);
        cmd->argv[i] = p;
        p += cmd->argvlen[i];
        assert_memory_equal(p, "\r\n", 2);
        p += 2;
    }

    assert_ptr_equal(p, end);
}


/*
 * Sizes and builds into a buffer of exactly the size asked for, guarded
 * by canaries, and checks what must hold of every command: nothing
 * written outside, a well-formed RESP array, EVALSHA and the embedded
 * script's SHA-1; then that one byte short of what it wrote is refused
 * and nothing is written.
 */
static void
build_mode(command_t *cmd, const rl_core_zone_request_t *zones, size_t n,
    rl_core_mode_e mode, const char *lease, uint64_t now_ms)
{
    size_t   i, len, lease_len;
    char    *mem;

    lease_len = lease ? strlen(lease) : 0;

    assert_int_equal(rl_core_request_size(zones, n, lease_len, &cmd->bytes),
                     RL_CORE_OK);

    mem = malloc(cmd->bytes + 32);
    assert_non_null(mem);
    memset(mem, '~', cmd->bytes + 32);
    cmd->buf = mem + 16;

    assert_int_equal(rl_core_request_build(zones, n, mode, lease, lease_len,
                                           now_ms, cmd->buf, cmd->bytes,
                                           &cmd->len),
                     RL_CORE_OK);
    assert_true(cmd->len <= cmd->bytes);

    for (i = 0; i < 16; i++) {
        assert_int_equal(mem[i], '~');
    }

    for (i = cmd->len; i < cmd->bytes + 16; i++) {
        assert_int_equal(cmd->buf[i], '~');
    }

    parse(cmd);

    assert_int_equal(cmd->argvlen[0], 7);
    assert_memory_equal(cmd->argv[0], "EVALSHA", 7);
    assert_int_equal(cmd->argvlen[1], 40);
    assert_memory_equal(cmd->argv[1], rl_core_script_sha1(), 40);

    /* the exact need suffices; one byte short is refused */
    mem = malloc(cmd->len + 16);
    assert_non_null(mem);
    memset(mem, '~', cmd->len + 16);

    assert_int_equal(rl_core_request_build(zones, n, mode, lease, lease_len,
                                           now_ms, mem, cmd->len, &len),
                     RL_CORE_OK);
    assert_int_equal(len, cmd->len);
    assert_memory_equal(mem, cmd->buf, len);
    assert_int_equal(mem[len], '~');

    memset(mem, '~', cmd->len + 16);
    assert_int_equal(rl_core_request_build(zones, n, mode, lease, lease_len,
                                           now_ms, mem, cmd->len - 1, &len),
                     RL_CORE_EINVAL);
    assert_int_equal(mem[0], '~');

    free(mem);
}


/* The command of a request's check, as the access phase sends it. */
static void
build(command_t *cmd, const rl_core_zone_request_t *zones, size_t n,
    uint64_t now_ms)
{
    build_mode(cmd, zones, n, RL_CORE_MODE_CHECK, NULL, now_ms);
}


static void
command_free(command_t *cmd)
{
    free(cmd->buf - 16);
    free(cmd->argv);
    free(cmd->argvlen);
}


/* Decimal digits of n. */
static size_t
digits(size_t n)
{
    size_t  d = 1;

    while (n >= 10) {
        n /= 10;
        d++;
    }

    return d;
}


/*
 * What rl_core_request_size() counts beyond what was written when no
 * window number is involved: every bulk string's length at 20 digits,
 * and the mode (ARGV[2], after numkeys keys and now_us) at 7 bytes, its
 * widest.
 */
static size_t
length_slack(const command_t *cmd)
{
    size_t  i, slack = 0, numkeys;

    for (i = 0; i < cmd->argc; i++) {
        slack += 20 - digits(cmd->argvlen[i]);
    }

    numkeys = (size_t) atoi(cmd->argv[2]);
    slack += 7 - cmd->argvlen[3 + numkeys + 1];

    return slack;
}


static void
assert_arg(const command_t *cmd, size_t i, const char *s, size_t len)
{
    assert_true(i < cmd->argc);

    if (cmd->argvlen[i] != len || memcmp(cmd->argv[i], s, len) != 0) {
        fail_msg("argv[%zu] is \"%.*s\", expected \"%.*s\"", i,
                 (int) cmd->argvlen[i], cmd->argv[i], (int) len, s);
    }
}


static void
assert_arg_str(const command_t *cmd, size_t i, const char *s)
{
    assert_arg(cmd, i, s, strlen(s));
}


/* Client keys. */

static void
test_client_key(void **state)
{
    char         key[300], hashed[RL_CORE_HASHED_KEY_LEN], sha[41];
    size_t       len, out_len;
    const char  *out;

    (void) state;

    for (len = 0; len < sizeof(key); len++) {
        key[len] = (char) ('a' + len % 26);
    }

    /* Up to 128 bytes: the key itself, not copied. */
    for (len = 1; len <= RL_CORE_CLIENT_KEY_MAX; len++) {
        rl_core_client_key(key, len, hashed, &out, &out_len);
        assert_ptr_equal(out, key);
        assert_int_equal(out_len, len);
    }

    /* Without a buffer a short key is still itself; a long one NULL. */
    rl_core_client_key(key, RL_CORE_CLIENT_KEY_MAX, NULL, &out, &out_len);
    assert_ptr_equal(out, key);
    assert_int_equal(out_len, RL_CORE_CLIENT_KEY_MAX);
    rl_core_client_key(key, RL_CORE_CLIENT_KEY_MAX + 1, NULL, &out,
                       &out_len);
    assert_null(out);
    assert_int_equal(out_len, 0);

    /* 129 bytes and more: "#" and the SHA-1 in lowercase hex. */
    for (len = RL_CORE_CLIENT_KEY_MAX + 1; len < sizeof(key); len += 57) {
        rl_core_client_key(key, len, hashed, &out, &out_len);
        rl_core_sha1_hex(key, len, sha);
        assert_ptr_equal(out, hashed);
        assert_int_equal(out_len, RL_CORE_HASHED_KEY_LEN);
        assert_int_equal(out[0], '#');
        assert_memory_equal(out + 1, sha, 40);
    }
}


typedef struct {
    const char  *key;
    size_t       len;
    int          kept;
} client_case_t;


static const client_case_t  client_cases[] = {
    { S("a"), 1 },
    { S("\x7f\x00\x00\x01"), 1 },
    { S("\0"), 1 },
    { S("a\0b\r\n{}:\"\\ \xff"), 1 },
    { S("}{"), 1 },
    { S("a#"), 1 },
    { S("#"), 0 },
    { S("#0123456789abcdef0123456789abcdef01234567"), 0 },
};


static void
test_client_key_bytes(void **state)
{
    char         hashed[RL_CORE_HASHED_KEY_LEN], sha[41];
    size_t       i, out_len;
    const char  *out;

    (void) state;

    for (i = 0; i < COUNT_OF(client_cases); i++) {
        const client_case_t  *c = &client_cases[i];

        rl_core_client_key(c->key, c->len, hashed, &out, &out_len);

        if (c->kept) {
            assert_ptr_equal(out, c->key);
            assert_int_equal(out_len, c->len);
            continue;
        }

        rl_core_sha1_hex(c->key, c->len, sha);
        assert_int_equal(out_len, RL_CORE_HASHED_KEY_LEN);
        assert_int_equal(out[0], '#');
        assert_memory_equal(out + 1, sha, 40);
    }
}


/*
 * No genuine key can name a hashed one: a client that sends "#" and the
 * SHA-1 of a long key gets a Redis key of its own.
 */
static void
test_client_key_no_collision(void **state)
{
    char                     key[200], hashed[RL_CORE_HASHED_KEY_LEN];
    char                     again[RL_CORE_HASHED_KEY_LEN];
    size_t                   out_len, out2_len;
    const char              *out, *out2;
    command_t                cmd1, cmd2;
    rl_core_limit_t          limit;
    rl_core_zone_request_t   zone;

    (void) state;

    memset(key, 'q', sizeof(key));

    rl_core_client_key(key, sizeof(key), hashed, &out, &out_len);
    rl_core_client_key(out, out_len, again, &out2, &out2_len);
    assert_ptr_equal(out2, again);
    assert_int_equal(out2_len, RL_CORE_HASHED_KEY_LEN);
    assert_memory_not_equal(out2, out, RL_CORE_HASHED_KEY_LEN);

    limit = make_limit(GCRA, 10, 1);

    zone = make_zone("rl", "z", key, sizeof(key), &limit);
    build(&cmd1, &zone, 1, 0);

    zone = make_zone("rl", "z", out, out_len, &limit);
    build(&cmd2, &zone, 1, 0);

    assert_true(cmd1.argvlen[3] != cmd2.argvlen[3]
                || memcmp(cmd1.argv[3], cmd2.argv[3], cmd1.argvlen[3]) != 0);

    command_free(&cmd1);
    command_free(&cmd2);
}


static void
test_zone_key_count(void **state)
{
    (void) state;

    assert_int_equal(rl_core_zone_key_count(GCRA), 1);
    assert_int_equal(rl_core_zone_key_count(TB), 1);
    assert_int_equal(rl_core_zone_key_count(FW), 3);
    assert_int_equal(rl_core_zone_key_count(SW), 4);
    assert_int_equal(rl_core_zone_key_count(SL), 1);
    assert_int_equal(rl_core_zone_key_count((rl_core_algorithm_e) 7), 0);
    assert_true(rl_core_zone_key_count(SW) <= RL_CORE_ZONE_KEYS_MAX);
}


/* The keys of one zone. */

typedef struct {
    rl_core_algorithm_e   alg;
    uint64_t              count;
    uint64_t              period_s;
    uint64_t              now_ms;
    const char           *prefix;
    const char           *zone;
    const char           *key;
    size_t                key_len;
    const char           *keys[RL_CORE_ZONE_KEYS_MAX];
} key_case_t;


static const key_case_t  key_cases[] = {
    { GCRA, 10, 1, 1700000000123ULL, "rl", "per_ip", S("1.2.3.4"),
      { "rl:{per_ip:1.2.3.4}:g" } },
    { TB, 10, 1, 0, "rl", "z", S("k"),
      { "rl:{z:k}:tb" } },
    { SL, 10, 60, 0, "app:rl", "login", S("user"),
      { "app:rl:{login:user}:sl" } },

    /* r/s windows: W = floor(now_ms / 1000). */
    { FW, 10, 1, 1700000000000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:1699999999", "rl:{z:k}:fw:1700000000",
        "rl:{z:k}:fw:1700000001" } },
    { FW, 10, 1, 1699999999999ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:1699999998", "rl:{z:k}:fw:1699999999",
        "rl:{z:k}:fw:1700000000" } },
    { SW, 10, 1, 1700000000000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:sw:1699999998", "rl:{z:k}:sw:1699999999",
        "rl:{z:k}:sw:1700000000", "rl:{z:k}:sw:1700000001" } },
    { SW, 10, 1, 1699999999999ULL, "rl", "z", S("k"),
      { "rl:{z:k}:sw:1699999997", "rl:{z:k}:sw:1699999998",
        "rl:{z:k}:sw:1699999999", "rl:{z:k}:sw:1700000000" } },

    /* r/m and r/d windows, on both sides of a boundary. */
    { FW, 10, 60, 60000ULL * 28333334, "rl", "z", S("k"),
      { "rl:{z:k}:fw:28333333", "rl:{z:k}:fw:28333334",
        "rl:{z:k}:fw:28333335" } },
    { FW, 10, 60, 60000ULL * 28333334 - 1, "rl", "z", S("k"),
      { "rl:{z:k}:fw:28333332", "rl:{z:k}:fw:28333333",
        "rl:{z:k}:fw:28333334" } },
    { SW, 10, 86400, 86400000ULL * 19675, "rl", "z", S("k"),
      { "rl:{z:k}:sw:19673", "rl:{z:k}:sw:19674", "rl:{z:k}:sw:19675",
        "rl:{z:k}:sw:19676" } },
    { SW, 10, 86400, 86400000ULL * 19675 - 1, "rl", "z", S("k"),
      { "rl:{z:k}:sw:19672", "rl:{z:k}:sw:19673", "rl:{z:k}:sw:19674",
        "rl:{z:k}:sw:19675" } },
    { FW, 10, 3600, 3600000ULL * 471666 + 1, "rl", "z", S("k"),
      { "rl:{z:k}:fw:471665", "rl:{z:k}:fw:471666",
        "rl:{z:k}:fw:471667" } },

    /* Calendar windows of fixed_window: weeks from Monday 1970-01-05. */
    { FW, 10, 604800, 1699833600000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:2809", "rl:{z:k}:fw:2810", "rl:{z:k}:fw:2811" } },
    { FW, 10, 604800, 1699833599999ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:2808", "rl:{z:k}:fw:2809", "rl:{z:k}:fw:2810" } },
    { FW, 10, 604800, 0, "rl", "z", S("k"),
      { "rl:{z:k}:fw:-2", "rl:{z:k}:fw:-1", "rl:{z:k}:fw:0" } },
    { FW, 10, 604800, 4 * 86400000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:-1", "rl:{z:k}:fw:0", "rl:{z:k}:fw:1" } },
    /* ... but sliding_window's weeks from the epoch (a Thursday) */
    { SW, 10, 604800, 1699833600000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:sw:2808", "rl:{z:k}:sw:2809", "rl:{z:k}:sw:2810",
        "rl:{z:k}:sw:2811" } },
    /* Months since 1970-01, UTC: the end of February 2024 (a leap year),
       March, the end of 2023 and the new year. */
    { FW, 10, 2592000, 1709251199999ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:648", "rl:{z:k}:fw:649", "rl:{z:k}:fw:650" } },
    { FW, 10, 2592000, 1709251200000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:649", "rl:{z:k}:fw:650", "rl:{z:k}:fw:651" } },
    { FW, 10, 2592000, 1704067199999ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:646", "rl:{z:k}:fw:647", "rl:{z:k}:fw:648" } },
    { FW, 10, 2592000, 1704067200000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:647", "rl:{z:k}:fw:648", "rl:{z:k}:fw:649" } },
    { FW, 10, 2592000, 0, "rl", "z", S("k"),
      { "rl:{z:k}:fw:-1", "rl:{z:k}:fw:0", "rl:{z:k}:fw:1" } },
    /* 2000-02-29 (divisible by 400) and 2100-03-01 (not a leap year) */
    { FW, 10, 2592000, 951868799000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:360", "rl:{z:k}:fw:361", "rl:{z:k}:fw:362" } },
    { FW, 10, 2592000, 4107542400000ULL, "rl", "z", S("k"),
      { "rl:{z:k}:fw:1561", "rl:{z:k}:fw:1562", "rl:{z:k}:fw:1563" } },

    /* Window numbers that change their digit count. */
    { FW, 10, 1, 99999, "rl", "z", S("k"),
      { "rl:{z:k}:fw:98", "rl:{z:k}:fw:99", "rl:{z:k}:fw:100" } },
    { SW, 10, 1, 100000, "rl", "z", S("k"),
      { "rl:{z:k}:sw:98", "rl:{z:k}:sw:99", "rl:{z:k}:sw:100",
        "rl:{z:k}:sw:101" } },
    /* The epoch itself: windows before it are negative and never match. */
    { SW, 10, 1, 0, "rl", "z", S("k"),
      { "rl:{z:k}:sw:-2", "rl:{z:k}:sw:-1", "rl:{z:k}:sw:0",
        "rl:{z:k}:sw:1" } },
    { FW, 10, 1, UINT64_MAX, "rl", "z", S("k"),
      { "rl:{z:k}:fw:18446744073709550", "rl:{z:k}:fw:18446744073709551",
        "rl:{z:k}:fw:18446744073709552" } },
};


static void
test_zone_keys(void **state)
{
    size_t                   i, k, nkeys;
    command_t                cmd;
    rl_core_limit_t          limit;
    rl_core_zone_request_t   zone;

    (void) state;

    for (i = 0; i < COUNT_OF(key_cases); i++) {
        const key_case_t  *c = &key_cases[i];

        limit = make_limit(c->alg, c->count, c->period_s);
        zone = make_zone(c->prefix, c->zone, c->key, c->key_len, &limit);
        build(&cmd, &zone, 1, c->now_ms);

        nkeys = rl_core_zone_key_count(c->alg);
        assert_int_equal(cmd.argc, 3 + nkeys + 4 + 7);

        for (k = 0; k < nkeys; k++) {
            assert_arg_str(&cmd, 3 + k, c->keys[k]);
        }

        command_free(&cmd);
    }
}


static void
test_binary_and_long_keys(void **state)
{
    static const char        binary[] = "a\0b\r\n{x}:\"\\ \xff";
    char                     key[129], hashed[RL_CORE_HASHED_KEY_LEN];
    char                     expect[200];
    size_t                   n, out_len;
    const char              *out;
    command_t                cmd;
    rl_core_limit_t          limit;
    rl_core_zone_request_t   zone;

    (void) state;

    limit = make_limit(GCRA, 10, 1);

    /* Every byte of the client key reaches Redis as it is. */
    zone = make_zone("rl", "z", binary, sizeof(binary) - 1, &limit);
    build(&cmd, &zone, 1, 0);
    memcpy(expect, "rl:{z:", 6);
    memcpy(expect + 6, binary, sizeof(binary) - 1);
    memcpy(expect + 6 + sizeof(binary) - 1, "}:g", 3);
    assert_arg(&cmd, 3, expect, 6 + sizeof(binary) - 1 + 3);
    command_free(&cmd);

    /* A 129-byte key is replaced by its hash. */
    memset(key, 'k', sizeof(key));
    zone = make_zone("rl", "z", key, sizeof(key), &limit);
    build(&cmd, &zone, 1, 0);
    rl_core_client_key(key, sizeof(key), hashed, &out, &out_len);
    n = (size_t) snprintf(expect, sizeof(expect), "rl:{z:%.*s}:g",
                          (int) out_len, out);
    assert_arg(&cmd, 3, expect, n);
    assert_int_equal(cmd.len + length_slack(&cmd), cmd.bytes);
    command_free(&cmd);
}


/* The whole command. */

static void
test_command_layout(void **state)
{
    command_t                cmd;
    rl_core_limit_t          per_key, per_ip, bucket;
    rl_core_zone_request_t   zones[3];

    (void) state;

    per_key = make_limit(GCRA, 100, 60);
    per_key.burst = 20;
    per_key.burst_set = 1;
    assert_int_equal(rl_core_check_limit(&per_key, NULL, 0), RL_CORE_OK);
    per_ip = make_limit(SW, 10, 1);
    bucket = make_limit(TB, 5, 3600);

    zones[0] = make_zone("rl", "per_key", "secret", 6, &per_key);
    zones[1] = make_zone("rl", "per_ip", "\x0a\x00\x00\x01", 4, &per_ip);
    zones[2] = make_zone("x", "b", "c", 1, &bucket);

    build(&cmd, zones, 3, 1700000000500ULL);

    assert_int_equal(cmd.argc, 3 + 6 + 4 + 21);
    assert_arg_str(&cmd, 2, "6");
    assert_arg_str(&cmd, 3, "rl:{per_key:secret}:g");
    assert_arg(&cmd, 4, S("rl:{per_ip:\x0a\x00\x00\x01}:sw:1699999998"));
    assert_arg(&cmd, 5, S("rl:{per_ip:\x0a\x00\x00\x01}:sw:1699999999"));
    assert_arg(&cmd, 6, S("rl:{per_ip:\x0a\x00\x00\x01}:sw:1700000000"));
    assert_arg(&cmd, 7, S("rl:{per_ip:\x0a\x00\x00\x01}:sw:1700000001"));
    assert_arg_str(&cmd, 8, "x:{b:c}:tb");
    assert_arg_str(&cmd, 9, "0");
    assert_arg_str(&cmd, 10, "check");
    assert_arg_str(&cmd, 11, "");
    assert_arg_str(&cmd, 12, "3");

    assert_arg_str(&cmd, 13, "gcra");
    assert_arg_str(&cmd, 14, "100");
    assert_arg_str(&cmd, 15, "60000000");
    assert_arg_str(&cmd, 16, "20");
    assert_arg_str(&cmd, 17, "1");
    assert_arg_str(&cmd, 18, "1");
    /* no delay=: the burst, nothing waits */
    assert_arg_str(&cmd, 19, "20");

    assert_arg_str(&cmd, 20, "sliding_window");
    assert_arg_str(&cmd, 21, "10");
    assert_arg_str(&cmd, 22, "1000000");
    assert_arg_str(&cmd, 23, "0");
    assert_arg_str(&cmd, 24, "1");
    assert_arg_str(&cmd, 25, "4");
    assert_arg_str(&cmd, 26, "0");

    /* token_bucket's burst argument is the capacity, N by default. */
    assert_arg_str(&cmd, 27, "token_bucket");
    assert_arg_str(&cmd, 28, "5");
    assert_arg_str(&cmd, 29, "3600000000");
    assert_arg_str(&cmd, 30, "5");
    assert_arg_str(&cmd, 31, "1");
    assert_arg_str(&cmd, 32, "1");
    assert_arg_str(&cmd, 33, "0");

    command_free(&cmd);
}


typedef struct {
    rl_core_algorithm_e   alg;
    uint64_t              count;
    uint64_t              period_s;
    uint64_t              burst;
    int                   burst_set;
    uint64_t              delay;
    int                   delay_set;
    const char           *name;
    const char           *args[5];     /* N period_us burst nkeys delay */
} args_case_t;


static const args_case_t  args_cases[] = {
    { GCRA, 1, 1, 0, 0, 0, 0, "gcra", { "1", "1000000", "0", "1", "0" } },
    { GCRA, 1000000000, 86400, 1000000000, 1, 0, 0, "gcra",
      { "1000000000", "86400000000", "1000000000", "1", "1000000000" } },
    /* delay=: the excess that passes at once; delay=burst is the default */
    { GCRA, 10, 1, 5, 1, 1, 1, "gcra", { "10", "1000000", "5", "1", "1" } },
    { GCRA, 10, 1, 5, 1, 0, 1, "gcra", { "10", "1000000", "5", "1", "0" } },
    { GCRA, 10, 1, 5, 1, 5, 1, "gcra", { "10", "1000000", "5", "1", "5" } },
    { GCRA, 1000000000, 86400, 1000000000, 1, 999999999, 1, "gcra",
      { "1000000000", "86400000000", "1000000000", "1", "999999999" } },
    /* unchecked above the burst: the burst, never a bad argument */
    { GCRA, 10, 1, 5, 1, 6, 1, "gcra", { "10", "1000000", "5", "1", "5" } },
    { TB, 100, 60, 7, 1, 0, 0, "token_bucket",
      { "100", "60000000", "7", "1", "0" } },
    { TB, 100, 60, 0, 0, 0, 0, "token_bucket",
      { "100", "60000000", "100", "1", "0" } },
    /* only gcra delays */
    { TB, 100, 60, 7, 1, 3, 1, "token_bucket",
      { "100", "60000000", "7", "1", "0" } },
    { FW, 30, 3600, 0, 0, 0, 0, "fixed_window",
      { "30", "3600000000", "0", "3", "0" } },
    { SW, 30, 60, 0, 0, 0, 0, "sliding_window",
      { "30", "60000000", "0", "4", "0" } },
    { SL, 1000000, 86400, 0, 0, 0, 0, "sliding_log",
      { "1000000", "86400000000", "0", "1", "0" } },
};


static void
test_command_zone_args(void **state)
{
    size_t                   i, k, base;
    command_t                cmd;
    rl_core_limit_t          limit;
    rl_core_zone_request_t   zone;

    (void) state;

    for (i = 0; i < COUNT_OF(args_cases); i++) {
        const args_case_t  *c = &args_cases[i];

        memset(&limit, 0, sizeof(limit));
        limit.algorithm = c->alg;
        limit.count = c->count;
        limit.period_s = c->period_s;
        limit.burst = c->burst;
        limit.burst_set = c->burst_set;
        assert_int_equal(rl_core_check_limit(&limit, NULL, 0), RL_CORE_OK);
        limit.delay = c->delay;
        limit.delay_set = c->delay_set;

        zone = make_zone("rl", "z", "k", 1, &limit);
        build(&cmd, &zone, 1, 1700000000000ULL);

        base = 3 + rl_core_zone_key_count(c->alg);
        assert_arg_str(&cmd, 2, c->args[3]);
        assert_arg_str(&cmd, base, "0");
        assert_arg_str(&cmd, base + 1, "check");
        assert_arg_str(&cmd, base + 2, "");
        assert_arg_str(&cmd, base + 3, "1");
        assert_arg_str(&cmd, base + 4, c->name);

        for (k = 0; k < 3; k++) {
            assert_arg_str(&cmd, base + 5 + k, c->args[k]);
        }

        /* the cost, nkeys, then the delay, the last argument */
        assert_arg_str(&cmd, base + 8, "1");
        assert_arg_str(&cmd, base + 9, c->args[3]);
        assert_arg_str(&cmd, base + 10, c->args[4]);
        assert_int_equal(cmd.argc, base + 11);

        command_free(&cmd);
    }
}


/*
 * Sizing: exact for everything but widths, which are counted at their
 * widest (20 digits) since the size does not know the clock: every bulk
 * string's length, and the window numbers; the build needs exactly what
 * it writes, not a byte more (build() checks that).
 */
static void
test_command_sizing(void **state)
{
    size_t                   i, n, slack, k;
    uint64_t                 now[] = { 0, 999, 99999, 1700000000000ULL,
                                       UINT64_MAX };
    char                     big[1000];
    command_t                cmd;
    rl_core_limit_t          limits[5];
    rl_core_zone_request_t   zones[5];

    (void) state;

    limits[0] = make_limit(GCRA, 10, 1);
    limits[1] = make_limit(TB, 10, 60);
    limits[2] = make_limit(FW, 10, 3600);
    limits[3] = make_limit(SW, 10, 86400);
    limits[4] = make_limit(SL, 10, 1);

    for (i = 0; i < 5; i++) {
        zones[i] = make_zone("prefix", "zone_name", "client-key", 10,
                             &limits[i]);
    }

    /* No window algorithm: exact but for the lengths. */
    for (n = 1; n <= 2; n++) {
        build(&cmd, zones, n, 1700000000000ULL);
        assert_int_equal(cmd.len + length_slack(&cmd), cmd.bytes);
        command_free(&cmd);
    }

    build(&cmd, &zones[4], 1, 0);
    assert_int_equal(cmd.len + length_slack(&cmd), cmd.bytes);
    command_free(&cmd);

    /* Window algorithms: also the unused width of each window. */
    for (i = 0; i < COUNT_OF(now); i++) {
        build(&cmd, zones, 5, now[i]);

        slack = length_slack(&cmd);

        /* The 10 keys: after "}", ":g", ":tb", ":fw:W" ... */
        for (k = 3; k < 3 + 10; k++) {
            const char  *brace = memchr(cmd.argv[k], '}', cmd.argvlen[k]);
            size_t       tail = cmd.argvlen[k]
                                - (size_t) (brace - cmd.argv[k]);

            /* "}:fw:" and the window number, counted as 20 bytes */
            if (tail > 5) {
                slack += 20 - (tail - 5);
            }
        }

        assert_int_equal(cmd.len + slack, cmd.bytes);

        command_free(&cmd);
    }

    /* The hashed form of a long key is sized, not the key. */
    memset(big, 'x', sizeof(big));
    zones[0].key = big;
    zones[0].key_len = sizeof(big);
    build(&cmd, zones, 1, 0);
    assert_int_equal(cmd.len + length_slack(&cmd), cmd.bytes);
    /* "prefix:{zone_name:" HASH "}:g" */
    assert_int_equal(cmd.argvlen[3], 18 + RL_CORE_HASHED_KEY_LEN + 3);
    command_free(&cmd);
}


static void
test_command_errors(void **state)
{
    char                     buf[1024];
    size_t                   bytes, len;
    rl_core_limit_t          limit, bad;
    rl_core_zone_request_t   zone, z;

    (void) state;

    limit = make_limit(GCRA, 10, 1);
    zone = make_zone("rl", "z", "k", 1, &limit);

    assert_int_equal(rl_core_request_size(&zone, 0, 0, &bytes),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_size(NULL, 1, 0, &bytes),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_build(&zone, 0, RL_CORE_MODE_CHECK,
                                           NULL, 0, 0, buf, sizeof(buf),
                                           &len), RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_build(NULL, 1, RL_CORE_MODE_CHECK,
                                           NULL, 0, 0, buf, sizeof(buf),
                                           &len), RL_CORE_EINVAL);

    z = zone;
    z.key_len = 0;
    assert_int_equal(rl_core_request_size(&z, 1, 0, &bytes), RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_build(&z, 1, RL_CORE_MODE_CHECK,
                                           NULL, 0, 0, buf, sizeof(buf),
                                           &len), RL_CORE_EINVAL);

    z = zone;
    z.limit = NULL;
    assert_int_equal(rl_core_request_size(&z, 1, 0, &bytes), RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_build(&z, 1, RL_CORE_MODE_CHECK,
                                           NULL, 0, 0, buf, sizeof(buf),
                                           &len), RL_CORE_EINVAL);

    bad = limit;
    bad.algorithm = (rl_core_algorithm_e) 9;
    z = zone;
    z.limit = &bad;
    assert_int_equal(rl_core_request_size(&z, 1, 0, &bytes), RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_build(&z, 1, RL_CORE_MODE_CHECK,
                                           NULL, 0, 0, buf, sizeof(buf),
                                           &len), RL_CORE_EINVAL);

    /* a prefix or zone name longer than its bound */
    memset(buf, 'p', RL_CORE_PREFIX_MAX + 1);
    z = zone;
    z.prefix = buf;
    z.prefix_len = RL_CORE_PREFIX_MAX + 1;
    assert_int_equal(rl_core_request_size(&z, 1, 0, &bytes), RL_CORE_EINVAL);
    z = zone;
    z.zone = buf;
    z.zone_len = RL_CORE_ZONE_NAME_MAX + 1;
    assert_int_equal(rl_core_request_size(&z, 1, 0, &bytes), RL_CORE_EINVAL);

    /* a cost above 2^53, an unknown mode, a lease too long or missing */
    z = zone;
    z.cost = RL_CORE_COST_MAX + 1;
    assert_int_equal(rl_core_request_size(&z, 1, 0, &bytes), RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_build(&z, 1, RL_CORE_MODE_CHECK, NULL,
                                           0, 0, buf, sizeof(buf), &len),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_build(&zone, 1,
                                           (rl_core_mode_e) RL_CORE_MODE_COUNT,
                                           NULL, 0, 0, buf, sizeof(buf),
                                           &len),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_size(&zone, 1, RL_CORE_LEASE_MAX + 1,
                                          &bytes), RL_CORE_EINVAL);
    memset(buf, 'l', RL_CORE_LEASE_MAX + 1);
    assert_int_equal(rl_core_request_build(&zone, 1, RL_CORE_MODE_CHECK,
                                           buf + 512, RL_CORE_LEASE_MAX + 1,
                                           0, buf, 512, &len),
                     RL_CORE_EINVAL);
    assert_int_equal(rl_core_request_build(&zone, 1, RL_CORE_MODE_CHECK,
                                           NULL, 1, 0, buf, sizeof(buf),
                                           &len),
                     RL_CORE_EINVAL);

    assert_int_equal(rl_core_request_size(&zone, 1, 0, &bytes), RL_CORE_OK);
    assert_int_equal(rl_core_request_build(&zone, 1, RL_CORE_MODE_CHECK,
                                           NULL, 0, 0, NULL, bytes, &len),
                     RL_CORE_EINVAL);
}


/*
 * Script ABI v2: the mode and the lease member follow now_us, and every
 * zone sends its cost before nkeys.
 */
static void
test_command_modes(void **state)
{
    size_t                   i;
    command_t                cmd;
    rl_core_limit_t          limit;
    rl_core_zone_request_t   zones[2];

    static const struct {
        rl_core_mode_e   mode;
        const char      *name;
    } modes[] = {
        { RL_CORE_MODE_CHECK, "check" },
        { RL_CORE_MODE_CHARGE, "charge" },
        { RL_CORE_MODE_REFUND, "refund" },
        { RL_CORE_MODE_RELEASE, "release" },
        { RL_CORE_MODE_RENEW, "renew" },
    };

    (void) state;

    limit = make_limit(GCRA, 10, 1);
    zones[0] = make_zone("rl", "a", "k", 1, &limit);
    zones[1] = make_zone("rl", "b", "k", 1, &limit);
    zones[0].cost = 0;
    zones[1].cost = RL_CORE_COST_MAX;

    for (i = 0; i < COUNT_OF(modes); i++) {
        build_mode(&cmd, zones, 2, modes[i].mode, "lease-1:7", 0);

        assert_int_equal(cmd.argc, 3 + 2 + 4 + 14);
        assert_arg_str(&cmd, 5, "0");
        assert_arg_str(&cmd, 6, modes[i].name);
        assert_arg_str(&cmd, 7, "lease-1:7");
        assert_arg_str(&cmd, 8, "2");
        assert_arg_str(&cmd, 13, "0");
        assert_arg_str(&cmd, 14, "1");
        assert_arg_str(&cmd, 15, "0");
        assert_arg_str(&cmd, 20, "9007199254740992");
        assert_arg_str(&cmd, 21, "1");
        assert_arg_str(&cmd, 22, "0");
        /* sized for the longest mode, exact for the lease */
        assert_int_equal(cmd.len + length_slack(&cmd), cmd.bytes);

        command_free(&cmd);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_client_key),
        cmocka_unit_test(test_client_key_bytes),
        cmocka_unit_test(test_client_key_no_collision),
        cmocka_unit_test(test_zone_key_count),
        cmocka_unit_test(test_zone_keys),
        cmocka_unit_test(test_binary_and_long_keys),
        cmocka_unit_test(test_command_layout),
        cmocka_unit_test(test_command_zone_args),
        cmocka_unit_test(test_command_sizing),
        cmocka_unit_test(test_command_errors),
        cmocka_unit_test(test_command_modes),
    };

    return cmocka_run_group_tests_name("key", tests, NULL, NULL);
}
