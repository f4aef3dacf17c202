# The response fields and the variables: exact RateLimit-Policy and
# RateLimit values (draft-ietf-httpapi-ratelimit-headers-10), X-RateLimit-*
# of the tightest zone and its tie rules, the fields on passed, rejected,
# proxied and error_page responses, rate_limit_headers off, and the
# $rate_limit_* variables, also in a JSON error page and the access log.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(flush);

# Every value below counts requests from a fresh Redis: a second round
# would start from the first one's counts (and nginx's deny cache).
repeat_each(1);

plan tests => repeat_each() * 230;

no_long_string();

# The requests of a block are pipelined on one keep-alive connection, and
# the error log is read whole: the runner checks it after every response,
# and a rejection's line is written only by a later request.
check_accum_error_log();

run_tests();

__DATA__

=== TEST 1: exact values of every field, one zone (gcra 10r/m burst=4: T = 6 s)
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m burst=4;
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
[200, 200]
--- response_headers eval
["X-RL: PASSED
RateLimit-Policy: \"z\";q=10;w=60
RateLimit: \"z\";r=4;t=6
X-RateLimit-Limit: 5
X-RateLimit-Remaining: 4
X-RateLimit-Reset: 6
!Retry-After",
"X-RL: PASSED
RateLimit-Policy: \"z\";q=10;w=60
RateLimit: \"z\";r=3;t=12
X-RateLimit-Limit: 5
X-RateLimit-Remaining: 3
X-RateLimit-Reset: 12
!Retry-After"]
--- no_error_log
[error]
[alert]



=== TEST 2: a rejection: r=0 and t is the wait; Retry-After the same
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=2r/m burst=1;
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
[200, 200, 429]
--- response_headers eval
["X-RL: PASSED
RateLimit: \"z\";r=1;t=30
X-RateLimit-Limit: 2
X-RateLimit-Remaining: 1
X-RateLimit-Reset: 30
!Retry-After",
"X-RL: PASSED
RateLimit: \"z\";r=0;t=30
X-RateLimit-Remaining: 0
X-RateLimit-Reset: 60
!Retry-After",
"X-RL: REJECTED
RateLimit-Policy: \"z\";q=2;w=60
RateLimit: \"z\";r=0;t=30
X-RateLimit-Limit: 2
X-RateLimit-Remaining: 0
X-RateLimit-Reset: 60
Retry-After: 30"]
--- error_log
limiting requests by zone "z", retry after 30 s
--- no_error_log
[alert]



=== TEST 3: two zones: one item each in rate_limit order; X-RateLimit-* of the least remaining
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone wide key=$remote_addr rate=10r/m burst=5;
    rate_limit_zone narrow key=$remote_addr rate=20r/h burst=1;
--- config
    location = /t {
        rate_limit wide;
        rate_limit narrow;
        add_header X-RL $rate_limit_status always;
        add_header X-Zone $rate_limit_zone always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-RL: PASSED
X-Zone: narrow
RateLimit-Policy: \"wide\";q=10;w=60, \"narrow\";q=20;w=3600
RateLimit: \"wide\";r=5;t=6, \"narrow\";r=1;t=180
X-RateLimit-Limit: 2
X-RateLimit-Remaining: 1
X-RateLimit-Reset: 180",
"X-RL: PASSED
X-Zone: narrow
RateLimit: \"wide\";r=4;t=12, \"narrow\";r=0;t=180
X-RateLimit-Limit: 2
X-RateLimit-Remaining: 0
X-RateLimit-Reset: 360",
"X-RL: REJECTED
X-Zone: narrow
RateLimit: \"wide\";r=4;t=12, \"narrow\";r=0;t=180
X-RateLimit-Limit: 2
X-RateLimit-Remaining: 0
X-RateLimit-Reset: 360
Retry-After: 180"]
--- error_log
limiting requests by zone "narrow", retry after 180 s
--- no_error_log
[alert]



=== TEST 4: ties: the earlier zone of rate_limit when none rejects, else the longest wait
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone minute key=$uri rate=1r/m;
    rate_limit_zone hour key=$uri rate=1r/h;
--- config
    location = /mh {
        rate_limit minute;
        rate_limit hour;
        add_header X-Zone $rate_limit_zone always;
        empty_gif;
    }

    location = /hm {
        rate_limit hour;
        rate_limit minute;
        add_header X-Zone $rate_limit_zone always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /mh", "GET /hm", "GET /mh", "GET /hm"]
--- error_code eval
[200, 200, 429, 429]
--- response_headers eval
["X-Zone: minute\nX-RateLimit-Reset: 60\nRateLimit: \"minute\";r=0;t=60, \"hour\";r=0;t=3600",
 "X-Zone: hour\nX-RateLimit-Reset: 3600\nRateLimit: \"hour\";r=0;t=3600, \"minute\";r=0;t=60",
 "X-Zone: hour\nX-RateLimit-Reset: 3600\nRetry-After: 3600",
 "X-Zone: hour\nX-RateLimit-Reset: 3600\nRetry-After: 3600"]
--- error_log eval
[qr/limiting requests by zone "hour", retry after 3600 s, .*"GET \/mh /,
 qr/limiting requests by zone "hour", retry after 3600 s, .*"GET \/hm /]
--- no_error_log
[alert]



=== TEST 5: a proxied response carries the fields
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/m;
--- config
    location = /proxy {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }

    location = /backend {
        rate_limit off;
        return 200 "from the backend\n";
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /proxy", "GET /proxy"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED\nRateLimit-Policy: \"z\";q=1;w=60\nRateLimit: \"z\";r=0;t=60\nX-RateLimit-Remaining: 0\n!Retry-After",
 "X-RL: REJECTED\nRateLimit-Policy: \"z\";q=1;w=60\nRateLimit: \"z\";r=0;t=60\nX-RateLimit-Remaining: 0\nRetry-After: 60"]
--- response_body_like eval
["^from the backend\$", "429 Too Many Requests"]
--- error_log
limiting requests by zone "z", retry after 60 s
--- no_error_log
[alert]



=== TEST 6: an error_page response (a 404 answered by another location) carries the fields
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m burst=1;
--- config
    location /files/ {
        rate_limit z;
        root html;
        log_not_found off;
        error_page 404 /not-found.txt;
    }

    location = /not-found.txt {
        add_header X-RL $rate_limit_status always;
        root html;
    }
--- user_files
>>> not-found.txt
no such file
--- init
main::flush();
--- request
GET /files/missing
--- error_code: 404
--- response_headers
X-RL: PASSED
RateLimit-Policy: "z";q=10;w=60
RateLimit: "z";r=1;t=6
X-RateLimit-Remaining: 1
--- response_body
no such file
--- no_error_log
[error]
[alert]



=== TEST 7: rate_limit_headers off: no fields, but Retry-After on a rejection
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/m;
--- config
    location = /t {
        rate_limit z;
        rate_limit_headers off;
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
["X-RL: PASSED\n!RateLimit-Policy\n!RateLimit\n!X-RateLimit-Limit\n!X-RateLimit-Remaining\n!X-RateLimit-Reset\n!Retry-After",
 "X-RL: REJECTED\n!RateLimit-Policy\n!RateLimit\n!X-RateLimit-Limit\n!X-RateLimit-Remaining\n!X-RateLimit-Reset\nRetry-After: 60"]
--- error_log
limiting requests by zone "z", retry after 60 s
--- no_error_log
[alert]



=== TEST 8: the variables on a passed and a rejected request, and in the access log
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=2r/m burst=1;
    log_format rl '$uri status=$rate_limit_status remaining=$rate_limit_remaining '
                  'reset=$rate_limit_reset retry=[$rate_limit_retry_after] '
                  'zone=$rate_limit_zone';
--- config
    location = /t {
        rate_limit z;
        access_log logs/access.log rl;
        add_header X-Vars "status=$rate_limit_status remaining=$rate_limit_remaining reset=$rate_limit_reset retry=[$rate_limit_retry_after] zone=$rate_limit_zone" always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-Vars: status=PASSED remaining=1 reset=30 retry=[] zone=z",
 "X-Vars: status=PASSED remaining=0 reset=60 retry=[] zone=z",
 "X-Vars: status=REJECTED remaining=0 reset=60 retry=[30] zone=z"]
--- access_log
/t status=PASSED remaining=1 reset=30 retry=[] zone=z
/t status=PASSED remaining=0 reset=60 retry=[] zone=z
/t status=REJECTED remaining=0 reset=60 retry=[30] zone=z
--- error_log
limiting requests by zone "z", retry after 30 s
--- no_error_log
[alert]



=== TEST 9: with no zone applied the variables are empty
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/m;
--- config
    location = /t {
        rate_limit off;
        add_header X-Vars "[$rate_limit_status][$rate_limit_remaining][$rate_limit_reset][$rate_limit_retry_after][$rate_limit_zone]" always;
        empty_gif;
    }
--- init
main::flush();
--- request
GET /t
--- response_headers
X-Vars: [][][][][]
!RateLimit
--- no_error_log
[error]
[alert]



=== TEST 10: error_page 429 to a JSON body built from the variables
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone per_client key=$remote_addr rate=1r/m;
--- config
    location = /api {
        rate_limit per_client;
        error_page 429 /429.json;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /429.json {
        internal;
        default_type application/json;
        add_header X-RL $rate_limit_status always;
        return 429 '{"error": "too many requests", "zone": "$rate_limit_zone", "retry_after": $rate_limit_retry_after}\n';
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /api", "GET /api"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED\nContent-Type: image/gif\n!Retry-After",
 "X-RL: REJECTED\nContent-Type: application/json\nRateLimit: \"per_client\";r=0;t=60\nRetry-After: 60"]
--- response_body_like eval
["^GIF",
 "^\\{\"error\": \"too many requests\", \"zone\": \"per_client\", \"retry_after\": 60\\}\$"]
--- error_log
limiting requests by zone "per_client", retry after 60 s
--- no_error_log
[alert]



=== TEST 11: four zones, names of 64 bytes, large numbers: every item whole, in rate_limit order
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa key=$remote_addr rate=1000000000r/d;
    rate_limit_zone bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb- key=$remote_addr rate=999r/h burst=10;
    rate_limit_zone Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9- key=$remote_addr rate=7r/s burst=6;
    rate_limit_zone x key=$remote_addr rate=1r/m;
--- config
    location = /t {
        rate_limit aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;
        rate_limit bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-;
        rate_limit Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-;
        rate_limit x;
        add_header X-RL $rate_limit_status always;
        add_header X-Zone $rate_limit_zone always;
        empty_gif;
    }
--- init
main::flush();
--- request
GET /t
--- response_headers
X-RL: PASSED
X-Zone: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
RateLimit-Policy: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";q=1000000000;w=86400, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-";q=999;w=3600, "Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-";q=7;w=1, "x";q=1;w=60
RateLimit: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";r=0;t=1, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-";r=10;t=4, "Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-Z_9-";r=6;t=1, "x";r=0;t=60
X-RateLimit-Limit: 1
X-RateLimit-Remaining: 0
X-RateLimit-Reset: 1
--- no_error_log
[error]
[alert]



=== TEST 12: the deciding location's settings hold on its error_page target
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone shown key=$remote_addr rate=1r/h;
    rate_limit_zone hidden key=$remote_addr rate=1r/h;
--- config
    location = /headers-on {
        rate_limit shown;
        error_page 429 /page-headers-off;
        empty_gif;
    }

    location = /headers-off {
        rate_limit hidden;
        rate_limit_headers off;
        error_page 429 /page-headers-on;
        empty_gif;
    }

    location = /page-headers-off {
        rate_limit_headers off;
        add_header X-RL $rate_limit_status always;
        return 429 "limited\n";
    }

    location = /page-headers-on {
        rate_limit_headers on;
        add_header X-RL $rate_limit_status always;
        return 429 "limited\n";
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /headers-on", "GET /headers-on", "GET /headers-off", "GET /headers-off"]
--- error_code eval
[200, 429, 200, 429]
--- response_headers eval
["RateLimit-Policy: \"shown\";q=1;w=3600",
 "X-RL: REJECTED\nRateLimit-Policy: \"shown\";q=1;w=3600\nRetry-After: 3600",
 "!RateLimit-Policy",
 "X-RL: REJECTED\n!RateLimit-Policy\nRetry-After: 3600"]
--- error_log eval
[qr/limiting requests by zone "shown", retry after 3600 s/,
 qr/limiting requests by zone "hidden", retry after 3600 s/]
--- no_error_log
[alert]



=== TEST 13: a subrequest's variables read the main request's decision (ssi echo)
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m burst=5;
--- config
    location = /page.html {
        rate_limit z;
        ssi on;
        root html;
    }

    location = /part {
        return 200 "status=$rate_limit_status remaining=$rate_limit_remaining zone=$rate_limit_zone";
    }
--- user_files
>>> page.html
[<!--# echo var="rate_limit_status" -->][<!--# include virtual="/part" -->]
--- init
main::flush();
--- request
GET /page.html HTTP/1.0
--- response_headers
RateLimit: "z";r=5;t=6
--- response_body
[PASSED][status=PASSED remaining=5 zone=z]
--- no_error_log
[error]
[alert]
