/*
 * SHA-1 against known vectors, and the embedded script against the SHA-1
 * the build computed for it (sha1sum at build time, the core at run time:
 * they must agree, or EVALSHA would name a script Redis never loaded).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rl_core_test.h"


#define COUNT_OF(a)  (sizeof(a) / sizeof((a)[0]))


typedef struct {
    const char  *text;
    const char  *sha1;
} text_case_t;


static const text_case_t  text_cases[] = {
    { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
    { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
    { "The quick brown fox jumps over the lazy dog",
      "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12" },
};


/* Lengths around the padding's edges, of bytes (i * 7 + 3) mod 256. */
typedef struct {
    size_t       len;
    const char  *sha1;
} length_case_t;


static const length_case_t  length_cases[] = {
    { 55, "ddf57317ef34bfee3b6df83d359098930eb278bc" },
    { 56, "a0d492bb0fc889d0eca3bc137066ab6f4f74f369" },
    { 57, "11a02dcf95859677a62e75024067c22b165d890f" },
    { 63, "c55856749bef509bdfe6bfebfc7bf4e793e82132" },
    { 64, "bede92be29c3874e1b54ddc77988d606fc857a8e" },
    { 65, "b05a80522b053d6dc7e0a517d0e70212c7dad11f" },
    { 119, "504e27376a6e0f0dba8295b85cb25dc4dfa17d23" },
    { 120, "82134b02fb3f702491be9bed581eeab59334acb2" },
    { 128, "a09133e6730ffe899efb70204cb5646cd5dc24ee" },
    { 129, "808aea332ce367541d37adae7f94e59c5c1a934e" },
};


static void
test_sha1_text(void **state)
{
    char    out[41];
    size_t  i;

    (void) state;

    for (i = 0; i < COUNT_OF(text_cases); i++) {
        memset(out, 'x', sizeof(out));
        rl_core_sha1_hex(text_cases[i].text, strlen(text_cases[i].text),
                         out);
        assert_string_equal(out, text_cases[i].sha1);
    }

    /* No data at all. */
    rl_core_sha1_hex(NULL, 0, out);
    assert_string_equal(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}


static void
test_sha1_lengths(void **state)
{
    char           out[41];
    size_t         i, j;
    unsigned char  data[256];

    (void) state;

    for (j = 0; j < sizeof(data); j++) {
        data[j] = (unsigned char) ((j * 7 + 3) % 256);
    }

    for (i = 0; i < COUNT_OF(length_cases); i++) {
        rl_core_sha1_hex(data, length_cases[i].len, out);

        if (strcmp(out, length_cases[i].sha1) != 0) {
            fail_msg("%zu bytes: %s, expected %s", length_cases[i].len, out,
                     length_cases[i].sha1);
        }
    }
}


static void
test_sha1_million(void **state)
{
    char   out[41];
    char  *a;

    (void) state;

    a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    rl_core_sha1_hex(a, 1000000, out);
    free(a);

    assert_string_equal(out, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}


static void
test_script_sha1(void **state)
{
    char         out[41];
    size_t       len, i;
    const char  *script, *sha;

    (void) state;

    script = rl_core_script(&len);
    sha = rl_core_script_sha1();

    assert_non_null(script);
    assert_true(len > 0);
    assert_int_equal(strlen(script), len);
    assert_int_equal(strlen(sha), 40);

    for (i = 0; i < 40; i++) {
        assert_non_null(strchr("0123456789abcdef", sha[i]));
    }

    rl_core_sha1_hex(script, len, out);
    assert_string_equal(out, sha);

    /* The length is optional. */
    assert_ptr_equal(rl_core_script(NULL), script);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_sha1_text),
        cmocka_unit_test(test_sha1_lengths),
        cmocka_unit_test(test_sha1_million),
        cmocka_unit_test(test_script_sha1),
    };

    return cmocka_run_group_tests_name("sha1", tests, NULL, NULL);
}
