# Two workers under a master process: the limit is one for both (the
# counter is in Redis), connections=N opens N connections per worker used
# in turn, and a reload (HUP) under requests brings new workers that
# connect while the old ones close theirs: no crash, no alert, no request
# lost, and CLIENT LIST back to workers x connections.
#
# Requests that must reach both workers go to a second listener with
# reuseport, where the kernel spreads connections over the workers.

use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults clean_shutdown master_pid);
use Time::HiRes qw(time sleep);

our (@Spread, @BeforeIds, $Load, $Reloads, $ReloadTook);

$ENV{TEST_NGINX_REUSEPORT_PORT} = free_port();

workers(2);
master_on();

# Counts over a whole block: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 71;

no_long_string();
no_shuffle();

# The module's connections to the test Redis.
sub main::nginx_clients {
    return grep { ($_->{cmd} // '') =~ /^(evalsha|eval|script)/ }
        redis_clients();
}

sub main::wait_clients {
    my ($n) = @_;
    return wait_until(5, sub { main::nginx_clients() == $n });
}

# $n requests, each on a new connection to the reuseport listener.
sub main::spread {
    my ($n, $path) = @_;

    @Spread = map {
        my $p = $path;
        $p =~ s/\$i/$_/g;
        http_get($p, port => $ENV{TEST_NGINX_REUSEPORT_PORT})
    } 1 .. $n;
}

# Requests in a loop from a child for $secs, each on a new connection, while
# the master is sent HUP $n times; then the module's connections settle.
sub main::reload_under_load {
    my ($n, $secs, $conns_per_worker) = @_;

    redis_cmd('FLUSHALL');
    main::wait_clients(2 * $conns_per_worker) or die "not connected\n";
    @BeforeIds = map { $_->{id} } main::nginx_clients();

    my $bg = run_bg(sub {
        my (%st, $i);
        my $end = time + $secs;
        while (time < $end) {
            my $r = http_get('/t?k=load' . $i++);
            my $k = $r->{status} ? "$r->{status} " . ($r->{headers}{'x-rl'} // '-')
                                 : "failed: $r->{error}";
            $st{$k}++;
        }
        return join ", ", map { "$_=$st{$_}" } sort keys %st;
    });

    my $master = main::master_pid();
    my $start = time;
    for (1 .. $n) {
        sleep 0.3;
        kill 'HUP', $master or die "HUP: $!";
    }

    $Load = wait_bg($bg, $secs + 10);

    # new workers connected, old connections gone
    main::wait_clients(2 * $conns_per_worker);
    $ReloadTook = time - $start;
}

# Twelve clients (keep-alive, some leaving mid-wait, fail open and closed,
# two zones) for $secs, while Redis connections are killed, Redis paused,
# its scripts flushed, its data flushed and nginx reloaded at random.
sub main::chaos {
    my ($secs) = @_;

    srand 70;
    my $port = $ENV{TEST_NGINX_REUSEPORT_PORT};

    my @bg = map { my $c = $_; run_bg(sub {
        my (%st, $ka);
        my $end = time + $secs;
        my $path = $c % 2 ? '/t' : '/c';

        while (time < $end) {
            my $k = 'k' . int(rand 20);

            if (rand() < 0.1) {
                my $s = eval { http_send("$path?k=$k", port => $port) };
                sleep 0.01;
                close $s if $s;
                $st{left}++;
                next;
            }

            $ka //= Test::RateLimit::Client::KeepAlive->new(port => $port,
                                                            timeout => 3);
            my $r = $ka->get("$path?k=$k");

            if (!$r->{status}) {
                # keep-alive connections closed by a reload
                $st{'closed by nginx'}++;
                undef $ka;
                next;
            }

            $st{"$r->{status} " . ($r->{headers}{'x-rl'} // '-')}++;
        }

        return join ', ', map { "$_=$st{$_}" } sort keys %st;
    }) } 1 .. 12;

    my $master = main::master_pid();
    my $end = time + $secs - 0.3;
    my %ops;

    while (time < $end) {
        my $x = int rand 6;

        if ($x == 0) {
            redis_cmd('CLIENT', 'PAUSE', int(rand 150), 'ALL');
            $ops{pause}++;
        } elsif ($x == 1) {
            for (main::nginx_clients()) {
                next if rand() < 0.5;
                redis_cmd('CLIENT', 'KILL', 'ID', $_->{id});
                $ops{kill}++;
            }
        } elsif ($x == 2) {
            redis_cmd('SCRIPT', 'FLUSH');
            $ops{'script flush'}++;
        } elsif ($x == 3 && rand() < 0.3) {
            kill 'HUP', $master;
            $ops{reload}++;
        } else {
            redis_cmd('FLUSHALL');
            $ops{flushall}++;
        }

        sleep rand 0.1;
    }

    my @load = map { wait_bg($_, $secs + 10) } @bg;
    return (join(', ', map { "$_=$ops{$_}" } sort keys %ops), @load);
}

add_block_preprocessor(sub {
    set_defaults(shift,
        config => <<'_EOC_',
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        add_header X-Pid $pid always;
        empty_gif;
    }
_EOC_
        no_error_log => "[alert]\n[crit]\nexited on signal\n",
        no_shutdown_error_log => clean_shutdown());
});

run_tests();

__DATA__

=== TEST 1: two workers share one limit
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;

    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        location = /t {
            rate_limit z;
            add_header X-RL $rate_limit_status always;
            add_header X-Pid $pid always;
            empty_gif;
        }
    }
--- init
main::redis_cmd('FLUSHALL');
main::wait_clients(2);
main::spread(40, '/t?k=shared');
--- request
GET /t?k=shared
--- error_code: 429
--- response_headers
X-RL: REJECTED
--- post_check
my %by;
$by{"$_->{status} " . ($_->{headers}{'x-rl'} // '-')}++ for @main::Spread;
is(join(', ', map { "$_: $by{$_}" } sort keys %by),
   '200 PASSED: 10, 429 REJECTED: 30', 'exactly the limit passed, over both workers');
my %pids = map { $_->{headers}{'x-pid'} => 1 } @main::Spread;
is(scalar keys %pids, 2, 'both workers answered (' . join(', ', sort keys %pids) . ')');
my %rejected_by = map { $_->{headers}{'x-pid'} => 1 } grep { $_->{status} == 429 } @main::Spread;
is(scalar keys %rejected_by, 2, 'both workers rejected');
--- no_error_log eval
[qr/\[error\].*rate_limit: redis/, "[alert]", "[crit]", "exited on signal"]



=== TEST 2: connections=3: three per worker, used in turn
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT connections=3;
    rate_limit_zone z key=$arg_k rate=10r/s burst=100;
--- init
main::redis_cmd('FLUSHALL');
main::wait_clients(6);
--- pipelined_requests eval
["GET /t?k=rr1", "GET /t?k=rr2", "GET /t?k=rr3"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-RL: PASSED", "X-RL: PASSED", "X-RL: PASSED"]
--- post_check
if ($req_idx == 2) {
    my @c = main::nginx_clients();
    is(scalar @c, 6, 'six connections: two workers, three each');
    is(scalar(grep { $_->{cmd} eq 'evalsha' } @c), 3,
       'three requests on one worker used its three connections, one each');
}
--- no_error_log
[error]
[alert]
[crit]
exited on signal



=== TEST 3: HUP under requests: no crash, no request lost, new workers connect
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=10r/s burst=100;
--- init
main::reload_under_load(1, 1.5, 1);
--- request
GET /t?k=after
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
unlike($main::Load, qr/failed|(^|, )(?!200 PASSED)/, "every request passed and was decided: $main::Load");
my @c = main::nginx_clients();
is(scalar @c, 2, sprintf('two connections again (%.2f s)', $main::ReloadTook));
my %before = map { $_ => 1 } @main::BeforeIds;
is(scalar(grep { $before{ $_->{id} } } @c), 0, 'both are new: the old ones are closed');
ok(log_count(qr/gracefully shutting down/), 'the old workers shut down gracefully');



=== TEST 4: three reloads in a row under requests, connections=2
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT connections=2;
    rate_limit_zone z key=$arg_k rate=10r/s burst=100;
--- init
main::reload_under_load(3, 1.8, 2);
--- request
GET /t?k=after
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
unlike($main::Load, qr/failed|(^|, )(?!200 PASSED)/, "every request passed and was decided: $main::Load");
my @c = main::nginx_clients();
is(scalar @c, 4, sprintf('four connections again (%.2f s)', $main::ReloadTook));
my %before = map { $_ => 1 } @main::BeforeIds;
is(scalar(grep { $before{ $_->{id} } } @c), 0, 'all new: the old ones are closed');



=== TEST 5: chaos under load: connections killed, Redis paused and flushed, reloads
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=50ms
                     connect_timeout=200ms connections=2;
    rate_limit_zone z key=$arg_k rate=100r/s burst=50;
    rate_limit_zone w key=$arg_k rate=5r/s algorithm=sliding_log;

    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        location = /t {
            rate_limit z;
            rate_limit w;
            add_header X-RL $rate_limit_status always;
            empty_gif;
        }
        location = /c {
            rate_limit z;
            rate_limit_fail_open off;
            add_header X-RL $rate_limit_status always;
            empty_gif;
        }
    }
--- init
main::wait_clients(4);
--- request
GET /t?k=before
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
my ($ops, @load) = main::chaos(4);
my ($ok, $bad) = (0, 0);
for (@load) {
    for (split /, /) {
        my ($what, $n) = /^(.*)=(\d+)$/ or next;
        if ($what =~ /^(200 PASSED|429 REJECTED|200 ERROR|503 ERROR)$|^(left|closed by nginx)$/) {
            $ok += $n;
        } else {
            $bad += $n;
            diag "unexpected: $what=$n";
        }
    }
}
ok($ok > 1000, "$ok requests and abandoned clients through chaos ($ops)");
is($bad, 0, 'every answer a decision or the fail policy');
ok(wait_until(5, sub { (http_get('/t?k=after')->{headers}{'x-rl'} // '') eq 'PASSED' }),
   'decided after the chaos');
ok(main::wait_clients(4), 'two workers, two connections each, again');
--- no_error_log
[alert]
[crit]
exited on signal
open socket
