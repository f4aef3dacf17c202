# lua/gcra.lua run alone against a real redis-server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Test::RateLimit::Script;

my $r = redis_db(10);

my $seq = 0;
sub fresh_key { key_name('z', 'c' . ++$seq . "-$$", 'g') }

sub gcra {
    my ($key, $now, $n, $p, $burst) = @_;
    return run_alg($r, 'gcra', [$key], $now, $n, $p, $burst);
}

my $t0 = T0;

# 10r/s burst=2: T = 100 ms, tau = 200 ms, limit 3.
{
    my $k = fresh_key();
    my $g = sub { gcra($k, $_[0], 10, 1_000_000, 2) };

    is_reply($g->($t0), [1, 3, 2, 100, 0], 'first of burst');
    pttl_within($r, $k, 100, 'TTL = TAT - now');
    is($r->cmd('GET', $k), $t0 + 100_000, 'TAT in µs');
    is_reply($g->($t0), [1, 3, 1, 200, 0], 'second of burst');
    is_reply($g->($t0), [1, 3, 0, 300, 100], 'third: burst used up');
    pttl_within($r, $k, 300, 'TTL follows TAT');

    my $ttl = $r->cmd('PTTL', $k);
    is_reply($g->($t0), [0, 3, 0, 300, 100], 'fourth denied');
    is($r->cmd('GET', $k), $t0 + 300_000, 'denied: TAT unchanged');
    ok($r->cmd('PTTL', $k) <= $ttl, 'denied: TTL not refreshed');

    is_reply($g->($t0 + 99_999), [0, 3, 0, 201, 1],
             '1 µs early: denied, retry rounds up to 1 ms');
    is_reply($g->($t0 + 100_000), [1, 3, 0, 300, 100],
             'one emission interval later: one more');
    is_reply($g->($t0 + 150_000), [0, 3, 0, 250, 50], 'half an interval');
    is_reply($g->($t0 + 200_001), [1, 3, 0, 300, 100], 'next interval');

    # idle: back to the full burst
    is_reply($g->($t0 + 10_000_000), [1, 3, 2, 100, 0], 'idle: full again');
    is($r->cmd('GET', $k), $t0 + 10_100_000, 'TAT restarts from now');
}

# burst=0: one at a time, limit 1.
{
    my $k = fresh_key();
    my $g = sub { gcra($k, $_[0], 2, 1_000_000, 0) };
    is_reply($g->($t0), [1, 1, 0, 500, 500], 'burst 0: first');
    is_reply($g->($t0 + 1), [0, 1, 0, 500, 500], 'burst 0: second denied');
    is_reply($g->($t0 + 500_000), [1, 1, 0, 500, 500], 'burst 0: after T');
    probe_retry($g, $t0 + 500_000, 500, 'burst 0');
}

# T = ceil(P / N): 3r/s gives T = 333334 µs; never more than 3 per second.
{
    my $k = fresh_key();
    my $g = sub { gcra($k, $_[0], 3, 1_000_000, 0) };
    is_reply($g->($t0), [1, 1, 0, 334, 334], 'T rounded up');
    is($r->cmd('GET', $k), $t0 + 333_334, 'TAT + 333334');
    is_reply($g->($t0 + 333_333), [0, 1, 0, 1, 1], '1 µs short of T');
    my $admitted = 0;
    for my $i (0 .. 299) {                  # every 10 ms for 3 s
        $admitted += $g->($t0 + 1_000_000 + $i * 10_000)->[0];
    }
    is($admitted, 9, '3r/s over 3 s admits 9');
}

# 100r/m burst=20: the README's example.
{
    my $k = fresh_key();
    my $g = sub { gcra($k, $_[0], 100, 60_000_000, 20) };
    my @rep = map { $g->($t0) } 1 .. 22;
    is(scalar(grep { $_->[0] } @rep), 21, 'burst 20 admits 21 at once');
    is_reply($rep[0], [1, 21, 20, 600, 0], 'first');
    is_reply($rep[20], [1, 21, 0, 12600, 600], 'last of the burst');
    is_reply($rep[21], [0, 21, 0, 12600, 600], 'denied');
    probe_retry($g, $t0, 600, 'burst 20');
}

# Retry-after is exact to the ms after many random requests.
{
    my $k = fresh_key();
    my ($n, $p, $b) = (7, 1_000_000, 3);
    my $g = sub { gcra($k, $_[0], $n, $p, $b) };
    my $t = $t0;
    my ($bad, $model_tat) = (0, 0);
    my $T = int(($p + $n - 1) / $n);
    srand(42);
    for (1 .. 200) {
        $t += int(rand(150_000));
        my $rep = $g->($t);
        my $tat = $model_tat > $t ? $model_tat : $t;
        my $ok = $tat - $t <= $b * $T ? 1 : 0;
        $model_tat = $tat + $T if $ok;
        $bad++ if $rep->[0] != $ok || reply_problems($rep);
    }
    is($bad, 0, 'random sequence: decisions match the GCRA definition');
}

# Other keys are not touched; only the key in KEYS is written.
{
    $r->cmd('FLUSHDB');
    my $other = key_name('other', 'c', 'g');
    $r->cmd('SET', $other, 'keep', 'PX', 100_000);
    my $k = key_name('z', 'only', 'g');
    gcra($k, $t0, 10, 1_000_000, 5) for 1 .. 3;
    is_deeply(db_keys($r), [sort $k, $other], 'only KEYS[1] written');
    is($r->cmd('GET', $other), 'keep', 'other zone untouched');
    ok($r->cmd('PTTL', $other) > 90_000, 'other zone TTL untouched');
}

# Binary-safe key.
{
    my $k = key_name('z', "\x00\r\n{}\xff" . $$, 'g');
    is_reply(gcra($k, $t0, 10, 1_000_000, 0), [1, 1, 0, 100, 100],
             'binary key');
    is($r->cmd('GET', $k), $t0 + 100_000, 'binary key stored');
}

# now_us "0": Redis TIME.
{
    my $k = fresh_key();
    my $rep = gcra($k, 0, 10, 1_000_000, 2);
    is_reply($rep, [1, 3, 2, 100, 0], 'TIME path');
    my $time = $r->cmd('TIME');
    my $now = $time->[0] * 1_000_000 + $time->[1];
    my $tat = $r->cmd('GET', $k);
    ok($tat > $now && $tat <= $now + 100_000,
       'TIME path: TAT is Redis time + T') or diag("$tat vs $now");
    pttl_within($r, $k, 100, 'TIME path: TTL');
}

# Bad arguments are error replies.
{
    my $rep = gcra(fresh_key(), 'x', 10, 1_000_000, 0);
    ok(is_error($rep), 'non-numeric now is an error') or diag($rep);
    $rep = gcra(fresh_key(), $t0, 0, 1_000_000, 0);
    ok(is_error($rep), 'n = 0 is an error');
}

done_testing;
