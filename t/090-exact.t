# Exactness across instances and workers: two NGINX instances (own prefix,
# master process, two workers each, own port) against one Redis, sixteen
# keep-alive clients split over both hammering one key with five times the
# limit, fail_open off and no refill during the run: for every algorithm,
# with the deny cache on and with cache=0, exactly the limit passes, the
# rest is rejected, nothing errs; with the cache on, the cache answered
# some of the rejections (fewer script calls than requests).
#
# Then the pipelining proof: with the deny cache off, every request is a
# script call, and Redis shows more of them (INFO commandstats) than reads
# made (INFO stats total_reads_processed): requests that arrive together
# share one write.
#
# A plain Test::More test: it starts its own nginx instances.

use strict;
use warnings;

use Test::More;
use Test::RateLimit::Instances;
use Test::RateLimit::Client qw(free_port redis_cmd);
use Test::RateLimit::Exact;
use Time::HiRes qw(time sleep);
use POSIX ();

for my $var (qw(TEST_NGINX_REDIS_PORT TEST_NGINX_LOAD_MODULES)) {
    plan skip_all => "$var is not set (make test sets it)" unless $ENV{$var};
}

my $LIMIT = 200;
my $CLIENTS = 16;                           # keep-alive connections
my $PER_CLIENT = int((5 * $LIMIT + $CLIENTS - 1) / $CLIENTS);
my $TOTAL = $CLIENTS * $PER_CLIENT;         # at least 5x the limit
my $DEADLINE = time + 55;                   # the whole test

my @ALGS = (
    # algorithm, zone line, windowed (must not cross a window boundary)
    [gcra => 'rate=1r/h burst=199', 0],
    [token_bucket => 'rate=1r/h burst=200', 0],
    [fixed_window => 'rate=200r/d', 1],
    [sliding_window => 'rate=200r/d', 1],
    [sliding_log => 'rate=200r/h', 0],
);

# every algorithm twice: NAME with the deny cache, NAME_nocache without
my @CACHES = (['', 'cache=10000'], ['_nocache', 'cache=0']);

my $zones = join '', map {
    my ($alg, $args) = @$_;
    map {
        my ($suffix, $cache) = @$_;
        "    rate_limit_zone $alg$suffix key=\$arg_k $args algorithm=$alg "
        . "$cache;\n"
    } @CACHES
} @ALGS;

my $locations = join '', map {
    my ($alg) = @$_;
    <<"_EOC_";
        location = /$alg {
            rate_limit $alg;
            add_header X-RL \$rate_limit_status always;
            add_header X-Pid \$pid always;
            empty_gif;
        }
_EOC_
} (map { my $a = $_->[0]; map { ["$a$_->[0]"] } @CACHES } @ALGS), ['pipe'];

my $http = <<"_EOC_";
    # generous: this test is about counting, not about a slow Redis
    rate_limit_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT} timeout=5s;
    rate_limit_fail_open off;
    rate_limit_headers off;
$zones
    rate_limit_zone pipe key=\$arg_k rate=100000r/s burst=100000 cache=0;
_EOC_

my @nginx = map {
    Test::RateLimit::Instances::Nginx->start(
        name      => $_,
        port      => free_port(),
        workers   => 2,
        reuseport => 1,
        http      => $http,
        server    => $locations,
    )
} qw(a b);

instances_up(@nginx);

# $CLIENTS clients, half on each instance, $per requests each on $path.
sub run_clients {
    my ($path, $per) = @_;
    return hammer(\@nginx, $path, $CLIENTS, $per);
}

# Reads made, and the commands the module sent (EVALSHA, EVAL): INFO's
# total_commands_processed also counts the commands a script runs.
sub info_stats {
    my $info = redis_cmd('INFO', 'stats');
    my %s = $info =~ /^(total_commands_processed|total_reads_processed):(\d+)/mg;

    $info = redis_cmd('INFO', 'commandstats');
    $s{scripts} = 0;
    $s{scripts} += $1 while $info =~ /^cmdstat_(?:evalsha|eval):calls=(\d+)/mg;

    return \%s;
}

for my $a (@ALGS) {
  for my $c (@CACHES) {
    my ($alg, $args, $windowed) = @$a;
    my ($suffix, $cache) = @$c;
    my $zone = "$alg$suffix";

    SKIP: {
        # a run takes a few seconds: keep clear of a window boundary
        my $day = time % 86400;
        skip "$zone: within a minute of 00:00 UTC, a window boundary", 5
            if $windowed && ($day > 86400 - 60 || $day < 5);
        skip "$zone: out of time", 5 if time > $DEADLINE;

        redis_cmd('FLUSHALL');
        my $key = "exact-$zone-" . int(rand 1e9);

        my $before = info_stats();
        my ($by, $pids, $took) = run_clients("/$zone?k=$key", $PER_CLIENT);
        my $calls = info_stats()->{scripts} - $before->{scripts};

        my $passed = $by->{'200 PASSED'} // 0;
        my $rejected = $by->{'429 REJECTED'} // 0;
        my $other = $TOTAL - $passed - $rejected;
        my $detail = join ', ', map { "$_: $by->{$_}" } sort keys %$by;

        is($passed, $LIMIT,
           sprintf('%s %s %s: exactly %d of %d passed over %d connections '
                   . 'in %.2f s (%s)', $alg, $args, $cache, $LIMIT, $TOTAL,
                   $CLIENTS, $took, $detail));
        is($rejected, $TOTAL - $LIMIT, "$zone: the rest rejected");
        is($other, 0, "$zone: no error, no 5xx, no lost request");
        cmp_ok($pids, '>=', 3, "$zone: served by $pids workers of 4");

        if ($suffix eq '') {
            cmp_ok($calls, '<', $TOTAL,
                   "$zone: $calls script calls for $TOTAL requests, the "
                   . 'deny cache answered the rest');
        } else {
            cmp_ok($calls, '>=', $TOTAL,
                   "$zone: $calls script calls, one a request");
        }
    }
  }
}

# Pipelining: every request a command (cache=0), requests from sixteen
# clients at once; Redis counts its reads.
SKIP: {
    skip 'out of time', 2 if time > $DEADLINE;

    redis_cmd('FLUSHALL');
    my $before = info_stats();
    my ($by, $pids, $took) = run_clients('/pipe?k=pipelining', 100);
    my $after = info_stats();

    my %d = map { $_ => $after->{$_} - $before->{$_} } keys %$after;
    my $per_read = $d{total_reads_processed}
                   ? $d{scripts} / $d{total_reads_processed} : 0;

    is($by->{'200 PASSED'} // 0, $CLIENTS * 100,
       sprintf('pipelining run: %d requests passed in %.2f s',
               $CLIENTS * 100, $took));
    cmp_ok($per_read, '>', 1.0,
           sprintf('%d script calls (%d commands with the scripts\' own) '
                   . 'in %d reads: %.2f calls per read', $d{scripts},
                   $d{total_commands_processed}, $d{total_reads_processed},
                   $per_read));
}

instances_clean(@nginx);

done_testing();
