# Backpressure: a connection holds at most max_pending commands without
# replies (queued and written), a request that finds no room gets the fail
# policy at once, and a command whose request timed out or left before it
# was written is never written.  So while Redis is stopped (SIGSTOP) under
# load, what Redis runs once it goes on (SIGCONT) is bounded by
# max_pending x connections x workers, the workers' memory stays bounded,
# and requests pass again within seconds.
#
# A redis-server of this test's own (stopped and continued by its pid), two
# workers under a master process, one connection each.

use Test::RateLimit::Instances;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults open_closed_config master_pid);
use Time::HiRes qw(time sleep);

our $Redis = Test::RateLimit::Instances::Redis->start(port => free_port());
$ENV{TEST_NGINX_BP_REDIS_PORT} = $Redis->port;

our $MaxPending = 50;
our $Workers = 2;

our (%Stall, %Load);

workers($Workers);
master_on();

# $clients children send requests (each on a new connection, half of them
# to the fail-closed location) for $secs, at most $max each; the outcomes.
sub main::load {
    my ($clients, $secs, $max) = @_;

    my @bg = map { my $c = $_; run_bg(sub {
        my (%st, $i);
        my $end = time + $secs;
        my $path = $c % 2 ? '/open' : '/closed';
        while (time < $end && $i++ < $max) {
            my $r = http_get("$path?k=s$c.$i", timeout => 3);
            $st{ $r->{status} ? "$r->{status} " . ($r->{headers}{'x-rl'} // '-')
                              : "failed: $r->{error}" }++;
        }
        return join '', map { "$_=$st{$_}\n" } sort keys %st;
    }) } 1 .. $clients;

    my %all;
    for my $bg (@bg) {
        for (split /\n/, wait_bg($bg, $secs + 20)) {
            my ($k, $v) = /^(.*)=(\d+)$/ or next;
            $all{$k} += $v;
        }
    }

    return %all;
}

sub main::rss {
    return { map { ($_ => vm_rss($_) // 0) } worker_pids(main::master_pid()) };
}

# Redis stopped under load for $secs, then continued.
sub main::stall {
    my ($secs) = @_;

    my $p = $Redis->port;

    # both workers connected and through the handshake
    wait_until(10, sub { redis_clients(port => $p) >= $Workers })
        or die "nginx did not connect to redis\n";
    sleep 0.5;

    %Stall = ();
    $Stall{pids} = join ' ', worker_pids(main::master_pid());
    $Stall{rss0} = main::rss();
    $Stall{evalsha0} = redis_calls('evalsha', port => $p);

    $Redis->kill('STOP');
    %Load = main::load(16, $secs, 2000);
    $Stall{rss1} = main::rss();
    $Redis->kill('CONT');
    my $cont = time;

    # what was written while it was stopped runs now; nothing new is asked
    sleep 1;
    my $prev = -1;
    wait_until(5, sub {
        my $n = redis_calls('evalsha', port => $p);
        my $same = $n == $prev;
        $prev = $n;
        sleep 0.2;
        return $same;
    });
    $Stall{ran} = $prev - $Stall{evalsha0};

    my $i = 0;
    wait_until(10, sub {
        my $r = http_get('/open?k=back' . $i++, timeout => 3);
        return ($r->{headers}{'x-rl'} // '') eq 'PASSED';
    });
    $Stall{back} = time - $cont;
    $Stall{pids_after} = join ' ', worker_pids(main::master_pid());
}

# nginx's connections killed and Redis paused at once (one transaction), so
# the new connections' handshakes wait; $n requests time out meanwhile.
# Their commands must never be written: Redis runs none of them once it
# goes on.
sub main::timeout_in_handshake {
    my ($n) = @_;

    my $p = $Redis->port;
    wait_until(10, sub { redis_clients(port => $p) >= $Workers })
        or die "nginx did not connect to redis\n";
    sleep 0.5;

    %Stall = ();
    $Stall{evalsha0} = redis_calls('evalsha', port => $p);

    my $r = Test::RateLimit::Redis->new(port => $p);
    $r->cmd('MULTI');
    $r->cmd('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    $r->cmd('CLIENT', 'PAUSE', 1000, 'ALL');
    $r->cmd('EXEC');
    my $paused = time;

    %Load = ();
    for my $i (1 .. $n) {
        my $res = http_get("/open?k=hs$i", timeout => 3);
        $Load{ "$res->{status} " . ($res->{headers}{'x-rl'} // '-') }++;
    }
    $Stall{took} = time - $paused;

    sleep 1.5;
    $Stall{ran} = redis_calls('evalsha', port => $p) - $Stall{evalsha0};
}

sub main::outcomes {
    return join ', ', map { "$_=$Load{$_}" } sort keys %Load;
}

# Counts over a block: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 39;

check_accum_error_log();
no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    set_defaults(shift,
        config => open_closed_config());
});

run_tests();

__DATA__

=== TEST 1: Redis stopped under load: what it runs after SIGCONT is bounded by max_pending
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_BP_REDIS_PORT max_pending=50 timeout=50ms connect_timeout=1s;
    rate_limit_zone z key=$arg_k rate=100r/s;
--- init
main::stall(2);
--- request
GET /open?k=after
--- error_code: 200
--- response_headers
X-RL: PASSED
--- no_error_log
[alert]
[crit]
signal
--- post_check
my %s = %main::Stall;
my $all = main::outcomes();
my $bound = $main::MaxPending * 1 * $main::Workers + 20;
ok($s{ran} <= $bound,
   "Redis ran $s{ran} EVALSHA after SIGCONT (at most $main::MaxPending x 1 "
   . "connection x $main::Workers workers + 20 = $bound); requests: $all");
my ($bad) = grep { !/^(200 ERROR|503 ERROR)=/ } split /, /, $all;
ok(!defined $bad, "every request got the fail policy while Redis was stopped ($all)");
ok($main::Load{'200 ERROR'} && $main::Load{'503 ERROR'}, 'fail open and fail closed both seen');
for my $pid (sort keys %{ $s{rss0} }) {
    my ($kb0, $kb1) = ($s{rss0}{$pid}, $s{rss1}{$pid} // 0);
    ok($kb1 - $kb0 < 16 * 1024,
       "worker $pid: RSS $kb0 kB before, $kb1 kB at the end of the stall "
       . '(grew by less than 16 MiB)');
}
ok($s{back} < 6, sprintf('PASSED again %.2f s after SIGCONT (less than 6 s)', $s{back}));
is($s{pids_after}, $s{pids}, 'the same workers: none crashed');
my $n = log_count(qr/\[error\].*max_pending/);
ok($n >= 1 && $n <= 2 * (2 + 3),
   "requests without room logged, at most once a second per worker ($n lines)");



=== TEST 2: max_pending=0 is refused
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_BP_REDIS_PORT max_pending=0;
    rate_limit_zone z key=$arg_k rate=100r/s;
--- must_die
--- error_log
max_pending
--- no_error_log
[alert]



=== TEST 3: max_pending=1000001 is refused
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_BP_REDIS_PORT max_pending=1000001;
    rate_limit_zone z key=$arg_k rate=100r/s;
--- must_die
--- error_log
max_pending
--- no_error_log
[alert]



=== TEST 4: max_pending=1: one command at a time per connection, requests still decided
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_BP_REDIS_PORT max_pending=1 timeout=1s;
    rate_limit_zone z key=$arg_k rate=1r/m burst=1;
--- request eval
["GET /open?k=one", "GET /open?k=one", "GET /closed?k=one"]
--- error_code eval
[200, 200, 429]
--- response_headers eval
["X-RL: PASSED", "X-RL: PASSED", "X-RL: REJECTED"]
--- no_error_log eval
[qr/\[error\].*rate_limit:/, "[alert]"]



=== TEST 5: requests that time out while the handshake waits: their commands are never written
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_BP_REDIS_PORT max_pending=50 timeout=50ms connect_timeout=3s;
    rate_limit_zone z key=$arg_k rate=100r/s;
--- init
main::timeout_in_handshake(8);
--- request
GET /open?k=after5
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
my $all = main::outcomes();
is($all, '200 ERROR=8', 'the eight requests failed open while Redis was paused');
ok($main::Stall{took} < 1, sprintf('all within the pause (%.2f s)', $main::Stall{took}));
is($main::Stall{ran}, 0, 'Redis ran none of the eight once it went on');
--- no_error_log
[alert]
[crit]
signal
