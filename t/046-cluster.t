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
$ENV{TEST_NGINX_SEED_3} = ($Cluster->ports)[2];
$ENV{TEST_NGINX_DEAD_PORT} = free_port();

# A user that may not run CLUSTER SHARDS: the worker reads CLUSTER SLOTS.
for my $port ($Cluster->ports) {
    $Cluster->cmd($port, 'ACL', 'SETUSER', 'noshards', 'on', '>rl-secret',
                  '~*', '&*', '+@all', '-cluster|shards');
}

# GETs $path once; the X-RL header's value (the status variable).
sub main::get_rl {
    my ($path) = @_;
    my $r = http_get($path, timeout => 3);
    return $r->{headers}{'x-rl'} // 'none';
}

my $fresh = 0;

# A client key never used before whose zone keys hash to $slot.
sub main::fresh_in_slot {
    my ($zone, $slot) = @_;
    while (1) {
        my $k = 'f' . $fresh++;
        return $k if Test::RateLimit::Cluster::slot_of("{$zone:$k}") == $slot;
    }
}

# Load in the background for $secs: fresh keys, as fast as one client
# goes; returns the handle for wait_bg.
sub main::load {
    my ($secs) = @_;
    return run_bg(sub {
        my ($n, $start) = (0, time);
        while (time - $start < $secs) {
            http_get('/t?k=load' . int(rand 1e9), timeout => 3);
            $n++;
        }
        return $n;
    });
}

# The commands a node ran and the errors it answered, from INFO.
sub main::stat_count {
    my ($port, $section, $name) = @_;
    my $info = $main::Cluster->cmd($port, 'INFO', $section);
    return $info =~ /^\Q$name\E:(?:calls|count)=(\d+)/m ? $1 : 0;
}

# Requests with fresh keys every 20 ms until one is decided by Redis again
# (at most $secs): what the others got meanwhile.
sub main::through_outage {
    my ($secs, $slot) = @_;

    %Outage = ();
    my $start = time;
    while (time - $start < $secs) {
        my $what = main::get_rl('/t?k=' . main::fresh_in_slot('z', $slot));
        $Outage{$what}++;
        last if $what eq 'PASSED';
        sleep 0.02;
    }
    $Outage{took} = time - $start;
}

repeat_each(1);

post_check_hook();

plan tests => 150;

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
    rate_limit_zone m key=$arg_k rate=10r/h burst=9;
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
    location = /ab_closed {
        rate_limit a;
        rate_limit b;
        rate_limit_fail_open off;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
    location = /a {
        rate_limit a;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
    location = /m {
        rate_limit m;
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



=== TEST 2: two zones in different slots: one call each, no over-admission, and the refunds give back what a rejected request took
--- request eval
[("GET /ab?k=pair") x 5, ("GET /a?k=pair") x 3]
--- error_code eval
[(200) x 3, (429) x 2, (200) x 2, 429]
--- response_headers eval
[("X-RL: PASSED") x 3, ("X-RL: REJECTED") x 2, ("X-RL: PASSED") x 2, "X-RL: REJECTED"]
--- post_check
if ($req_idx == 0) {
    isnt(Test::RateLimit::Cluster::slot_of('{a:pair}'),
         Test::RateLimit::Cluster::slot_of('{b:pair}'), 'the zones are in different slots');
}



=== TEST 3: SIGKILL of a master under load: its replica is promoted, decided again within seconds, exact on a fresh key
--- request
GET /t?k=before3
--- error_code: 200
--- post_check
my $slot = Test::RateLimit::Cluster::slot_of('{z:victim}');
my $victim = $main::Cluster->slot_port($slot);
my $bg = main::load(4);
sleep 0.5;
$main::Cluster->node($victim)->kill('KILL');
main::through_outage(20, $slot);
my $load = wait_bg($bg, 30);
my $seen = join ', ', map { "$_=$main::Outage{$_}" } sort keys %main::Outage;
diag("master $victim killed: $seen; $load requests of background load meanwhile");
is($main::Outage{PASSED}, 1, 'decided by Redis again');
cmp_ok($main::Outage{took}, '<', 20, 'within 20 s');
my $now = $main::Cluster->slot_port($slot);
ok(defined $now && $now != $victim, "the slot is on the promoted replica ($now)");
my @got = map { main::get_rl('/t?k=victim') } 1 .. 4;
is("@got", 'PASSED PASSED PASSED REJECTED', 'a fresh key on the promoted master is exact');
is($main::Cluster->cmd($now, 'EXISTS', 'rl:{z:victim}:g'), 1, 'and its key is there');
--- no_error_log
[alert]
[crit]



=== TEST 4: a slot moved under load: ASK while it migrates, MOVED after, the counts exact
--- request
GET /m?k=mover
--- error_code: 200
--- post_check
my $slot = Test::RateLimit::Cluster::slot_of('{m:mover}');
my $from = $main::Cluster->slot_port($slot);
my ($to) = grep { $_ != $from } $main::Cluster->masters;
my $newkey = main::fresh_in_slot('m', $slot);
my (@old, @new);
my $asking = main::stat_count($to, 'commandstats', 'cmdstat_asking');
my $moved = main::stat_count($from, 'errorstats', 'errorstat_MOVED');
my $bg = main::load(3);
$main::Cluster->move_slot($slot, $to, sub {
    my ($phase) = @_;
    # migrating: the existing key is still served by the source, a new
    # one is asked to the target; migrated: both are asked to the target
    push @old, map { main::get_rl('/m?k=mover') } 1 .. 3;
    push @new, map { main::get_rl("/m?k=$newkey") } 1 .. 3 if $phase eq 'migrating';
});
# the map is stale: the source says MOVED
push @old, map { main::get_rl('/m?k=mover') } 1 .. 5;
push @new, map { main::get_rl("/m?k=$newkey") } 1 .. 8;
wait_bg($bg, 30);
is(scalar(grep { $_ eq 'PASSED' } @old), 9, 'the moved key: 10 passed in all, exactly') or diag("@old");
is($old[-1], 'REJECTED', 'and then rejected');
is(scalar(grep { $_ eq 'PASSED' } @new), 10, 'the key made while it migrated: exactly 10') or diag("@new");
cmp_ok(main::stat_count($to, 'commandstats', 'cmdstat_asking'), '>', $asking, 'ASKING was sent to the importing node');
cmp_ok(main::stat_count($from, 'errorstats', 'errorstat_MOVED'), '>', $moved, 'MOVED came from the old node');
is($main::Cluster->cmd($to, 'EXISTS', 'rl:{m:mover}:g'), 1, 'the key is on the new master');



=== TEST 5: a slot no master serves: its zone is an error, the other zone answers (its fields shown), and what it took is given back when the fail policy rejects
--- request
GET /a?k=warm5
--- error_code: 200
--- post_check
my $slot = Test::RateLimit::Cluster::slot_of('{b:partial}');
isnt($slot, Test::RateLimit::Cluster::slot_of('{a:partial}'), 'two slots');
my $owner = $main::Cluster->slot_port($slot);
$main::Cluster->drop_slot($slot);
my $r = http_get('/ab?k=partial', timeout => 3);
my $closed = http_get('/ab_closed?k=partial', timeout => 3);
$main::Cluster->give_slot($slot, $owner);
is($r->{status}, 200, 'fail open: passed');
is($r->{headers}{'x-rl'}, 'ERROR', 'as an error');
is($r->{headers}{'ratelimit-policy'}, '"a";q=5;w=3600', 'the zone that answered has its fields');
is($closed->{status}, 503, 'fail closed: 503');
# zone a: 1 taken by the fail-open request, the fail-closed one given back
my @got = map { http_get('/a?k=partial', timeout => 3)->{headers}{'x-rl'} } 1 .. 5;
is("@got", 'PASSED PASSED PASSED PASSED REJECTED', 'zone a counts the fail-open request only');



=== TEST 6: the README's example: three seeds, two connections per master
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_SEED_1 127.0.0.1:$TEST_NGINX_SEED_2
                     127.0.0.1:$TEST_NGINX_SEED_3
                     mode=cluster connections=2;
    rate_limit_zone z key=$arg_k rate=3r/h burst=2;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request eval
[("GET /t?k=readme") x 4]
--- error_code eval
[200, 200, 200, 429]
--- response_headers eval
[("X-RL: PASSED") x 3, "X-RL: REJECTED"]



=== TEST 7: AUTH with a user that may not run CLUSTER SHARDS: the map from CLUSTER SLOTS, decisions exact
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_SEED_1 127.0.0.1:$TEST_NGINX_SEED_2
                     mode=cluster username=noshards password=rl-secret;
    rate_limit_zone z key=$arg_k rate=3r/h burst=2;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request eval
[("GET /t?k=slots") x 4]
--- error_code eval
[200, 200, 200, 429]
--- response_headers eval
[("X-RL: PASSED") x 3, "X-RL: REJECTED"]
--- post_check
if ($req_idx == 3) {
    my $asked = 0;
    $asked += main::stat_count($_, 'commandstats', 'cmdstat_cluster|slots')
        for grep { $main::Cluster->node($_)->pid } $main::Cluster->ports;
    cmp_ok($asked, '>', 0, 'a seed was asked CLUSTER SLOTS');
}



=== TEST 8: nginx -t: db= with mode=cluster
--- http_config
    rate_limit_redis 127.0.0.1:7000 mode=cluster db=1;
--- must_die
--- error_log
"db=" is not allowed with "mode=cluster"



=== TEST 9: nginx -t: cluster seeds are TCP addresses
--- http_config
    rate_limit_redis 127.0.0.1:7000 unix:/tmp/redis.sock mode=cluster;
--- must_die
--- error_log
cluster seed "unix:/tmp/redis.sock": cluster nodes are reached over TCP



=== TEST 10: nginx -t: master= needs mode=sentinel, also with mode=cluster
--- http_config
    rate_limit_redis 127.0.0.1:7000 mode=cluster master=rl;
--- must_die
--- error_log
"master=" and "sentinel_*=" need "mode=sentinel"



=== TEST 11: no seed answers: the fail policy at once (503 when closed), and the log says why
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT mode=cluster;
    rate_limit_zone z key=$arg_k rate=3r/h burst=2;
--- config
    location = /t {
        rate_limit z;
        rate_limit_fail_open off;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- request eval
[("GET /t?k=nomap") x 3]
--- error_code eval
[503, 503, 503]
--- response_headers eval
[("X-RL: ERROR") x 3]
--- error_log eval
qr/cannot connect to cluster node 127\.0\.0\.1:$ENV{TEST_NGINX_DEAD_PORT}/
