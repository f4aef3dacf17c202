# lua/token_bucket.lua run alone against a real redis-server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Test::RateLimit::Script;

my $r = redis_db(11);

my $seq = 0;
sub fresh_key { key_name('z', 'c' . ++$seq . "-$$", 'tb') }

sub tb {
    my ($key, $now, $n, $p, $cap) = @_;
    return run_alg($r, 'token_bucket', [$key], $now, $n, $p, $cap);
}

sub state {
    my ($key) = @_;
    my $h = $r->cmd('HGETALL', $key);
    return { @{ $h // [] } };
}

my $t0 = T0;
my $P = 60_000_000;

# 10r/m, capacity 10: one token every 6 s.
{
    my $k = fresh_key();
    my $b = sub { tb($k, $_[0], 10, $P, 10) };

    is_reply($b->($t0), [1, 10, 9, 6000, 0], 'fresh bucket is full');
    is_deeply(state($k), { tokens => 9 * $P, ts => $t0, p => $P },
              'state: tokens scaled by the period');
    pttl_within($r, $k, 6000, 'TTL: full again in 6 s');

    $b->($t0) for 2 .. 9;
    is_reply($b->($t0), [1, 10, 0, 60000, 6000], 'tenth empties it');
    pttl_within($r, $k, 60000, 'TTL: full again in 60 s');
    my $before = state($k);
    is_reply($b->($t0), [0, 10, 0, 60000, 6000], 'eleventh denied');
    is_deeply(state($k), $before, 'denied: state unchanged');
    ok($r->cmd('PTTL', $k) <= 60000, 'denied: TTL not refreshed');

    is_reply($b->($t0 + 5_999_999), [0, 10, 0, 54001, 1],
             '1 µs short of a token');
    is_reply($b->($t0 + 6_000_000), [1, 10, 0, 60000, 6000],
             'a token after 6 s');
    is_reply($b->($t0 + 9_000_000), [0, 10, 0, 57000, 3000],
             'half a token: retry in 3 s');
    probe_retry($b, $t0 + 9_000_000, 3000, 'half a token');
    is_reply($b->($t0 + 1_000_000_000), [1, 10, 9, 6000, 0],
             'idle: full again, never above capacity');
}

# No refill is lost to rounding: 10 per 60 s, one request a second for
# 10 minutes admits the capacity plus one per 6 s (the bucket never fills
# again, so every refilled fraction is used).
{
    my $k = fresh_key();
    my $admitted = 0;
    $admitted += tb($k, $t0 + $_ * 1_000_000, 10, $P, 10)->[0] for 0 .. 599;
    is($admitted, 10 + int(599 / 6), '10r/m, 1 req/s for 600 s');
}

# An awkward rate: 7 per 60 s, capacity 3, a request every 700 ms for
# 200 s.  By time t at most 3 + floor(7t/60) pass, and a greedy client gets
# exactly that many.
{
    my $k = fresh_key();
    my ($admitted, $bad) = (0, 0);
    for my $i (0 .. 285) {
        my $t_us = $i * 700_000;
        my $rep = tb($k, $t0 + $t_us, 7, $P, 3);
        $admitted += $rep->[0];
        my $bound = 3 + int(7 * $t_us / $P);
        $bound = $i + 1 if $i + 1 < $bound;
        $bad++ if $admitted != $bound || reply_problems($rep);
    }
    is($bad, 0, '7r/m every 700 ms: always exactly the tokens refilled');
    is($admitted, 3 + int(7 * 285 * 700_000 / $P), '7r/m: total');
}

# Refill in µs: 3r/s has a token each 333333.33 µs; nothing is rounded
# away (capacity 2 so the bucket is not full in between).
{
    my $k = fresh_key();
    my $b = sub { tb($k, $_[0], 3, 1_000_000, 2) };
    is_reply($b->($t0), [1, 2, 1, 334, 0], '3r/s: first');
    is_reply($b->($t0), [1, 2, 0, 667, 334], '3r/s: second');
    is_reply($b->($t0 + 333_333), [0, 2, 0, 334, 1], '1/3 µs short');
    is_reply($b->($t0 + 333_334), [1, 2, 0, 667, 334], 'a token');
    is(state($k)->{tokens}, 2, 'the 2/3 µs of surplus refill are kept');
    is_reply($b->($t0 + 666_667), [1, 2, 0, 667, 334],
             'the surplus makes the next token on time');
    is(state($k)->{tokens}, 1, 'surplus 1/3 µs');
}

# A full bucket holds no more than its capacity.
{
    my $k = fresh_key();
    my $b = sub { tb($k, $_[0], 3, 1_000_000, 1) };
    is_reply($b->($t0), [1, 1, 0, 334, 334], 'capacity 1');
    is_reply($b->($t0 + 333_334), [1, 1, 0, 334, 334], 'refilled');
    is(state($k)->{tokens}, 0, 'refill beyond capacity is not kept');
}

# The rate changes: whole tokens are kept.
{
    my $k = fresh_key();
    tb($k, $t0, 10, $P, 10) for 1 .. 3;
    is_reply(tb($k, $t0, 10, 1_000_000, 10), [1, 10, 6, 400, 0],
             'rate changed: 7 whole tokens kept');
    is(state($k)->{p}, 1_000_000, 'new period stored');
}

# The clock going back refills nothing.
{
    my $k = fresh_key();
    my $b = sub { tb($k, $_[0], 1, 1_000_000, 2) };
    $b->($t0 + 10_000_000);
    is_reply($b->($t0), [1, 2, 0, 12000, 11000], 'earlier request');
    is(state($k)->{ts}, $t0 + 10_000_000, 'ts not moved back');
    is_reply($b->($t0 + 10_000_000), [0, 2, 0, 2000, 1000], 'then denied');
}

# Other keys are not touched; only KEYS[1] is written.
{
    $r->cmd('FLUSHDB');
    my $other = key_name('other', 'c', 'tb');
    $r->cmd('HSET', $other, 'tokens', 1, 'ts', 2, 'p', 3);
    $r->cmd('PEXPIRE', $other, 100_000);
    my $k = key_name('z', 'only', 'tb');
    tb($k, $t0, 10, $P, 10) for 1 .. 3;
    is_deeply(db_keys($r), [sort $k, $other], 'only KEYS[1] written');
    is_deeply(state($other), { tokens => 1, ts => 2, p => 3 },
              'other zone untouched');
    ok($r->cmd('PTTL', $other) > 90_000, 'other zone TTL untouched');
}

# now_us "0": Redis TIME.
{
    my $k = fresh_key();
    is_reply(tb($k, 0, 10, $P, 5), [1, 5, 4, 6000, 0], 'TIME path');
    my $time = $r->cmd('TIME');
    my $now = $time->[0] * 1_000_000 + $time->[1];
    my $ts = state($k)->{ts};
    ok($ts <= $now && $ts > $now - 5_000_000, 'TIME path: ts is Redis time')
        or diag("$ts vs $now");
    pttl_within($r, $k, 6000, 'TIME path: TTL');
}

{
    ok(is_error(tb(fresh_key(), $t0, 10, $P, 0)), 'capacity 0: error');
    ok(is_error(tb(fresh_key(), $t0, 10, 'x', 1)), 'bad period: error');
}

done_testing;
