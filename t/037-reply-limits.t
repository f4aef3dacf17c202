# Replies a wrong or hostile server sends, and a server that answers too
# slowly:
#
# - a reply nested deeper than the script reply's shape (a flat array of
#   integers) is a protocol error: the connection is dropped and made again;
# - a reply larger than a bound of about 64 KiB (here a bulk string
#   announced as 100 MB, its bytes sent in chunks) is a protocol error: the
#   connection is dropped after little more than the bound was read, and
#   the worker's memory does not grow by what the server announced;
# - a connection whose oldest command has had no reply for connect_timeout
#   is dropped, even while the reply trickles in one byte at a time.
#
# In every case the request gets the fail policy, the worker does not
# crash, and the next request is decided on a new connection.  Each block
# has a fake Redis of its own (t/lib/Test/RateLimit/FakeRedis.pm), so its
# counts are its own.

use Test::RateLimit::FakeRedis;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults open_closed_config quiet_log);
use Time::HiRes qw(time sleep);

our %Fake = map { $_ => Test::RateLimit::FakeRedis->start }
            qw(nested nestedel huge trickle);
$ENV{"TEST_NGINX_FAKE_\U$_\E_PORT"} = $Fake{$_}->port for keys %Fake;

our ($Conns, $Rss, $Start);

sub main::nginx_pid {
    no warnings 'once';
    open my $fh, '<', $Test::Nginx::Util::PidFile or die "no pid file: $!";
    my $pid = <$fh>;
    chomp $pid;
    return $pid;
}

# Once nginx is connected to the block's fake: its connections so far, the
# worker's RSS.
sub main::settle {
    my ($name) = @_;

    my $fake = $Fake{$name};
    wait_until(5, sub { ($fake->stats->{open} // 0) >= 1 })
        or die "nginx did not connect to the fake\n";
    $Conns = $fake->stats->{connections};
    $Rss = vm_rss(main::nginx_pid());
    $Start = time;
}

# Counts over a block: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 57;

check_accum_error_log();
no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    set_defaults(shift,
        config => open_closed_config('X-Remaining $rate_limit_remaining'),
        no_error_log => quiet_log());
});

run_tests();

__DATA__

=== TEST 1: a reply nested deeper than the shape ([[1, 10, 9, 1000, 0]]) drops the connection
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FAKE_NESTED_PORT timeout=1s;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- init
main::settle('nested');
--- request eval
["GET /open?k=nested.1", "GET /open?k=nested.1"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR\n!X-Remaining", "X-RL: PASSED\nX-Remaining: 2"]
--- post_check
if ($req_idx == 1) {
    is($main::Fake{nested}->stats->{connections}, $main::Conns + 1,
       'one new connection');
    ok(log_count('reply nested deeper'), 'the protocol error is logged');
}



=== TEST 2: an element nested in the array ([1, 10, [9], 1000, 0]) drops the connection (closed)
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FAKE_NESTEDEL_PORT timeout=1s;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- init
main::settle('nestedel');
--- request eval
["GET /closed?k=nestedel.1", "GET /closed?k=nestedel.1"]
--- error_code eval
[503, 200]
--- response_headers eval
["X-RL: ERROR", "X-RL: PASSED"]
--- post_check
if ($req_idx == 1) {
    is($main::Fake{nestedel}->stats->{connections}, $main::Conns + 1,
       'one new connection');
    ok(log_count('reply nested deeper'), 'the protocol error is logged');
}



=== TEST 3: a bulk string announced as 100 MB: dropped after about 64 KiB, memory bounded
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FAKE_HUGE_PORT timeout=1s connect_timeout=1s;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- init
main::settle('huge');
--- request eval
["GET /open?k=huge.1", "GET /open?k=ok.huge"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-RL: ERROR\n!X-Remaining", "X-RL: PASSED\nX-Remaining: 1"]
--- post_check
if ($req_idx == 0) {
    my $fake = $main::Fake{huge};
    my $closed = wait_until(8, sub { $fake->stats->{huge_closed} });
    my $st = $fake->stats;
    my $took = time - $main::Start;
    ok($closed, sprintf('the connection was dropped (after %.2f s)', $took));
    my $sent = $st->{huge_sent} // 0;
    ok($closed && $sent <= 512 * 1024,
       "$sent bytes sent when it was dropped (at most 512 KiB: 64 KiB, "
       . 'a read, and room for a slow machine)');
    my $rss = vm_rss(main::nginx_pid());
    ok($rss - $main::Rss < 32 * 1024,
       "RSS $main::Rss kB before, $rss kB after: grew by less than 32 MiB");
    ok(wait_until(3, sub { log_count('reply larger than') }),
       'the protocol error is logged');
}
if ($req_idx == 1) {
    ok($main::Fake{huge}->stats->{connections} > $main::Conns,
       'the next request went on a new connection');
}



=== TEST 4: a reply that trickles one byte per 100 ms does not keep the connection alive
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FAKE_TRICKLE_PORT timeout=200ms connect_timeout=500ms;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- init
main::settle('trickle');
--- request eval
["GET /open?k=trickle.1", "GET /closed?k=trickle.2"]
--- error_code eval
[200, 503]
--- response_headers eval
["X-RL: ERROR\n!X-Remaining", "X-RL: ERROR"]
--- post_check
if ($req_idx == 0) {
    my $fake = $main::Fake{trickle};
    my $closed = wait_until(5, sub { $fake->stats->{trickle_closed} });
    my $took = time - $main::Start;
    my $st = $fake->stats;
    ok($closed && $took < 3,
       sprintf('dropped %.2f s after the command (connect_timeout 0.5 s; '
               . 'at most 3 s), %d bytes of the reply had come',
               $took, $st->{trickle_sent} // 0));
    ok(wait_until(3, sub { $fake->stats->{connections} > $main::Conns }),
       'and made again');
    ok(wait_until(3, sub { log_count('has not answered') }),
       'the watchdog is logged');
}
