# A Redis that answers wrongly: error replies, bytes that are not RESP,
# replies of the wrong shape, errors that call for a new connection.  The
# module applies the fail policy to the request concerned and never crashes;
# BUSY, OOM and script errors fail only that request (the connection stays,
# as the fake's answer on it shows), READONLY, LOADING, MASTERDOWN, NOAUTH,
# protocol errors and replies no command asked for drop the connection and
# make a new one (the fake's next answer comes from a second connection);
# and the log says so about once a second per cause, however many requests
# fail.
#
# The fake (t/lib/Test/RateLimit/FakeRedis.pm) answers each command by its
# client key, "MODE.N": the first command with a key gets the bad answer,
# later ones a good one whose "remaining" (X-Remaining here) is the number
# of the connection that carried it for this key.

use Test::RateLimit::FakeRedis;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;

our $Before;
our $Fake = Test::RateLimit::FakeRedis->start;
$ENV{TEST_NGINX_FAKE_REDIS_PORT} = $Fake->port;

our $BadSha = Test::RateLimit::FakeRedis->start(bad_sha => 1);
$ENV{TEST_NGINX_BAD_SHA_REDIS_PORT} = $BadSha->port;

our $Mute = Test::RateLimit::FakeRedis->start(mute => 1);
$ENV{TEST_NGINX_MUTE_REDIS_PORT} = $Mute->port;

# Replies nested deeper than the shape (nested, nestedel) are protocol
# errors that drop the connection: t/037-reply-limits.t.
our @Shapes = qw(four five seven strings allowed2 retrypos overlimit negative
                 empty nil nilarray status integer);

# Every key is answered badly only the first time: the count of each
# block's requests matters, so no repetition.
repeat_each(1);

post_check_hook();

plan tests => 647;

no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('http_config', <<'_EOC_')
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FAKE_REDIS_PORT timeout=1s;
    rate_limit_zone z key=$arg_k rate=10r/s;
_EOC_
        unless defined $block->http_config;

    $block->set_value('config', <<'_EOC_')
    location = /open {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        add_header X-Remaining $rate_limit_remaining always;
        add_header X-Time $request_time always;
        empty_gif;
    }

    location = /closed {
        rate_limit z;
        rate_limit_fail_open off;
        add_header X-RL $rate_limit_status always;
        add_header X-Remaining $rate_limit_remaining always;
        empty_gif;
    }
_EOC_
        unless defined $block->config;

    $block->set_value('no_error_log', "[alert]\n[crit]\nsignal\n")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: a script error fails open, only that request; the connection stays
--- request eval
["GET /open?k=error.1", "GET /open?k=error.1"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR\n!X-Remaining", "X-RL: PASSED\nX-Remaining: 1"]
--- post_check
if ($req_idx == 0) {
    is(log_count(qr/rate_limit: redis error: "ERR user_script:1: Script attempted/), 1,
       'the script error is logged with its message');
    is(log_count('reconnecting'), 0, 'no reconnection for a script error');
}



=== TEST 2: a script error fails closed: 503, then the next request passes
--- request eval
["GET /closed?k=error.2", "GET /closed?k=error.2"]
--- error_code eval
[503, 200]
--- response_headers eval
["X-RL: ERROR\n!X-Remaining", "X-RL: PASSED\nX-Remaining: 1"]



=== TEST 3: BUSY fails only that request (open), on the same connection
--- request eval
["GET /open?k=busy.1", "GET /open?k=busy.1"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 1"]
--- post_check
is(log_count(qr/redis error: "BUSY Redis is busy/), 1, "BUSY logged (req $req_idx)");
is(log_count('reconnecting'), 0, "no reconnection for BUSY (req $req_idx)");



=== TEST 4: OOM fails only that request (closed), on the same connection
--- request eval
["GET /closed?k=oom.1", "GET /closed?k=oom.1"]
--- error_code eval
[503, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 1"]
--- post_check
is(log_count(qr/redis error: "OOM command not allowed/), 1, "OOM logged (req $req_idx)");
is(log_count('reconnecting'), 0, "no reconnection for OOM (req $req_idx)");



=== TEST 5: READONLY drops the connection: the next answer is from a new one
--- request eval
["GET /open?k=readonly.1", "GET /open?k=readonly.1"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 2"]
--- post_check
if ($req_idx == 1) {
    is(log_count(qr/rate_limit: redis "127\.0\.0\.1:\d+" answered "READONLY You can't write against a read only replica\.", reconnecting/),
       1, 'READONLY logged once, with the reconnection');
    is($main::Fake->stats->{open}, 1, 'the fake has one connection left open');
}



=== TEST 6: LOADING (fail closed) drops the connection: 503, then a new one
--- request eval
["GET /closed?k=loading.1", "GET /closed?k=loading.1"]
--- error_code eval
[503, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 2"]
--- post_check
if ($req_idx == 1) {
    is(log_count(qr/answered "LOADING Redis is loading the dataset in memory", reconnecting/),
       1, 'LOADING logged with the reconnection');
}



=== TEST 7: MASTERDOWN and NOAUTH drop the connection too
--- request eval
["GET /open?k=masterdown.1", "GET /open?k=masterdown.1",
 "GET /open?k=noauth.1", "GET /open?k=noauth.1"]
--- error_code eval
[200, 200, 200, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 2",
 "X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 2"]



=== TEST 8: bytes that are not RESP: error handled, connection made again
--- request eval
["GET /open?k=garbage.1", "GET /open?k=garbage.1"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 2"]
--- post_check
if ($req_idx == 1) {
    ok(log_count(qr/rate_limit: redis "127\.0\.0\.1:\d+" closed the connection: Protocol error/),
       'the protocol error is logged');
    is($main::Fake->stats->{open}, 1, 'the bad connection was closed');
}



=== TEST 9: a RESP3 double is a protocol error for RESP2: new connection
--- request eval
["GET /closed?k=double.1", "GET /closed?k=double.1"]
--- error_code eval
[503, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 2"]



=== TEST 10: replies of the wrong shape fail open, on a connection that stays
--- request eval
[map { ("GET /open?k=$_.10") x 2 } @main::Shapes]
--- error_code eval
[(200) x (2 * @main::Shapes)]
--- response_headers eval
[map { ("X-RL: ERROR\n!X-Remaining", "X-RL: PASSED\nX-Remaining: 1") } @main::Shapes]
--- post_check
if ($req_idx == 0) {
    $main::Conns = $main::Fake->stats->{connections};
    $main::Start = time;
}
if ($req_idx == 2 * @main::Shapes - 1) {
    is($main::Fake->stats->{connections}, $main::Conns,
       'no new connection for malformed replies');
    my $took = time - $main::Start;
    my $n = log_count(qr/rate_limit: malformed reply from redis/);
    my $max = 2 + int($took);
    ok($n >= 1 && $n <= $max,
       sprintf('%d malformed replies in %.2f s, %d log lines (at most %d)',
               scalar @main::Shapes, $took, $n, $max));
    is(log_count(qr/\[error\].*rate_limit/), $n,
       'nothing else logged at error');
}



=== TEST 11: replies of the wrong shape fail closed
--- request eval
[map { "GET /closed?k=$_.11" } @main::Shapes]
--- error_code eval
[(503) x @main::Shapes]
--- response_headers eval
[("X-RL: ERROR\n!X-Remaining") x @main::Shapes]



=== TEST 12: many failing requests, a line or two in the log
--- request eval
[map { "GET /open?k=error.12-$_" } 1 .. 40]
--- error_code eval
[(200) x 40]
--- response_headers eval
[("X-RL: ERROR") x 40]
--- post_check
if ($req_idx == 0) {
    $main::Start = time;
}
if ($req_idx == 39) {
    my $took = time - $main::Start;
    my $n = log_count(qr/\[error\].*rate_limit: redis error/);
    my $max = 2 + int($took);
    ok($n >= 1 && $n <= $max,
       sprintf('40 error replies in %.2f s, %d log lines (at most %d)',
               $took, $n, $max));
}



=== TEST 13: a hung Redis: the request gets the fail policy in time, the idle watchdog reconnects
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FAKE_REDIS_PORT
                     timeout=100ms connect_timeout=300ms;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- request eval
["GET /open?k=silent.1", "GET /open?k=silent.1"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED\nX-Remaining: 2"]
--- response_headers_like eval
["X-Time: ^0\\.(09|[1-4]\\d)\\d\$", "X-Time: ^0\\.[0-4]\\d\\d\$"]
--- post_check
if ($req_idx == 0) {
    ok(wait_until(2, sub { log_count(qr/\[error\].*has not answered/) }),
       'the idle watchdog dropped the silent connection');
    ok(wait_until(2, sub { $main::Fake->stats->{open} == 1 }),
       'the silent connection is closed');
}



=== TEST 14: NOSCRIPT from the fake: SCRIPT LOAD once, then EVALSHA again decides; never EVAL
--- init
$main::Before = $main::Fake->stats;
--- request
GET /open?k=flushed.1
--- error_code: 200
--- response_headers
X-RL: PASSED
X-Remaining: 1
--- post_check
my $st = $main::Fake->stats;
my %d = map { $_ => ($st->{$_} // 0) - ($main::Before->{$_} // 0) }
        qw(eval evalsha script_load);
is($d{eval}, 0, 'no EVAL');
is("$d{script_load} $d{evalsha}", '1 2',
   'one SCRIPT LOAD, the EVALSHA that got NOSCRIPT and the one sent again');
--- no_error_log
[error]
[alert]
signal



=== TEST 15: a rejection from the fake is a rejection
--- request
GET /open?k=reject.1
--- error_code: 429
--- response_headers
X-RL: REJECTED
Retry-After: 3
--- error_log
limiting requests by zone "z", retry after 3 s
--- no_error_log eval
[qr/\[error\].*rate_limit: redis/, "[alert]", "signal"]



=== TEST 16: SCRIPT LOAD answered with another SHA: alert, fail policy, no crash
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_BAD_SHA_REDIS_PORT timeout=1s;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- request
GET /closed?k=ok.16
--- error_code: 503
--- response_headers
X-RL: ERROR
--- post_check
ok(wait_until(2, sub { log_count(qr/\[alert\].*answered SCRIPT LOAD with "[0-9a-f]{40}", expected "[0-9a-f]{40}"/) }),
   'the SHA mismatch is an alert');
--- error_log eval
qr/\[alert\].*rate_limit: redis "127\.0\.0\.1:\d+" answered SCRIPT LOAD with/
--- no_error_log
[crit]
signal



=== TEST 17: a server that accepts and never answers the handshake: timeout bounds the wait
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_MUTE_REDIS_PORT
                     timeout=100ms connect_timeout=300ms;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- request eval
["GET /open?k=ok.17", "GET /closed?k=ok.17"]
--- error_code eval
[200, 503]
--- response_headers eval
["X-RL: ERROR", "X-RL: ERROR"]
--- response_headers_like eval
["X-Time: ^0\\.[0-4]\\d\\d\$", ""]
--- post_check
if ($req_idx == 1) {
    ok(wait_until(2, sub { log_count(qr/\[error\].*rate_limit: redis "127\.0\.0\.1:\d+" did not connect and answer the handshake within 300 ms/) }),
       'the handshake that never ends times out');
}



=== TEST 18: two zones and a reply for one: malformed, fail policy
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FAKE_REDIS_PORT timeout=1s;
    rate_limit_zone z key=$arg_k rate=10r/s;
    rate_limit_zone z2 key=$arg_k rate=10r/s;
--- config
    location = /two {
        rate_limit z;
        rate_limit z2;
        rate_limit_fail_open off;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request
GET /two?k=ok.18
--- error_code: 503
--- response_headers
X-RL: ERROR
--- error_log eval
qr/\[error\].*rate_limit: malformed reply from redis \(type 2, 6 elements\)/



=== TEST 19: a reply no command asked for: the connection is dropped, the worker lives
--- request eval
["GET /open?k=extra.19", "GET /open?k=extra.19", "GET /open?k=ok.19"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-RL: PASSED\nX-Remaining: 1", "X-RL: PASSED\nX-Remaining: 2", "X-RL: PASSED"]
--- post_check
if ($req_idx == 2) {
    ok(log_count(qr/\[error\].*rate_limit: redis "127\.0\.0\.1:\d+" closed the connection: a reply no command asked for/),
       'the unasked reply is logged');
}



=== TEST 20: an error reply no command asked for: the connection is dropped
--- request eval
["GET /open?k=extraerr.20", "GET /open?k=extraerr.20"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: PASSED\nX-Remaining: 1", "X-RL: PASSED\nX-Remaining: 2"]
--- post_check
if ($req_idx == 1) {
    ok(log_count(qr/\[error\].*rate_limit: redis "127\.0\.0\.1:\d+" closed the connection: ERR nobody asked/),
       'the error is logged');
}
