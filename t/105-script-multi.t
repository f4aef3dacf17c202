# The module's script as the build assembles it (lua/ALG.lua up to their
# "-- [standalone]" lines, then lua/multi.lua), against a real redis-server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes ();
use Test::RateLimit::Script;

my $r = redis_db(15);

my $script = assembled_script();
my $t0 = T0;
my $S = 1_000_000;

my $seq = 0;
sub fresh_client { 'c' . ++$seq . "-$$" }

# Zone descriptions for run_multi: [alg, n, period_us, burst, [keys]], the
# window keys named from $clock (the worker's clock).
my %ktag = (gcra => 'g', token_bucket => 'tb', fixed_window => 'fw',
            sliding_window => 'sw', sliding_log => 'sl');

sub zone_keys {
    my ($zone, $client, $alg, $clock, $p) = @_;
    my $tag = $ktag{$alg};
    my $w = int($clock / $p);
    return [ map { key_name($zone, $client, $tag, $w + $_) } -1 .. 1 ]
        if $alg eq 'fixed_window';
    return [ map { key_name($zone, $client, $tag, $w + $_) } -2 .. 1 ]
        if $alg eq 'sliding_window';
    return [ key_name($zone, $client, $tag) ];
}

sub zone {
    my ($zone, $client, $alg, $n, $p, $burst, $clock) = @_;
    return [$alg, $n, $p, $burst, zone_keys($zone, $client, $alg, $clock, $p)];
}

sub multi { run_multi($r, @_) }

sub snapshot {
    my (@keys) = @_;
    return [ map {
        my $type = $r->cmd('TYPE', $_);
        my $v = $type eq 'string' ? $r->cmd('GET', $_)
              : $type eq 'hash'   ? $r->cmd('HGETALL', $_)
              : $type eq 'zset'   ? $r->cmd('ZRANGE', $_, 0, -1, 'WITHSCORES')
              : undef;
        [$_, $type, $v]
    } @keys ];
}

# Zone $i's first five integers (the sixth, delay_ms, is checked apart).
sub zone_reply {
    my ($rep, $i) = @_;
    return [ @$rep[6 * $i .. 6 * $i + 4] ];
}

# The assembled script.
{
    unlike($script, qr/^-- \[standalone\]$/m, 'no standalone parts');
    like($script, qr/local function ${_}_check\(/, "has ${_}_check")
        for qw(gcra tb fw sw sl);

    # the SHA-1 the build embeds is the one Redis computes
    my $dir = tempdir(CLEANUP => 1);
    my $root = "$FindBin::Bin/..";
    system('sh', "$root/src/core/embed_scripts.sh", "$dir/s.cpp",
           qw(gcra token_bucket fixed_window sliding_window sliding_log
              concurrency)) == 0
        or die 'embed_scripts.sh failed';
    open my $fh, '<', "$dir/s.cpp" or die $!;
    my ($embedded) = join('', <$fh>) =~ /scriptSha1\[\] = "([0-9a-f]{40})"/;
    is($r->cmd('SCRIPT', 'LOAD', $script), $embedded,
       'embedded SHA-1 = Redis SHA-1 of the assembled script');
}

# Two zones, the second rejects: nothing is consumed in the first.
{
    my $c = fresh_client();
    my $z1 = zone('a', $c, 'gcra', 10, $S, 4, $t0);
    my $z2 = zone('b', $c, 'fixed_window', 1, $S, 0, $t0);

    my $rep = multi($t0, $z1, $z2);
    is_reply(zone_reply($rep, 0), [1, 5, 4, 100, 0], 'both allow: zone 1');
    is_reply(zone_reply($rep, 1), [1, 1, 0, 1000, 1000], 'both allow: zone 2');
    my $g = $z1->[4][0];
    is($r->cmd('GET', $g), $t0 + 100_000, 'both allow: zone 1 written');
    is($r->cmd('GET', key_name('b', $c, 'fw', $t0 / $S)), 1,
       'both allow: zone 2 written');

    my $before = snapshot(@{ $z1->[4] }, @{ $z2->[4] });
    my $ttl = $r->cmd('PTTL', $g);
    $rep = multi($t0 + 50_000, $z1, $z2);
    is_reply(zone_reply($rep, 1), [0, 1, 0, 950, 950], 'zone 2 rejects');
    is_reply(zone_reply($rep, 0), [1, 5, 4, 50, 0],
             'zone 1 would allow: its state as it stays (4 left, not 3)');
    is_deeply(snapshot(@{ $z1->[4] }, @{ $z2->[4] }), $before,
              'rejected: no key of any zone changed');
    ok($r->cmd('PTTL', $g) <= $ttl, 'rejected: zone 1 TTL not refreshed');

    # the first zone rejects, the second would allow
    my $z3 = zone('c', $c, 'sliding_log', 5, $S, 0, $t0);
    $rep = multi($t0 + 60_000, $z2, $z3);
    is_reply(zone_reply($rep, 0), [0, 1, 0, 940, 940], 'zone 1 of 2 rejects');
    is_reply(zone_reply($rep, 1), [1, 5, 5, 0, 0],
             'fresh zone that would allow: full, nothing written');
    is($r->cmd('EXISTS', $z3->[4][0]), 0, 'second zone not created');
}

# All five algorithms in one call.
{
    my $c = fresh_client();
    my @z = (zone('g', $c, 'gcra', 10, $S, 2, $t0),
             zone('t', $c, 'token_bucket', 10, 60 * $S, 5, $t0),
             zone('f', $c, 'fixed_window', 3, $S, 0, $t0),
             zone('w', $c, 'sliding_window', 4, $S, 0, $t0),
             zone('l', $c, 'sliding_log', 2, $S, 0, $t0));
    my $rep = multi($t0, @z);
    is(scalar(@$rep), 30, 'five zones: 30 integers');
    is_deeply([ map { $rep->[6 * $_ + 5] } 0 .. 4 ], [0, 0, 0, 0, 0],
              'five zones: delay_ms 0');
    my @want = ([1, 3, 2, 100, 0], [1, 5, 4, 6000, 0], [1, 3, 2, 1000, 0],
                [1, 4, 3, 2000, 0], [1, 2, 1, 1000, 0]);
    is_reply(zone_reply($rep, $_), $want[$_], "mixed: zone $_") for 0 .. 4;

    $rep = multi($t0 + 1, @z);
    is_reply(zone_reply($rep, 4), [1, 2, 0, 1000, 1000], 'mixed: 2nd');
    $rep = multi($t0 + 2, @z);
    is_deeply([ map { $rep->[6 * $_] } 0 .. 4 ], [1, 1, 1, 1, 0],
              'mixed: the log zone rejects the third');
    is_reply(zone_reply($rep, 0), [1, 3, 1, 200, 0],
             'mixed: gcra reports 1 left (2 used, not 3)');
    is($r->cmd('GET', key_name('f', $c, 'fw', $t0 / $S)), 2,
       'mixed: fixed window counted 2');
    is($r->cmd('ZCARD', $z[4][4][0]), 2, 'mixed: log holds 2');

    my @keys = sort map { @{ $_->[4] } } @z;
    my %want = map { $_ => 1 } key_name('g', $c, 'g'), key_name('t', $c, 'tb'),
        key_name('f', $c, 'fw', $t0 / $S), key_name('w', $c, 'sw', $t0 / $S),
        key_name('l', $c, 'sl');
    my @have = grep { $r->cmd('EXISTS', $_) } @keys;
    is_deeply([sort @have], [sort keys %want],
              'mixed: exactly the needed keys written');
    my $ttls = 0;
    $ttls += $r->cmd('PTTL', $_) > 0 for @have;
    is($ttls, 5, 'mixed: every written key has a TTL');
}

# Costs, in every algorithm, 5 units a period (token_bucket: capacity 5):
# a cost takes that many units; one above what remains is rejected, keeps
# the remaining it found (retry_after 0) and writes nothing; a cost of 0
# passes iff one unit could, and writes nothing.
{
    my %cfg = (gcra => 4, token_bucket => 5, fixed_window => 0,
               sliding_window => 0, sliding_log => 0);
    for my $alg (sort keys %cfg) {
        my $c = fresh_client();
        my $z = sub { [@{ zone('k', $c, $alg, 5, 60 * $S, $cfg{$alg}, $t0) },
                       $_[0]] };
        my $one = sub { my $rep = multi($t0 + 1, $z->($_[0]));
                        [ @$rep[0 .. 2] ] };

        is_deeply($one->(0), [1, 5, 5], "$alg: cost 0 on a fresh key passes");
        is((grep { $r->cmd('EXISTS', $_) } @{ $z->(1)->[4] }), 0,
           "$alg: cost 0 writes nothing");
        is_deeply($one->(3), [1, 5, 2], "$alg: cost 3 takes 3");
        my @keys = @{ $z->(1)->[4] };
        my $before = snapshot(@keys);
        is_deeply($one->(3), [0, 5, 2], "$alg: cost 3 of 2 left: rejected");
        my $rep = multi($t0 + 1, $z->(3));
        is($rep->[4], 0, "$alg: rejected with 2 left: retry_after 0");
        is_deeply(snapshot(@keys), $before,
                  "$alg: the rejection wrote nothing");
        is_deeply($one->(0), [1, 5, 2], "$alg: cost 0 with 2 left passes");
        is_deeply(snapshot(@keys), $before, "$alg: cost 0 wrote nothing");
        is_deeply($one->(2), [1, 5, 0], "$alg: cost 2 takes the last 2");
        is_deeply($one->(0), [0, 5, 0],
                  "$alg: cost 0 with none left: rejected");
        $rep = multi($t0 + 1, $z->(1));
        ok($rep->[0] == 0 && $rep->[4] > 0, "$alg: cost 1: rejected, a wait")
            or diag("@$rep");
    }
}

# One zone through the driver answers exactly as the algorithm's file run
# alone, over random sequences.
{
    my %cfg = (gcra => [7, $S, 3], token_bucket => [5, 3 * $S, 4],
               fixed_window => [4, $S, 0], sliding_window => [6, 2 * $S, 0],
               sliding_log => [4, $S, 0]);
    for my $alg (sort keys %cfg) {
        my ($n, $p, $b) = @{ $cfg{$alg} };
        my ($ca, $cb) = (fresh_client(), fresh_client());
        my ($t, $diff) = ($t0 + 5, 0);
        srand(3);
        for (1 .. 60) {
            $t += int(rand(300_000));
            my $alone = run_alg($r, $alg, zone_keys('s', $ca, $alg, $t, $p),
                                $t, $n, $p, $b);
            my $m = multi($t, zone('s', $cb, $alg, $n, $p, $b, $t));
            $diff++, diag("$alg at $t: @$alone vs @$m")
                if "@$alone 0" ne "@$m" || reply_problems(zone_reply($m, 0));
        }
        is($diff, 0, "$alg: driver = standalone");
    }
}

# Bad arguments: error replies, nothing written.
{
    $r->cmd('FLUSHDB');
    my $k = key_name('e', 'c', 'g');
    my @bad = (
        ['unknown algorithm', [$k], $t0, 1, 'leaky', 10, $S, 0, 1, 1, 0],
        ['n not a number', [$k], $t0, 1, 'gcra', 'ten', $S, 0, 1, 1, 0],
        ['n fractional', [$k], $t0, 1, 'gcra', '1.5', $S, 0, 1, 1, 0],
        ['n zero', [$k], $t0, 1, 'gcra', 0, $S, 0, 1, 1, 0],
        ['negative burst', [$k], $t0, 1, 'gcra', 10, $S, -1, 1, 1, 0],
        ['negative cost', [$k], $t0, 1, 'gcra', 10, $S, 0, -1, 1, 0],
        ['fractional cost', [$k], $t0, 1, 'gcra', 10, $S, 0, '0.5', 1, 0],
        ['cost above 2^53', [$k], $t0, 1, 'gcra', 10, $S, 0,
         '9007199254740994', 1, 0],
        ['cost not a number', [$k], $t0, 1, 'gcra', 10, $S, 0, 'x', 1, 0],
        ['now not a number', [$k], 'now', 1, 'gcra', 10, $S, 0, 1, 1, 0],
        ['zero zones', [], $t0, 0],
        ['zone count too big', [$k], $t0, 2, 'gcra', 10, $S, 0, 1, 1, 0],
        ['arguments missing', [$k], $t0, 1, 'gcra', 10, $S, 0, 1, 1],
        ['v1 arguments (no cost)', [$k], $t0, 1, 'gcra', 10, $S, 0, 1,
         'gcra', 10, $S],
        ['six arguments a zone (no delay)', [$k, $k], $t0, 2, 'gcra', 10,
         $S, 2, 1, 1, 'gcra', 10, $S, 2, 1, 1],
        ['delay above burst', [$k], $t0, 1, 'gcra', 10, $S, 2, 1, 1, 3],
        ['negative delay', [$k], $t0, 1, 'gcra', 10, $S, 2, 1, 1, -1],
        ['fractional delay', [$k], $t0, 1, 'gcra', 10, $S, 2, 1, 1, '0.5'],
        ['delay not a number', [$k], $t0, 1, 'gcra', 10, $S, 2, 1, 1, ''],
        ['nkeys over #KEYS', [$k], $t0, 1, 'gcra', 10, $S, 0, 1, 2, 0],
        ['#KEYS over nkeys', [$k, "$k:x"], $t0, 1, 'gcra', 10, $S, 0, 1, 1,
         0],
        ['nkeys wrong for the algorithm', [$k, "$k:x", "$k:y"], $t0, 1,
         'sliding_window', 10, $S, 0, 1, 3, 0],
        ['token_bucket capacity 0', [$k], $t0, 1, 'token_bucket', 10, $S,
         0, 1, 1, 0],
        ['window not among the keys', [map { "$k:$_" } 1 .. 3], $t0, 1,
         'fixed_window', 10, $S, 0, 1, 3, 0],
    );
    # the header of ABI v2: now_us mode lease Z
    $_ = [$_->[0], $_->[1], $_->[2], 'check', '', @$_[3 .. $#$_]] for @bad;
    push @bad, ['unknown mode', [$k], $t0, 'take', '', 1, 'gcra', 10, $S, 0,
                1, 1, 0],
               ['mode missing', [$k], $t0, 1, 'gcra', 10, $S, 0, 1, 1, 0];
    for my $case (@bad) {
        my ($name, $keys, @argv) = @$case;
        my $rep = run_script($r, $script, $keys, @argv);
        ok(is_error($rep) && $rep->message =~ /^ERR rate_limit: /,
           "error reply: $name") or diag(ref $rep ? "@$rep" : $rep);
    }
    is_deeply(db_keys($r), [], 'errors write nothing');
    my $m = run_script($r, $script, [$k], $t0, 'take', '', 1, 'gcra', 10, $S,
                       0, 1, 1, 0);
    is(is_error($m) && $m->message, 'ERR rate_limit: unknown mode',
       'unknown mode: its own message');

    # a bad second zone fails the whole call before anything is written
    my $rep = multi($t0, zone('e', 'c', 'gcra', 10, $S, 0, $t0),
                    ['fixed_window', 10, $S, 0, ['x:1', 'x:2', 'x:3']]);
    ok(is_error($rep), 'second zone misses its window: error');
    is_deeply(db_keys($r), [], 'and the first zone is not written');
}

# now_us "0": Redis TIME, read once for every zone.
{
    my $c = fresh_client();
    my $clock = int(Time::HiRes::time() * 1e6);
    my $H = 3_600 * $S;
    my @z = (zone('g', $c, 'gcra', 10, $S, 0, $clock),
             zone('f', $c, 'fixed_window', 5, $H, 0, $clock),
             zone('w', $c, 'sliding_window', 5, $H, 0, $clock),
             zone('l', $c, 'sliding_log', 5, $S, 0, $clock));
    my $rep = multi(0, @z);
    my $bad = grep { reply_problems(zone_reply($rep, $_)) } 0 .. 3;
    is($bad, 0, 'TIME path: four well-formed replies');
    is_deeply([ map { $rep->[6 * $_] } 0 .. 3 ], [1, 1, 1, 1],
              'TIME path: all allowed');
    my $tat = $r->cmd('GET', $z[0][4][0]);
    my $logged = $r->cmd('ZRANGE', $z[3][4][0], 0, 0, 'WITHSCORES')->[1];
    is($tat - 100_000, $logged, 'TIME path: one clock for every zone');
}

# Each algorithm's file run alone refuses a bad argument by its place,
# and writes nothing.
{
    $r->cmd('FLUSHDB');
    my $max = '9007199254740992';       # 2^53
    for my $alg (sort keys %ktag) {
        my $keys = zone_keys('a', fresh_client(), $alg, $t0, $S);
        my @cases = (
            [[-1, 10, $S, 1], 1], [['now', 10, $S, 1], 1],
            [[$max, 10, $S, 1], 1],
            [[$t0, 0, $S, 1], 2], [[$t0, '1.5', $S, 1], 2],
            [[$t0, 'ten', $S, 1], 2], [[$t0, $max, $S, 1], 2],
            [[$t0, 10, 0, 1], 3], [[$t0, 10, '', 1], 3],
            [[$t0, 10, $S, -1], 4], [[$t0, 10, $S, $max], 4],
        );
        # a capacity of 0 only for token_bucket; burst=0 elsewhere
        push @cases, [[$t0, 10, $S, 0], 4] if $alg eq 'token_bucket';
        for my $c (@cases) {
            my ($argv, $bad) = @$c;
            my $rep = run_script($r, script_text($alg), $keys, @$argv);
            ok(is_error($rep)
               && $rep->message eq "ERR rate_limit: $alg: bad ARGV[$bad]",
               "$alg alone: bad ARGV[$bad] in (@$argv)")
                or diag(ref $rep eq 'ARRAY' ? "@$rep" : $rep->message);
        }
    }
    is_deeply(db_keys($r), [], 'bad arguments write nothing');
    for my $alg (grep { $_ ne 'token_bucket' } sort keys %ktag) {
        my $keys = zone_keys('a', fresh_client(), $alg, $t0, $S);
        my $rep = run_script($r, script_text($alg), $keys, $t0, 10, $S, 0);
        ok(ref $rep eq 'ARRAY' && $rep->[0] == 1, "$alg alone: burst 0");
    }
}

done_testing;
