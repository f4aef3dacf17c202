# The deny cache never rejects what Redis would admit, at any rate: one hot
# key at 10000r/s (an emission interval of 100 us, so Redis's waits are
# below a millisecond) hammered by eight keep-alive clients over two
# workers for a few seconds, once in a zone with the cache and once in the
# same zone with cache=0.  Every client alternates between the two, so
# both see the same demand on the same loaded machine: the admitted counts
# agree within 10%, neither exceeds the limit, nothing errs.
#
# A cache that counts a wait from the event loop's cached time, or rounds a
# reply's retry_after up to whole milliseconds, blocks the key for a
# millisecond or more after each rejection and admits far fewer.
#
# A plain Test::More test: it starts its own nginx.

use strict;
use warnings;

use Test::More;
use Test::RateLimit::Instances;
use Test::RateLimit::Client qw(free_port redis_cmd run_bg wait_bg);
use Time::HiRes qw(time sleep);

for my $var (qw(TEST_NGINX_REDIS_PORT TEST_NGINX_LOAD_MODULES)) {
    plan skip_all => "$var is not set (make test sets it)" unless $ENV{$var};
}

my $RATE = 10000;               # r/s, gcra, burst 0
my $CLIENTS = 8;                # keep-alive connections
my $SECONDS = 3;

my $nginx = Test::RateLimit::Instances::Nginx->start(
    name    => 'deny-cache-fast',
    port    => free_port(),
    workers => 2,
    http    => <<"_EOC_",
    rate_limit_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT} timeout=5s;
    rate_limit_fail_open off;
    rate_limit_headers off;
    rate_limit_zone cached   key=\$arg_k rate=${RATE}r/s;
    rate_limit_zone uncached key=\$arg_k rate=${RATE}r/s cache=0;
_EOC_
    server  => <<'_EOC_',
        location = /cached {
            rate_limit cached;
            add_header X-RL $rate_limit_status always;
            empty_gif;
        }
        location = /uncached {
            rate_limit uncached;
            add_header X-RL $rate_limit_status always;
            empty_gif;
        }
_EOC_
);

ok(1, 'nginx up on port ' . $nginx->port);

redis_cmd('FLUSHALL');
my $key = 'hot-' . int(rand 1e9);

# One client: waits for the go, then alternates between the two zones
# until the end, and prints "path status x-rl count" lines.
pipe my $go_r, my $go_w or die "pipe: $!";

my @bg = map {
    run_bg(sub {
        close $go_w;
        my $ka = Test::RateLimit::Client::KeepAlive->new(
            port => $nginx->port, timeout => 10);
        my $buf;
        sysread $go_r, $buf, 1;

        my $end = time + $SECONDS;
        my %count;
        my @paths = $_ % 2 ? qw(cached uncached) : qw(uncached cached);

        OUTER: while (time < $end) {
            for my $p (@paths) {
                my $r = $ka->get("/$p?k=$key");
                my $k = $r->{status}
                    ? "$p $r->{status} " . ($r->{headers}{'x-rl'} // '-')
                    : "$p 0 $r->{error}";
                $count{$k}++;
                last OUTER unless $r->{status};
            }
        }
        $ka->close;

        return join '', map { "$_ $count{$_}\n" } sort keys %count;
    })
} 1 .. $CLIENTS;
close $go_r;

sleep 0.2;                      # every client connected
my $start = time;
close $go_w;

my %by;
for my $bg (@bg) {
    for my $line (split /\n/, wait_bg($bg, $SECONDS + 30)) {
        my ($path, $status, $rl, $n) = split / /, $line;
        $by{"$path $status $rl"} += $n;
    }
}
my $took = time - $start;

my $detail = join ', ', map { "$_: $by{$_}" } sort keys %by;
my %passed = map { $_ => $by{"$_ 200 PASSED"} // 0 } qw(cached uncached);
my %rejected = map { $_ => $by{"$_ 429 REJECTED"} // 0 } qw(cached uncached);
my $other = 0;
$other += $by{$_} for grep { !/ (200 PASSED|429 REJECTED)$/ } keys %by;

# gcra with burst 0 admits one at once and then one per 100 us
my $most = int($RATE * $took) + 1;

diag(sprintf '%.2f s: %s', $took, $detail);

cmp_ok($rejected{uncached}, '>', 0,
       'the hot key is over its limit: Redis rejects some requests');
cmp_ok($passed{uncached}, '>', 0, 'and admits some');
cmp_ok($passed{cached}, '<=', $most,
       "with the cache: $passed{cached} admitted, at most $most");
cmp_ok($passed{uncached}, '<=', $most,
       "with cache=0: $passed{uncached} admitted, at most $most");

my $ratio = $passed{uncached} ? $passed{cached} / $passed{uncached} : 0;
ok($ratio >= 0.9 && $ratio <= 1.1,
   sprintf('admitted with the cache %d, with cache=0 %d: ratio %.3f, '
           . 'within 10%%', $passed{cached}, $passed{uncached}, $ratio));
is($other, 0, 'no error, no 5xx, no lost request');

my @bad = grep { /\[(alert|crit|emerg)\]|exited on signal|open socket/ }
    $nginx->error_log;
is(scalar @bad, 0, 'no alert or crash') or diag @bad;
ok($nginx->stop(10), 'stopped gracefully');

done_testing();
