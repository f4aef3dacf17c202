# Limits as a client sees them, against the real Redis: how many requests
# pass, the status and Retry-After of a rejection, every request of a
# keep-alive connection decided, rate_limit off and inherited lists, and
# each algorithm through the module.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(flush);

# Every block counts requests from a fresh Redis: a second round would
# start from the first one's counts.
repeat_each(1);

plan tests => repeat_each() * 298;

no_long_string();

# The requests of a block are pipelined on one keep-alive connection, and
# the error log is read whole: the runner checks it after every response,
# and a rejection's line is written only by a later request.
check_accum_error_log();

run_tests();

__DATA__

=== TEST 1: gcra 10r/m burst=2 admits exactly three, then 429 with Retry-After 6
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m burst=2;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 2\n!Retry-After",
 "X-RL: PASSED\nX-RateLimit-Remaining: 1\n!Retry-After",
 "X-RL: PASSED\nX-RateLimit-Remaining: 0\n!Retry-After",
 "X-RL: REJECTED\nX-RateLimit-Remaining: 0\nRetry-After: 6"]
--- error_log
limiting requests by zone "z", retry after 6 s, client: 127.0.0.1
--- no_error_log
[alert]



=== TEST 2: the default burst is 0: one request, then 429 with Retry-After 6 (10r/m)
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Limit: 1\nX-RateLimit-Remaining: 0\nX-RateLimit-Reset: 6\n!Retry-After",
 "X-RL: REJECTED\nX-RateLimit-Limit: 1\nX-RateLimit-Remaining: 0\nX-RateLimit-Reset: 6\nRetry-After: 6"]
--- error_log
limiting requests by zone "z", retry after 6 s, client: 127.0.0.1
--- no_error_log
[alert]



=== TEST 3: rejections after the first come from the deny cache, with the same answer
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/m;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 429, 429]
--- response_headers eval
["X-RL: PASSED\nRateLimit: \"z\";r=0;t=60\n!Retry-After",
 "X-RL: REJECTED\nRateLimit: \"z\";r=0;t=60\nRetry-After: 60",
 "X-RL: REJECTED\nRateLimit: \"z\";r=0;t=60\nRetry-After: 60"]
--- error_log eval
[qr/limiting requests by zone "z", retry after 60 s, client: /,
 qr/limiting requests by zone "z", retry after 60 s \(deny cache\), client: /]
--- no_error_log
[alert]



=== TEST 4: rate_limit_status 420 and 503 are the statuses of rejections
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$uri rate=1r/h;
--- config
    rate_limit z;

    location = /420 {
        rate_limit_status 420;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /503 {
        rate_limit_status 503;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /420", "GET /420", "GET /503", "GET /503"]
--- error_code eval
[200, 420, 200, 503]
--- response_headers eval
["X-RL: PASSED\n!Retry-After",
 "X-RL: REJECTED\nRetry-After: 3600",
 "X-RL: PASSED\n!Retry-After",
 "X-RL: REJECTED\nRetry-After: 3600"]
--- error_log eval
[qr/limiting requests by zone "z", retry after 3600 s, client: .*"GET \/420 /,
 qr/limiting requests by zone "z", retry after 3600 s, client: .*"GET \/503 /]
--- no_error_log
[alert]



=== TEST 5: requests on separate connections are decided alike
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=2r/m burst=1;
    rate_limit_log_level info;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- request eval
["GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 1",
 "X-RL: PASSED\nX-RateLimit-Remaining: 0",
 "X-RL: REJECTED\nRetry-After: 30"]
--- no_error_log
[error]
[alert]



=== TEST 6: rate_limit off in a location: never limited, no decision
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/h;
--- config
    rate_limit z;

    location = /on {
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }

    location = /off {
        rate_limit off;
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /on", "GET /off", "GET /on", "GET /off", "GET /off"]
--- error_code eval
[200, 200, 429, 200, 200]
--- response_headers eval
["X-RL: [PASSED]",
 "X-RL: []\n!RateLimit-Policy\n!Retry-After",
 "X-RL: [REJECTED]",
 "X-RL: []\n!RateLimit-Policy\n!Retry-After",
 "X-RL: []\n!RateLimit-Policy\n!Retry-After"]
--- error_log
limiting requests by zone "z", retry after 3600 s
--- no_error_log
[alert]



=== TEST 7: a server's rate_limit is inherited by its locations, which share the count
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/h burst=1;
--- config
    rate_limit z;

    location = /a {
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /b {
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /a", "GET /b", "GET /a"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 1",
 "X-RL: PASSED\nX-RateLimit-Remaining: 0",
 "X-RL: REJECTED\nRetry-After: 3600"]
--- error_log
limiting requests by zone "z", retry after 3600 s
--- no_error_log
[alert]



=== TEST 8: token_bucket: the capacity is N by default, then burst=
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone n key=$remote_addr rate=3r/h algorithm=token_bucket;
    rate_limit_zone b key=$remote_addr rate=3r/h burst=1 algorithm=token_bucket;
--- config
    location = /n {
        rate_limit n;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /b {
        rate_limit b;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /n", "GET /n", "GET /n", "GET /n", "GET /b", "GET /b"]
--- error_code eval
[200, 200, 200, 429, 200, 429]
--- response_headers eval
["X-RL: PASSED\nRateLimit-Policy: \"n\";q=3;w=3600\nX-RateLimit-Limit: 3\nX-RateLimit-Remaining: 2",
 "X-RL: PASSED\nRateLimit-Policy: \"n\";q=3;w=3600\nX-RateLimit-Limit: 3\nX-RateLimit-Remaining: 1",
 "X-RL: PASSED\nRateLimit-Policy: \"n\";q=3;w=3600\nX-RateLimit-Limit: 3\nX-RateLimit-Remaining: 0",
 "X-RL: REJECTED\nRateLimit-Policy: \"n\";q=3;w=3600\nX-RateLimit-Limit: 3\nX-RateLimit-Remaining: 0",
 "X-RL: PASSED\nRateLimit-Policy: \"b\";q=3;w=3600\nX-RateLimit-Limit: 1\nX-RateLimit-Remaining: 0",
 "X-RL: REJECTED\nRateLimit-Policy: \"b\";q=3;w=3600\nX-RateLimit-Limit: 1\nX-RateLimit-Remaining: 0"]
--- error_log eval
[qr/limiting requests by zone "n", retry after 1200 s, /,
 qr/limiting requests by zone "b", retry after 1200 s, /]
--- no_error_log
[alert]



=== TEST 9: fixed_window: N per window
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=3r/d algorithm=fixed_window;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers_like eval
["X-RL: ^PASSED\$\nX-RateLimit-Limit: ^3\$\nX-RateLimit-Remaining: ^2\$",
 "X-RL: ^PASSED\$\nX-RateLimit-Limit: ^3\$\nX-RateLimit-Remaining: ^1\$",
 "X-RL: ^PASSED\$\nX-RateLimit-Limit: ^3\$\nX-RateLimit-Remaining: ^0\$",
 "X-RL: ^REJECTED\$\nX-RateLimit-Limit: ^3\$\nX-RateLimit-Remaining: ^0\$\nRetry-After: ^[1-9][0-9]*\$"]
--- error_log
limiting requests by zone "z", retry after
--- no_error_log
[alert]



=== TEST 10: sliding_window: N per sliding period
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=3r/d algorithm=sliding_window;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers_like eval
["X-RL: ^PASSED\$\nX-RateLimit-Limit: ^3\$\nX-RateLimit-Remaining: ^2\$",
 "X-RL: ^PASSED\$\nX-RateLimit-Limit: ^3\$\nX-RateLimit-Remaining: ^1\$",
 "X-RL: ^PASSED\$\nX-RateLimit-Limit: ^3\$\nX-RateLimit-Remaining: ^0\$",
 "X-RL: ^REJECTED\$\nX-RateLimit-Limit: ^3\$\nX-RateLimit-Remaining: ^0\$\nRetry-After: ^[1-9][0-9]*\$"]
--- error_log
limiting requests by zone "z", retry after
--- no_error_log
[alert]



=== TEST 11: sliding_log: N in any period; Retry-After when the oldest leaves the log
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=3r/h algorithm=sliding_log;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Limit: 3\nX-RateLimit-Remaining: 2",
 "X-RL: PASSED\nX-RateLimit-Limit: 3\nX-RateLimit-Remaining: 1",
 "X-RL: PASSED\nX-RateLimit-Limit: 3\nX-RateLimit-Remaining: 0",
 "X-RL: REJECTED\nX-RateLimit-Limit: 3\nX-RateLimit-Remaining: 0\nRetry-After: 3600"]
--- error_log
limiting requests by zone "z", retry after 3600 s
--- no_error_log
[alert]



=== TEST 12: a wait under a second: Retry-After 1 and t=1 (10r/s: T = 100 ms)
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/s;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED\nRateLimit: \"z\";r=0;t=1\nX-RateLimit-Reset: 1",
 "X-RL: REJECTED\nRateLimit: \"z\";r=0;t=1\nRetry-After: 1"]
--- error_log
limiting requests by zone "z", retry after 1 s
--- no_error_log
[alert]



=== TEST 13: rejected requests with bodies on a keep-alive connection: the next request is read right
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/h;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }

    location = /backend {
        return 200 "backend $request_method $content_length\n";
    }

    location = /free {
        return 200 "free\n";
    }
--- init
main::flush();
--- pipelined_requests eval
["POST /t\n" . ('a' x 1000), "POST /t\n" . ('b' x 3000), "PUT /t\n" . ('c' x 10), "GET /free"]
--- error_code eval
[200, 429, 429, 200]
--- response_headers eval
["X-RL: PASSED", "X-RL: REJECTED\nRetry-After: 3600", "X-RL: REJECTED\nRetry-After: 3600", "!X-RL"]
--- response_body_like eval
["^backend POST 1000\$", "429 Too Many Requests", "429 Too Many Requests", "^free\$"]
--- error_log
limiting requests by zone "z", retry after 3600 s
--- no_error_log
[alert]
