# The module's script (lua/multi.lua and the algorithms) with costs,
# charges and debt, exact arithmetic at the bounds of the Numbers, and the
# calendar windows of Nr/w and Nr/M through the script's "now" argument,
# against a real redis-server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Test::RateLimit::Script;

my $r = redis_db(14);

my $t0 = T0;
my $S = 1_000_000;
my $DAY = 86_400 * $S;
my $WEEK = 604_800 * $S;
my $MONTH = 2_592_000 * $S;

my $seq = 0;
sub fresh_client { 'c' . ++$seq . "-$$" }

my %ktag = (gcra => 'g', token_bucket => 'tb', fixed_window => 'fw',
            sliding_window => 'sw', sliding_log => 'sl');

# Window numbers as the module names them (src/core/key.cpp): fixed_window
# weeks from Monday 1970-01-05, months since 1970-01; else epoch aligned.
sub window {
    my ($alg, $clock, $p) = @_;
    if ($alg eq 'fixed_window' && $p == $MONTH) {
        my @t = gmtime(int($clock / $S));
        return ($t[5] + 1900 - 1970) * 12 + $t[4];
    }
    if ($alg eq 'fixed_window' && $p == $WEEK) {
        return POSIX::floor(($clock - 4 * $DAY) / $p);
    }
    return int($clock / $p);
}

use POSIX ();

sub zone {
    my ($client, $alg, $n, $p, $burst, $cost, $clock) = @_;
    my $tag = $ktag{$alg};
    my $w = window($alg, $clock // $t0, $p);
    my @keys = $alg eq 'fixed_window'
        ? map { key_name('z', $client, $tag, $w + $_) } -1 .. 1
        : $alg eq 'sliding_window'
        ? map { key_name('z', $client, $tag, $w + $_) } -2 .. 1
        : (key_name('z', $client, $tag));
    return [$alg, $n, $p, $burst, \@keys, $cost];
}

sub check1 {
    my ($now, @z) = @_;
    my $rep = run_multi($r, $now, zone(@z, $now));
    return ref $rep eq 'ARRAY' ? [ @$rep[0 .. 4] ] : $rep;
}

# allowed, limit, remaining
sub head3 {
    my ($rep) = @_;
    return ref $rep eq 'ARRAY' ? [ @$rep[0 .. 2] ] : $rep;
}

sub charge1 {
    my ($now, @z) = @_;
    return run_mode($r, 'charge', $now, zone(@z, $now));
}

# Debt: a charge beyond what remains, in every algorithm that takes
# charges; the key is rejected, remaining 0, until the debt is repaid and
# one unit is free, to the millisecond.
{
    # 10r/s; gcra burst 4 (limit 5), token_bucket capacity 5, windows 5/s
    my %cfg = (gcra         => [10, $S, 4, 1600],
               token_bucket => [10, $S, 5, 1600],
               fixed_window => [5, $S, 0, 1000],
               sliding_window => [5, $S, 0, 1800]);
    for my $alg (sort keys %cfg) {
        my ($n, $p, $b, $wait) = @{ $cfg{$alg} };
        my $c = fresh_client();
        my $rep = charge1($t0, $c, $alg, $n, $p, $b, 20);
        is_deeply($rep, [0], "$alg: charge 20 of 5: remaining 0 (debt)");
        my $got = check1($t0, $c, $alg, $n, $p, $b, 1);
        is_reply($got, [0, 5, 0, $got->[3], $wait],
                 "$alg: in debt: rejected until repaid");
        is_deeply(check1($t0, $c, $alg, $n, $p, $b, 0), $got,
                  "$alg: in debt: a cost of 0 is rejected too");
        probe_retry(sub { check1($_[0], $c, $alg, $n, $p, $b, 1) }, $t0,
                    $wait, "$alg: debt");

        # a charge of 0 takes nothing; a charge on a fresh key takes it
        my $d = fresh_client();
        is_deeply(charge1($t0, $d, $alg, $n, $p, $b, 0), [5],
                  "$alg: charge 0: nothing taken");
        is_deeply(charge1($t0, $d, $alg, $n, $p, $b, 2), [3],
                  "$alg: charge 2 of 5: 3 left");
        my $x = check1($t0, $d, $alg, $n, $p, $b, 4);
        ok($x->[0] == 0 && $x->[2] == 3 && $x->[4] == 0,
           "$alg: after the charge a cost above the 3 left is rejected")
            or diag("@$x");
    }

    my $rep = charge1($t0, fresh_client(), 'sliding_log', 5, $S, 0, 1);
    ok(is_error($rep) && $rep->message =~ /sliding_log takes no charges/,
       'sliding_log: charge refused') or diag(explain($rep));
}

# sliding_log: a cost of many members, added in several ZADDs.
{
    my $c = fresh_client();
    is_deeply(head3(check1($t0, $c, 'sliding_log', 2000, $S, 0, 1500)),
              [1, 2000, 500], 'sliding_log: a cost of 1500 at once');
    is($r->cmd('ZCARD', key_name('z', $c, 'sl')), 1500,
       'sliding_log: 1500 members, each its own');
    is_deeply(head3(check1($t0 + 1, $c, 'sliding_log', 2000, $S, 0, 501)),
              [0, 2000, 500], 'sliding_log: 501 of the last 500 rejected');
    my $rep = check1($t0 + 2, $c, 'sliding_log', 2000, $S, 0, 500);
    is_reply($rep, [1, 2000, 0, 1000, 1000], 'sliding_log: the last 500',
             500);
    probe_retry(sub { check1($_[0], $c, 'sliding_log', 2000, $S, 0, 1) },
                $t0 + 2, 1000 - 0, 'sliding_log: 1500 leave at t0 + 1 s');
}

# A charge of two zones in one call, and one bad zone writes nothing.
{
    my $c = fresh_client();
    my $rep = run_mode($r, 'charge', $t0,
                       zone($c, 'gcra', 10, $S, 4, 3),
                       zone($c, 'fixed_window', 5, $S, 0, 7));
    is_deeply($rep, [2, 0], 'two zones charged in one call');
    $c = fresh_client();
    my $g = zone($c, 'gcra', 10, $S, 4, 3);
    $rep = run_mode($r, 'charge', $t0, $g,
                    zone($c, 'sliding_log', 5, $S, 0, 1));
    ok(is_error($rep), 'a zone that takes no charges: error');
    is($r->cmd('EXISTS', $g->[4][0]), 0, 'and the first zone is untouched');
}

# Exact arithmetic at the bounds the module enforces (src/core/limit.cpp).
{
    # gcra: (burst + 1) * T <= 10^15 us; 1r/d gives T = 86400 s, burst
    # 11573 at most, limit 11574: a cost of the whole limit moves TAT
    # exactly.
    my ($n, $p, $b) = (1, $DAY, 11573);
    my $c = fresh_client();
    is_reply(check1($t0, $c, 'gcra', $n, $p, $b, 11574),
             [1, 11574, 0, 11574 * 86_400_000, 86_400_000],
             'gcra at 10^15: the whole limit at once', 11574);
    is($r->cmd('GET', key_name('z', $c, 'g')), $t0 + 11574 * $DAY,
       'gcra at 10^15: TAT exact');
    my $d = fresh_client();
    is_deeply(head3(check1($t0, $d, 'gcra', $n, $p, $b, 11575)),
              [0, 11574, 11574], 'gcra: a cost above the limit rejected');

    # the debt stops at now + 2^52 us, however large the charge
    my $e = fresh_client();
    charge1($t0, $e, 'gcra', $n, $p, $b, '9007199254740992');
    is($r->cmd('GET', key_name('z', $e, 'g')), $t0 + 4503599627370496,
       'gcra: debt bounded at now + 2^52 us');

    # token_bucket: C * P <= 2^52; 1r/h allows C = 1250999 at most
    ($n, $p, $b) = (1, 3600 * $S, 1250999);
    $c = fresh_client();
    is_deeply(head3(check1($t0, $c, 'token_bucket', $n, $p, $b, $b)),
              [1, $b, 0], 'token_bucket at 2^52: the whole capacity at once');
    is($r->cmd('HGET', key_name('z', $c, 'tb'), 'tokens'), 0,
       'token_bucket at 2^52: no token left, exactly');
    # a debt of 1000 tokens on a capacity of 1000
    $b = 1000;
    $c = fresh_client();
    check1($t0, $c, 'token_bucket', $n, $p, $b, $b);
    charge1($t0, $c, 'token_bucket', $n, $p, $b, 1000);
    is($r->cmd('HGET', key_name('z', $c, 'tb'), 'tokens'), -1000 * $p,
       'token_bucket: a debt of 1000 tokens, exactly');
    my $got = check1($t0, $c, 'token_bucket', $n, $p, $b, 1);
    is($got->[4], 1001 * 3_600_000, 'token_bucket: repaid after 1001 h');

    # fixed_window: N up to 10^9 per window, costs up to N
    $c = fresh_client();
    my $G = 1_000_000_000;
    is_deeply(head3(check1($t0, $c, 'fixed_window', $G, $S, 0, $G - 1)),
              [1, $G, 1], 'fixed_window: 10^9 - 1 at once');
    is_deeply(head3(check1($t0, $c, 'fixed_window', $G, $S, 0, 2)),
              [0, $G, 1], 'fixed_window: 2 of the last 1 rejected');
    is_deeply(head3(check1($t0, $c, 'fixed_window', $G, $S, 0, 1)),
              [1, $G, 0], 'fixed_window: the last one');

    # sliding_window: N * P <= 2^52; r/d allows N = 52124 at most
    ($n, $p) = (52124, $DAY);
    $c = fresh_client();
    is_deeply(head3(check1($t0, $c, 'sliding_window', $n, $p, 0, $n)),
              [1, $n, 0], 'sliding_window: N at once at its bound');
    is_deeply(head3(check1($t0 + $p, $c, 'sliding_window', $n, $p, 0, 1)),
              [0, $n, 0],
              'sliding_window: the previous window still weighs all');
    is_deeply(head3(check1($t0 + $p + $p / 2, $c, 'sliding_window', $n, $p,
                           0,
                     $n / 2)), [1, $n, 0],
              'sliding_window: half the period on, exactly half passes');
}

# Calendar windows: months in UTC, weeks from Monday 00:00 UTC
# (fixed_window only), through the script's "now".
{
    my $fw = sub {
        my ($c, $sec, $p, $cost) = @_;
        return check1($sec * $S, $c, 'fixed_window', 3, $p, 0, $cost // 1);
    };

    # the last second of February in a leap year
    my $c = fresh_client();
    is_reply($fw->($c, 1709251199, $MONTH), [1, 3, 2, 1000, 0],
             'M: 2024-02-29 23:59:59: one second to the month\'s end');
    ok($r->cmd('EXISTS', key_name('z', $c, 'fw', 649)),
       'M: February 2024 is window 649');
    $fw->($c, 1709251199, $MONTH, 2);
    is_reply($fw->($c, 1709251199, $MONTH), [0, 3, 0, 1000, 1000],
             'M: February used up, retry at midnight');
    is_reply($fw->($c, 1709251200, $MONTH), [1, 3, 2, 31 * 86_400_000, 0],
             'M: 2024-03-01 00:00:00: a fresh month of 31 days');
    ok($r->cmd('EXISTS', key_name('z', $c, 'fw', 650)),
       'M: March 2024 is window 650');
    pttl_within($r, key_name('z', $c, 'fw', 650), 31 * 86_400_000,
                'M: the key expires at the month\'s end');

    # 31 December to 1 January (also a Monday: a week boundary)
    $c = fresh_client();
    is_reply($fw->($c, 1704067199, $MONTH, 3), [1, 3, 0, 1000, 1000],
             'M: 2023-12-31 23:59:59: December used up');
    is_reply($fw->($c, 1704067200, $MONTH), [1, 3, 2, 31 * 86_400_000, 0],
             'M: 2024-01-01 00:00:00: January is fresh');
    ok($r->cmd('EXISTS', key_name('z', $c, 'fw', 647))
       && $r->cmd('EXISTS', key_name('z', $c, 'fw', 648)),
       'M: December 2023 is 647, January 2024 is 648');
    # February of a leap year lasts 29 days
    is_reply($fw->(fresh_client(), 1706745600, $MONTH),
             [1, 3, 2, 29 * 86_400_000, 0], 'M: February 2024 has 29 days');
    is_reply($fw->(fresh_client(), 1675209600, $MONTH),
             [1, 3, 2, 28 * 86_400_000, 0], 'M: February 2023 has 28 days');

    $c = fresh_client();
    is_reply($fw->($c, 1704067199, $WEEK, 3), [1, 3, 0, 1000, 1000],
             'w: Sunday 23:59:59: the week ends in a second');
    is_reply($fw->($c, 1704067200, $WEEK), [1, 3, 2, 604_800_000, 0],
             'w: Monday 00:00:00: a fresh week');
    ok($r->cmd('EXISTS', key_name('z', $c, 'fw', 2816))
       && $r->cmd('EXISTS', key_name('z', $c, 'fw', 2817)),
       'w: weeks counted from Monday 1970-01-05');

    # sliding_window's weeks stay aligned to the epoch (a Thursday)
    $c = fresh_client();
    # Sunday 2023-12-31 00:00: epoch week 2817, Monday week 2816
    my $rep = check1(1703980800 * $S, $c, 'sliding_window', 3, $WEEK, 0, 1);
    is($rep->[0], 1, 'w: sliding_window takes weeks too');
    ok($r->cmd('EXISTS', key_name('z', $c, 'sw', 2817)),
       'w: sliding_window windows from the epoch');
}

done_testing();
