# Two common setups, as NGINX configurations (the README's "Two common
# setups" shows the same): an API limited per user id from the query, 10
# requests per 60 s in fixed windows, answering 429 with a JSON error that
# says how many seconds to wait; and an API limited per client address with
# a token bucket of 10 tokens refilled over 60 s, answering a JSON message.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;

# Counts carry over between repetitions (same nginx, same Redis): each
# block's sequence is exact only once.
repeat_each(1);

# per request: status, one header line, body, and two no_error_log lines
# (checked after every request of a block)
plan tests => repeat_each() * (12 * 5 + 12 * 5);

no_long_string();

run_tests();

__DATA__

=== TEST 1: per user id, fixed window: 10 pass, the 11th gets a JSON wait
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone per_user key=$arg_user_id rate=10r/m algorithm=fixed_window;
--- config
    location /api/ {
        rate_limit per_user;
        add_header X-RL $rate_limit_status always;
        error_page 429 = @rate_limited;
        empty_gif;
    }

    location @rate_limited {
        default_type application/json;
        return 429 '{"error":"too many requests","retry_after_seconds":$rate_limit_retry_after}\n';
    }
--- init
Test::RateLimit::Redis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->cmd('FLUSHALL');
# stay clear of a window boundary: the run must fit in one minute's window
sleep 1 while time % 60 > 50;
--- request eval
[ (map { "GET /api/orders?user_id=42" } 1 .. 11), "GET /api/orders?user_id=43" ]
--- error_code eval
[ (200) x 10, 429, 200 ]
--- response_headers_like eval
[ (("X-RL: ^PASSED\$") x 10), "Retry-After: ^([1-9]|[1-5][0-9]|60)\$", "X-RL: ^PASSED\$" ]
--- response_body_like eval
[ (qr/^GIF89a/) x 10, qr/^\{"error":"too many requests","retry_after_seconds":([1-9]|[1-5][0-9]|60)\}\n\z/, qr/^GIF89a/ ]
--- no_error_log
[alert]
[crit]



=== TEST 2: per client address, token bucket of 10 refilled over 60 s
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone per_ip key=$binary_remote_addr rate=10r/m burst=10 algorithm=token_bucket;
--- config
    location /api/ {
        rate_limit per_ip;
        add_header X-RL $rate_limit_status always;
        error_page 429 = @rate_limited;
        empty_gif;
    }

    location @rate_limited {
        default_type application/json;
        return 429 '{"message":"rate limit exceeded, try again in $rate_limit_retry_after seconds"}\n';
    }
--- init
Test::RateLimit::Redis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->cmd('FLUSHALL');
--- request eval
[ map { "GET /api/items" } 1 .. 12 ]
--- error_code eval
[ (200) x 10, 429, 429 ]
--- response_headers_like eval
[ (("X-RL: ^PASSED\$") x 10), "Retry-After: ^[1-6]\$", "Retry-After: ^[1-6]\$" ]
--- response_body_like eval
[ (qr/^GIF89a/) x 10, qr/^\{"message":"rate limit exceeded, try again in [1-6] seconds"\}\n\z/, qr/try again in [1-6] seconds/ ]
--- no_error_log
[alert]
[crit]
