# lua/fixed_window.lua run alone against a real redis-server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes ();
use Test::RateLimit::Script;

my $r = redis_db(12);

my $seq = 0;
sub fresh_client { 'c' . ++$seq . "-$$" }

# The candidates the module passes: windows W-1, W, W+1 by its clock.
sub fw_keys {
    my ($client, $clock_us, $p) = @_;
    my $w = int($clock_us / $p);
    return [ map { key_name('z', $client, 'fw', $w + $_) } -1 .. 1 ];
}

sub fw {
    my ($client, $now, $n, $p, $clock) = @_;
    return run_alg($r, 'fixed_window', fw_keys($client, $clock // $now, $p),
                   $now, $n, $p, 0);
}

my $t0 = T0;
my $S = 1_000_000;
my $w0 = $t0 / $S;

# 3r/s.
{
    my $c = fresh_client();
    my $f = sub { fw($c, $_[0], 3, $S) };
    my $k = key_name('z', $c, 'fw', $w0);

    is_reply($f->($t0), [1, 3, 2, 1000, 0], 'first in the window');
    pttl_within($r, $k, 1000, 'TTL = the end of the window');
    is_reply($f->($t0 + 250_000), [1, 3, 1, 750, 0], 'second');
    is_reply($f->($t0 + 250_000), [1, 3, 0, 750, 750], 'third: none left');
    is($r->cmd('GET', $k), 3, 'counter 3');
    my $ttl = $r->cmd('PTTL', $k);
    ok($ttl <= 1000 && $ttl > 0, 'TTL set once, not moved');
    is_reply($f->($t0 + 500_000), [0, 3, 0, 500, 500], 'fourth denied');
    is($r->cmd('GET', $k), 3, 'denied: counter unchanged');
    ok($r->cmd('PTTL', $k) <= $ttl, 'denied: TTL not refreshed');
    is_reply($f->($t0 + 999_999), [0, 3, 0, 1, 1], 'last µs of the window');
    probe_retry($f, $t0 + 999_999, 1, 'window end');

    my $k1 = key_name('z', $c, 'fw', $w0 + 1);
    is($r->cmd('GET', $k1), 1, 'the next window has its own counter');
    pttl_within($r, $k1, 1000, 'created at its start: TTL one period');
    is($r->cmd('GET', $k), 3, 'the old window untouched');
}

# A steady client (one request a second, 2 per 5 s window) is let back in
# at every new window: 2 of every 5, the first request of each window
# passes.
{
    my $c = fresh_client();
    my @got = map { fw($c, $t0 + $_ * $S, 2, 5 * $S)->[0] } 0 .. 14;
    is("@got", '1 1 0 0 0 1 1 0 0 0 1 1 0 0 0', 'steady client, 3 windows');
}

# The same in real time with Redis TIME: the counter of each window
# expires at the window's end, however often the client comes.
{
    my $c = fresh_client();
    my ($P, $bad, @got) = (1_000_000, 0);
    for my $window (1 .. 3) {
        # five requests from 100 to 700 ms into a window of the local clock,
        # far from its ends
        my $now = Time::HiRes::time();
        Time::HiRes::sleep(1 - ($now - int($now)) + 0.1);
        for my $i (0 .. 4) {
            my $clock = int(Time::HiRes::time() * 1e6);
            my $rep = fw($c, 0, 2, $P, $clock);
            push @got, $rep->[0];
            my $k = key_name('z', $c, 'fw', int($clock / $P));
            # PX is counted from the script's ms clock, which may lag TIME
            # by under 1 ms: the key may outlive its window by that much
            my $pttl = $r->cmd('PTTL', $k);
            $bad++, diag("@$rep pttl $pttl")
                if reply_problems($rep) || $pttl > $rep->[3] + 1
                   || $pttl < 1;
            Time::HiRes::sleep(0.15);
        }
    }
    is($bad, 0, 'TIME: every reply well formed, TTL within the window');
    is("@got", '1 1 0 0 0 1 1 0 0 0 1 1 0 0 0', 'TIME: 2 per window');
}

# r/d: the window is the UTC day.
{
    my $c = fresh_client();
    my $D = 86_400 * $S;
    my $f = sub { fw($c, $_[0], 1, $D) };
    is_reply($f->($t0 + $D / 2), [1, 1, 0, 43_200_000, 43_200_000],
             'r/d: noon, retry at midnight');
    pttl_within($r, key_name('z', $c, 'fw', $t0 / $D), 43_200_000,
                'r/d: TTL until midnight');
    is_reply($f->($t0 + $D - 1), [0, 1, 0, 1, 1], 'r/d: 23:59:59.999999');
    is_reply($f->($t0 + $D), [1, 1, 0, 86_400_000, 86_400_000],
             'r/d: 00:00 UTC');
}

# The script picks the window of its own clock among the candidates,
# wherever they are, and names a missing one.
{
    my $c = fresh_client();
    is_reply(fw($c, $t0, 5, $S, $t0 + 600_000), [1, 5, 4, 1000, 0],
             'caller ahead by 600 ms');
    is_reply(fw($c, $t0 + 900_000, 5, $S, $t0 + 1_500_000),
             [1, 5, 3, 100, 0], 'caller ahead into the next window');
    is_reply(fw($c, $t0 + 900_000, 5, $S, $t0 - 100_000),
             [1, 5, 2, 100, 0], 'caller behind');
    my $keys = fw_keys($c, $t0, $S);
    is_reply(run_alg($r, 'fixed_window', [reverse @$keys], $t0 + 1, 5, $S),
             [1, 5, 1, 1000, 0], 'candidates in any order');
    is_reply(run_alg($r, 'fixed_window', [$keys->[1]], $t0 + 1, 5, $S),
             [1, 5, 0, 1000, 1000], 'only the needed key');
    my $e = fw($c, $t0, 5, $S, $t0 + 2_000_000);
    ok(is_error($e) && $e->message =~ /^ERR .*window $w0\b/,
       'clock skew over a period: error naming the window') or diag($e);
    my $k10 = key_name('z', $c, 'fw', $w0 . '0');
    ok(is_error(run_alg($r, 'fixed_window', [$k10], $t0, 5, $S)),
       'a suffix ending in the window number is not the window');
}

# Other keys are not touched; only the current window's key is written.
{
    $r->cmd('FLUSHDB');
    my $other = key_name('other', 'c', 'fw', $w0);
    $r->cmd('SET', $other, 7, 'PX', 100_000);
    my $c = 'only';
    fw($c, $t0, 5, $S) for 1 .. 3;
    my @want = (key_name("z", $c, "fw", $w0), $other);
    is_deeply(db_keys($r), [sort @want],
              'only the window key written (not the other candidates)');
    is($r->cmd('GET', $other), 7, 'other zone untouched');
    ok($r->cmd('PTTL', $other) > 90_000, 'other zone TTL untouched');
}

# now_us "0": Redis TIME.
{
    my $c = fresh_client();
    my $clock = int(Time::HiRes::time() * 1e6);
    my $P = 3_600 * $S;
    my $rep = fw($c, 0, 10, $P, $clock);
    reply_ok($rep, 'TIME path');
    is_deeply([ @$rep[0 .. 2] ], [1, 10, 9], 'TIME path: admitted');
    my $left = int((int($clock / $P) + 1) * $P / 1000 - $clock / 1000);
    ok(abs($rep->[3] - $left) < 2000, 'TIME path: reset at the hour')
        or diag("$rep->[3] vs $left");
}

done_testing;
