# The assembled script's refund mode (mode=cluster gives back what one
# slot's check took when another slot rejected the request), for every
# algorithm, against a real redis-server: a check then a refund of the
# same cost leaves the key as a fresh one would be, or as it was before
# the check; a refund never gives back beyond a fresh key.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Test::RateLimit::Script;

my $r = redis_db(9);
my $t0 = T0;
my $S = 1_000_000;

my $seq = 0;
sub fresh_client { 'c' . ++$seq . "-$$" }

my %ktag = (gcra => 'g', token_bucket => 'tb', fixed_window => 'fw',
            sliding_window => 'sw', sliding_log => 'sl');

# [alg, n, period_us, burst, [keys], cost], the windows named from $t0.
sub zone {
    my ($alg, $n, $p, $burst, $cost) = @_;
    my ($c, $tag, $w) = (fresh_client(), $ktag{$alg}, int($t0 / $p));
    my $keys = $alg eq 'fixed_window'
        ? [ map { key_name('z', $c, $tag, $w + $_) } -1 .. 1 ]
        : $alg eq 'sliding_window'
        ? [ map { key_name('z', $c, $tag, $w + $_) } -2 .. 1 ]
        : [ key_name('z', $c, $tag) ];
    return [$alg, $n, $p, $burst, $keys, $cost];
}

# remaining of zone 1 after a check at $now (cost 0: consumes nothing)
sub remaining {
    my ($z, $now) = @_;
    my @peek = @$z;
    $peek[5] = 0;
    return run_mode($r, 'check', $now, \@peek)->[2];
}

my %conf = (gcra => [5, $S, 4], token_bucket => [5, 60 * $S, 5],
            fixed_window => [5, 60 * $S, 0],
            sliding_window => [5, 60 * $S, 0],
            sliding_log => [5, 60 * $S, 0]);

for my $alg (sort keys %conf) {
    my ($n, $p, $b) = @{ $conf{$alg} };

    # a check of cost 2, refunded: as fresh as before
    my $z = zone($alg, $n, $p, $b, 2);
    my $full = remaining($z, $t0);
    is(run_mode($r, 'check', $t0, $z)->[0], 1, "$alg: the check passes");
    is(remaining($z, $t0), $full - 2, "$alg: it took 2");
    is_deeply(run_mode($r, 'refund', $t0, $z), [2], "$alg: 2 given back");
    is(remaining($z, $t0), $full, "$alg: as before the check");
    is($r->cmd('EXISTS', $z->[4][0]), 0,
       "$alg: a key as fresh as a missing one is gone")
        if $alg ne 'sliding_window' && $alg ne 'fixed_window';

    # two checks, one refunded: one still counts
    run_mode($r, 'check', $t0, $z) for 1 .. 2;
    run_mode($r, 'refund', $t0, $z);
    is(remaining($z, $t0), $full - 2, "$alg: the other check still counts");

    # a refund beyond what was taken stops at a fresh key
    my $big = [@$z];
    $big->[5] = 100;
    run_mode($r, 'refund', $t0, $big);
    is(remaining($z, $t0), $full, "$alg: never beyond a fresh key");
    my $fresh = zone($alg, $n, $p, $b, 3);
    is_deeply(run_mode($r, 'refund', $t0, $fresh), [0],
              "$alg: nothing given back to a fresh key");
    is(remaining($fresh, $t0), $full, "$alg: and it stays fresh");
}

# Several zones in one call, in order.
{
    my @z = (zone('gcra', 5, $S, 4, 1), zone('sliding_log', 5, 60 * $S, 0, 1));
    run_mode($r, 'check', $t0, @z);
    is_deeply(run_mode($r, 'refund', $t0, @z), [1, 1], 'two zones: both given back');
    is(remaining($z[0], $t0), 5, 'two zones: the first fresh');
    is(remaining($z[1], $t0), 5, 'two zones: the second fresh');
}

done_testing();
