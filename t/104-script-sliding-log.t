# lua/sliding_log.lua run alone against a real redis-server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Test::RateLimit::Script;

my $r = redis_db(14);

my $seq = 0;
sub fresh_key { key_name('z', 'c' . ++$seq . "-$$", 'sl') }

sub sl {
    my ($key, $now, $n, $p) = @_;
    return run_alg($r, 'sliding_log', [$key], $now, $n, $p, 0);
}

sub members {
    my ($key) = @_;
    return $r->cmd('ZRANGE', $key, 0, -1, 'WITHSCORES');
}

my $t0 = T0;
my $S = 1_000_000;

# 3r/s.
{
    my $k = fresh_key();
    my $f = sub { sl($k, $_[0], 3, $S) };

    is_reply($f->($t0), [1, 3, 2, 1000, 0], 'first');
    pttl_within($r, $k, 1000, 'TTL: P after the admission');
    is_reply($f->($t0), [1, 3, 1, 1000, 0], 'second in the same µs');
    is_reply($f->($t0), [1, 3, 0, 1000, 1000], 'third in the same µs');
    is_deeply(members($k), [ map { ("$t0-$_", $t0) } 0 .. 2 ],
              'three members for one µs, score = time');
    my $before = members($k);
    is_reply($f->($t0 + 500_000), [0, 3, 0, 500, 500], 'fourth denied');
    is_deeply(members($k), $before, 'denied: log unchanged');
    ok($r->cmd('PTTL', $k) > 900, 'denied: TTL not refreshed');
    is_reply($f->($t0 + 999_999), [0, 3, 0, 1, 1], 'last µs of the period');

    is_reply($f->($t0 + $S), [1, 3, 2, 1000, 0],
             'after P the old admissions no longer count');
    is($r->cmd('ZCARD', $k), 1, 'and are trimmed');
    is_reply($f->($t0 + 1_100_000), [1, 3, 1, 1000, 0], 'at 1.1 s');
    is_reply($f->($t0 + 1_200_000), [1, 3, 0, 1000, 800],
             'at 1.2 s: the one of 1.0 s leaves at 2.0 s');
    pttl_within($r, $k, 1000, 'TTL moved with the newest admission');
    probe_retry($f, $t0 + 1_200_000, 800, 'oldest leaves');
    is($r->cmd('ZCARD', $k), 3, 'never more than N members');

    is_reply($f->($t0 + 100 * $S), [1, 3, 2, 1000, 0], 'idle: full again');
    is($r->cmd('ZCARD', $k), 1, 'idle: trimmed');
}

# At most N admissions in any period P, ZCARD <= N, exact retry_after, over
# a random sequence.
{
    my $k = fresh_key();
    my ($n, $p) = (5, 2 * $S);
    my $f = sub { sl($k, $_[0], $n, $p) };
    my ($t, $bad, $probes, @adm) = ($t0 + 777, 0, 0);
    my $note = sub {
        my ($when, $rep) = @_;
        push @adm, $when if $rep->[0];
        $bad++, diag("at $when: @$rep") if reply_problems($rep);
        my $zc = $r->cmd('ZCARD', $k);
        $bad++, diag("ZCARD $zc") if $zc > $n;
    };
    srand(11);
    for (1 .. 150) {
        $t += int(rand(500_000));
        my $rep = $f->($t);
        $note->($t, $rep);
        my $ms = $rep->[4] or next;
        $probes++;
        my $early = $f->($t + ($ms - 1) * 1000);
        my $on = $f->($t + $ms * 1000);
        $note->($t + ($ms - 1) * 1000, $early);
        $note->($t + $ms * 1000, $on);
        $bad++, diag("at $t: @$rep, then $early->[0] $on->[0]")
            if $early->[0] != 0 || $on->[0] != 1;
        $t += $ms * 1000;
    }
    my $over = 0;
    for my $i ($n .. $#adm) {
        $over++ if $adm[$i] - $adm[$i - $n] < $p;
    }
    ok($probes > 20, "random sequence: $probes retry probes");
    is($bad, 0, 'random sequence: replies, ZCARD <= N, retry exact');
    is($over, 0, 'never more than N admissions within P');
}

# A lowered limit: the retry waits for enough of the oldest to leave.
{
    my $k = fresh_key();
    sl($k, $t0 + $_ * 100_000, 3, $S) for 0 .. 2;
    is_reply(sl($k, $t0 + 300_000, 2, $S), [0, 2, 0, 900, 800],
             'N lowered to 2: the second oldest must leave');
}

# Members ahead of now (a clock that went back) still count.
{
    my $k = fresh_key();
    sl($k, $t0 + 500_000, 1, $S);
    is_reply(sl($k, $t0, 1, $S), [0, 1, 0, 1500, 1500],
             'a later admission counts');
}

# Other keys are not touched; only KEYS[1] is written.
{
    $r->cmd('FLUSHDB');
    my $other = key_name('other', 'c', 'sl');
    $r->cmd('ZADD', $other, $t0, 'x');
    $r->cmd('PEXPIRE', $other, 100_000);
    my $k = key_name('z', 'only', 'sl');
    sl($k, $t0 + $_, 5, $S) for 1 .. 3;
    is_deeply(db_keys($r), [sort $k, $other], 'only KEYS[1] written');
    is_deeply(members($other), ['x', $t0], 'other zone untouched');
    ok($r->cmd('PTTL', $other) > 90_000, 'other zone TTL untouched');
}

# now_us "0": Redis TIME.
{
    my $k = fresh_key();
    is_reply(sl($k, 0, 10, 60 * $S), [1, 10, 9, 60000, 0], 'TIME path');
    my $time = $r->cmd('TIME');
    my $now = $time->[0] * 1_000_000 + $time->[1];
    my $m = members($k);
    ok($m->[1] <= $now && $m->[1] > $now - 5_000_000
       && $m->[0] eq "$m->[1]-0", 'TIME path: scored with Redis time')
        or diag("@$m vs $now");
    pttl_within($r, $k, 60000, 'TIME path: TTL');
}

done_testing;
