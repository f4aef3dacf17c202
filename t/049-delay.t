# delay= (gcra): requests beyond delay excess, up to burst, are admitted
# (and counted in Redis) at once and then wait their turn on a timer, as
# limit_req ... burst=B delay=D does: no second Redis trip.  Concurrent
# clients of one key finish spread by the emission interval, each told
# how long it was held in $rate_limit_delay; a client that leaves while
# held ends its request at once; the metrics count "delayed".
#
# Times are only ever checked from below (a request is held at least its
# turn), except for the client that leaves, whose end is checked against
# a hold ten times longer than the wait before it leaves.

use Test::RateLimit::Instances;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults clean_shutdown flush);
use Test::RateLimit::Metrics qw(parse metric metrics_location);
use Time::HiRes qw(time sleep);

our (@Got, $M, $Redis);

# Counts over a whole block: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 40;

no_long_string();
no_shuffle();

# $n clients of one key at once; each one's status, X-Delay and seconds.
sub main::together {
    my ($n, $path) = @_;

    flush();
    http_get('/t?k=warm');
    my $go = time + 0.3;
    my @bg = map { run_bg(sub {
        sleep 0.001 while time < $go;
        my $r = http_get($path, timeout => 5);
        return join ' ', $r->{status}, $r->{headers}{'x-delay'} // '-',
                         time - $go;
    }) } 1 .. $n;

    @Got = map { [ split / /, wait_bg($_, 10) ] } @bg;
    $M = main::parse(http_get('/metrics')->{body});
}

# The first request passes; the second, held 3 s, leaves after 0.3 s.
sub main::leave {
    flush();
    http_get('/t?k=gone');
    my $s = http_send('/t?k=gone');
    sleep 0.3;
    close $s;
    sleep 0.3;
}

add_block_preprocessor(sub {
    my $block = shift;

    set_defaults($block, no_shutdown_error_log => clean_shutdown(),
                 config => <<'_EOC_' . metrics_location());
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        add_header X-Delay $rate_limit_delay always;
        empty_gif;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: seven clients at once, burst=5 delay=1 at 10r/s: two pass at once, four wait 100 to 400 ms, one is rejected
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=1s;
    rate_limit_zone z key=$arg_k rate=10r/s burst=5 delay=1 cache=0;
--- init
main::together(7, '/t?k=d');
--- request
GET /t?k=other
--- response_headers
X-RL: PASSED
X-Delay: 0
--- post_check
my @ok = sort { $a->[1] <=> $b->[1] } grep { $_->[0] == 200 } @main::Got;
my @no = grep { $_->[0] == 429 } @main::Got;
is(scalar(@ok) . ' ' . scalar(@no), '6 1', 'six admitted, one rejected');
my @d = map { $_->[1] } @ok;
my @want = (0, 0, 100, 200, 300, 400);
# each its turn after the first admission, less the time since it
ok(!grep({ $d[$_] < $want[$_] - 50 || $d[$_] > $want[$_] + 1 } 0 .. 5),
   "\$rate_limit_delay: @d (each its turn: @want, less the ms since the first)");
ok(!grep({ $ok[$_][2] < $d[$_] / 1000 } 0 .. 5),
   'each held at least its delay: ' . join(' ', map { sprintf '%.3f', $_->[2] } @ok));
is($no[0][1], 0, 'the rejected one was not held');
my $r = 'nginx_rate_limit_requests_total';
is(join(' ', map { main::metric($main::M, $r, zone => 'z', outcome => $_) } qw(passed delayed rejected)),
   '3 4 1', 'metrics: 3 passed (the warm-up too), 4 delayed, 1 rejected');
--- no_error_log
[alert]
[crit]



=== TEST 2: a client that leaves while held ends its request at once; the next request is served
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=1s;
    rate_limit_zone z key=$arg_k rate=20r/m burst=5 delay=0 cache=0;
    log_format held '$arg_k $status $request_time $rate_limit_delay';
--- config
    location = /t {
        rate_limit z;
        access_log logs/held.log held;
        add_header X-RL $rate_limit_status always;
        add_header X-Delay $rate_limit_delay always;
        empty_gif;
    }
--- init
main::leave();
--- request
GET /t?k=next
--- response_headers
X-RL: PASSED
X-Delay: 0
--- post_check
open my $fh, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/held.log" or die "held.log: $!";
my @l = grep { /^gone / } <$fh>;
like($l[0], qr/^gone 200 \S+ 0$/, 'the first request of the key passed at once');
my ($status, $t, $delay) = $l[1] =~ /^gone (\d+) (\S+) (\d+)$/;
is($status, 499, 'the held request ended when its client left (499)');
ok($t < 2, "after $t s, not after its 3 s hold");
ok($delay > 2500 && $delay <= 3000, "\$rate_limit_delay says the hold it had been given ($delay ms)");
--- no_error_log
[alert]
[crit]



=== TEST 3: delay= with another algorithm
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=10r/s algorithm=token_bucket burst=5 delay=1;
--- must_die
--- error_log
"delay" is only for algorithm=gcra



=== TEST 4: delay= above burst
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=10r/s burst=2 delay=3;
--- must_die
--- error_log
delay=3 is more than burst=2



=== TEST 5: delay= not a number
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=10r/s burst=2 delay=soon;
--- must_die
--- error_log
invalid delay value "soon"
