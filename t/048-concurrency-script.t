# lua/concurrency.lua alone and inside the assembled script (modes check,
# renew and release), against a real redis-server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Test::RateLimit::Script;

my $r = redis_db(14);
my $t0 = T0;
my $L = 3_000_000;      # a 3 s lease

my $seq = 0;
sub fresh { key_name('cz', 'c' . ++$seq . "-$$", 'cc') }

sub alone {
    my ($key, $now, $n, $member) = @_;
    return run_alg($r, 'concurrency', [$key], $now, $n, $L, 0, 1, $member);
}

sub run_alg_m {
    my ($key, $now, $n, $member) = @_;
    return run_script($r, script_text('concurrency'), [$key], $now, $n, $L,
                      0, 1, $member);
}

# Admit up to N, then reject; the leases are the set's members.
{
    my $k = fresh();
    is_reply(run_alg_m($k, $t0, 2, 'a'), [1, 2, 1, 3000, 0], 'first of 2');
    is_reply(run_alg_m($k, $t0 + 1000, 2, 'b'), [1, 2, 0, 3000, 2999],
             'second of 2: none left, retry when the first expires');
    is_reply(run_alg_m($k, $t0 + 2000, 2, 'c'), [0, 2, 0, 2999, 2998],
             'third rejected');
    is_deeply($r->cmd('ZRANGE', $k, 0, -1), ['a', 'b'],
              'the rejected request took no lease');
    pttl_within($r, $k, 3000, 'the key expires with its latest lease');

    # the first lease expires at t0 + 3 s: dropped by the "now" argument
    is_reply(run_alg_m($k, $t0 + $L, 2, 'd'), [1, 2, 0, 3000, 1],
             'an expired lease is dropped and its slot taken');
    is_deeply($r->cmd('ZRANGE', $k, 0, -1), ['b', 'd'], 'a is gone');
}

# No member: an error, nothing written.
{
    my $k = fresh();
    my $v = run_alg_m($k, $t0, 2, '');
    ok(is_error($v) && "$v" =~ /no lease member/, 'empty member refused');
    is($r->cmd('EXISTS', $k), 0, 'nothing written');
}

# The assembled script: admission with the other zones, all or nothing.
sub check {
    my ($member, @zones) = @_;
    return run_mode($r, 'check', $t0, \$member, @zones);
}

{
    my $k = fresh();
    my $g = key_name('gz', "g$$", 'g');
    my $rep = check('m1', [concurrency => 1, $L, 0, [$k]]);
    is_deeply($rep, [1, 1, 0, 3000, 3000, 0],
              'check: admitted, the slot taken');
    $rep = check('m2', [concurrency => 1, $L, 0, [$k]]);
    is_deeply([@$rep[0, 2]], [0, 0], 'check: the second rejected');

    # a gcra zone that rejects: the concurrency zone takes no lease
    my $k2 = fresh();
    run_mode($r, 'check', $t0, \'x', [gcra => 1, 1_000_000, 0, [$g]]);
    $rep = check('m3', [concurrency => 2, $L, 0, [$k2]],
                 [gcra => 1, 1_000_000, 0, [$g]]);
    is_deeply([@$rep[0, 6]], [1, 0], 'cc would admit, gcra rejects');
    is($r->cmd('ZCARD', $k2), 0, 'rejected by another zone: no lease');

    # an empty member with a concurrency zone is an error
    my $v = check('', [concurrency => 2, $L, 0, [$k2]]);
    ok(is_error($v), 'check without a member: error');
}

# renew and release: many leases of many keys in one command.
sub leases {
    my ($mode, $now, @l) = @_;     # [key, member, lease_us]
    return run_script($r, assembled_script(), [map { $_->[0] } @l], $now,
                      $mode, '', scalar(@l),
                      map { ('concurrency', $_->[1], $_->[2], 0, 0, 1, 0) }
                          @l);
}

{
    my ($k1, $k2) = (fresh(), fresh());
    run_mode($r, 'check', $t0, \'a', [concurrency => 5, $L, 0, [$k1]]);
    run_mode($r, 'check', $t0, \'b', [concurrency => 5, $L, 0, [$k1]]);
    run_mode($r, 'check', $t0, \'c', [concurrency => 5, $L, 0, [$k2]]);

    my $now = $t0 + 2_000_000;
    is_deeply(leases('renew', $now, [$k1, 'a', $L], [$k2, 'c', $L],
                     [$k2, 'gone', $L]),
              [2], 'renew: two found, the missing one not added');
    is($r->cmd('ZSCORE', $k1, 'a'), $now + $L, 'a renewed to now + lease');
    is($r->cmd('ZSCORE', $k1, 'b'), $t0 + $L, 'b untouched');
    is($r->cmd('ZSCORE', $k2, 'gone'), undef, 'renew adds nothing');
    pttl_within($r, $k2, 3000, 'renew moves the expiry');

    # at t0 + 3 s b has expired, a (renewed) has not
    my $rep = run_mode($r, 'check', $t0 + $L, \'d',
                       [concurrency => 2, $L, 0, [$k1]]);
    is_deeply([@$rep[0, 2]], [1, 0], 'the renewed lease holds its slot');

    is_deeply(leases('release', $now, [$k1, 'a', $L], [$k2, 'c', $L],
                     [$k2, 'c', $L]), [1 + 1], 'release: found and removed');
    is_deeply($r->cmd('ZRANGE', $k1, 0, -1), ['d'], 'only d is left');

    my $v = leases('renew', $now, [$k1, '', $L]);
    ok(is_error($v), 'renew with an empty member: error');
    $v = run_script($r, assembled_script(), [$k1], $now, 'renew', '', 1,
                    'gcra', 'a', $L, 0, 0, 1, 0);
    ok(is_error($v), 'renew of a non-lease: error');
}

done_testing();
