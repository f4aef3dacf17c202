# Exactness with costs across instances and workers: two NGINX instances
# (master process, two workers each) against one Redis, sixteen keep-alive
# clients hammering one key with five times what the limit admits,
# fail_open off, no refill during the run.  Every algorithm with cost=3
# against a limit of 600 units admits exactly 200 requests; costs of 2 and
# 4 mixed on one fixed window never take more than its 400 units, take
# all but less than the largest cost, and Redis holds exactly the units
# the admitted requests cost.
#
# A plain Test::More test: it starts its own nginx instances.

use strict;
use warnings;

use Test::More;
use Test::RateLimit::Instances;
use Test::RateLimit::Client qw(free_port redis_cmd);
use Test::RateLimit::Exact;
use Time::HiRes qw(time);

for my $var (qw(TEST_NGINX_REDIS_PORT TEST_NGINX_LOAD_MODULES)) {
    plan skip_all => "$var is not set (make test sets it)" unless $ENV{$var};
}

my $UNITS = 600;
my $COST = 3;
my $LIMIT = $UNITS / $COST;                 # requests
my $CLIENTS = 16;
my $PER_CLIENT = int((5 * $LIMIT + $CLIENTS - 1) / $CLIENTS);
my $TOTAL = $CLIENTS * $PER_CLIENT;
my $DEADLINE = time + 50;

my @ALGS = (
    # algorithm, zone line (600 units), windowed
    [gcra => 'rate=1r/h burst=599', 0],
    [token_bucket => 'rate=1r/h burst=600', 0],
    [fixed_window => 'rate=600r/d', 1],
    [sliding_window => 'rate=600r/d', 1],
    [sliding_log => 'rate=600r/h', 0],
);

my $zones = join '', map {
    "    rate_limit_zone $_->[0] key=\$arg_k $_->[1] algorithm=$_->[0];\n"
} @ALGS;

my $locations = join '', map {
    <<"_EOC_";
        location = /$_->[0] {
            rate_limit $_->[0] cost=$COST;
            add_header X-RL \$rate_limit_status always;
            add_header X-Pid \$pid always;
            empty_gif;
        }
_EOC_
} @ALGS;

my @nginx = map {
    Test::RateLimit::Instances::Nginx->start(
        name      => $_,
        port      => free_port(),
        workers   => 2,
        reuseport => 1,
        http      => <<"_EOC_",
    rate_limit_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT} timeout=5s;
    rate_limit_fail_open off;
    rate_limit_headers off;
$zones
    rate_limit_zone mixed key=\$arg_k rate=400r/d algorithm=fixed_window;
_EOC_
        server    => $locations . <<'_EOC_',
        location = /mixed {
            rate_limit mixed cost=$arg_c;
            add_header X-RL $rate_limit_status-$arg_c always;
            add_header X-Pid $pid always;
            empty_gif;
        }
_EOC_
    )
} qw(a b);

instances_up(@nginx);

# a run takes a few seconds: keep clear of a day's window boundary
sub near_midnight {
    my $day = time % 86400;
    return $day > 86400 - 60 || $day < 5;
}

for my $a (@ALGS) {
    my ($alg, $args, $windowed) = @$a;

    SKIP: {
        skip "$alg: within a minute of 00:00 UTC, a window boundary", 4
            if $windowed && near_midnight();
        skip "$alg: out of time", 4 if time > $DEADLINE;

        redis_cmd('FLUSHALL');
        my $key = "exact-cost-$alg-" . int(rand 1e9);
        my ($by, $pids, $took) = hammer(\@nginx, "/$alg?k=$key", $CLIENTS,
                                        $PER_CLIENT);

        my $passed = $by->{'200 PASSED'} // 0;
        my $rejected = $by->{'429 REJECTED'} // 0;
        my $detail = join ', ', map { "$_: $by->{$_}" } sort keys %$by;

        is($passed, $LIMIT,
           sprintf('%s %s cost=%d: exactly %d of %d passed over %d '
                   . 'connections in %.2f s (%s)', $alg, $args, $COST,
                   $LIMIT, $TOTAL, $CLIENTS, $took, $detail));
        is($rejected, $TOTAL - $LIMIT, "$alg: the rest rejected");
        is($TOTAL - $passed - $rejected, 0,
           "$alg: no error, no 5xx, no lost request");
        cmp_ok($pids, '>=', 3, "$alg: served by $pids workers of 4");
    }
}

SKIP: {
    skip 'mixed: within a minute of 00:00 UTC, a window boundary', 3
        if near_midnight();
    skip 'mixed: out of time', 3 if time > $DEADLINE;

    redis_cmd('FLUSHALL');
    my $key = 'exact-mixed-' . int(rand 1e9);
    my ($by, $pids, $took) = hammer(\@nginx, ["/mixed?k=$key&c=2",
                                              "/mixed?k=$key&c=4"],
                                    $CLIENTS, 63);
    my $units = 2 * ($by->{'200 PASSED-2'} // 0)
                + 4 * ($by->{'200 PASSED-4'} // 0);
    my $detail = join ', ', map { "$_: $by->{$_}" } sort keys %$by;
    my $w = int(redis_cmd('TIME')->[0] / 86400);

    cmp_ok($units, '<=', 400,
           sprintf('mixed costs 2 and 4: %d units of 400 taken in %.2f s '
                   . '(%s)', $units, $took, $detail));
    cmp_ok($units, '>', 400 - 4, 'mixed: all but less than a cost taken');
    is(redis_cmd('GET', "rl:{mixed:$key}:fw:$w"), $units,
       'mixed: Redis holds exactly the units of the admitted requests');
}

instances_clean(@nginx);

done_testing();
