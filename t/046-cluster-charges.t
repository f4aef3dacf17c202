# mode=cluster for what nobody waits for: rate_limit_charge and the
# leases of concurrency zones, against a real Redis Cluster (three
# masters, three replicas) and one NGINX of two workers.  Each such
# command set goes one call per slot, to that slot's master, MOVED and
# ASK followed:
#
#   - charges of two zones in different slots: the debt on both masters,
#     rejected until repaid; a charge sent while its slot has moved lands
#     (MOVED followed);
#   - concurrency N=3, 10 concurrent slow requests: exactly 3 admitted,
#     the releases land on the slot's master (the key empties);
#   - a request longer than its lease keeps its slot (renewals land);
#   - a concurrency zone with a rate zone in another slot: a rejection by
#     the rate zone leaves no lease (the refund drops it).
#
# A plain Test::More test: it starts its own servers and stops them by pid.

use strict;
use warnings;

use Test::More;
use Test::RateLimit::Instances;
use Test::RateLimit::Cluster;
use Test::RateLimit::Slow;
use Test::RateLimit::Client qw(free_port http_get http_send http_read
                               wait_until);
use Time::HiRes qw(time sleep);

plan skip_all => 'TEST_NGINX_LOAD_MODULES is not set (make test sets it)'
    unless $ENV{TEST_NGINX_LOAD_MODULES};

my $cluster = Test::RateLimit::Cluster->start(nodes => 6);
my @seeds = ($cluster->ports)[0, 1];
my ($slow_port) = Test::RateLimit::Slow::start();
my $port = free_port();

my $http = <<"_EOC_";
    rate_limit_redis 127.0.0.1:$seeds[0] 127.0.0.1:$seeds[1] mode=cluster
                     timeout=2s;
    rate_limit_fail_open off;
    # 10 tokens a second, up to 10 at once
    rate_limit_zone ta key=\$arg_k rate=10r/s burst=10 algorithm=token_bucket;
    rate_limit_zone tb key=\$arg_k rate=10r/s burst=10 algorithm=token_bucket;
    rate_limit_zone three key=\$arg_k concurrency=3 lease=10s;
    rate_limit_zone one key=\$arg_k concurrency=1 lease=2s;
    rate_limit_zone solo key=\$arg_k concurrency=1 lease=30s;
    rate_limit_zone r key=\$arg_k rate=3r/h burst=2;
_EOC_

my $server = <<"_EOC_";
        location /charge {
            rate_limit ta;
            rate_limit tb;
            rate_limit_charge ta \$upstream_http_x_tokens;
            rate_limit_charge tb \$upstream_http_x_tokens;
            add_header X-RL \$rate_limit_status always;
            proxy_pass http://127.0.0.1:$port/backend;
        }
        # charged only: its slot's first command is the charge
        location /charge_only {
            rate_limit_charge ta \$upstream_http_x_tokens;
            proxy_pass http://127.0.0.1:$port/backend;
        }
        location /backend {
            add_header X-Tokens \$arg_tokens;
            empty_gif;
        }
        location /three/slow {
            rate_limit three;
            proxy_pass http://127.0.0.1:$slow_port/;
        }
        location /one/slow {
            rate_limit one;
            proxy_pass http://127.0.0.1:$slow_port/;
        }
        location /one/fast {
            rate_limit one;
            empty_gif;
        }
        location /solo_r {
            rate_limit solo;
            rate_limit r;
            add_header X-RL \$rate_limit_status always;
            empty_gif;
        }
_EOC_

my $nginx = Test::RateLimit::Instances::Nginx->start(
    name => 'cl', port => $port, workers => 2, http => $http,
    server => $server);

sub get { http_get($_[0], port => $port, timeout => 5) }
sub slot { Test::RateLimit::Cluster::slot_of($_[0]) }

# A key whose zones' keys are on different masters.
my $seq = 0;
sub apart {
    my ($z1, $z2) = @_;
    while (1) {
        my $k = 'k' . $$ . '-' . $seq++;
        return $k if $cluster->slot_port(slot("{$z1:$k}"))
                     != $cluster->slot_port(slot("{$z2:$k}"));
    }
}

sub fresh { 'f' . $$ . '-' . $seq++ }

# What a key holds, asked of its slot's master.
sub tokens {
    my ($zone, $k) = @_;
    my $key = "rl:{$zone:$k}:tb";
    my $v = $cluster->cmd($cluster->slot_port(slot($key)), 'HGET', $key,
                          'tokens');
    return ref $v ? undef : $v;
}

sub held {
    my ($zone, $k) = @_;
    my $key = "rl:{$zone:$k}:cc";
    return $cluster->cmd($cluster->slot_port(slot($key)), 'ZCARD', $key);
}

# The cluster is up and the worker has its map: a decision answers.
ok(wait_until(10, sub { (get('/solo_r?k=' . fresh())->{status} // 0) == 200 }),
   'the cluster decides');

# Charges of two zones in different slots.
{
    my $k = apart('ta', 'tb');
    my $r = get("/charge?k=$k&tokens=25");
    is($r->{status}, 200, 'admitted by a cost of 1 in each zone');
    ok(wait_until(3, sub { (tokens('ta', $k) // 0) < 0
                           && (tokens('tb', $k) // 0) < 0 }),
       'the charge of 25 left both keys in debt, each on its master')
        or diag('ta ' . (tokens('ta', $k) // 'none') . ', tb '
                . (tokens('tb', $k) // 'none'));
    is(get("/charge?k=$k&tokens=0")->{status}, 429,
       'rejected while in debt');
    # 16 tokens of debt at 10 a second
    ok(wait_until(4, sub { get("/charge?k=$k&tokens=0")->{status} == 200 }),
       'admitted again once repaid');
}

# A charge whose slot has moved: the old master says MOVED, it lands on
# the new one.
{
    my $k = fresh();
    my $slot = slot("{ta:$k}");
    my $from = $cluster->slot_port($slot);
    my ($to) = grep { $_ != $from } $cluster->masters;
    $cluster->move_slot($slot, $to);
    my $moved = moved($from);
    is(get("/charge_only?k=$k&tokens=30")->{status}, 200, 'charged only');
    ok(wait_until(3, sub { (tokens('ta', $k) // 0) < 0 }),
       'the charge landed on the new master');
    cmp_ok(moved($from), '>', $moved, 'after a MOVED from the old one');
}

sub moved {
    my $info = $cluster->cmd($_[0], 'INFO', 'errorstats');
    return $info =~ /^errorstat_MOVED:count=(\d+)/m ? $1 : 0;
}

# N=3, 10 at once: 3 admitted, and released on their slot's master.
{
    my $k = fresh();
    my @socks = map { http_send("/three/slow?k=$k&d=2", port => $port) }
                1 .. 10;
    my %by;
    $by{$_->{status} // 0}++ for map { http_read($_, timeout => 10) } @socks;
    is($by{200} // 0, 3, '10 concurrent slow requests, N=3: 3 admitted');
    is($by{429} // 0, 7, 'the other 7 rejected');
    # leases of 10 s: only the releases empty the key this soon
    ok(wait_until(1, sub { held('three', $k) == 0 }),
       'every lease released on the slot\'s master')
        or diag('held: ' . held('three', $k));
}

# Three times the lease: renewed in the cluster, it keeps its slot.
{
    my $k = fresh();
    my $start = time;
    my $sock = http_send("/one/slow?k=$k&d=6", port => $port);
    ok(wait_until(2, sub { held('one', $k) == 1 }), 'a 6 s request, 2 s lease');
    my @late;
    for my $at (1, 2.5, 4, 5.5) {
        sleep($start + $at - time) if time < $start + $at;
        push @late, get("/one/fast?k=$k")->{status};
    }
    is("@late", '429 429 429 429',
       'rejected at 1, 2.5, 4 and 5.5 s: the slot is kept past the lease');
    is(http_read($sock, timeout => 5)->{status}, 200, 'the long one passed');
    ok(wait_until(2, sub { held('one', $k) == 0 }), 'and then released');
}

# A concurrency zone and a rate zone in another slot: the rate zone
# rejects, the lease the other slot took is refunded.
{
    my $k = apart('solo', 'r');
    my @got = map { get("/solo_r?k=$k")->{headers}{'x-rl'} // 'none' } 1 .. 4;
    is("@got", 'PASSED PASSED PASSED REJECTED',
       'one at a time: each released, then the rate zone rejects');
    ok(wait_until(1, sub { held('solo', $k) == 0 }),
       'the rejected request left no lease');
    is(get("/solo_r?k=$k")->{headers}{'x-rl'}, 'REJECTED',
       'and the next is rejected by the rate zone, not the lease');
}

my @bad = grep { /\[(alert|crit)\]|signal \d+/ } split /\n/, $nginx->error_log;
is(scalar(@bad), 0, 'no alert, no crash') or diag(join "\n", @bad[0 .. 4]);

done_testing();
