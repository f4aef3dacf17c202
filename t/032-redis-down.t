# Redis down: nothing listens on its port, or a private redis-server is
# killed and restarted under the test.  Requests get the fail policy at once
# (not after the timeout: timeout=2s here), the log says so about once a
# second per cause, and after a restart requests are decided again within
# the backoff (first retry at once, then 100 ms doubling to a 2 s cap; the
# debug log shows the schedule when nginx has debug logging).

use Test::RateLimit::Instances;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults open_closed_config quiet_log);
use Time::HiRes qw(time sleep);

our (@Burst, $Took, $Private, $Recovery, @Waiting);

$ENV{TEST_NGINX_DEAD_REDIS_PORT} = free_port();
$ENV{TEST_NGINX_PRIVATE_REDIS_PORT} = free_port();

$Private = Test::RateLimit::Instances::Redis->start(
    port => $ENV{TEST_NGINX_PRIVATE_REDIS_PORT});

# Blocks kill and restart Redis and count on it: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 56;

no_long_string();
no_shuffle();

# $n requests in a row, each on a new connection.
sub main::burst {
    my ($path, $n) = @_;

    my $start = time;
    @main::Burst = map { http_get($path) } 1 .. $n;
    $main::Took = time - $start;
}

sub main::decided {
    my ($path) = @_;
    return (http_get($path)->{headers}{'x-rl'} // '') eq 'PASSED';
}

# The delays of "retry in N" debug lines, in order (empty without debug).
sub main::retries {
    return map { /rate_limit: redis "[^"]+" connection 0 down, retry in (\d+) ms/ ? $1 : () }
        error_log_lines();
}

sub main::has_debug {
    return scalar grep { /\[debug\]/ } error_log_lines();
}

# The private Redis running and the module decided by it.
sub main::private_up {
    my ($path) = @_;

    $Private->restart unless $Private->pid;
    wait_until(3, sub { main::decided($path) })
        or die "not decided by the private redis\n";
}

# Killed, down for $secs, restarted: how long until decided again.
sub main::long_outage {
    my ($secs) = @_;

    main::private_up('/open?k=c');
    $Private->kill('KILL');
    sleep $secs;
    $Private->restart;

    my $t0 = time;
    wait_until(4, sub { main::decided('/open?k=c') });
    $Recovery = time - $t0;
}

# Stopped (SIGSTOP) with $n requests waiting, then killed.
sub main::killed_while_waiting {
    my ($n) = @_;

    main::private_up('/open?k=w');
    $Private->kill('STOP');

    my @socks = map { http_send("/closed?k=w$_") } 1 .. $n;
    sleep 0.3;

    my $start = time;
    $Private->kill('KILL');
    @Waiting = map { http_read($_, start => $start) } @socks;

    main::private_up('/open?k=w');
}

add_block_preprocessor(sub {
    set_defaults(shift,
        http_config => <<'_EOC_',
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_REDIS_PORT timeout=2s;
    rate_limit_zone z key=$arg_k rate=10r/s burst=1000;
_EOC_
        config => open_closed_config('X-Time $request_time'),
        no_error_log => quiet_log());
});

run_tests();

__DATA__

=== TEST 1: nothing listens, fail open: every request passes with ERROR at once
--- init
main::burst('/open?k=a', 30);
--- request
GET /open?k=a
--- error_code: 200
--- response_headers
X-RL: ERROR
--- response_headers_like
X-Time: ^0\.[0-4]\d\d$
--- post_check
is(scalar(grep { $_->{status} == 200 && $_->{headers}{'x-rl'} eq 'ERROR' } @main::Burst),
   30, 'thirty requests passed with ERROR');
my ($slowest) = sort { $b <=> $a } map { $_->{elapsed} } @main::Burst;
cmp_ok($slowest, '<', 0.5, 'none waited for the 2 s timeout');
my $max = 2 + int($main::Took);
for my $what ('cannot connect to redis "127.0.0.1:\d+": Connection refused',
              'redis "127.0.0.1:\d+" is not connected')
{
    my $n = log_count(qr/\[error\].*rate_limit: $what/);
    ok($n >= 1 && $n <= $max,
       sprintf('"%s": %d lines for 31 requests in %.2f s (at most %d)',
               $what, $n, $main::Took, $max));
}
my $all = log_count(qr/\[error\]/);
cmp_ok($all, '<=', 3 * $max, "$all error lines in all");



=== TEST 2: nothing listens, fail closed: every request gets 503 at once
--- init
main::burst('/closed?k=a', 30);
--- request
GET /closed?k=a
--- error_code: 503
--- response_headers
X-RL: ERROR
--- response_headers_like
X-Time: ^0\.[0-4]\d\d$
--- post_check
is(scalar(grep { $_->{status} == 503 } @main::Burst), 30,
   'thirty requests got 503');
my ($slowest) = sort { $b <=> $a } map { $_->{elapsed} } @main::Burst;
cmp_ok($slowest, '<', 0.5, 'none waited for the 2 s timeout');



=== TEST 3: the backoff while nothing listens: at once, then 100 ms doubling to 2 s
--- init
sleep 4.2;
--- request
GET /open?k=a
--- error_code: 200
--- response_headers
X-RL: ERROR
--- post_check
SKIP: {
    skip 'nginx logs no debug lines', 1 unless main::has_debug();
    my @r = main::retries();
    is("@r[0 .. 6]", '0 100 200 400 800 1600 2000',
       "the first retries: @r");
}



=== TEST 4: Redis killed and restarted: fail open at once, decided again soon after
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT timeout=2s;
    rate_limit_zone z key=$arg_k rate=10r/s burst=1000;
--- init
main::private_up('/open?k=r');
--- request eval
["GET /open?k=r", "GET /open?k=r", "GET /open?k=r"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-RL: PASSED", "X-RL: ERROR", "X-RL: PASSED"]
--- response_headers_like eval
["X-Time: ^0\\.[0-4]\\d\\d\$", "X-Time: ^0\\.[0-4]\\d\\d\$", "X-Time: ^0\\.[0-4]\\d\\d\$"]
--- post_check
if ($req_idx == 0) {
    $main::Private->kill('KILL');
}
if ($req_idx == 1) {
    sleep 0.3;
    $main::Private->restart;
    my $t0 = time;
    ok(wait_until(3, sub { main::decided('/open?k=r') }), 'decided again');
    $main::Recovery = time - $t0;
    cmp_ok($main::Recovery, '<', 1.0,
           sprintf('within %.3f s of the restart (retries at once, then 100 ms doubling)', $main::Recovery));
}
if ($req_idx == 2) {
    ok(log_count(qr/\[error\].*rate_limit: redis "127\.0\.0\.1:\d+" closed the connection/),
       'the lost connection is logged');
}



=== TEST 5: a long outage: the retries are capped at 2 s
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT timeout=2s;
    rate_limit_zone z key=$arg_k rate=10r/s burst=1000;
--- init
main::long_outage(3.4);
--- request
GET /open?k=c
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
cmp_ok($main::Recovery, '<', 2.3,
       sprintf('decided again %.3f s after the restart (cap 2 s)', $main::Recovery));
SKIP: {
    skip 'nginx logs no debug lines', 1 unless main::has_debug();
    my @r = main::retries();
    is("@r[0 .. 5]", '0 100 200 400 800 1600', "retries during the outage: @r");
}



=== TEST 6: Redis killed with requests waiting: they get the fail policy at once
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_PRIVATE_REDIS_PORT timeout=2s;
    rate_limit_zone z key=$arg_k rate=10r/s burst=1000;
--- init
main::killed_while_waiting(5);
--- request
GET /closed?k=w
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
is(scalar(grep { $_->{status} == 503 } @main::Waiting), 5,
   'the five waiting requests got 503');
my ($slowest) = sort { $b <=> $a } map { $_->{elapsed} } @main::Waiting;
cmp_ok($slowest, '<', 0.5, 'at once when the connection was lost, not after 2 s');
ok(log_count(qr/\[error\].*rate_limit: redis connection lost before the answer/),
   'logged');
