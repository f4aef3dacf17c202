# The module is loaded and decides: a configuration that uses its
# directives starts only with the module, and a limited request is passed
# by a Redis decision that shows in its fields and variables.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;

repeat_each(2);

plan tests => repeat_each() * (4 + 8);

no_long_string();

run_tests();

__DATA__

=== TEST 1: rate_limit_zone is a known directive: the configuration starts
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone sanity key=$remote_addr rate=1000r/s burst=1000;
--- config
    location = /t {
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }
--- init
Test::RateLimit::Redis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->cmd('FLUSHALL');
--- request
GET /t
--- error_code: 200
--- response_headers
X-RL: []
--- no_error_log
[error]
[alert]



=== TEST 2: a limited request is decided by Redis and carries the fields
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone sanity key=$remote_addr rate=1000r/s burst=1000;
--- config
    location = /t {
        rate_limit sanity;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
Test::RateLimit::Redis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->cmd('FLUSHALL');
--- request
GET /t
--- error_code: 200
--- response_headers_like
X-RL: ^PASSED$
RateLimit-Policy: ^"sanity";q=1000;w=1$
RateLimit: ^"sanity";r=\d+;t=\d+$
X-RateLimit-Limit: ^1001$
X-RateLimit-Remaining: ^\d+$
--- no_error_log
[error]
[alert]
