# Concurrency zones at nginx -t: what rate_limit_zone ... concurrency=N
# refuses (file, line and what is wrong), and the fields a passed request
# of a concurrency zone carries.

use Test::Nginx::Socket;
use Test::RateLimit::Helpers qw(redis);

repeat_each(1);

plan tests => repeat_each() * (blocks() * 3 + 3);

no_long_string();

# A block with a "--- zone" section is a zone line nginx must refuse: it
# goes into html/limits.conf, included at the http level, and the
# "--- emerg" message must name line 2 of that file.
add_block_preprocessor(sub {
    my $block = shift;

    return unless defined $block->zone;

    my ($zone) = $block->zone =~ /^(.*?)\s*$/s;
    my ($msg) = $block->emerg =~ /^(.*?)\s*$/s;
    $block->set_value('user_files', ">>> limits.conf\n"
        . "rate_limit_redis 127.0.0.1:6379;\n"
        . "rate_limit_zone c key=\$remote_addr $zone;\n");
    $block->set_value('http_config', "    include ../html/limits.conf;\n");
    $block->set_value('config', "    location = /t { empty_gif; }\n");
    $block->set_value('must_die', '');
    $block->set_value('suppress_stderr', '');
    $block->set_value('error_log',
        qr/\[emerg\] \d+#\d+: \Q$msg\E in \S+\/html\/limits\.conf:2$/);
    $block->set_value('no_error_log', "[alert]\n");
});

run_tests();

__DATA__

=== TEST: concurrency with rate=
--- zone
concurrency=3 rate=10r/s
--- emerg
"rate" is not allowed with "concurrency" in zone "c"



=== TEST: concurrency with burst=
--- zone
burst=2 concurrency=3
--- emerg
"burst" is not allowed with "concurrency" in zone "c"



=== TEST: concurrency with algorithm=
--- zone
concurrency=3 algorithm=gcra
--- emerg
"algorithm" is not allowed with "concurrency" in zone "c"



=== TEST: concurrency with cache=
--- zone
concurrency=3 cache=100
--- emerg
"cache" is not allowed with "concurrency" in zone "c"



=== TEST: algorithm=concurrency is not a name
--- zone
rate=1r/s algorithm=concurrency
--- emerg
unknown algorithm "concurrency"



=== TEST: concurrency=0
--- zone
concurrency=0
--- emerg
invalid concurrency "0", must be between 1 and 1000000



=== TEST: concurrency too large
--- zone
concurrency=1000001
--- emerg
invalid concurrency "1000001", must be between 1 and 1000000



=== TEST: lease in milliseconds
--- zone
concurrency=3 lease=500ms
--- emerg
invalid lease "500ms", must be whole seconds between 1s and 3600s (1h)



=== TEST: lease of 0
--- zone
concurrency=3 lease=0
--- emerg
invalid lease "0", must be whole seconds between 1s and 3600s (1h)



=== TEST: lease over an hour
--- zone
concurrency=3 lease=61m
--- emerg
invalid lease "61m", must be whole seconds between 1s and 3600s (1h)



=== TEST: lease without concurrency
--- zone
rate=1r/s lease=10s
--- emerg
"lease" needs "concurrency" in zone "c"



=== TEST: concurrency with delay=
--- zone
concurrency=3 delay=1
--- emerg
"delay" is not allowed with "concurrency" in zone "c"



=== TEST: a rate as the fallback of a concurrency zone
--- zone
concurrency=3 fallback=10r/s
--- emerg
invalid fallback in zone "c", must be a count like "10" (a rate is for rate zones)



=== TEST: a fallback count of 0
--- zone
concurrency=3 fallback=0
--- emerg
fallback "0" is out of range: N must be between 1 and 1000000



=== TEST: a count as the fallback of a rate zone
--- zone
rate=10r/s fallback=2
--- emerg
invalid fallback rate in zone "c", must be like "10r/s" (a number alone is for concurrency zones)



=== TEST: cost= on a concurrency zone
--- http_config
    rate_limit_redis 127.0.0.1:6379;
    rate_limit_zone c key=$remote_addr concurrency=3;
--- config
    location = /t {
        rate_limit c cost=2;
        empty_gif;
    }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] \d+#\d+: rate_limit "c": a concurrency zone takes no cost in \S+nginx\.conf:\d+$/
--- no_error_log
[alert]



=== TEST: rate_limit_charge on a concurrency zone
--- http_config
    rate_limit_redis 127.0.0.1:6379;
    rate_limit_zone c key=$remote_addr concurrency=3;
--- config
    location = /t {
        rate_limit_charge c 5;
        empty_gif;
    }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] \d+#\d+: rate_limit_charge "c": a concurrency zone takes no charges in \S+nginx\.conf:\d+$/
--- no_error_log
[alert]



=== TEST: a passed request: the policy item has qu and no w, RateLimit no t
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_headers on;
    rate_limit_zone cc key=$arg_k concurrency=3 lease=1h prefix=conf048;
    rate_limit_zone r key=$arg_k rate=10r/m algorithm=token_bucket
        prefix=conf048;
--- config
    location = /t {
        rate_limit cc;
        rate_limit r;
        add_header X-Remaining $rate_limit_remaining always;
        empty_gif;
    }
--- init
main::redis()->cmd('FLUSHALL');
--- request
GET /t?k=one
--- error_code: 200
--- response_headers
RateLimit-Policy: "cc";q=3;qu="concurrent-requests", "r";q=10;w=60
RateLimit: "cc";r=2, "r";r=9;t=6
X-RateLimit-Limit: 3
X-RateLimit-Remaining: 2
X-Remaining: 2
