# rate_limit_metrics: the Prometheus text (format 0.0.4) read back by an
# independent parser (Debian's python3-prometheus-client, through
# t/lib/Test/RateLimit/prometheus_parse.py).  Two workers under a master
# process count into one shared memory: the counts equal what the test
# sent, wherever the kernel put each connection; they survive a reload as
# limit_req's states do; every family has HELP and TYPE; a node that is a
# unix socket path with a quote, a backslash and a newline in it is
# escaped as the format says.
#
# A redis-server of this test's own, so that the command counts are ours.

use Test::RateLimit::Instances;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults clean_shutdown master_pid);
use Test::RateLimit::Metrics qw(parse metric);
use File::Temp ();
use Time::HiRes qw(time sleep);

our (@Spread, %Seen);

# the socket's directory is reached through a symlink with odd bytes
our $SockDir = File::Temp::tempdir('rl-m-XXXXXX', TMPDIR => 1, CLEANUP => 1);
our $OddDir = "$SockDir/q\"b\\s\nl";
symlink $SockDir, $OddDir or die "symlink: $!";
our $OddSock = "$OddDir/redis.sock";

our $Redis = Test::RateLimit::Instances::Redis->start(
    port => free_port(),
    args => ['--unixsocket', "$SockDir/redis.sock"]);

$ENV{TEST_NGINX_M_REDIS_PORT} = $Redis->port;
$ENV{TEST_NGINX_REUSEPORT_PORT} = free_port();
# as nginx reads a quoted string: \" and \\ (the newline is itself)
($ENV{TEST_NGINX_ODD_SOCK} = $OddSock) =~ s/(["\\])/\\$1/g;

our @Families = (
    [ nginx_rate_limit_requests_total        => 'counter' ],
    [ nginx_rate_limit_charged_units_total   => 'counter' ],
    [ nginx_rate_limit_redis_commands_total  => 'counter' ],
    [ nginx_rate_limit_redis_latency_seconds => 'histogram' ],
    [ nginx_rate_limit_redis_connections     => 'gauge' ],
    [ nginx_rate_limit_redis_pending         => 'gauge' ],
);

our @Outcomes = qw(passed rejected rejected_cached delayed dry_run_rejected
                   error_passed error_rejected local_passed local_rejected);

workers(2);
master_on();

# Counts over a whole block: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 75;

no_long_string();
no_shuffle();

sub main::private { Test::RateLimit::Redis->new(port => $Redis->port) }

# Both workers connected to the private Redis, its data flushed.
sub main::ready {
    main::private()->cmd('FLUSHALL');
    wait_until(5, sub { redis_clients(port => $Redis->port) >= 2 })
        or die "nginx did not connect to redis\n";
    sleep 0.3;
}

# $n requests, each on a new connection to the reuseport listener, where
# the kernel spreads them over the workers; the pids that answered.
sub main::spread {
    my ($n, $path) = @_;

    for (1 .. $n) {
        my $r = http_get($path, port => $ENV{TEST_NGINX_REUSEPORT_PORT});
        push @Spread, $r;
        $Seen{ $r->{headers}{'x-pid'} // '-' }++;
    }
}

# $before requests, a reload (HUP) that ends with the old workers gone and
# the new ones connected, then $after requests.
sub main::reload_between {
    my ($before, $after, $path) = @_;

    main::spread($before, $path);

    my @old = worker_pids(main::master_pid());
    my %old = map { $_ => 1 } @old;
    kill 'HUP', main::master_pid() or die "HUP: $!";

    wait_until(10, sub {
        my @now = worker_pids(main::master_pid());
        @now == 2 && !grep { $old{$_} } @now;
    }) or die "no new workers\n";
    wait_until(5, sub { !grep { kill 0, $_ } @old }) or die "old workers stay\n";
    wait_until(5, sub { redis_clients(port => $Redis->port) == 2 })
        or die "the new workers did not connect\n";

    main::spread($after, $path);
}

# $n requests on the test's own listener.
sub main::in_a_row {
    my ($n, $path) = @_;
    push @Spread, http_get($path) for 1 .. $n;
}

sub main::statuses {
    my %n;
    $n{ $_->{status} . ' ' . ($_->{headers}{'x-rl'} // '-') }++ for @Spread;
    return join ', ', map { "$_=$n{$_}" } sort keys %n;
}

# Every family with HELP and TYPE, in the text and as the parser read it.
sub main::check_families {
    my ($m) = @_;

    for my $f (@Families) {
        my ($name, $type) = @$f;
        (my $base = $name) =~ s/_total$//;
        like($m->{text}, qr/^# HELP \Q$name\E \S.*\n# TYPE \Q$name\E \Q$type\E\n/m,
             "$name: HELP and TYPE $type");
        is($m->{families}{$base}{type}, $type, "$name read as a $type");
    }
}

sub main::node { '127.0.0.1:' . $Redis->port }

add_block_preprocessor(sub {
    set_defaults(shift, no_shutdown_error_log => clean_shutdown());
});

run_tests();

__DATA__

=== TEST 1: two workers: requests, commands and latency equal what was sent; gauges of both workers
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_M_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m burst=4 cache=0;
    rate_limit_zone d key=$arg_k rate=1r/m cache=0;

    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        location = /t {
            rate_limit z;
            add_header X-RL $rate_limit_status always;
            add_header X-Pid $pid always;
            empty_gif;
        }
        location = /dry {
            rate_limit d;
            rate_limit_dry_run on;
            add_header X-RL $rate_limit_status always;
            add_header X-Pid $pid always;
            empty_gif;
        }
    }
--- config
    location = /metrics {
        rate_limit off;
        rate_limit_metrics;
    }
--- init
main::ready();
@main::Spread = (); %main::Seen = ();
main::spread(16, '/t?k=a');
main::spread(3, '/dry?k=b');
--- request
GET /metrics
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- post_check
my $m = main::parse($body);
my $st = main::statuses();
is($st, '200 PASSED=6, 200 REJECTED_DRY_RUN=2, 429 REJECTED=11', 'what the clients got');
is(scalar(grep { $_ ne '-' } keys %main::Seen), 2,
   'both workers answered: ' . join(' ', map { "$_=$main::Seen{$_}" } sort keys %main::Seen));
main::check_families($m);
my $r = 'nginx_rate_limit_requests_total';
my %want = (z => { passed => 5, rejected => 11 }, d => { passed => 1, dry_run_rejected => 2 });
for my $zone (sort keys %want) {
    is(join(' ', map { main::metric($m, $r, zone => $zone, outcome => $_) // 'none' } @main::Outcomes),
       join(' ', map { $want{$zone}{$_} // 0 } @main::Outcomes),
       "zone $zone: " . join(', ', map { "$_=$want{$zone}{$_}" } sort keys %{ $want{$zone} }) . ', the other outcomes 0');
}
is(main::metric($m, 'nginx_rate_limit_charged_units_total', zone => 'z'), 0, 'charged units declared, 0');
my $node = main::node();
my $c = 'nginx_rate_limit_redis_commands_total';
is(join(' ', map { main::metric($m, $c, node => $node, result => $_) // 'none' } qw(ok error timeout no_room moved ask)),
   '19 0 0 0 0 0', "node $node: 19 commands ok, no other result");
my $h = 'nginx_rate_limit_redis_latency_seconds';
my @le = qw(0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 +Inf);
my @b = map { main::metric($m, "${h}_bucket", node => $node, le => $_) } @le;
is(scalar(grep { defined } @b), 12, 'the twelve buckets');
ok(!grep({ $b[$_] < $b[$_ - 1] } 1 .. $#b), "buckets cumulative: @b");
is($b[-1], 19, '+Inf holds every command');
is(main::metric($m, "${h}_count", node => $node), 19, '_count: 19');
my $sum = main::metric($m, "${h}_sum", node => $node);
ok($sum > 0 && $sum < 19 * 1, "_sum $sum s: some, and less than a second each");
my $g = 'nginx_rate_limit_redis_connections';
is(join(' ', map { main::metric($m, $g, node => $node, state => $_) // 'none' } qw(up connecting down)),
   '2 0 0', 'connections: 2 up (one per worker), none connecting or down');
is(main::metric($m, 'nginx_rate_limit_redis_pending', node => $node), 0, 'nothing pending');
--- no_error_log
[alert]
[crit]



=== TEST 2: a reload keeps the counts (same shared memory), and the new workers' gauges replace the old ones'
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_M_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m burst=4 cache=0;

    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        location = /t {
            rate_limit z;
            add_header X-RL $rate_limit_status always;
            add_header X-Pid $pid always;
            empty_gif;
        }
    }
--- config
    location = /metrics {
        rate_limit_metrics;
    }
--- init
main::ready();
@main::Spread = (); %main::Seen = ();
main::reload_between(4, 3, '/t?k=r');
--- request
GET /metrics
--- post_check
my $m = main::parse($body);
is(main::statuses(), '200 PASSED=5, 429 REJECTED=2', 'what the clients got');
my $r = 'nginx_rate_limit_requests_total';
is(main::metric($m, $r, zone => 'z', outcome => 'passed'), 5, '5 passed: 4 before the reload, 1 after');
is(main::metric($m, $r, zone => 'z', outcome => 'rejected'), 2, '2 rejected after the reload');
my $node = main::node();
is(main::metric($m, 'nginx_rate_limit_redis_commands_total', node => $node, result => 'ok'), 7,
   '7 commands, before and after');
is(main::metric($m, 'nginx_rate_limit_redis_latency_seconds_count', node => $node), 7, 'latency _count 7');
is(main::metric($m, 'nginx_rate_limit_redis_connections', node => $node, state => 'up'), 2,
   'the new workers\' 2 connections up; the old workers\' gone');
main::check_families($m);
--- no_error_log
[alert]
[crit]



=== TEST 3: a node that is a unix socket path: the label escapes the quote, the backslash and the newline
--- http_config
    rate_limit_redis "unix:$TEST_NGINX_ODD_SOCK";
    rate_limit_zone z key=$arg_k rate=10r/m cache=0;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
    location = /metrics {
        rate_limit off;
        rate_limit_metrics;
    }
--- init
main::ready();
@main::Spread = ();
main::in_a_row(2, '/t?k=u');
--- request
GET /metrics
--- post_check
my $m = main::parse($body);
is(main::statuses(), '200 PASSED=1, 429 REJECTED=1', 'decided through the socket');
my $c = 'nginx_rate_limit_redis_commands_total';
is(main::metric($m, $c, node => $main::OddSock, result => 'ok'), 2,
   'the parser reads the node back as the exact path');
my $escaped = $main::OddSock;
$escaped =~ s/([\\"])/\\$1/g;
$escaped =~ s/\n/\\n/g;
ok(index($m->{text}, "node=\"$escaped\"") >= 0, 'escaped in the text as \\", \\\\ and \\n');
ok($m->{text} !~ /\n[^#n]/, 'no line begins with a stray byte of the path');
--- no_error_log
[alert]
[crit]



=== TEST 4: rate_limit_charge: the units its commands took, per zone
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_M_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=100r/m burst=20 cache=0;
    rate_limit_zone y key=$arg_k rate=100r/m cache=0;
--- config
    location = /t {
        rate_limit z;
        rate_limit_charge z 3;
        rate_limit_charge y $arg_units;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
    location = /metrics {
        rate_limit off;
        rate_limit_metrics;
    }
--- init
main::ready();
@main::Spread = ();
main::in_a_row(1, '/t?k=c&units=5');
main::in_a_row(1, '/t?k=c&units=0');
Time::HiRes::sleep(0.3);
--- request
GET /metrics
--- post_check
my $m = main::parse($body);
is(main::statuses(), '200 PASSED=2', 'both passed');
my $u = 'nginx_rate_limit_charged_units_total';
is(main::metric($m, $u, zone => 'z'), 6, 'zone z: 3 units twice');
is(main::metric($m, $u, zone => 'y'), 5, 'zone y: 5, and a charge of 0 takes nothing');
--- no_error_log
[alert]
[crit]
