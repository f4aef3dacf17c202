# Directives: every configuration error nginx -t reports (the message and
# the file and line it names), the defaults, settings and rate_limit lists
# inherited from outer levels.
#
# The configurations that must fail are written into files of user_files
# and included, so that the line an error names is known exactly: the
# runner's own nginx.conf puts the test's lines at numbers of its choosing.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(redis);

# The blocks that make requests count them against one Redis (a second
# round would find the first one's counts): one round.
repeat_each(1);

plan tests => repeat_each() * (blocks() * 3 + 91);

no_long_string();

# Requests of one block are pipelined on one connection and the error log
# is read whole: the runner checks it after every response, and a line
# that only a later request writes would otherwise be missing at the first
# check.
check_accum_error_log();

# The [emerg] line of MSG naming line LINE of html/FILE.conf.
sub emerg {
    my ($msg, $file, $line) = @_;
    return qr/\[emerg\] \d+#\d+: \Q$msg\E in \S+\/html\/\Q$file\E\.conf:$line$/;
}

# A gcra key whose next request is an hour away (burst 0).
sub block_gcra_key {
    my ($r, $key) = @_;
    my $t = $r->cmd('TIME');
    my $now = $t->[0] * 1_000_000 + $t->[1];
    $r->cmd('SET', $key, $now + 3_600_000_000, 'PX', 3_600_000);
}

# A block with no http_config of its own is a configuration that nginx
# must refuse: its user file html/limits.conf is included at the http
# level beside one plain location, nginx -t must fail (its stderr
# suppressed: the error log is what the block checks), and no [alert]
# may be logged unless the block says otherwise.
add_block_preprocessor(sub {
    my $block = shift;

    return if defined $block->http_config;

    $block->set_value('http_config', "    include ../html/limits.conf;\n");
    $block->set_value('config', "    location = /t { empty_gif; }\n")
        unless defined $block->config;
    $block->set_value('must_die', '');
    $block->set_value('suppress_stderr', '');
    $block->set_value('no_error_log', "[alert]\n")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST: zones may be named before they are defined, rate_limit_redis may come last
--- http_config
    rate_limit early;
    rate_limit_zone early key=$remote_addr rate=10r/s burst=5;
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /t {
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- request
GET /t
--- error_code: 200
--- response_headers
X-RL: PASSED
RateLimit-Policy: "early";q=10;w=1
RateLimit: "early";r=5;t=1
X-RateLimit-Limit: 6
X-RateLimit-Remaining: 5
X-RateLimit-Reset: 1
--- no_error_log
[error]
[alert]



=== TEST: defaults: status 429, headers on, dry run off, rejections logged at error
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone d key=$remote_addr rate=1r/m;
--- config
    location = /t {
        rate_limit d;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /t", "GET /t"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED\nRateLimit-Policy: \"d\";q=1;w=60\nRateLimit: \"d\";r=0;t=60\n!Retry-After",
 "X-RL: REJECTED\nRateLimit-Policy: \"d\";q=1;w=60\nRateLimit: \"d\";r=0;t=60\nRetry-After: 60"]
--- error_log eval
qr/\[error\] \d+#\d+: \*\d+ limiting requests by zone "d", retry after 60 s, client: /
--- no_error_log
[alert]



=== TEST: default fail_open on: Redis unreachable, the request passes with ERROR
--- http_config
    rate_limit_redis unix:/nonexistent/redis.sock;
    rate_limit_zone d key=$remote_addr rate=1r/m;
--- config
    location = /t {
        rate_limit d;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t
--- error_code: 200
--- response_headers
X-RL: ERROR
!RateLimit-Policy
!RateLimit
!Retry-After
--- error_log
rate_limit: cannot connect to redis "unix:/nonexistent/redis.sock"
--- no_error_log
[alert]



=== TEST: settings are inherited from http and server and replaced in a location
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone per_uri key=$uri rate=1r/m;
    rate_limit_status 503;
    rate_limit_headers off;
    rate_limit_log_level info;
    rate_limit_dry_run on;
    rate_limit_fail_open off;
--- config
    rate_limit_status 420;
    rate_limit_log_level warn;
    rate_limit_dry_run off;

    location = /inherit {
        rate_limit per_uri;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }

    location = /own {
        rate_limit per_uri;
        rate_limit_status 503;
        rate_limit_headers on;
        rate_limit_log_level notice;
        rate_limit_fail_open on;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- pipelined_requests eval
["GET /inherit", "GET /inherit", "GET /own", "GET /own"]
--- error_code eval
[200, 420, 200, 503]
--- response_headers eval
["X-RL: PASSED\n!RateLimit-Policy\n!X-RateLimit-Remaining\n!Retry-After",
 "X-RL: REJECTED\n!RateLimit-Policy\n!X-RateLimit-Remaining\nRetry-After: 60",
 "X-RL: PASSED\nRateLimit-Policy: \"per_uri\";q=1;w=60\nX-RateLimit-Remaining: 0\n!Retry-After",
 "X-RL: REJECTED\nRateLimit-Policy: \"per_uri\";q=1;w=60\nX-RateLimit-Remaining: 0\nRetry-After: 60"]
--- error_log eval
[qr/\[warn\] \d+#\d+: \*\d+ limiting requests by zone "per_uri", retry after 60 s, client: .*, request: "GET \/inherit /,
 qr/\[notice\] \d+#\d+: \*\d+ limiting requests by zone "per_uri", retry after 60 s, client: .*, request: "GET \/own /]
--- no_error_log
[error]
[alert]



=== TEST: an http-level rate_limit list is inherited; a level with its own replaces it; off inherits nothing
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone h key=$remote_addr rate=100r/s;
    rate_limit_zone o key=$remote_addr rate=200r/m burst=10;
    rate_limit h;
--- config
    location = /inherit {
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }

    location = /own {
        rate_limit o;
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }

    location = /order {
        rate_limit o;
        rate_limit h;
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }

    location = /off {
        rate_limit off;
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- request eval
["GET /inherit", "GET /own", "GET /order", "GET /off"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-RL: [PASSED]\nRateLimit-Policy: \"h\";q=100;w=1",
 "X-RL: [PASSED]\nRateLimit-Policy: \"o\";q=200;w=60",
 "X-RL: [PASSED]\nRateLimit-Policy: \"o\";q=200;w=60, \"h\";q=100;w=1",
 "X-RL: []\n!RateLimit-Policy\n!RateLimit\n!X-RateLimit-Limit"]
--- no_error_log
[error]
[alert]



=== TEST: a server-level rate_limit list replaces the http one for its locations
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone h key=$remote_addr rate=100r/s;
    rate_limit_zone s key=$remote_addr rate=300r/h;
    rate_limit h;
--- config
    rate_limit s;

    location = /inherit {
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }

    location = /own {
        rate_limit h;
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }

    location = /off {
        rate_limit off;
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- request eval
["GET /inherit", "GET /own", "GET /off"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-RL: [PASSED]\nRateLimit-Policy: \"s\";q=300;w=3600",
 "X-RL: [PASSED]\nRateLimit-Policy: \"h\";q=100;w=1",
 "X-RL: []\n!RateLimit-Policy"]
--- no_error_log
[error]
[alert]



=== TEST: rate_limit_redis with every parameter: db= selects the database
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=3 connect_timeout=2s
                     timeout=1s connections=2 max_pending=10;
    rate_limit_zone db key=client rate=1r/m;
--- config
    location = /t {
        rate_limit db;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
my $r = main::redis();
$r->cmd('FLUSHALL');
$r->cmd('SELECT', 3);
main::block_gcra_key($r, 'rl:{db:client}:g');
--- request
GET /t
--- error_code: 429
--- response_headers
X-RL: REJECTED
Retry-After: 3600
--- error_log
limiting requests by zone "db", retry after 3600 s
--- no_error_log
[alert]



=== TEST: a unix socket address
--- http_config
    rate_limit_redis unix:$TEST_NGINX_REDIS_SOCKET;
    rate_limit_zone u key=$remote_addr rate=10r/m burst=3;
--- config
    location = /t {
        rate_limit u;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- request
GET /t
--- error_code: 200
--- response_headers
X-RL: PASSED
RateLimit: "u";r=3;t=6
--- no_error_log
[error]
[alert]



=== TEST: a configuration error in the generated nginx.conf names that file
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /t {
        rate_limit nope;
        empty_gif;
    }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] \d+#\d+: unknown rate_limit zone "nope" in \S+\/conf\/nginx\.conf:\d+$/
--- no_error_log
[alert]



=== TEST: unknown zone: rate_limit at http level and no rate_limit_zone at all
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit nope;
--- error_log eval
main::emerg('unknown rate_limit zone "nope"', 'limits', 2)



=== TEST: unknown zone: a misspelt name in a location, reported with the using line
--- http_config
    include ../html/limits.conf;
--- config
    include ../html/locations.conf;
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone per_ip key=$binary_remote_addr rate=10r/s;
>>> locations.conf
location = /t {
    rate_limit per-ip;
    empty_gif;
}
--- must_die
--- suppress_stderr
--- error_log eval
main::emerg('unknown rate_limit zone "per-ip"', 'locations', 2)
--- no_error_log
[alert]



=== TEST: unknown zone used twice: the first use is reported
--- http_config
    include ../html/limits.conf;
--- config
    include ../html/locations.conf;
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;

rate_limit_zone a key=$remote_addr rate=1r/s;
>>> locations.conf
location = /t {
    rate_limit a;
    rate_limit b;
    empty_gif;
}
location = /u {
    rate_limit b;
    empty_gif;
}
--- must_die
--- suppress_stderr
--- error_log eval
main::emerg('unknown rate_limit zone "b"', 'locations', 3)
--- no_error_log
[alert]



=== TEST: duplicate zone
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s;
rate_limit_zone a key=$remote_addr rate=2r/s;
--- error_log eval
main::emerg('duplicate zone "a"', 'limits', 3)



=== TEST: bad zone name: a dot
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a.b key=$remote_addr rate=1r/s;
--- error_log eval
main::emerg('invalid zone name "a.b", must be 1-64 of "A-Za-z0-9_-" and not "off"', 'limits', 2)



=== TEST: bad zone name: "off", which rate_limit could never apply
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone off key=$remote_addr rate=1r/s;
--- error_log eval
main::emerg('invalid zone name "off", must be 1-64 of "A-Za-z0-9_-" and not "off"', 'limits', 2)



=== TEST: bad zone name: 65 bytes
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz key=$remote_addr rate=1r/s;
--- error_log eval
main::emerg('invalid zone name "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", must be 1-64 of "A-Za-z0-9_-" and not "off"', 'limits', 2)



=== TEST: bad zone name in rate_limit
--- http_config
    include ../html/limits.conf;
--- config
    include ../html/locations.conf;
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s;
>>> locations.conf
location = /t {
    rate_limit a:b;
    empty_gif;
}
--- must_die
--- suppress_stderr
--- error_log eval
main::emerg('invalid zone name "a:b"', 'locations', 2)
--- no_error_log
[alert]



=== TEST: bad rate: no "r"
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=10/s;
--- error_log eval
main::emerg('invalid rate "10/s", must be like "10r/s", "r/m", "r/h", "r/d", "r/w" or "r/M"', 'limits', 2)



=== TEST: bad rate: unknown period
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=10r/y;
--- error_log eval
main::emerg('invalid rate "10r/y", must be like "10r/s", "r/m", "r/h", "r/d", "r/w" or "r/M"', 'limits', 2)



=== TEST: bad rate: no number
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=r/s;
--- error_log eval
main::emerg('invalid rate "r/s", must be like "10r/s", "r/m", "r/h", "r/d", "r/w" or "r/M"', 'limits', 2)



=== TEST: bad rate: N = 0
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=0r/m;
--- error_log eval
main::emerg('rate "0r/m" is out of range: N must be between 1 and 1000000000', 'limits', 2)



=== TEST: rate out of range: N above 10^9
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1000000001r/d;
--- error_log eval
main::emerg('rate "1000000001r/d" is out of range: N must be between 1 and 1000000000', 'limits', 2)



=== TEST: rate out of range: more than one request per microsecond
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1000001r/s;
--- error_log eval
main::emerg('rate "1000001r/s" is out of range: N must not exceed 1000000 for r/s (one request per microsecond)', 'limits', 2)



=== TEST: burst with fixed_window
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s burst=5 algorithm=fixed_window;
--- error_log eval
main::emerg('"burst" is not allowed with algorithm=fixed_window', 'limits', 2)



=== TEST: burst with sliding_window, given before the algorithm
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr burst=0 rate=1r/s algorithm=sliding_window;
--- error_log eval
main::emerg('"burst" is not allowed with algorithm=sliding_window', 'limits', 2)



=== TEST: burst with sliding_log
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr algorithm=sliding_log rate=1r/s burst=1;
--- error_log eval
main::emerg('"burst" is not allowed with algorithm=sliding_log', 'limits', 2)



=== TEST: bad burst: not a number
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s burst=ten;
--- error_log eval
main::emerg('invalid burst value "ten", must be between 0 and 1000000000', 'limits', 2)



=== TEST: bad burst: negative
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s burst=-1;
--- error_log eval
main::emerg('invalid burst value "-1", must be between 0 and 1000000000', 'limits', 2)



=== TEST: bad burst: empty
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s burst=;
--- error_log eval
main::emerg('invalid burst value "", must be between 0 and 1000000000', 'limits', 2)



=== TEST: burst out of range: above 10^9
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s burst=1000000001;
--- error_log eval
main::emerg('burst=1000000001 is out of range: burst must not exceed 1000000000', 'limits', 2)



=== TEST: gcra burst out of range for the rate: (burst + 1) * T above 10^15 us
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/d burst=11574;
--- error_log eval
main::emerg('burst=11574 is out of range for rate "1r/d": burst must not exceed 11573, as (burst + 1) * 86400000000 us (the emission interval) must not exceed 10^15 us', 'limits', 2)



=== TEST: unknown algorithm
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s algorithm=leaky_bucket;
--- error_log eval
main::emerg('unknown algorithm "leaky_bucket"', 'limits', 2)



=== TEST: token_bucket: burst=0 is no capacity
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s burst=0 algorithm=token_bucket;
--- error_log eval
main::emerg('burst=0 is out of range: the capacity of algorithm=token_bucket must be at least 1', 'limits', 2)



=== TEST: token_bucket: the default capacity N out of range
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=52125r/d algorithm=token_bucket;
--- error_log eval
main::emerg('rate "52125r/d" is out of range for algorithm=token_bucket: the capacity (burst, N by default) must not exceed 52124, as capacity * 86400000000 us (the period) must not exceed 2^52; set a smaller burst', 'limits', 2)



=== TEST: token_bucket: burst out of range for the period
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/d burst=52125 algorithm=token_bucket;
--- error_log eval
main::emerg('burst=52125 is out of range for rate "1r/d": burst must not exceed 52124, as burst * 86400000000 us (the period) must not exceed 2^52 with algorithm=token_bucket', 'limits', 2)



=== TEST: sliding_window: N out of range for the period
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=52125r/d algorithm=sliding_window;
--- error_log eval
main::emerg('rate "52125r/d" is out of range for algorithm=sliding_window: N must not exceed 52124 for r/d, as N * 86400000000 us (the period) must not exceed 2^52', 'limits', 2)



=== TEST: sliding_log: N out of range
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1000001r/h algorithm=sliding_log;
--- error_log eval
main::emerg('rate "1000001r/h" is out of range for algorithm=sliding_log: N must not exceed 1000000 (the requests kept per key)', 'limits', 2)



=== TEST: missing key=
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a rate=1r/s burst=2;
--- error_log eval
main::emerg('zone "a" must have "key" parameter', 'limits', 2)



=== TEST: missing rate=
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr burst=2;
--- error_log eval
main::emerg('zone "a" must have "rate" parameter', 'limits', 2)



=== TEST: unknown parameter of rate_limit_zone
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s nodelay;
--- error_log eval
main::emerg('invalid parameter "nodelay"', 'limits', 2)



=== TEST: bad cache size
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s cache=big;
--- error_log eval
main::emerg('invalid cache size "big", must be between 0 and 1000000', 'limits', 2)



=== TEST: bad prefix: an opening brace
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s "prefix=rl{x";
--- error_log eval
main::emerg('invalid prefix "rl{x", must be 1-64 bytes without "{", "}", spaces or control characters', 'limits', 2)



=== TEST: bad prefix: a closing brace
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s "prefix=rl}";
--- error_log eval
main::emerg('invalid prefix "rl}", must be 1-64 bytes without "{", "}", spaces or control characters', 'limits', 2)



=== TEST: bad prefix: empty
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s prefix=;
--- error_log eval
main::emerg('invalid prefix "", must be 1-64 bytes without "{", "}", spaces or control characters', 'limits', 2)



=== TEST: rate_limit with no rate_limit_redis: the first use is reported
--- http_config
    include ../html/limits.conf;
--- config
    include ../html/locations.conf;
--- user_files
>>> limits.conf
rate_limit_zone a key=$remote_addr rate=1r/s;
>>> locations.conf
location = /t {
    rate_limit a;
    empty_gif;
}
location = /u {
    rate_limit a;
    empty_gif;
}
--- must_die
--- suppress_stderr
--- error_log eval
main::emerg('"rate_limit" requires "rate_limit_redis"', 'locations', 2)
--- no_error_log
[alert]



=== TEST: bad address: port out of range
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:65536;
--- error_log eval
main::emerg('invalid port in redis address "127.0.0.1:65536"', 'limits', 1)



=== TEST: bad address: unix socket without a path
--- user_files
>>> limits.conf
rate_limit_redis unix:;
--- error_log eval
main::emerg('no path in the unix domain socket in redis address "unix:"', 'limits', 1)



=== TEST: bad db: not a number
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 db=one;
--- error_log eval
main::emerg('invalid db "db=one", must be between 0 and 2147483647', 'limits', 1)



=== TEST: bad db: negative
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 db=-1;
--- error_log eval
main::emerg('invalid db "db=-1", must be between 0 and 2147483647', 'limits', 1)



=== TEST: bad timeout: not a time
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 timeout=fast;
--- error_log eval
main::emerg('invalid timeout "timeout=fast", must be between 1ms and 1h', 'limits', 1)



=== TEST: bad timeout: zero
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 timeout=0ms;
--- error_log eval
main::emerg('invalid timeout "timeout=0ms", must be between 1ms and 1h', 'limits', 1)



=== TEST: bad connect_timeout: zero
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 connect_timeout=0;
--- error_log eval
main::emerg('invalid connect_timeout "connect_timeout=0", must be between 1ms and 1h', 'limits', 1)



=== TEST: bad connections: zero
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 connections=0;
--- error_log eval
main::emerg('invalid connections "connections=0", must be between 1 and 64', 'limits', 1)



=== TEST: bad connections: above the bound
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 connections=65;
--- error_log eval
main::emerg('invalid connections "connections=65", must be between 1 and 64', 'limits', 1)



=== TEST: unknown parameter of rate_limit_redis
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379
                 timeout=50ms pool=8;
--- error_log eval
main::emerg('invalid parameter "pool="', 'limits', 2)



=== TEST: a misspelt password parameter: named without its value
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 pasword=rl-secret-value;
--- error_log eval
main::emerg('invalid parameter "pasword="', 'limits', 1)
--- no_error_log
[alert]
rl-secret-value



=== TEST: duplicate rate_limit_redis
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_redis 127.0.0.1:6380;
--- error_log eval
main::emerg('"rate_limit_redis" directive is duplicate', 'limits', 2)



=== TEST: rate_limit_redis is not allowed in a server
--- http_config
    include ../html/limits.conf;
--- config
    include ../html/locations.conf;
--- user_files
>>> limits.conf
rate_limit_zone a key=$remote_addr rate=1r/s;
>>> locations.conf
rate_limit_redis 127.0.0.1:6379;
--- must_die
--- suppress_stderr
--- error_log eval
main::emerg('"rate_limit_redis" directive is not allowed here', 'locations', 1)
--- no_error_log
[alert]



=== TEST: rate_limit_zone is not allowed in a location
--- http_config
    include ../html/limits.conf;
--- config
    include ../html/locations.conf;
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
>>> locations.conf
location = /t {
    rate_limit_zone a key=$remote_addr rate=1r/s;
}
--- must_die
--- suppress_stderr
--- error_log eval
main::emerg('"rate_limit_zone" directive is not allowed here', 'locations', 2)
--- no_error_log
[alert]



=== TEST: bad status: 399
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_status 399;
--- error_log eval
main::emerg('"rate_limit_status" directive must be between 400 and 599, except 401, 403, 408, 444 and 499', 'limits', 2)



=== TEST: bad status: 600
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_status 600;
--- error_log eval
main::emerg('"rate_limit_status" directive must be between 400 and 599, except 401, 403, 408, 444 and 499', 'limits', 2)



=== TEST: bad status: 401
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_status 401;
--- error_log eval
main::emerg('"rate_limit_status" directive must be between 400 and 599, except 401, 403, 408, 444 and 499', 'limits', 2)



=== TEST: bad status: 403
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_status 403;
--- error_log eval
main::emerg('"rate_limit_status" directive must be between 400 and 599, except 401, 403, 408, 444 and 499', 'limits', 2)



=== TEST: bad status: not a number
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_status too_many;
--- error_log eval
main::emerg('"rate_limit_status" directive invalid number', 'limits', 2)



=== TEST: bad log level
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_log_level debug;
--- error_log eval
main::emerg('invalid value "debug"', 'limits', 2)



=== TEST: rate_limit off after a zone at one level
--- http_config
    include ../html/limits.conf;
--- config
    include ../html/locations.conf;
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s;
>>> locations.conf
location = /t {
    rate_limit a;
    rate_limit off;
    empty_gif;
}
--- must_die
--- suppress_stderr
--- error_log eval
main::emerg('"rate_limit" directive "off" cannot be combined with zones at one level', 'locations', 3)
--- no_error_log
[alert]



=== TEST: a zone after rate_limit off at one level
--- http_config
    include ../html/limits.conf;
--- config
    include ../html/locations.conf;
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s;
>>> locations.conf
rate_limit off;
rate_limit a;
--- must_die
--- suppress_stderr
--- error_log eval
main::emerg('"rate_limit" directive "off" cannot be combined with zones at one level', 'locations', 2)
--- no_error_log
[alert]



=== TEST: the same zone twice at one level
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s;
rate_limit a;
rate_limit a;
--- error_log eval
main::emerg('"rate_limit" directive is duplicate', 'limits', 4)



=== TEST: cache above the bound: 2000000000 would kill every worker at start
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s cache=2000000000;
--- error_log eval
main::emerg('invalid cache size "2000000000", must be between 0 and 1000000', 'limits', 2)



=== TEST: cache one above the bound
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s cache=1000001;
--- error_log eval
main::emerg('invalid cache size "1000001", must be between 0 and 1000000', 'limits', 2)



=== TEST: cache too large for a number
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s cache=99999999999999999999999;
--- error_log eval
main::emerg('invalid cache size "99999999999999999999999", must be between 0 and 1000000', 'limits', 2)



=== TEST: empty key=
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key= rate=1r/s;
--- error_log eval
main::emerg('empty key in "key="', 'limits', 2)



=== TEST: burst too large for a number
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=1r/s burst=99999999999999999999999;
--- error_log eval
main::emerg('invalid burst value "99999999999999999999999", must be between 0 and 1000000000', 'limits', 2)



=== TEST: rate N too large for a number
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_zone a key=$remote_addr rate=99999999999999999999999r/d;
--- error_log eval
main::emerg('rate "99999999999999999999999r/d" is out of range: N must be between 1 and 1000000000', 'limits', 2)



=== TEST: bad db: above the bound
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 db=2147483648;
--- error_log eval
main::emerg('invalid db "db=2147483648", must be between 0 and 2147483647', 'limits', 1)



=== TEST: bad timeout: above the bound
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 timeout=3601s;
--- error_log eval
main::emerg('invalid timeout "timeout=3601s", must be between 1ms and 1h', 'limits', 1)



=== TEST: bad connect_timeout: above the bound
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 connect_timeout=2h;
--- error_log eval
main::emerg('invalid connect_timeout "connect_timeout=2h", must be between 1ms and 1h', 'limits', 1)



=== TEST: bad address: port 0
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:0;
--- error_log eval
main::emerg('invalid port in redis address "127.0.0.1:0"', 'limits', 1)



=== TEST: bad connections: too large for a number
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 connections=99999999999999999999999;
--- error_log eval
main::emerg('invalid connections "connections=99999999999999999999999", must be between 1 and 64', 'limits', 1)



=== TEST: bad status: 408, which NGINX treats as the client's failure
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_status 408;
--- error_log eval
main::emerg('"rate_limit_status" directive must be between 400 and 599, except 401, 403, 408, 444 and 499', 'limits', 2)



=== TEST: bad status: 444, which NGINX treats as the client's failure
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_status 444;
--- error_log eval
main::emerg('"rate_limit_status" directive must be between 400 and 599, except 401, 403, 408, 444 and 499', 'limits', 2)



=== TEST: bad status: 499, which NGINX treats as the client's failure
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379;
rate_limit_status 499;
--- error_log eval
main::emerg('"rate_limit_status" directive must be between 400 and 599, except 401, 403, 408, 444 and 499', 'limits', 2)



=== TEST: the largest values are accepted: cache=1000000, timeouts of 1h
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT connect_timeout=1h
                     timeout=1h connections=8;
    rate_limit_zone big key=$arg_k rate=1000000000r/d burst=1000000000
                    cache=1000000;
    rate_limit_zone off0 key=$arg_k rate=10r/s cache=0;
--- config
    location = /t {
        rate_limit big;
        rate_limit off0;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t?k=largest
--- error_code: 200
--- response_headers
X-RL: PASSED
--- no_error_log
[alert]
[emerg]



=== TEST: bad max_pending: zero
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 max_pending=0;
--- error_log eval
main::emerg('invalid max_pending "max_pending=0", must be between 1 and 1000000', 'limits', 1)



=== TEST: bad max_pending: above the bound
--- user_files
>>> limits.conf
rate_limit_redis 127.0.0.1:6379 max_pending=1000001;
--- error_log eval
main::emerg('invalid max_pending "max_pending=1000001", must be between 1 and 1000000', 'limits', 1)
