# Costs, zones picked by a variable, calendar rates and charges after the
# response, through NGINX against a real redis-server: every form of
# rate_limit NAME|$VARIABLE [cost=VALUE], rate_limit_charge NAME VALUE,
# rate=Nr/w and Nr/M, and what nginx -t says of them.  The blocks marked
# "README" run the configurations of the README's "Choosing limits".

use Test::Nginx::Socket;
use Test::RateLimit::Helpers qw(redis flush set_defaults);
use Time::Local qw(timegm);

repeat_each(1);

plan tests => repeat_each() * (blocks() * 3 + 207);

no_long_string();
check_accum_error_log();

# The [emerg] line of MSG naming line LINE of html/limits.conf.
sub emerg {
    my ($msg, $line) = @_;
    return qr/\[emerg\] \d+#\d+: \Q$msg\E in \S+\/html\/limits\.conf:$line$/;
}

# Seconds from now to the next first of a month, 00:00 UTC.
sub to_month_end {
    my @t = gmtime;
    my ($y, $m) = ($t[5] + 1900, $t[4] + 1);
    ($y, $m) = $m == 12 ? ($y + 1, 1) : ($y, $m + 1);
    return timegm(0, 0, 0, 1, $m - 1, $y) - time;
}

# The seconds to the month's end as the response may say them: the
# blocks' sections are read when the suite starts, and a block runs up to
# a minute later.
sub month_left {
    my $t = to_month_end();
    return '(?:' . CORE::join('|', $t - 60 .. $t + 1) . ')';
}

# A block whose user file html/limits.conf is included at the http level
# and no config of its own is one nginx -t must refuse; the plans blocks
# share their configuration.
# The README's monthly quota beside a per-second rate.
our $MonthlyHttp = <<'_EOC_';
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;

    rate_limit_zone per_second key=$http_x_api_key rate=10r/s burst=20;
    rate_limit_zone monthly    key=$http_x_api_key rate=100000r/M
                               algorithm=fixed_window;
_EOC_

our $MonthlyConfig = <<'_EOC_';
    location /api/ {
        rate_limit per_second;
        rate_limit monthly;
        add_header X-RL $rate_limit_status always;
        add_header X-Zone $rate_limit_zone always;
        empty_gif;
    }
_EOC_

# FLUSHALL, then the monthly zone's count of this month for an API key.
sub fill_month {
    my ($client, $count) = @_;
    my $r = redis();
    $r->cmd('FLUSHALL');
    my @t = gmtime;
    my $w = ($t[5] + 1900 - 1970) * 12 + $t[4];
    $r->cmd('SET', "rl:{monthly:$client}:fw:$w", $count, 'PX',
            1000 * to_month_end());
}

# The README's plans through map (its recipe, with X-RL and X-Zone shown).
our $PlansHttp = <<'_EOC_';
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;

    map $http_x_plan $plan_zone {
        default   free;
        pro       pro;
        internal  "";
    }

    rate_limit_zone free key=$http_x_api_key rate=2r/m algorithm=fixed_window;
    rate_limit_zone pro  key=$http_x_api_key rate=5r/m algorithm=fixed_window;
_EOC_

our $PlansConfig = <<'_EOC_';
    location /api/ {
        rate_limit $plan_zone;
        add_header X-RL $rate_limit_status always;
        add_header X-Zone $rate_limit_zone always;
        empty_gif;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    if ($block->name =~ /plans through map/) {
        set_defaults($block, http_config => $PlansHttp,
                     config => $PlansConfig);
    }

    if ($block->name =~ /monthly quota beside/) {
        set_defaults($block, http_config => $MonthlyHttp,
                     config => $MonthlyConfig);
    }

    if (!defined $block->http_config) {
        $block->set_value('http_config',
                          "    include ../html/limits.conf;\n");
        set_defaults($block, config => "    location = /t { empty_gif; }\n",
                     must_die => '', suppress_stderr => '',
                     no_error_log => "[alert]\n");
        return;
    }

    set_defaults($block, no_error_log => "[error]\n[alert]\n");
});

run_tests();

__DATA__

=== TEST 1: cost=3 takes three units; one above what remains is rejected and consumes nothing; cost=0 passes iff one unit could
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone units key=$arg_k rate=10r/m algorithm=fixed_window;
--- config
    location = /c3 {
        rate_limit units cost=3;
        add_header X-RL $rate_limit_status always;
        add_header X-Rem $rate_limit_remaining always;
        empty_gif;
    }
    location = /c1 {
        rate_limit units;
        add_header X-RL $rate_limit_status always;
        add_header X-Rem $rate_limit_remaining always;
        empty_gif;
    }
    location = /c0 {
        rate_limit units cost=0;
        add_header X-RL $rate_limit_status always;
        add_header X-Rem $rate_limit_remaining always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /c3?k=a", "GET /c3?k=a", "GET /c3?k=a", "GET /c3?k=a",
 "GET /c0?k=a", "GET /c1?k=a", "GET /c0?k=a", "GET /c1?k=a"]
--- error_code eval
[200, 200, 200, 429, 200, 200, 429, 429]
--- response_headers eval
["X-Rem: 7\nX-RateLimit-Remaining: 7", "X-Rem: 4", "X-Rem: 1",
 "X-RL: REJECTED\nX-Rem: 1\nRetry-After: 1\nRateLimit-Policy: \"units\";q=10;w=60",
 "X-RL: PASSED\nX-Rem: 1", "X-RL: PASSED\nX-Rem: 0",
 "X-RL: REJECTED\nX-Rem: 0", "X-RL: REJECTED\nX-Rem: 0"]
--- error_log eval
[qr/limiting requests by zone "units", retry after 1 s,/,
 qr/limiting requests by zone "units", retry after \d+ s \(deny cache\)/]
--- no_error_log
[alert]



=== TEST 2: the cost from a variable; a value that is not an integer in 0..limit is logged with zone and value and gets the fail policy
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone units key=$arg_k rate=10r/m algorithm=fixed_window;
--- config
    location = /v {
        rate_limit units cost=$arg_c;
        add_header X-RL $rate_limit_status always;
        add_header X-Rem $rate_limit_remaining always;
        empty_gif;
    }
    location = /closed {
        rate_limit units cost=$arg_c;
        rate_limit_fail_open off;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /v?k=b&c=4", "GET /v?k=b&c=7", "GET /v?k=b&c=x", "GET /v?k=b&c=11",
 "GET /v?k=b", "GET /v?k=b&c=-1", "GET /closed?k=b&c=1.5",
 "GET /v?k=b&c=6"]
--- error_code eval
[200, 429, 200, 200, 200, 200, 503, 200]
--- response_headers eval
["X-RL: PASSED\nX-Rem: 6", "X-RL: REJECTED\nX-Rem: 6", "X-RL: ERROR",
 "X-RL: ERROR", "X-RL: ERROR", "X-RL: ERROR", "X-RL: ERROR",
 "X-RL: PASSED\nX-Rem: 0"]
--- error_log eval
[qr/rate_limit: zone "units": invalid cost "x", not an integer in 0\.\.9007199254740992/,
 qr/rate_limit: zone "units": cost 11 is out of range, must be between 0 and 10 \(the zone's limit\)/]
--- no_error_log
[alert]



=== TEST 3: README, plans through map: no plan header means the free zone
--- init
main::flush();
--- more_headers
X-API-Key: plan-free
--- pipelined_requests eval
["GET /api/a", "GET /api/a", "GET /api/a"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-Zone: free\nRateLimit-Policy: \"free\";q=2;w=60", "X-Zone: free",
 "X-RL: REJECTED\nX-Zone: free"]
--- no_error_log
[alert]



=== TEST 4: README, plans through map: the pro plan's zone, its own limit
--- init
main::flush();
--- more_headers
X-API-Key: plan-pro
X-Plan: pro
--- pipelined_requests eval
["GET /api/a", "GET /api/a", "GET /api/a", "GET /api/a", "GET /api/a",
 "GET /api/a"]
--- error_code eval
[200, 200, 200, 200, 200, 429]
--- response_headers eval
["X-Zone: pro\nRateLimit-Policy: \"pro\";q=5;w=60",
 "X-Zone: pro", "X-Zone: pro", "X-Zone: pro", "X-Zone: pro",
 "X-RL: REJECTED\nX-Zone: pro"]
--- no_error_log
[alert]



=== TEST 5: README, plans through map: the internal plan names no zone, so no limit from that line
--- init
main::flush();
--- more_headers
X-API-Key: plan-internal
X-Plan: internal
--- pipelined_requests eval
["GET /api/a", "GET /api/a", "GET /api/a"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["!X-RL\n!RateLimit-Policy", "!X-RL", "!X-RL"]
--- no_error_log
[alert]



=== TEST 6: a variable naming no declared zone is logged and gets the fail policy; the other zones are still decided, in one call
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone free key=$arg_k rate=1r/m algorithm=fixed_window;
    rate_limit_zone per_ip key=$remote_addr rate=100r/s burst=100;
--- config
    location = /t {
        rate_limit $arg_zone;
        rate_limit per_ip;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
    location = /closed {
        rate_limit $arg_zone;
        rate_limit_fail_open off;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t?zone=nosuch&k=1", "GET /closed?zone=per-ip&k=1",
 "GET /t?zone=free&k=1", "GET /t?zone=free&k=1",
 "GET /t?zone=nosuch&k=1"]
--- error_code eval
[200, 503, 200, 429, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: ERROR", "X-RL: PASSED", "X-RL: REJECTED",
 "X-RL: ERROR"]
--- error_log eval
[qr/rate_limit: "nosuch" is not a rate_limit_zone/,
 qr/rate_limit: "per-ip" is not a rate_limit_zone/]
--- no_error_log
[alert]



=== TEST 6b: a zone named twice for one request (a variable and a name) decides it once, with the larger cost
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone four key=$arg_k rate=4r/m algorithm=fixed_window;
--- config
    location = /t {
        rate_limit $arg_zone;
        rate_limit four cost=2;
        add_header X-RL $rate_limit_status always;
        add_header X-Rem $rate_limit_remaining always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t?zone=four&k=d", "GET /t?zone=four&k=d", "GET /t?zone=four&k=d"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-Rem: 2\nRateLimit-Policy: \"four\";q=4;w=60", "X-Rem: 0",
 "X-RL: REJECTED"]
--- error_log
limiting requests by zone "four"
--- no_error_log
[alert]



=== TEST 7: README, a monthly quota beside a per-second rate: w is 2592000, t the true time to the month's end
--- init
main::flush();
--- more_headers
X-API-Key: monthly-1
--- request
GET /api/a
--- error_code: 200
--- response_headers
X-RL: PASSED
RateLimit-Policy: "per_second";q=10;w=1, "monthly";q=100000;w=2592000
--- response_headers_like eval
"RateLimit: \"per_second\";r=20;t=1, \"monthly\";r=99999;t=" . main::month_left() . "\\b"
--- no_error_log
[alert]



=== TEST 8: README, a monthly quota beside a per-second rate: the quota used up, rejected until the month's end
--- init
main::fill_month('monthly-2', 99_999);
--- more_headers
X-API-Key: monthly-2
--- pipelined_requests eval
["GET /api/a", "GET /api/a"]
--- error_code eval
[200, 429]
--- response_headers_like eval
["X-RL: PASSED", "X-Zone: monthly"]
--- raw_response_headers_like eval
[".*", "Retry-After: " . main::month_left() . "\\b"]
--- error_log
limiting requests by zone "monthly"
--- no_error_log
[alert]



=== TEST 9: weeks: rate=Nr/w is 604800 s
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone weekly key=$arg_k rate=3r/w algorithm=fixed_window;
    rate_limit_zone weekly_gcra key=$arg_k rate=3r/w;
--- config
    location = /t {
        rate_limit weekly;
        rate_limit weekly_gcra;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- request
GET /t?k=w
--- error_code: 200
--- response_headers
X-RL: PASSED
RateLimit-Policy: "weekly";q=3;w=604800, "weekly_gcra";q=3;w=604800
--- no_error_log
[alert]



=== TEST 10: README, an LLM API metered in tokens: admitted by a cost of 1, charged the tokens the upstream reports; the debt rejects until repaid
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;

    # 1000 tokens a minute, up to 1000 at once
    rate_limit_zone llm key=$http_x_api_key rate=1000r/m burst=1000
                        algorithm=token_bucket;

    upstream llm_backend {
        server 127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
--- config
    location /v1/ {
        rate_limit llm cost=1;
        rate_limit_charge llm $upstream_http_x_tokens;
        add_header X-RL $rate_limit_status always;
        add_header X-Rem $rate_limit_remaining always;
        proxy_pass http://llm_backend/backend/;
    }
    # the model: says in X-Tokens what the request used
    location /backend/ {
        add_header X-Tokens $arg_tokens;
        empty_gif;
    }
--- init
main::flush();
--- more_headers
X-API-Key: llm-1
--- pipelined_requests eval
["GET /v1/chat?tokens=900", "GET /v1/chat?tokens=500",
 "GET /v1/chat?tokens=1"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-RL: PASSED\nX-Rem: 999\nX-Tokens: 900", "X-RL: PASSED\nX-Rem: 98",
 "X-RL: REJECTED\nX-Rem: 0\nRetry-After: 25"]
--- error_log
limiting requests by zone "llm", retry after 25 s
--- no_error_log
rate_limit_charge
[alert]



=== TEST 11: a charge of 0, an empty one and one that is no integer take nothing; the last is logged with zone and value
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone llm key=$arg_k rate=10r/m algorithm=fixed_window;
--- config
    location = /t {
        rate_limit llm;
        rate_limit_charge llm $arg_t;
        add_header X-Rem $rate_limit_remaining always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t?k=z&t=0", "GET /t?k=z", "GET /t?k=z&t=abc", "GET /t?k=z&t=2",
 "GET /t?k=z"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
["X-Rem: 9", "X-Rem: 8", "X-Rem: 7", "X-Rem: 6", "X-Rem: 3"]
--- error_log
rate_limit_charge: zone "llm": invalid charge "abc", not an integer in 0..9007199254740992
--- no_error_log
[alert]



=== TEST 11b: a key in debt is rejected by Redis, then by the deny cache, never for longer than Redis would
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone g key=$arg_k rate=60r/m burst=2;
--- config
    location = /t {
        rate_limit g;
        rate_limit_charge g $arg_t;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::flush();
--- pipelined_requests eval
["GET /t?k=debt&t=10", "GET /t?k=debt", "GET /t?k=debt"]
--- error_code eval
[200, 429, 429]
--- raw_response_headers_like eval
["X-RL: PASSED", "Retry-After: 9\r\n", "Retry-After: [1-9]\r\n"]
--- error_log eval
[qr/limiting requests by zone "g", retry after 9 s,/,
 qr/limiting requests by zone "g", retry after [1-9] s \(deny cache\)/]
--- no_error_log
[alert]



=== TEST 12: a charge that cannot be sent (Redis down) is counted and logged, and changes nothing of the response
--- http_config
    rate_limit_redis 127.0.0.1:1 connect_timeout=100ms;
    rate_limit_zone llm key=$arg_k rate=10r/m;
--- config
    location = /t {
        rate_limit_charge llm 5;
        empty_gif;
    }
--- pipelined_requests eval
["GET /t?k=a", "GET /t?k=a"]
--- error_code eval
[200, 200]
--- wait: 0.2
--- error_log eval
qr/rate_limit_charge: not taken \((?:redis down|connection lost)\), \d+ charges not taken by this worker so far/
--- no_error_log
[alert]



=== TEST 13: nginx -t: a cost above the zone's limit, named before the zone
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit a cost=6;
rate_limit_zone a key=$remote_addr rate=10r/s burst=4;
--- error_log eval
main::emerg('rate_limit "a": cost 6 is out of range, must be between 0 and 5 (the zone\'s limit)', 2)



=== TEST 14: nginx -t: a cost that is not an integer
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=10r/s;
rate_limit a cost=1.5;
--- error_log eval
main::emerg('invalid cost "1.5", must be an integer between 0 and 9007199254740992', 3)



=== TEST 15: nginx -t: a cost above 2^53
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=10r/s;
rate_limit a cost=9007199254740993;
--- error_log eval
main::emerg('invalid cost "9007199254740993", must be an integer between 0 and 9007199254740992', 3)



=== TEST 16: nginx -t: an unknown parameter of rate_limit
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=10r/s;
rate_limit a weight=2;
--- error_log eval
main::emerg('invalid parameter "weight=2"', 3)



=== TEST 17: nginx -t: rate_limit off takes no cost
--- user_files
>>> limits.conf
rate_limit off cost=1;
--- error_log eval
main::emerg('"rate_limit" directive "off" takes no parameters', 1)



=== TEST 18: nginx -t: calendar months only with fixed_window
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=100r/M algorithm=sliding_window;
--- error_log eval
main::emerg('rate "100r/M" counts calendar months, which only algorithm=fixed_window takes, not algorithm=sliding_window', 2)



=== TEST 19: nginx -t: calendar months with the default algorithm
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=100r/M;
--- error_log eval
main::emerg('rate "100r/M" counts calendar months, which only algorithm=fixed_window takes, not algorithm=gcra', 2)



=== TEST 20: nginx -t: rate_limit_charge on a sliding_log zone
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=100r/m algorithm=sliding_log;
rate_limit_charge a $upstream_http_x_tokens;
--- error_log eval
main::emerg('rate_limit_charge "a": algorithm=sliding_log takes no charges', 3)



=== TEST 21: nginx -t: a charge that is not an integer
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=100r/m;
rate_limit_charge a lots;
--- error_log eval
main::emerg('invalid charge "lots", must be an integer between 0 and 9007199254740992', 3)



=== TEST 22: nginx -t: rate_limit_charge of an unknown zone
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_charge nosuch 1;
--- error_log eval
qr/\[emerg\] .*unknown rate_limit zone "nosuch" in \S+\/html\/limits\.conf:2/



=== TEST 23: nginx -t: a bad zone name for rate_limit_charge
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_charge a.b 1;
--- error_log eval
main::emerg('invalid zone name "a.b"', 2)
