# gcra's delay= in the assembled script (lua/gcra.lua, lua/multi.lua)
# against a real redis-server: the sixth integer of a zone's reply,
# delay_ms, is how long an admitted request waits for its turn, as
# "limit_req ... burst=B delay=D" would hold it: D + 1 requests at once
# pass at once, the next waits T, the one after 2 T, ... up to the burst;
# a cost C waits as the last of C requests of cost 1 would.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Test::RateLimit::Script;

my $r = redis_db(8);
my $t0 = T0;
my $S = 1_000_000;

my $seq = 0;
sub fresh_key { key_name('d', 'c' . ++$seq . "-$$", 'g') }

# [gcra, n, period_us, burst, [key], cost, delay]
sub gcra {
    my ($n, $p, $burst, $delay, $cost, $key) = @_;
    return ['gcra', $n, $p, $burst, [$key // fresh_key()], $cost, $delay];
}

# One zone's check at $now: [allowed, delay_ms].
sub check {
    my ($now, $z) = @_;
    my $rep = run_multi($r, $now, $z);
    return ref $rep eq 'ARRAY' ? [ @$rep[0, 5] ] : $rep;
}

# $k requests at one now, each a check: their [allowed, delay_ms] pairs.
sub burst_at {
    my ($now, $k, @zone) = @_;
    my $key = fresh_key();
    return [ map { check($now, gcra(@zone[0 .. 4], $key)) } 1 .. $k ];
}

sub pairs { [ map { [1, $_] } @_ ] }

# burst=5 delay=1 at 10r/s (T = 100 ms): what t/049-delay.t sees.
is_deeply(burst_at($t0, 7, 10, $S, 5, 1),
          [ @{ pairs(0, 0, 100, 200, 300, 400) }, [0, 0] ],
          'burst=5 delay=1: 0, 0, T, 2T, 3T, 4T, then rejected (delay 0)');

# the default, delay = burst: nothing waits; delay=0: only one at once
is_deeply(burst_at($t0, 6, 10, $S, 5, 5), pairs(0, 0, 0, 0, 0, 0),
          'delay = burst: never held');
is_deeply(burst_at($t0, 6, 10, $S, 5, 0), pairs(0, 100, 200, 300, 400, 500),
          'delay=0: each waits one T more');

# T = ceil(1e6 / 3) = 333334 us: the wait is rounded up to the ms
is_deeply(burst_at($t0, 5, 3, $S, 4, 1), pairs(0, 0, 334, 667, 1001),
          'T = 333334 us: waits rounded up');

# time goes on: a request's wait counts from its own arrival
{
    my $key = fresh_key();
    check($t0, gcra(10, $S, 5, 1, 1, $key)) for 1 .. 6;
    is_deeply(check($t0 + 100_000, gcra(10, $S, 5, 1, 1, $key)), [1, 400],
              'one T later the next in line waits 4T');
    is_deeply(check($t0 + 250_000, gcra(10, $S, 5, 1, 1, $key)), [1, 350],
              'at 2.5 T the next waits 3.5 T (it leaves 5.5 T ahead)');
    is_deeply(check($t0 + 2_000_000, gcra(10, $S, 5, 1, 1, $key)), [1, 0],
              'once the key is fresh: at once');
}

# costs: cost C takes C intervals and waits for its last unit's turn
is_deeply(burst_at($t0, 4, 10, $S, 5, 1, 2),
          [ @{ pairs(0, 200, 400) }, [0, 0] ],
          'cost 2, burst=5 delay=1: 0, 2T, 4T, then rejected');
is_deeply(burst_at($t0, 2, 10, $S, 5, 1, 3), pairs(100, 400),
          'cost 3 on a fresh key: its third unit is one beyond delay+1');
{
    my $key = fresh_key();
    check($t0, gcra(10, $S, 5, 1, 1, $key)) for 1 .. 4;
    is_deeply(check($t0, gcra(10, $S, 5, 1, 0, $key)), [1, 0],
              'cost 0 takes no turn: never held');
    is_deeply(check($t0, gcra(10, $S, 5, 1, 1, $key)), [1, 300],
              'and took nothing: the next waits 3T');
}

# the bounds of Numbers: (burst + 1) * T = 1e15 us, TAT near 2^53 - 1e15
{
    my $T = 1_000_000_000_000;          # n=1 per 1e12 us
    my $key = fresh_key();
    is_deeply(check($t0, gcra(1, $T, 999, 0, 1, $key)), [1, 0],
              'T = 1e12 us: the first at once');
    is_deeply(check($t0, gcra(1, $T, 999, 0, 999, $key)),
              [1, 999_000_000_000],
              'cost 999 behind it waits 999 T, an exact integer');
    is_deeply(check($t0, gcra(1, $T, 999, 0, 1, $key)), [0, 0],
              'the burst is full: rejected');
    my $rep = run_multi($r, $t0, gcra(1, $T, 999, 998, 1000));
    is_deeply([ @$rep[0, 3, 5] ], [1, 1_000_000_000_000, 1_000_000_000],
              'cost 1000 = burst + 1 on a fresh key, delay 998: waits T');
    my $max = '9007199254740991';
    $rep = run_multi($r, $max - 1_000_000_000_000_000,
                     gcra(1, $T, 999, 0, 1000));
    is_deeply([ @$rep[0, 5] ], [1, 999_000_000_000],
              'now + (burst + 1) T = 2^53 - 1: still exact');
}

# several zones: each says its own wait; one rejecting zone holds nothing
{
    my ($a, $b) = (fresh_key(), fresh_key());
    my $rep;
    $rep = run_multi($r, $t0, gcra(10, $S, 5, 1, 1, $a),
                     gcra(20, $S, 5, 0, 1, $b)) for 1 .. 3;
    is_deeply([ @$rep[0, 5, 6, 11] ], [1, 100, 1, 100],
              'two zones, third request: T of 10r/s and 2T of 20r/s');
    my $full = fresh_key();
    run_multi($r, $t0, gcra(1, $S, 0, 0, 1, $full));
    my $tat = $r->cmd('GET', $a);
    $rep = run_multi($r, $t0, gcra(10, $S, 5, 1, 1, $a),
                     gcra(1, $S, 0, 0, 1, $full));
    is_deeply([ @$rep[0, 5, 6, 11] ], [1, 0, 0, 0],
              'another zone rejects: no wait reported');
    is($r->cmd('GET', $a), $tat, 'and nothing taken');
}

# the other algorithms never wait, whatever their delay argument allows
{
    my $rep = run_multi($r, $t0,
                        ['token_bucket', 10, $S, 5, [fresh_key()], 5, 0]);
    is_deeply([ @$rep[0, 5] ], [1, 0], 'token_bucket: delay_ms 0');
}

done_testing;
