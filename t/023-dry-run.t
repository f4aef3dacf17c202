# rate_limit_dry_run on: decided and logged as usual, with the variables
# set, but nothing is rejected (neither by a limit nor by fail_open off)
# and no rate-limit field or Retry-After is sent.
#
# Clients that must be over their limit are blocked for an hour in
# --- init, so every round gets the same answers.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(block_client);

repeat_each(2);

plan tests => repeat_each() * 57;

no_long_string();

# The error log is read whole: the runner checks it after every response,
# and a line a later request writes would otherwise be missing at the
# first check.
check_accum_error_log();

# block_client(ZONE...): 127.0.0.1 over its limit in each zone for an
# hour (with burst 0: a wait of 3600 s).

run_tests();

__DATA__

=== TEST 1: over the limit: passed, REJECTED_DRY_RUN, no fields, logged as a dry run
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/m;
--- config
    location = /t {
        rate_limit z;
        rate_limit_dry_run on;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::block_client('z');
--- pipelined_requests eval
["GET /t", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: REJECTED_DRY_RUN\n!Retry-After\n!RateLimit-Policy\n!RateLimit\n!X-RateLimit-Limit\n!X-RateLimit-Remaining\n!X-RateLimit-Reset",
 "X-RL: REJECTED_DRY_RUN\n!Retry-After\n!RateLimit-Policy\n!RateLimit\n!X-RateLimit-Limit\n!X-RateLimit-Remaining\n!X-RateLimit-Reset"]
--- error_log eval
[qr/\[error\] .*limiting requests, dry run, by zone "z", retry after 3600 s, client: /,
 qr/\[error\] .*limiting requests, dry run, by zone "z", retry after 3600 s \(deny cache\), client: /]
--- no_error_log
[alert]



=== TEST 2: under the limit: PASSED and no fields
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=100r/h burst=100;
--- config
    location = /t {
        rate_limit z;
        rate_limit_dry_run on;
        rate_limit_headers on;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::block_client();
--- request
GET /t
--- response_headers
X-RL: PASSED
!RateLimit-Policy
!RateLimit
!X-RateLimit-Remaining
--- no_error_log
[error]
[alert]



=== TEST 3: the variables are set as for a rejection
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/m;
--- config
    location = /t {
        rate_limit z;
        rate_limit_dry_run on;
        rate_limit_status 503;
        add_header X-Vars "$rate_limit_status remaining=$rate_limit_remaining retry=$rate_limit_retry_after zone=$rate_limit_zone" always;
        empty_gif;
    }
--- init
main::block_client('z');
--- request
GET /t
--- error_code: 200
--- response_headers
X-Vars: REJECTED_DRY_RUN remaining=0 retry=3600 zone=z
--- error_log
limiting requests, dry run, by zone "z", retry after 3600 s
--- no_error_log
[alert]



=== TEST 4: dry run from the http level, off in one location: that one rejects
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/m;
    rate_limit_dry_run on;
--- config
    location = /dry {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /real {
        rate_limit z;
        rate_limit_dry_run off;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::block_client('z');
--- pipelined_requests eval
["GET /dry", "GET /real"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: REJECTED_DRY_RUN\n!Retry-After", "X-RL: REJECTED\nRetry-After: 3600"]
--- error_log eval
[qr/limiting requests, dry run, by zone "z", retry after 3600 s, .*"GET \/dry /,
 qr/limiting requests by zone "z", retry after 3600 s.*"GET \/real /]
--- no_error_log
[alert]



=== TEST 5: Redis unreachable with fail_open off: passes in dry run, 503 otherwise
--- http_config
    rate_limit_redis unix:/nonexistent/redis.sock;
    rate_limit_zone z key=$remote_addr rate=1r/m;
    rate_limit_fail_open off;
--- config
    location = /dry {
        rate_limit z;
        rate_limit_dry_run on;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /real {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- pipelined_requests eval
["GET /dry", "GET /real"]
--- error_code eval
[200, 503]
--- response_headers eval
["X-RL: ERROR\n!Retry-After\n!RateLimit", "X-RL: ERROR\n!Retry-After\n!RateLimit"]
--- error_log
rate_limit: cannot connect to redis "unix:/nonexistent/redis.sock"
--- no_error_log
[alert]
