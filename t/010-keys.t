# Client keys: built from headers, query arguments, addresses, text and
# map fallbacks; an empty key leaves its zone out; any bytes are safe; long
# keys (and keys that begin with '#') are stored hashed; and the Redis key
# layout is PREFIX:{ZONE:CLIENT}:TAG[:WINDOW].
#
# A block's --- redis_keys lists what Redis must hold after its last
# request, every key exactly (a string) or by a regex; nothing else may be
# there.  Zones are generous, and the keys that are rejected are blocked
# for an hour in --- init: every round gets the same answers and leaves
# the same keys.

use Test::Nginx::Socket;
use Test::RateLimit::Redis;
use Test::RateLimit::Helpers qw(redis block_keys set_defaults);
use Digest::SHA ();

repeat_each(2);

plan tests => repeat_each() * 106;

no_long_string();

# The error log is read whole: the runner checks it after every response,
# and a rejection's line is written only by one request of several.
check_accum_error_log();

sub printable {
    my $s = shift;
    $s =~ s/([^\x21-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return $s;
}

# After the last request of a block (and of each round), Redis holds
# exactly the keys of --- redis_keys.
add_response_body_check(sub {
    my ($block, $body, $req_idx) = @_;

    my $want = $block->redis_keys;
    return unless defined $want;

    my $reqs = $block->pipelined_requests // $block->request;
    return if ref $reqs eq 'ARRAY' && $req_idx != $#$reqs;

    my @got = sort @{ redis()->cmd('KEYS', '*') };
    my @left = @got;
    my @missing;

    for my $w (@$want) {
        my $re = ref $w ? $w : qr/\A\Q$w\E\z/;
        my ($i) = grep { $left[$_] =~ $re } 0 .. $#left;
        if (defined $i) {
            splice @left, $i, 1;
        } else {
            push @missing, ref $w ? "$w" : printable($w);
        }
    }

    Test::More::ok(!@missing && !@left, $block->name . ' - redis keys')
        or Test::More::diag('missing: ', join(' ', @missing),
                            "\nunexpected: ", join(' ', map { printable($_) } @left),
                            "\nredis holds: ", join(' ', map { printable($_) } @got));
});

# block_keys(KEY...): each key's next request an hour away (with T = 6 s
# and burst=5, 30 s ahead allowed: a wait of 3570 s).

# A client key of 10 KB, not all one byte.
our $long_key = join '', map { chr(ord('a') + $_ % 26) } 0 .. 10239;

# Most blocks start from an empty Redis and log no error.
add_block_preprocessor(sub {
    set_defaults(shift,
        init => "main::redis()->cmd('FLUSHALL');\n",
        no_error_log => "[error]\n[alert]\n");
});

run_tests();

__DATA__

=== TEST 1: a key from a header
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k key=$http_x_api_key rate=100r/h burst=100;
--- config
    location = /t {
        rate_limit k;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- more_headers
X-API-Key: abc123
--- request
GET /t
--- response_headers
X-RL: PASSED
RateLimit-Policy: "k";q=100;w=3600
--- redis_keys eval
['rl:{k:abc123}:g']



=== TEST 2: an API key in the query
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k key=$arg_api_key rate=100r/h burst=100;
--- config
    location = /t {
        rate_limit k;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t?page=2&api_key=q-key-9
--- response_headers
X-RL: PASSED
--- redis_keys eval
['rl:{k:q-key-9}:g']



=== TEST 3: the client address, binary and as text
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone bin key=$binary_remote_addr rate=100r/h burst=100;
    rate_limit_zone txt key=$remote_addr rate=100r/h burst=100;
--- config
    location = /t {
        rate_limit bin;
        rate_limit txt;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t
--- response_headers
X-RL: PASSED
RateLimit-Policy: "bin";q=100;w=3600, "txt";q=100;w=3600
--- redis_keys eval
["rl:{bin:\x7f\x00\x00\x01}:g", 'rl:{txt:127.0.0.1}:g']



=== TEST 4: variables and text mixed
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k "key=user $arg_user at $uri/$http_x_tenant" rate=100r/h burst=100;
--- config
    location = /t {
        rate_limit k;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- more_headers
X-Tenant: acme
--- request
GET /t?user=bob
--- response_headers
X-RL: PASSED
--- redis_keys eval
['rl:{k:user bob at /t/acme}:g']



=== TEST 5: a map fallback: the API key, else the address
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone client key=$rl_client rate=100r/h burst=100;

    map $http_x_api_key $rl_client {
        ""       addr:$binary_remote_addr;
        default  key:$http_x_api_key;
    }
--- config
    location = /t {
        rate_limit client;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request eval
["GET /t", "GET /t"]
--- more_headers eval
["", "X-API-Key: k-77"]
--- response_headers eval
["X-RL: PASSED", "X-RL: PASSED"]
--- redis_keys eval
["rl:{client:addr:\x7f\x00\x00\x01}:g", 'rl:{client:key:k-77}:g']



=== TEST 6: an empty key: the zone does not apply, no decision, nothing in Redis
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k key=$http_x_api_key rate=1r/h;
--- config
    location = /t {
        rate_limit k;
        add_header X-RL "[$rate_limit_status]" always;
        empty_gif;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: []\n!RateLimit-Policy\n!RateLimit\n!X-RateLimit-Limit",
 "X-RL: []\n!RateLimit-Policy\n!RateLimit\n!X-RateLimit-Limit"]
--- redis_keys eval
[]



=== TEST 7: of two zones, the one with an empty key is left out of the decision and the fields
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone by_key key=$http_x_api_key rate=100r/h burst=100;
    rate_limit_zone by_ip key=$remote_addr rate=100r/m burst=100;
--- config
    location = /t {
        rate_limit by_key;
        rate_limit by_ip;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t
--- response_headers
X-RL: PASSED
RateLimit-Policy: "by_ip";q=100;w=60
--- redis_keys eval
['rl:{by_ip:127.0.0.1}:g']



=== TEST 8: bytes of every kind in a header key are one argument of the command
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k key=$http_x_key rate=100r/h burst=100;
--- config
    location = /t {
        rate_limit k;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- more_headers eval
"X-Key: a\x01b\x7f\xff\xfe{x}:y \"*3\$4\" }{ end"
--- request
GET /t
--- response_headers
X-RL: PASSED
--- redis_keys eval
["rl:{k:a\x01b\x7f\xff\xfe{x}:y \"*3\$4\" }{ end}:g"]



=== TEST 9: a raw query argument and a decoded URI as keys
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone arg key=$arg_k rate=100r/h burst=100;
    rate_limit_zone uri key=$uri rate=100r/h burst=100;
--- config
    location /t {
        rate_limit arg;
        rate_limit uri;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t%FF%7B%7D%20x?k=%00%0D%0A*1%0D%0A
--- response_headers
X-RL: PASSED
--- redis_keys eval
['rl:{arg:%00%0D%0A*1%0D%0A}:g', "rl:{uri:/t\xff{} x}:g"]



=== TEST 10: a 10 KB key works and is stored as '#' and its SHA-1
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k key=$http_x_key rate=100r/h burst=100;
--- config
    large_client_header_buffers 4 16k;

    location = /t {
        rate_limit k;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- more_headers eval
"X-Key: $main::long_key"
--- request
GET /t
--- response_headers
X-RL: PASSED
RateLimit-Policy: "k";q=100;w=3600
--- redis_keys eval
['rl:{k:#' . Digest::SHA::sha1_hex($main::long_key) . '}:g']



=== TEST 11: a key of exactly 128 bytes is kept; of 129 bytes, hashed
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k key=$http_x_key rate=100r/h burst=100;
--- config
    location = /t {
        rate_limit k;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request eval
["GET /t", "GET /t"]
--- more_headers eval
["X-Key: " . ('x' x 128), "X-Key: " . ('y' x 129)]
--- response_headers eval
["X-RL: PASSED", "X-RL: PASSED"]
--- redis_keys eval
['rl:{k:' . ('x' x 128) . '}:g', 'rl:{k:#' . Digest::SHA::sha1_hex('y' x 129) . '}:g']



=== TEST 12: a short key that begins with '#' is hashed too: it cannot pose as a hashed key
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k key=$http_x_key rate=10r/m burst=5;
--- config
    large_client_header_buffers 4 16k;

    location = /t {
        rate_limit k;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::block_keys('rl:{k:#' . Digest::SHA::sha1_hex($main::long_key) . '}:g');
--- request eval
["GET /t", "GET /t"]
--- more_headers eval
["X-Key: $main::long_key",
 "X-Key: #" . Digest::SHA::sha1_hex($main::long_key)]
--- error_code eval
[429, 200]
--- response_headers eval
["X-RL: REJECTED\nRetry-After: 3570", "X-RL: PASSED"]
--- redis_keys eval
['rl:{k:#' . Digest::SHA::sha1_hex('#' . Digest::SHA::sha1_hex($main::long_key)) . '}:g',
 'rl:{k:#' . Digest::SHA::sha1_hex($main::long_key) . '}:g']
--- error_log
limiting requests by zone "k", retry after 3570 s
--- no_error_log
[alert]



=== TEST 13: prefix= and every algorithm's tag (windows numbered after it)
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone g  key=c rate=100r/h burst=100 prefix=app:rl;
    rate_limit_zone tb key=c rate=100r/h algorithm=token_bucket;
    rate_limit_zone fw key=c rate=1000r/d algorithm=fixed_window;
    rate_limit_zone sw key=c rate=1000r/d algorithm=sliding_window prefix=x;
    rate_limit_zone sl key=c rate=1000r/h algorithm=sliding_log;
--- config
    location = /t {
        rate_limit g;
        rate_limit tb;
        rate_limit fw;
        rate_limit sw;
        rate_limit sl;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /t
--- response_headers
X-RL: PASSED
--- redis_keys eval
['app:rl:{g:c}:g', 'rl:{tb:c}:tb', qr/\Arl:\{fw:c\}:fw:\d+\z/,
 qr/\Ax:\{sw:c\}:sw:\d+\z/, 'rl:{sl:c}:sl']



=== TEST 14: the key a zone uses is where its state is: keys blocked in Redis are rejected
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone k key=$http_x_key rate=10r/m burst=5 prefix=blk;
--- config
    large_client_header_buffers 4 16k;

    location = /t {
        rate_limit k;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::block_keys("blk:{k:odd \x01 key}:g",
                     'blk:{k:#' . Digest::SHA::sha1_hex($main::long_key) . '}:g');
--- request eval
["GET /t", "GET /t", "GET /t"]
--- more_headers eval
["X-Key: odd \x01 key", "X-Key: $main::long_key", "X-Key: other"]
--- error_code eval
[429, 429, 200]
--- response_headers eval
["X-RL: REJECTED\nRetry-After: 3570", "X-RL: REJECTED\nRetry-After: 3570", "X-RL: PASSED"]
--- error_log
limiting requests by zone "k", retry after 3570 s
--- no_error_log
[alert]
