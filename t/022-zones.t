# Zones: each zone counts on its own, locations that name one zone share
# its count, a request limited by several zones consumes nothing when one
# of them rejects it, and an error_page target with a rate_limit of its own
# serves its page instead of being rejected again.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(redis);

# Every block counts requests from a fresh Redis: a second round would
# start from the first one's counts (and nginx's deny cache).
repeat_each(1);

plan tests => repeat_each() * 142;

no_long_string();

# The requests of a block are pipelined on one keep-alive connection, and
# the error log is read whole: the runner checks it after every response,
# and a rejection's line is written only by a later request.
check_accum_error_log();

# --- redis_unchanged: a Redis key whose value after every later response
# is what it was after the first one.
add_response_body_check(sub {
    my ($block, $body, $req_idx) = @_;

    my $key = $block->redis_unchanged;
    return unless defined $key;
    chomp $key;

    my $v = redis()->cmd('GET', $key);

    if ($req_idx == 0) {
        $block->{rl_first_value} = $v;
        Test::More::ok(defined $v, $block->name . " - $key is set");
        return;
    }

    Test::More::is($v, $block->{rl_first_value},
                   $block->name . " - $key unchanged after request $req_idx");
});

run_tests();

__DATA__

=== TEST 1: two zones with the same key count apart
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone a key=$remote_addr rate=1r/h burst=1;
    rate_limit_zone b key=$remote_addr rate=1r/h burst=1;
--- config
    location = /a {
        rate_limit a;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /b {
        rate_limit b;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /a", "GET /a", "GET /a", "GET /b", "GET /b", "GET /b"]
--- error_code eval
[200, 200, 429, 200, 200, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 1",
 "X-RL: PASSED\nX-RateLimit-Remaining: 0",
 "X-RL: REJECTED\nRateLimit-Policy: \"a\";q=1;w=3600",
 "X-RL: PASSED\nX-RateLimit-Remaining: 1",
 "X-RL: PASSED\nX-RateLimit-Remaining: 0",
 "X-RL: REJECTED\nRateLimit-Policy: \"b\";q=1;w=3600"]
--- error_log eval
[qr/limiting requests by zone "a", retry after 3600 s, .*"GET \/a /,
 qr/limiting requests by zone "b", retry after 3600 s, .*"GET \/b /]
--- no_error_log
[alert]



=== TEST 2: two locations that name one zone share its count
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone shared key=$remote_addr rate=1r/h burst=2;
--- config
    location = /x {
        rate_limit shared;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /y {
        rate_limit shared;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /x", "GET /y", "GET /x", "GET /y"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 2",
 "X-RL: PASSED\nX-RateLimit-Remaining: 1",
 "X-RL: PASSED\nX-RateLimit-Remaining: 0",
 "X-RL: REJECTED\nX-RateLimit-Remaining: 0\nRetry-After: 3600"]
--- error_log
limiting requests by zone "shared", retry after 3600 s
--- no_error_log
[alert]



=== TEST 3: a request one zone rejects consumes nothing in the others
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone big key=$remote_addr rate=10r/m burst=5;
    rate_limit_zone small key=$remote_addr rate=1r/h;
--- config
    location = /both {
        rate_limit big;
        rate_limit small;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /big {
        rate_limit big;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /both", "GET /both", "GET /both", "GET /big"]
--- error_code eval
[200, 429, 429, 200]
--- response_headers eval
["X-RL: PASSED\nRateLimit: \"big\";r=5;t=6, \"small\";r=0;t=3600",
 "X-RL: REJECTED\nRateLimit: \"big\";r=5;t=6, \"small\";r=0;t=3600\nRetry-After: 3600",
 "X-RL: REJECTED\nRateLimit-Policy: \"small\";q=1;w=3600\nRateLimit: \"small\";r=0;t=3600\nRetry-After: 3600",
 "X-RL: PASSED\nRateLimit: \"big\";r=4;t=12"]
--- error_log eval
[qr/limiting requests by zone "small", retry after 3600 s, client: /,
 qr/limiting requests by zone "small", retry after 3600 s \(deny cache\), client: /]
--- no_error_log
[alert]



=== TEST 4: in Redis, rejected requests leave the other zone's state as it was
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone big key=$remote_addr rate=10r/m burst=5 cache=0;
    rate_limit_zone small key=$remote_addr rate=1r/h cache=0;
    rate_limit_log_level info;
--- config
    location = /both {
        rate_limit big;
        rate_limit small;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /both", "GET /both", "GET /both"]
--- error_code eval
[200, 429, 429]
--- response_headers eval
["X-RL: PASSED\nRateLimit: \"big\";r=5;t=6, \"small\";r=0;t=3600",
 "X-RL: REJECTED\nRateLimit: \"big\";r=5;t=6, \"small\";r=0;t=3600",
 "X-RL: REJECTED\nRateLimit: \"big\";r=5;t=6, \"small\";r=0;t=3600"]
--- redis_unchanged
rl:{big:127.0.0.1}:g
--- error_log eval
qr/\[info\] .*limiting requests by zone "small", retry after 3600 s, client: /
--- no_error_log
[error]
[alert]



=== TEST 5: an error_page target with an inherited rate_limit serves its page
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=1r/h;
--- config
    rate_limit z;
    error_page 429 /limited.html;

    location = /t {
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /limited.html {
        add_header X-RL $rate_limit_status always;
        root html;
    }
--- user_files
>>> limited.html
<p>slow down</p>
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /t", "GET /t", "GET /t"]
--- error_code eval
[200, 429, 429]
--- response_headers eval
["X-RL: PASSED\nContent-Type: image/gif",
 "X-RL: REJECTED\nContent-Type: text/html\nRetry-After: 3600\nRateLimit: \"z\";r=0;t=3600",
 "X-RL: REJECTED\nContent-Type: text/html\nRetry-After: 3600\nRateLimit: \"z\";r=0;t=3600"]
--- response_body eval
["GIF89a\x01\x00\x01\x00\x80\x01\x00\x00\x00\x00\xff\xff\xff\x21\xf9\x04\x01\x00\x00\x01\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x4c\x01\x00\x3b",
 "<p>slow down</p>\n",
 "<p>slow down</p>\n"]
--- error_log
limiting requests by zone "z", retry after 3600 s
--- no_error_log
[alert]



=== TEST 6: an error_page target whose own zone would reject is not decided again
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone api key=$remote_addr rate=1r/h;
    rate_limit_zone pages key=$remote_addr rate=1r/h;
--- config
    location = /api {
        rate_limit api;
        error_page 429 /limited.html;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /limited.html {
        rate_limit pages;
        add_header X-RL $rate_limit_status always;
        add_header X-Zone $rate_limit_zone always;
        root html;
    }
--- user_files
>>> limited.html
<p>slow down</p>
--- init
my $r = main::redis();
$r->cmd('FLUSHALL');
my $t = $r->cmd('TIME');
# zone pages would reject 127.0.0.1 for an hour
$r->cmd('SET', 'rl:{pages:127.0.0.1}:g',
        $t->[0] * 1_000_000 + $t->[1] + 3_600_000_000, 'PX', 3_600_000);
--- pipelined_requests eval
["GET /api", "GET /api"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED",
 "X-RL: REJECTED\nX-Zone: api\nRateLimit-Policy: \"api\";q=1;w=3600\nRetry-After: 3600"]
--- response_body eval
[qr/^GIF/, "<p>slow down</p>\n"]
--- error_log
limiting requests by zone "api", retry after 3600 s
--- no_error_log
[alert]
limiting requests by zone "pages"
