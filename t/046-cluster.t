# mode=cluster against a real Redis Cluster on loopback ports of the
# test's own: three masters and three replicas (redis-cli --cluster
# create).  The worker reads the slot map from a seed, routes each zone's
# keys to the master of their slot, gives a request whose zones live in
# different slots one call per slot (and a refund when they disagree),
# follows a failover (SIGKILL of a master: its replica is promoted) and a
# slot moved under it (ASK while it migrates, MOVED after).

use Test::RateLimit::Instances;
use Test::RateLimit::Cluster;
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Time::HiRes qw(time sleep);

our $Cluster = Test::RateLimit::Cluster->start(nodes => 6);
our @Seeds = ($Cluster->ports)[0, 1];
our (%Outage);

$ENV{TEST_NGINX_SEED_1} = $Seeds[0];
$ENV{TEST_NGINX_SEED_2} = $Seeds[1];

# GETs $path once; the X-RL header's value (the status variable).
sub main::get_rl {
    my ($path) = @_;
    my $r = http_get($path, timeout => 3);
    return $r->{headers}{'x-rl'} // 'none';
}

# A client key whose zone-z keys hash to $slot.
sub main::key_in_slot {
    my ($zone, $slot, $not) = @_;
    for my $i (1 .. 1e6) {
        my $k = "s$i";
        next if defined $not && $k eq $not;
        return $k if Test::RateLimit::Cluster::slot_of("{$zone:$k}") == $slot;
    }
    die "no key for slot $slot\n";
}

# Requests with fresh keys every 20 ms until one is decided by Redis again
# (at most $secs): what the others got meanwhile.
sub main::through_outage {
    my ($secs, $slot) = @_;

    %Outage = ();
    my $start = time;
    while (time - $start < $secs) {
        my $what = main::get_rl('/t?k=' . main::key_in_slot('z', $slot,
                                                            undef, rand));
        $Outage{$what}++;
        last if $what eq 'PASSED';
        sleep 0.02;
    }
    $Outage{took} = time - $start;
}

repeat_each(1);

post_check_hook();

plan tests => 40;

check_accum_error_log();
no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('http_config', <<'_EOC_')
    rate_limit_redis 127.0.0.1:$TEST_NGINX_SEED_1 127.0.0.1:$TEST_NGINX_SEED_2
                     mode=cluster timeout=300ms;
    rate_limit_zone z key=$arg_k rate=3r/h burst=2;
    rate_limit_zone a key=$arg_k rate=5r/h burst=4;
    rate_limit_zone b key=$arg_k rate=3r/h burst=2;
_EOC_
        unless defined $block->http_config;

    $block->set_value('config', <<'_EOC_')
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
    location = /ab {
        rate_limit a;
        rate_limit b;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
    location = /a {
        rate_limit a;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
_EOC_
        unless defined $block->config;

    $block->set_value('no_error_log', "[alert]\n[crit]\nsignal\n")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: 300 keys, 4 requests each: exactly 3 pass per key, each key on its slot's master, all three masters used
--- request
GET /t?k=warmup
--- error_code: 200
--- post_check
my %passed;
for my $round (1 .. 4) {
    for my $i (1 .. 300) {
        $passed{$i}++ if main::get_rl("/t?k=key$i") eq 'PASSED';
    }
}
is(scalar(grep { $passed{$_} == 3 } 1 .. 300), 300, 'every key passed exactly 3 times');
my (%on, $misplaced);
for my $i (1 .. 300) {
    my $slot = $main::Cluster->keyslot("rl:{z:key$i}:g");
    my $port = $main::Cluster->slot_port($slot);
    $on{$port}++;
    $misplaced++ unless $main::Cluster->cmd($port, 'EXISTS', "rl:{z:key$i}:g") == 1;
}
is($misplaced // 0, 0, "every key is on its slot's master");
is(scalar(keys %on), 3, 'the keys are on three masters: ' . join ', ', map { "$on{$_}" } sort keys %on);
