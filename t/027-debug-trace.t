# The handler's debug traces: with an nginx built --with-debug and
# error_log at debug, each step of a request's decision is one line at
# the http level (keys built, deny cache hit, sent, answered, resumed,
# verdict), so the debug log shows the path a request took.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(flush);

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';

if (`$nginx -V 2>&1` !~ /--with-debug/) {
    plan(skip_all => "$nginx is not built --with-debug");
}

# Counts carry over between repetitions: each block's sequence is exact
# only from a fresh Redis.
repeat_each(1);

plan tests => repeat_each() * 26;

no_long_string();
log_level('debug');
check_accum_error_log();

run_tests();

__DATA__

=== TEST 1: a passed request: key, sent, answered, resumed, verdict
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=10r/m;
--- config
    location = /t {
        rate_limit z;
        empty_gif;
    }
--- init
main::flush();
--- request
GET /t?k=abc
--- error_code: 200
--- error_log
rate limit: zone "z" key of 3 bytes
rate limit: sent
rate limit: answered
rate limit: resumed, phases run again
rate limit: verdict: passed, returns -5
--- no_error_log
[alert]



=== TEST 2: rejected by Redis, then by the deny cache without a trip
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m;
    rate_limit_log_level info;
--- config
    location = /t {
        rate_limit z;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t?k=d", "GET /t?k=d", "GET /t?k=d"]
--- error_code eval
[200, 429, 429]
--- error_log
rate limit: verdict: rejected, returns 429
rate limit: zone "z" deny cache hit, retry after
rate limit: verdict: rejected by the deny cache, returns 429
--- no_error_log
[alert]



=== TEST 3: every key empty: no decision
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- config
    location = /t {
        rate_limit z;
        empty_gif;
    }
--- request
GET /t
--- error_code: 200
--- error_log
rate limit: zone "z" key of 0 bytes
rate limit: every key empty, no decision
--- no_error_log
[alert]
