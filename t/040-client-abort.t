# Clients that leave while their request waits for a paused Redis: the
# request is finalized by NGINX (ngx_http_test_reading), its pool cleanup
# detaches the pending command and deletes the wait timer, and the late
# reply, once Redis resumes, finds nobody.  The next request is served, the
# aborted command was still counted by Redis, and no alert, crashed worker
# or socket left open shows in the log, also at shutdown.  Keep-alive and
# pipelined requests queue behind a waiting one and are all decided in
# order.

use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers
    qw(set_defaults open_closed_config clean_shutdown);
use Time::HiRes qw(time sleep);
use IO::Socket::INET;

our (@KeepAlive);

sub main::warm {
    redis_cmd('FLUSHALL');
    wait_until(3, sub {
        (http_get('/open?k=warm')->{headers}{'x-rl'} // '') eq 'PASSED'
    }) or die "the module did not decide a warm-up request\n";
}

sub main::wait_resumed {
    wait_until(5, sub { (redis_cmd('PING') // '') eq 'PONG' })
        or die "redis did not resume\n";
    sleep 0.1;    # the late replies reach nginx
}

# $n clients send a request each while Redis is paused for $ms, and leave
# after $leave s; then Redis resumes.
sub main::leave_while_paused {
    my ($ms, $n, $leave, @paths) = @_;

    main::warm();
    redis_pause($ms);

    my @socks = map { http_send($paths[$_ % @paths]) } 0 .. $n - 1;
    sleep $leave;
    close $_ for @socks;

    main::wait_resumed();
}

# Two requests in turn on one keep-alive connection, the first waiting for
# a paused Redis.
sub main::keepalive_while_paused {
    my ($ms) = @_;

    main::warm();
    my $ka = Test::RateLimit::Client::KeepAlive->new;
    redis_pause($ms);
    @KeepAlive = ($ka->get('/open?k=ka'), $ka->get('/open?k=ka'));
    $ka->close;
}

# Two pipelined requests sent while Redis is paused; the client leaves.
sub main::leave_pipelined {
    main::warm();
    redis_pause(500);

    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
        Proto    => 'tcp',
    ) or die "cannot connect: $@\n";
    syswrite $sock, "GET /open?k=pl HTTP/1.1\r\nHost: localhost\r\n\r\n" x 2;
    sleep 0.1;
    close $sock;

    main::wait_resumed();
}

# Every block pauses Redis and counts on fresh keys: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 85;

no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    set_defaults(shift,
        http_config => <<'_EOC_',
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=2s;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;
_EOC_
        config => open_closed_config(),
        no_error_log => "[error]\n[alert]\n[crit]\nexited on signal\n",
        no_shutdown_error_log => clean_shutdown());
});

run_tests();

__DATA__

=== TEST 1: the client leaves while Redis is paused; the next request is served
--- init
main::leave_while_paused(600, 1, 0.2, '/open?k=a');
--- request
GET /open?k=a
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 8
--- error_log
client prematurely closed connection



=== TEST 2: ten clients leave at once, open and closed; all ten counted, then served
--- init
main::leave_while_paused(600, 10, 0.2, '/open?k=b', '/closed?k=b');
--- request
GET /closed?k=b
--- error_code: 429
--- response_headers
X-RL: REJECTED
--- post_check
is(scalar(() = grep { /client prematurely closed connection/ } error_log_lines()),
   10, 'ten requests finalized as the clients left');
--- no_error_log eval
[qr/\[error\].*rate_limit: redis/, "[alert]", "[crit]", "exited on signal"]



=== TEST 3: the client leaves before the wait timer would have fired
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=300ms;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;
--- init
main::leave_while_paused(700, 3, 0.1, '/open?k=c');
--- request
GET /open?k=c
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 6
--- no_error_log
redis timed out
[alert]
[crit]
exited on signal



=== TEST 4: --- abort: the test client gives up on a waiting request
--- init
main::warm();
main::redis_pause(800);
--- request
GET /open?k=d
--- timeout: 0.3
--- abort
--- ignore_response
--- wait: 0.7



=== TEST 5: keep-alive: a request waits, the next one on the connection follows
--- init
main::keepalive_while_paused(300);
--- request
GET /open?k=ka
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 7
--- post_check
my ($first, $second) = @main::KeepAlive;
is("$first->{status} $first->{headers}{'x-rl'} $first->{headers}{'x-ratelimit-remaining'}",
   '200 PASSED 9', 'the first request waited and passed');
cmp_ok($first->{elapsed}, '>', 0.15, sprintf('it waited for redis (%.3f s)', $first->{elapsed}));
is("$second->{status} $second->{headers}{'x-rl'} $second->{headers}{'x-ratelimit-remaining'}",
   '200 PASSED 8', 'the second one on the same connection passed');



=== TEST 6: pipelined requests behind a waiting one: all decided, in order
--- init
main::warm();
main::redis_pause(300);
--- pipelined_requests eval
["GET /open?k=p", "GET /open?k=p", "GET /open?k=p"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 9",
 "X-RL: PASSED\nX-RateLimit-Remaining: 8",
 "X-RL: PASSED\nX-RateLimit-Remaining: 7"]



=== TEST 7: the client leaves a pipelined connection while the first request waits
--- init
main::leave_pipelined();
--- request
GET /open?k=pl
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 8
