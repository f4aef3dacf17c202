# lua/sliding_window.lua run alone against a real redis-server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Test::RateLimit::Script;

my $r = redis_db(13);

my $seq = 0;
sub fresh_client { 'c' . ++$seq . "-$$" }

# The candidates the module passes: windows W-2 .. W+1 by its clock.
sub sw_keys {
    my ($client, $clock_us, $p) = @_;
    my $w = int($clock_us / $p);
    return [ map { key_name('z', $client, 'sw', $w + $_) } -2 .. 1 ];
}

sub sw {
    my ($client, $now, $n, $p, $clock) = @_;
    return run_alg($r, 'sliding_window', sw_keys($client, $clock // $now, $p),
                   $now, $n, $p, 0);
}

my $t0 = T0;
my $S = 1_000_000;
my $w0 = $t0 / $S;

# 4r/s.
{
    my $c = fresh_client();
    my $f = sub { sw($c, $_[0], 4, $S) };
    my $k0 = key_name('z', $c, 'sw', $w0);
    my $k1 = key_name('z', $c, 'sw', $w0 + 1);

    is_reply($f->($t0), [1, 4, 3, 2000, 0], 'first');
    pttl_within($r, $k0, 2000, 'TTL: the end of the next window');
    is_reply($f->($t0 + 100_000), [1, 4, 2, 1900, 0], 'second');
    is_reply($f->($t0 + 200_000), [1, 4, 1, 1800, 0], 'third');
    # the 4 would weigh 3 at 250 ms into the next window
    is_reply($f->($t0 + 300_000), [1, 4, 0, 1700, 950], 'fourth');
    my $ttl = $r->cmd('PTTL', $k0);
    ok($ttl > 1900 && $ttl <= 2000,
       "TTL set at creation (2000 ms), not refreshed (1700 ms): $ttl");
    is_reply($f->($t0 + 500_000), [0, 4, 0, 1500, 750], 'fifth denied');
    is($r->cmd('GET', $k0), 4, 'denied: counter unchanged');
    is($r->cmd('EXISTS', $k1), 0, 'denied: nothing created');

    is_reply($f->($t0 + $S), [0, 4, 0, 1000, 250],
             'next window: the previous weighs 4');
    is_reply($f->($t0 + 1_249_999), [0, 4, 0, 751, 1],
             '1 µs before it weighs 3');
    is_reply($f->($t0 + 1_250_000), [1, 4, 0, 1750, 250],
             'at 250 ms: one more');
    is($r->cmd('GET', $k1), 1, 'counted in the new window');
    pttl_within($r, $k1, 1750, 'new counter: TTL to the end of the next');
    is($r->cmd('GET', $k0), 4, 'the previous counter is only read');
    probe_retry($f, $t0 + 1_250_000, 250, 'weighted');

    is_reply($f->($t0 + 10 * $S), [1, 4, 3, 2000, 0], 'idle: full again');
}

# A full window followed by a full rejection: retry in the window after
# next (n = 1: the previous window weighs 1 until its very end).
{
    my $c = fresh_client();
    my $f = sub { sw($c, $_[0], 1, 10 * $S) };
    is_reply($f->($t0 + 9 * $S), [1, 1, 0, 11000, 11000], 'n=1');
    is_reply($f->($t0 + 19_999_999), [0, 1, 0, 1, 1], 'n=1: last µs');
    is_reply($f->($t0 + 20 * $S), [1, 1, 0, 20000, 20000], 'n=1: free');
}

# Exact retry_after and well-formed replies over a random sequence: after
# every reply with retry_after R ms, the next request is still denied
# 1 ms before R and allowed at R.
{
    my $c = fresh_client();
    my ($n, $p) = (5, 2 * $S);
    my $f = sub { sw($c, $_[0], $n, $p) };
    my ($t, $bad, $probes, $admitted) = ($t0 + 123_457, 0, 0, 0);
    srand(7);
    for (1 .. 150) {
        $t += int(rand(600_000));
        my $rep = $f->($t);
        $admitted += $rep->[0];
        $bad++, diag("at $t: @$rep") if reply_problems($rep);
        my $ms = $rep->[4] or next;
        $probes++;
        my $early = $f->($t + ($ms - 1) * 1000);
        my $on = $f->($t + $ms * 1000);
        $bad++, diag("at $t: @$rep, then $early->[0] $on->[0]")
            if $early->[0] != 0 || $on->[0] != 1;
        $t += $ms * 1000;
    }
    ok($probes > 20, "random sequence: $probes retry probes");
    is($bad, 0, 'random sequence: retry_after exact to the ms');
}

# The decision follows the formula prev * (P - e) + (curr + 1) * P <= N * P.
{
    my $c = fresh_client();
    my ($n, $p) = (10, $S);
    my $k0 = key_name('z', $c, 'sw', $w0);
    $r->cmd('SET', $k0, 7, 'PX', 10_000);
    my $f = sub { sw($c, $_[0], $n, $p) };
    my ($bad, $curr) = (0, 0);
    for my $e (map { $_ * 37_000 } 0 .. 27) {
        my $want = 7 * ($p - $e) + ($curr + 1) * $p <= $n * $p ? 1 : 0;
        my $rep = $f->($t0 + $S + $e);
        $curr += $rep->[0];
        my $rem = int(($n * $p - 7 * ($p - $e)) / $p) - $curr;
        $rem = 0 if $rem < 0;
        $bad++, diag("e=$e: @$rep, want $want $rem")
            if $rep->[0] != $want || $rep->[2] != $rem;
    }
    is($bad, 0, 'decisions and remaining follow the weighted formula');
    is($r->cmd('GET', key_name('z', $c, 'sw', $w0 + 1)), $curr,
       "current counter $curr");
}

# Candidates by suffix, not position; a missing window is named.
{
    my $c = fresh_client();
    is_reply(sw($c, $t0 + 500_000, 3, $S, $t0 + 1_400_000),
             [1, 3, 2, 1500, 0], 'caller ahead into the next window');
    is_reply(sw($c, $t0 + 600_000, 3, $S, $t0 - 500_000),
             [1, 3, 1, 1400, 0], 'caller behind');
    my $keys = sw_keys($c, $t0, $S);
    is_reply(run_alg($r, 'sliding_window', [@$keys[2, 1]], $t0 + 700_000,
                     3, $S),
             [1, 3, 0, 1300, 634], 'just the two needed keys, any order');
    my $e = run_alg($r, 'sliding_window', [$keys->[2]], $t0, 3, $S);
    my $prev = $w0 - 1;
    ok(is_error($e) && $e->message =~ /^ERR .*window $prev\b/,
       'previous window missing: error naming it') or diag($e);
    $e = sw($c, $t0, 3, $S, $t0 + 3 * $S);
    ok(is_error($e) && $e->message =~ /^ERR .*window $w0\b/,
       'clock skew over a period: error naming the window') or diag($e);
}

# Other keys are not touched; only the current window's key is written.
{
    $r->cmd('FLUSHDB');
    my $other = key_name('other', 'c', 'sw', $w0);
    $r->cmd('SET', $other, 7, 'PX', 100_000);
    my $c = 'only';
    sw($c, $t0, 5, $S) for 1 .. 3;
    sw($c, $t0 + $S, 5, $S);
    my @want = (key_name('z', $c, 'sw', $w0), key_name('z', $c, 'sw', $w0 + 1),
                $other);
    is_deeply(db_keys($r), [sort @want], 'only window keys written');
    is($r->cmd('GET', $other), 7, 'other zone untouched');
    ok($r->cmd('PTTL', $other) > 90_000, 'other zone TTL untouched');
}

# now_us "0": Redis TIME.
{
    my $c = fresh_client();
    my $time = $r->cmd('TIME');
    my $clock = $time->[0] * 1_000_000 + $time->[1];
    my $P = 3_600 * $S;
    my $rep = sw($c, 0, 10, $P, $clock);
    reply_ok($rep, 'TIME path');
    is_deeply([ @$rep[0 .. 2] ], [1, 10, 9], 'TIME path: admitted');
    my $k = key_name('z', $c, 'sw', int($clock / $P));
    is($r->cmd('GET', $k), 1, 'TIME path: the window of Redis time');
    my $left = int(((int($clock / $P) + 2) * $P - $clock) / 1000);
    ok(abs($rep->[3] - $left) < 2000, 'TIME path: reset after next window')
        or diag("$rep->[3] vs $left");
}

done_testing;
