# fallback=N of a concurrency zone: with Redis stopped (SIGSTOP), one
# NGINX of two workers decides the zone by an in-progress count in its
# shared memory, $rate_limit_decided_by "local":
#
#   - 6 concurrent slow requests of one key, fallback=2: exactly 2 pass,
#     4 are rejected (429);
#   - when they end their counts are given back: 2 new ones pass again;
#   - the counts of workers killed (SIGKILL) mid-request are not counted
#     by the workers that replace them;
#   - Redis continued (SIGCONT): decided by Redis again;
#   - in a tiny shared memory crowded by new keys, the state of a key with
#     a request in progress is kept.
#
# A plain Test::More test: it starts its own Redis, NGINX and slow
# upstream and stops them by pid.

use strict;
use warnings;

use Test::More;
use Test::RateLimit::Instances;
use Test::RateLimit::Slow;
use Test::RateLimit::Client qw(free_port http_get http_send http_read
                               wait_until worker_pids redis_clients);
use Time::HiRes qw(sleep);

plan skip_all => 'TEST_NGINX_LOAD_MODULES is not set (make test sets it)'
    unless $ENV{TEST_NGINX_LOAD_MODULES};

my ($slow_port) = Test::RateLimit::Slow::start();

my $redis = Test::RateLimit::Instances::Redis->start(port => free_port());

my $http = <<"_EOC_";
    rate_limit_redis 127.0.0.1:@{[ $redis->port ]} timeout=50ms;
    rate_limit_fail_open off;
    rate_limit_headers on;
    rate_limit_zone c key=\$arg_k concurrency=4 lease=30s fallback=2;
    rate_limit_zone z key=\$arg_k rate=1r/m fallback=1r/m;
_EOC_

my $server = <<"_EOC_";
        location /slow {
            rate_limit c;
            add_header X-RL "\$rate_limit_status \$rate_limit_decided_by"
                       always;
            proxy_pass http://127.0.0.1:$slow_port/;
        }
        location /fast {
            rate_limit c;
            add_header X-RL "\$rate_limit_status \$rate_limit_decided_by"
                       always;
            empty_gif;
        }
_EOC_

# both zones, in a dry run: a request another zone rejects goes on
my $dry = <<"_EOC_";
        location /dry {
            rate_limit z;
            rate_limit c;
            rate_limit_dry_run on;
            proxy_pass http://127.0.0.1:$slow_port/;
        }
_EOC_

# nginx -t accepts it: the instance starts
my $nginx = Test::RateLimit::Instances::Nginx->start(
    name => 'ccfb', port => free_port(), workers => 2,
    http => $http, server => $server . $dry);

ok(wait_until(5, sub { redis_clients(port => $redis->port) >= 2 }),
   'both workers connected to Redis');

sub outcome {
    my ($r) = @_;
    return $r->{status} ? "$r->{status} " . ($r->{headers}{'x-rl'} // '-')
                        : 'failed';
}

# $n slow requests of key $k at once, each on its own connection: what
# they got, "status X-RL=count, ..."
sub at_once {
    my ($n, $k, $d) = @_;
    my @socks = map { http_send("/slow?k=$k&d=$d", port => $nginx->port) }
                    1 .. $n;
    my %got;
    $got{ outcome(http_read($_, timeout => 10)) }++ for @socks;
    return join ', ', map { "$_=$got{$_}" } sort keys %got;
}

is(outcome(http_get('/fast?k=before', port => $nginx->port)),
   '200 PASSED redis', 'Redis decides while it runs');

$redis->kill('STOP');

is(at_once(6, 'a', 2), '200 PASSED local=2, 429 REJECTED local=4',
   'Redis stopped: 6 concurrent, fallback=2: 2 pass locally, 4 rejected');

{
    my $r = http_get('/fast?k=a', port => $nginx->port);
    is(outcome($r), '200 PASSED local', 'their counts were given back');
    is($r->{headers}{'ratelimit'}, '"c";r=1',
       'a local admission: limit 2, 1 slot left while it runs');
}

is(at_once(3, 'a', 2), '200 PASSED local=2, 429 REJECTED local=1',
   'when they ended, 2 new ones pass locally again');

# Workers killed with two slow requests counted: their successors do not
# count what the dead left.
{
    my @old = worker_pids($nginx->pid);
    my @socks = map { http_send("/slow?k=b&d=5", port => $nginx->port) }
                    1 .. 2;
    sleep 0.5;
    is(outcome(http_get('/fast?k=b', port => $nginx->port)),
       '429 REJECTED local', 'two held: a third is rejected');
    kill 'KILL', @old;
    my %o = map { $_ => 1 } @old;
    ok(wait_until(5, sub {
           2 == grep { !$o{$_} } worker_pids($nginx->pid);
       }), 'the workers killed, two new ones');
    close $_ for @socks;
    is(at_once(3, 'b', 1), '200 PASSED local=2, 429 REJECTED local=1',
       'the dead workers\' counts are not counted: 2 pass again');
}

# A request that another zone rejects takes no slot, even when it goes on
# (dry run): three slow ones, z admits only the first.
{
    my @socks = map { my $s = http_send("/dry?k=d&d=2", port => $nginx->port);
                      sleep 0.2; $s } 1 .. 3;
    is(outcome(http_get('/fast?k=d', port => $nginx->port)),
       '200 PASSED local',
       'rejected by another zone: no slot taken, one of two is free');
    is(join(' ', map { http_read($_, timeout => 10)->{status} } @socks),
       '200 200 200', 'the dry run let all three through');
}

$redis->kill('CONT');

ok(wait_until(10, sub {
       outcome(http_get('/fast?k=back', port => $nginx->port))
           eq '200 PASSED redis';
   }), 'Redis continued: decided by Redis again');

is(at_once(6, 'c', 1), '200 PASSED redis=4, 429 REJECTED redis=2',
   'and by its limit of 4, not the fallback\'s');

# A tiny shared memory crowded by new keys, with Redis refusing
# connections: a state counting a request in progress is never dropped.
my $tiny = Test::RateLimit::Instances::Nginx->start(
    name => 'ccfb-tiny', port => free_port(), workers => 2,
    http => <<"_EOC_", server => $server . <<'_EOC_');
    rate_limit_redis 127.0.0.1:@{[ free_port() ]};
    rate_limit_fail_open off;
    rate_limit_shm_size 32k;
    rate_limit_zone c key=\$arg_k concurrency=4 fallback=1;
    rate_limit_zone z key=\$arg_k rate=1r/m fallback=1r/m;
_EOC_
        location /rate {
            rate_limit z;
            add_header X-RL "$rate_limit_status $rate_limit_decided_by"
                       always;
            empty_gif;
        }
_EOC_

{
    my $get = sub { outcome(http_get($_[0], port => $tiny->port)) };
    my $sock = http_send('/slow?k=held&d=3', port => $tiny->port);
    sleep 0.5;
    is($get->('/fast?k=held'), '429 REJECTED local',
       'tiny memory: one held, fallback=1: a second is rejected');
    my %got;
    $got{ $get->("/rate?k=r$_") }++ for 1 .. 400;
    $got{ $get->("/fast?k=f$_") }++ for 1 .. 100;
    is(join(', ', map { "$_=$got{$_}" } sort keys %got),
       '200 PASSED local=500', '500 new keys crowd the memory');
    is($get->('/rate?k=r1'), '200 PASSED local',
       'the first one\'s state was dropped: it passes again');
    is($get->('/fast?k=held'), '429 REJECTED local',
       'the held one\'s state was kept: still rejected');
    is(outcome(http_read($sock, timeout => 10)), '200 PASSED local',
       'the held request passed');
    is($get->('/fast?k=held'), '200 PASSED local', 'and gave its count back');
}

for my $n ($nginx, $tiny) {
    my @bad = grep { /\[alert\]|\[crit\]|segfault/ && !/signal 9/ }
        $n->error_log;
    is(scalar(@bad), 0, 'no alert in ' . $n->prefix) or diag(@bad);
}

$tiny->stop;
$nginx->stop;
$redis->stop;

done_testing();
