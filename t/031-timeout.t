# A slow Redis: the test Redis is paused (CLIENT PAUSE ... ALL, which also
# holds a new connection's handshake) longer than the module's timeout.  A
# request is answered by its wait timer within the budget, with the fail
# policy; once Redis resumes, the next request is decided normally; the late
# reply finds nobody and is dropped (its command still counted in Redis);
# and a connection with commands pending that receives nothing for
# connect_timeout is dropped by the idle watchdog and made again.

use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults open_closed_config quiet_log);
use Time::HiRes qw(time sleep);

our ($Paused, @Before, @Many);

# Each block pauses Redis and counts on fresh state: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 63;

no_long_string();
no_shuffle();

# A request through the module, so the connection is up, then a pause.
sub main::warm_and_pause {
    my ($ms) = @_;

    redis_cmd('FLUSHALL');

    my $ok = wait_until(3, sub {
        (http_get('/open?k=warm')->{headers}{'x-rl'} // '') eq 'PASSED'
    });
    die "the module did not decide a warm-up request\n" unless $ok;

    # asked before the pause, which would hold this question too
    @main::Before = map { $_->{id} } main::nginx_clients();

    redis_pause($ms);
    $main::Paused = time;
    return;
}

# Returns once Redis answers again.
sub main::wait_resumed {
    my $ok = wait_until(5, sub { (redis_cmd('PING') // '') eq 'PONG' });
    die "redis did not resume\n" unless $ok;
}

# $n requests sent at once, then their responses read.
sub main::many_at_once {
    my ($n) = @_;

    my @socks = map { http_send("/open?k=many$_") } 1 .. $n;
    my $start = time;
    @main::Many = map { http_read($_, start => $start) } @socks;
}

# The module's connections to the test Redis.
sub main::nginx_clients {
    return grep { ($_->{cmd} // '') =~ /^(evalsha|eval|script)/ }
        redis_clients();
}

add_block_preprocessor(sub {
    set_defaults(shift,
        http_config => <<'_EOC_',
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=100ms;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;
_EOC_
        config => open_closed_config('X-Time $request_time'),
        no_error_log => quiet_log());
});

run_tests();

__DATA__

=== TEST 1: paused past the timeout, fail open: passed with ERROR in time, then decided
--- init
main::warm_and_pause(700);
--- request eval
["GET /open?k=a", "GET /open?k=a"]
--- timeout: 1
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR\n!X-RateLimit-Remaining", "X-RL: PASSED"]
--- response_headers_like eval
["X-Time: ^0\\.(09|[1-4]\\d)\\d\$", "X-Time: ^0\\.[0-4]\\d\\d\$"]
--- post_check
if ($req_idx == 0) {
    cmp_ok(time - $main::Paused, '<', 0.5,
           'the answer came well before redis resumed');
    is(log_count(qr/\[error\].*rate_limit: redis timed out/), 1,
       'the timeout is logged');
    main::wait_resumed();
}



=== TEST 2: paused past the timeout, fail closed: 503 in time, then decided
--- init
main::warm_and_pause(700);
--- request eval
["GET /closed?k=a", "GET /closed?k=a"]
--- timeout: 1
--- error_code eval
[503, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED"]
--- response_headers_like eval
["X-Time: ^0\\.(09|[1-4]\\d)\\d\$", "X-Time: ^0\\.[0-4]\\d\\d\$"]
--- post_check
if ($req_idx == 0) {
    cmp_ok(time - $main::Paused, '<', 0.5,
           'the 503 came well before redis resumed');
    main::wait_resumed();
}



=== TEST 3: the late reply is dropped; its command still counted; same connection
--- init
main::warm_and_pause(400);
--- request eval
["GET /open?k=late", "GET /open?k=late"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR\n!X-RateLimit-Remaining",
 "X-RL: PASSED\nX-RateLimit-Limit: 10\nX-RateLimit-Remaining: 8"]
--- response_headers_like eval
["X-Time: ^0\\.(09|[1-4]\\d)\\d\$", "X-Time: ^0\\.[0-4]\\d\\d\$"]
--- post_check
if ($req_idx == 0) {
    main::wait_resumed();
    sleep 0.1;    # the late reply reaches nginx
}
if ($req_idx == 1) {
    is(scalar @main::Before, 1, 'one connection before');
    is(join(',', map { $_->{id} } main::nginx_clients()),
       join(',', @main::Before), 'the same connection after');
    is(log_count(qr/\[error\]/), 1, 'only the timeout was logged');
}



=== TEST 4: the idle watchdog drops a connection that sends nothing; it reconnects
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT
                     timeout=100ms connect_timeout=300ms;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;
--- init
main::warm_and_pause(1000);
--- request eval
["GET /open?k=idle", "GET /open?k=idle"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED"]
--- response_headers_like eval
["X-Time: ^0\\.(09|[1-4]\\d)\\d\$", "X-Time: ^0\\.\\d\\d\\d\$"]
--- post_check
if ($req_idx == 0) {
    ok(wait_until(2, sub { log_count(qr/\[error\].*has not answered/) }),
       'the idle watchdog dropped the connection');
    cmp_ok(time - $main::Paused, '<', 0.9, 'while redis was still paused');
    main::wait_resumed();
    ok(wait_until(3, sub { my @c = main::nginx_clients(); @c == 1 && $c[0]{cmd} =~ /^script\|(load|exists)$/ }),
       'reconnected: one connection, new and through the handshake');
}
if ($req_idx == 1) {
    my @after = map { $_->{id} } main::nginx_clients();
    is(scalar @after, 1, 'one connection after');
    ok(!grep({ $_ == $after[0] } @main::Before), 'a new connection');
}



=== TEST 5: twenty requests wait at once: all answered by their timers, then decided
--- init
main::warm_and_pause(700);
main::many_at_once(20);
main::wait_resumed();
--- request
GET /open?k=after
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
is(scalar(grep { $_->{status} == 200 && $_->{headers}{'x-rl'} eq 'ERROR' } @main::Many),
   20, 'twenty requests passed with ERROR');
my ($slowest) = sort { $b <=> $a } map { $_->{elapsed} } @main::Many;
cmp_ok($slowest, '<', 0.5, 'each within the budget');
my $n = log_count(qr/\[error\].*redis timed out/);
ok($n >= 1 && $n <= 2, "twenty timeouts, $n log lines");
