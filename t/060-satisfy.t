# The decision comes first in the access phase, before allow/deny,
# auth_basic and auth_request: under "satisfy any" a pass grants nothing
# and a rejection still ends the request; requests that a later access
# module refuses are counted; auth_request_set variables are still empty
# when the key is built.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(redis block_client);

# The remaining counts depend on a fresh Redis: one round.
repeat_each(1);

plan tests => repeat_each() * 63;

no_long_string();

# The requests of a block are pipelined on one keep-alive connection, and
# the error log is read whole: the runner checks it after every response,
# and a rejection's line is written only by a later request.
check_accum_error_log();

# block_client(ZONE...): 127.0.0.1 over its limit in each zone for an
# hour (with burst=5 of 6 s: a wait of 3570 s).

run_tests();

__DATA__

=== TEST 1: satisfy any, deny all: a pass grants nothing (403), and was counted
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m burst=5;
--- config
    location = /t {
        satisfy any;
        deny all;
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /t", "GET /t"]
--- error_code eval
[403, 403]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 5", "X-RL: PASSED\nX-RateLimit-Remaining: 4"]
--- error_log
access forbidden by rule
--- no_error_log
[alert]
limiting requests



=== TEST 2: satisfy any, deny all: a rejection answers 429, not 403
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m burst=5;
--- config
    location = /t {
        satisfy any;
        deny all;
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::block_client('z');
--- request
GET /t
--- error_code: 429
--- response_headers
X-RL: REJECTED
Retry-After: 3570
--- error_log
limiting requests by zone "z", retry after 3570 s
--- no_error_log
[alert]
access forbidden by rule



=== TEST 3: satisfy any, allow all: a pass goes through; a rejection still ends the request
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone open key=$remote_addr rate=10r/m burst=5;
    rate_limit_zone blocked key=$remote_addr rate=10r/m burst=5;
--- config
    location = /open {
        satisfy any;
        allow all;
        rate_limit open;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /blocked {
        satisfy any;
        allow all;
        rate_limit blocked;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::block_client('blocked');
--- pipelined_requests eval
["GET /open", "GET /blocked"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 5", "X-RL: REJECTED\nRetry-After: 3570"]
--- error_log
limiting requests by zone "blocked", retry after 3570 s
--- no_error_log
[alert]



=== TEST 4: satisfy all with auth_basic: requests refused with 401 are counted
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone login key=$remote_addr rate=1r/h burst=1;
--- config
    location = /t {
        rate_limit login;
        auth_basic "test";
        auth_basic_user_file ../html/htpasswd;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- user_files
>>> htpasswd
alice:{PLAIN}secret
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t"]
--- more_headers eval
["", "", "Authorization: Basic YWxpY2U6c2VjcmV0"]
--- error_code eval
[401, 401, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 1\nWWW-Authenticate: Basic realm=\"test\"",
 "X-RL: PASSED\nX-RateLimit-Remaining: 0\nWWW-Authenticate: Basic realm=\"test\"",
 "X-RL: REJECTED\nRetry-After: 3600\n!WWW-Authenticate"]
--- error_log
limiting requests by zone "login", retry after 3600 s
--- no_error_log
[alert]



=== TEST 5: with valid credentials the same location passes (the control of TEST 4)
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone login key=$remote_addr rate=1r/h burst=1;
--- config
    location = /t {
        rate_limit login;
        auth_basic "test";
        auth_basic_user_file ../html/htpasswd;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- user_files
>>> htpasswd
alice:{PLAIN}secret
--- init
main::redis()->cmd('FLUSHALL');
--- more_headers
Authorization: Basic YWxpY2U6c2VjcmV0
--- request
GET /t
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 1
--- no_error_log
[error]
[alert]



=== TEST 6: a key from auth_request_set is still empty when the decision is made
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone by_user key=$auth_user rate=10r/m burst=5;
    rate_limit_zone by_addr key=$remote_addr rate=10r/m burst=5;
--- config
    location = /user {
        auth_request /auth;
        auth_request_set $auth_user $upstream_http_x_user;
        rate_limit by_user;
        add_header X-RL "[$rate_limit_status]" always;
        add_header X-User $auth_user always;
        empty_gif;
    }

    location = /addr {
        auth_request /auth;
        auth_request_set $auth_user $upstream_http_x_user;
        rate_limit by_addr;
        add_header X-RL "[$rate_limit_status]" always;
        add_header X-User $auth_user always;
        empty_gif;
    }

    location = /auth {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend-auth;
        proxy_pass_request_body off;
    }

    location = /backend-auth {
        add_header X-User alice;
        return 204;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /user", "GET /addr"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: []\nX-User: alice\n!RateLimit", "X-RL: [PASSED]\nX-User: alice\nRateLimit-Policy: \"by_addr\";q=10;w=60"]
--- no_error_log
[error]
[alert]
