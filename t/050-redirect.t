# Internal redirects and subrequests: a request decided before a redirect
# (try_files, index, error_page, a named location, X-Accel-Redirect) is not
# decided again after it; a request that meets its first rate_limit only
# after a redirect (rewrite ... last, try_files, index) is decided there;
# subrequests (auth_request, ssi include) are never limited and get no
# fields.
#
# "Decided once" shows in X-RateLimit-Remaining: every zone here admits
# six at once (10r/m burst=5), so one decision leaves 5 and two leave 4.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(redis block_client set_defaults);

# The remaining counts depend on a fresh Redis: one round.
repeat_each(1);

plan tests => repeat_each() * 83;

no_long_string();

# The error log is read whole: the runner checks it after every response.
check_accum_error_log();

# block_client(ZONE...): 127.0.0.1 over its limit in each zone for an
# hour (with burst=5 of 6 s: a wait of 3570 s).

# --- redis_keys_after: the number of keys Redis holds after the last
# request of the block.
add_response_body_check(sub {
    my ($block, $body, $req_idx) = @_;

    my $want = $block->redis_keys_after;
    return unless defined $want;

    my $reqs = $block->pipelined_requests // $block->request;
    return if ref $reqs eq 'ARRAY' && $req_idx != $#$reqs;

    Test::More::is(scalar @{ redis()->cmd('KEYS', '*') }, 0 + $want,
                   $block->name . ' - keys in redis');
});

# Most blocks: zone z of 10r/m burst=5 by address, an empty Redis, no
# error logged.
add_block_preprocessor(sub {
    set_defaults(shift,
        http_config => <<'_EOC_',
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m burst=5;
_EOC_
        init => "main::redis()->cmd('FLUSHALL');\n",
        no_error_log => "[error]\n[alert]\n");
});

run_tests();

__DATA__

=== TEST 1: try_files to a URI: counted once
--- config
    rate_limit z;

    location = /t {
        try_files /nonexistent /target.txt;
    }

    location = /target.txt {
        root html;
        add_header X-RL $rate_limit_status always;
    }
--- user_files
>>> target.txt
target
--- request
GET /t
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5
--- response_body
target



=== TEST 2: try_files, then rewrite ... last in the target: counted once
--- config
    rate_limit z;

    location = /t {
        try_files /nonexistent /moved;
    }

    location = /moved {
        rewrite ^ /final last;
    }

    location = /final {
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5



=== TEST 3: index: counted once
--- config
    location /dir/ {
        rate_limit z;
        root html;
        index index.txt;
        add_header X-RL $rate_limit_status always;
    }
--- user_files
>>> dir/index.txt
the index
--- request
GET /dir/
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5
--- response_body
the index



=== TEST 4: error_page to a URI: counted once
--- config
    rate_limit z;

    location /files/ {
        root html;
        log_not_found off;
        error_page 404 /not-found.txt;
    }

    location = /not-found.txt {
        root html;
        add_header X-RL $rate_limit_status always;
    }
--- user_files
>>> not-found.txt
not found
--- request
GET /files/none
--- error_code: 404
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5
--- response_body
not found



=== TEST 5: try_files to a named location: counted once
--- config
    rate_limit z;

    location = /t {
        try_files /nonexistent @fallback;
    }

    location @fallback {
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5



=== TEST 6: error_page to a named location: counted once
--- config
    rate_limit z;

    location /files/ {
        root html;
        log_not_found off;
        error_page 404 = @missing;
    }

    location @missing {
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /files/none
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5



=== TEST 7: X-Accel-Redirect from a proxied response: counted once
--- config
    location = /t {
        rate_limit z;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }

    location = /backend {
        add_header X-Accel-Redirect /internal/target.txt;
        return 200 "from the backend\n";
    }

    location /internal/ {
        internal;
        rate_limit z;
        alias html/;
        add_header X-RL $rate_limit_status always;
    }
--- user_files
>>> target.txt
target
--- request
GET /t
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5
--- response_body
target



=== TEST 8: a redirect after a rejection is not decided again (error_page to a URI and to a name)
--- config
    rate_limit z;

    location = /uri {
        error_page 429 /limited.txt;
        empty_gif;
    }

    location = /named {
        error_page 429 @limited;
        empty_gif;
    }

    location = /limited.txt {
        root html;
        add_header X-RL $rate_limit_status always;
    }

    location @limited {
        add_header X-RL $rate_limit_status always;
        return 429 "limited by name\n";
    }
--- user_files
>>> limited.txt
limited by uri
--- init
main::block_client('z');
--- pipelined_requests eval
["GET /uri", "GET /named"]
--- error_code eval
[429, 429]
--- response_headers eval
["X-RL: REJECTED\nRetry-After: 3570", "X-RL: REJECTED\nRetry-After: 3570"]
--- response_body eval
["limited by uri\n", "limited by name\n"]
--- error_log
limiting requests by zone "z", retry after 3570 s
--- no_error_log
[alert]



=== TEST 9: rewrite ... last to a limited location: decided there
--- config
    location = /old {
        rewrite ^ /new last;
    }

    location = /new {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /old
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5
RateLimit-Policy: "z";q=10;w=60



=== TEST 10: try_files from an unlimited location to a limited one: decided there
--- config
    location = /t {
        try_files /nonexistent /limited/target.txt;
    }

    location /limited/ {
        rate_limit z;
        alias html/;
        add_header X-RL $rate_limit_status always;
    }
--- user_files
>>> target.txt
target
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



=== TEST 11: index from an unlimited location to a limited one: decided there
--- config
    location /dir/ {
        root html;
        index index.txt;
    }

    location = /dir/index.txt {
        rate_limit z;
        root html;
        add_header X-RL $rate_limit_status always;
    }
--- user_files
>>> dir/index.txt
the index
--- request
GET /dir/
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5
--- response_body
the index



=== TEST 12: an auth_request subrequest to a limited location is not limited
--- config
    location = /protected {
        auth_request /auth;
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }

    location = /auth {
        rate_limit z;
        empty_gif;
    }
--- init
main::block_client('z');
--- request
GET /protected
--- error_code: 200
--- response_headers
X-RL: []
!RateLimit
!Retry-After
--- redis_keys_after: 1



=== TEST 13: ssi includes of a limited location: not limited, the page decided once
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$remote_addr rate=10r/m burst=5;
    rate_limit_zone blocked key=$remote_addr rate=10r/m burst=5;
--- config
    location = /page.html {
        rate_limit z;
        ssi on;
        root html;
        add_header X-RL $rate_limit_status always;
    }

    location /parts/ {
        rate_limit blocked;
        rate_limit z;
        root html;
    }
--- user_files
>>> page.html
[<!--# include virtual="/parts/a.txt" -->|<!--# include virtual="/parts/a.txt" -->]
>>> parts/a.txt
part
--- init
main::block_client('blocked');
--- request
GET /page.html HTTP/1.0
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 5
RateLimit-Policy: "z";q=10;w=60
--- response_body
[part
|part
]
--- redis_keys_after: 2
