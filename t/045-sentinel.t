# mode=sentinel against a real group on loopback ports of the test's own: a
# primary and its replica (redis-server), three sentinels (the same server
# in --sentinel mode) and a fourth sentinel address that is down.  The
# worker asks the sentinels where the master is (skipping the dead one),
# follows +switch-master at once, and asks again when the master goes away;
# a fresh key's count is exact after every move (10r/h: no refill while a
# block's requests wait for the accumulated log's checks).

use Test::RateLimit::Instances;
use Test::RateLimit::Sentinel;
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Time::HiRes qw(time sleep);

our $Primary = Test::RateLimit::Instances::Redis->start(port => free_port());
our $Replica = Test::RateLimit::Instances::Redis->start(port => free_port(),
    args => ['--replicaof', '127.0.0.1', $Primary->port]);
our $Group = Test::RateLimit::Sentinel->start(master => $Primary->port);

our %Port = (primary => $Primary->port, replica => $Replica->port);
our (%Outage, $Moved);

$ENV{TEST_NGINX_PRIMARY_PORT} = $Primary->port;
$ENV{TEST_NGINX_REPLICA_PORT} = $Replica->port;
$ENV{TEST_NGINX_DEAD_PORT} = free_port();
($ENV{TEST_NGINX_SENTINEL_1}, $ENV{TEST_NGINX_SENTINEL_2},
 $ENV{TEST_NGINX_SENTINEL_3}) = $Group->ports;

wait_until(10, sub {
    (redis_info('replication', conn => Test::RateLimit::Redis->new(
         port => $Replica->port))->{master_link_status} // '') eq 'up'
}) or die "the replica did not sync with its primary\n";

wait_until(10, sub { $Group->master_addr eq "127.0.0.1:$Port{primary}" })
    or die "the sentinels do not see the primary\n";

# The client keys of a zone in a node's db 0.
sub main::keys_on {
    my ($port, $pattern) = @_;
    my $r = redis_cmd({ port => $port }, 'KEYS', $pattern);
    return ref $r eq 'ARRAY' ? scalar @$r : 0;
}

# The sentinels and the module have both moved to $to.
sub main::moved_to {
    my ($to, $secs) = @_;

    my $ok = wait_until($secs, sub { $Group->master_addr eq "127.0.0.1:$to" })
             && wait_until(5, sub {
                    log_count(qr/rate_limit: the master is at 127\.0\.0\.1:$to\b/) >= 1
                });
    sleep 0.3;
    return $ok;
}

# Requests every 50 ms until one is decided by Redis again (at most $secs):
# what the others got, while the master was gone.
sub main::through_outage {
    my ($secs) = @_;

    %Outage = ();
    my $start = time;
    while (time - $start < $secs) {
        my $r = http_get('/t?k=outage' . int(rand 1e9), timeout => 3);
        my $what = $r->{headers}{'x-rl'} // 'none';
        $Outage{$what}++;
        last if $what eq 'PASSED';
        sleep 0.05;
    }
    $Outage{took} = time - $start;
}

repeat_each(1);

post_check_hook();

plan tests => 211;

check_accum_error_log();
no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('http_config', <<'_EOC_')
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT
                     127.0.0.1:$TEST_NGINX_SENTINEL_1
                     127.0.0.1:$TEST_NGINX_SENTINEL_2
                     127.0.0.1:$TEST_NGINX_SENTINEL_3
                     mode=sentinel master=rl timeout=300ms;
    rate_limit_zone z key=$arg_k rate=10r/h burst=9;
_EOC_
        unless defined $block->http_config;

    $block->set_value('config', <<'_EOC_')
    location = /t {
        rate_limit z;
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

=== TEST 1: decided where the sentinels say, the dead sentinel skipped: exact
--- request eval
[("GET /t?k=one") x 12]
--- error_code eval
[(200) x 10, 429, 429]
--- response_headers eval
[("X-RL: PASSED") x 10, ("X-RL: REJECTED") x 2]
--- post_check
if ($req_idx == 11) {
    is(main::keys_on($main::Port{primary}, 'rl:{z:one}*'), 1,
       'the key is on the primary');
    ok(log_count(qr/cannot connect to sentinel "127\.0\.0\.1:$ENV{TEST_NGINX_DEAD_PORT}"/) >= 1,
       'the dead sentinel was tried and skipped');
}



=== TEST 2: SENTINEL FAILOVER: +switch-master moves the workers at once; a fresh key is exact there
--- request eval
["GET /t?k=before", ("GET /t?k=after") x 12]
--- error_code eval
[200, (200) x 10, 429, 429]
--- response_headers eval
["X-RL: PASSED", ("X-RL: PASSED") x 10, ("X-RL: REJECTED") x 2]
--- post_check
if ($req_idx == 0) {
    $main::Group->failover;
    $main::Moved = main::moved_to($main::Port{replica}, 20);
    ok($main::Moved, 'the sentinels and the worker moved to the replica');
    ok(log_count(qr/master "rl" is now 127\.0\.0\.1:$main::Port{replica}/) >= 1,
       'told by +switch-master');
}
if ($req_idx == 12) {
    is(main::keys_on($main::Port{replica}, 'rl:{z:after}*'), 1,
       'the fresh key is on the new master');
}



=== TEST 3: the master killed: the fail policy meanwhile, then the promoted replica decides, exactly
--- request eval
["GET /t?k=pre3", ("GET /t?k=post3") x 12]
--- error_code eval
[200, (200) x 10, 429, 429]
--- response_headers eval
["X-RL: PASSED", ("X-RL: PASSED") x 10, ("X-RL: REJECTED") x 2]
--- post_check
if ($req_idx == 0) {
    # after TEST 2 the replica is the master, the primary its replica
    $main::Replica->kill('KILL');
    main::through_outage(30);
    my $seen = join ', ', map { "$_=$main::Outage{$_}" } sort keys %main::Outage;
    diag("while the master was down: $seen");
    is($main::Outage{PASSED}, 1, 'decided by Redis again');
    cmp_ok($main::Outage{took}, '<', 30, 'within 30 s');
    ok(main::moved_to($main::Port{primary}, 10), 'the worker moved to the promoted primary');
}
if ($req_idx == 12) {
    is(main::keys_on($main::Port{primary}, 'rl:{z:post3}*'), 1,
       'the fresh key is on the promoted primary');
}
--- no_error_log
[alert]
[crit]



=== TEST 4: nginx -t: mode=sentinel needs master=
--- http_config
    rate_limit_redis 127.0.0.1:26379 mode=sentinel;
--- must_die
--- error_log
"mode=sentinel" needs "master="



=== TEST 5: nginx -t: master= needs mode=sentinel
--- http_config
    rate_limit_redis 127.0.0.1:6379 master=rl;
--- must_die
--- error_log
"master=" and "sentinel_*=" need "mode=sentinel"



=== TEST 6: nginx -t: standalone takes one address
--- http_config
    rate_limit_redis 127.0.0.1:6379 127.0.0.1:6380;
--- must_die
--- error_log
"mode=standalone" takes one address, not 2



=== TEST 7: nginx -t: an unknown mode
--- http_config
    rate_limit_redis 127.0.0.1:6379 mode=ring;
--- must_die
--- error_log
invalid mode "mode=ring", must be "standalone", "sentinel" or "cluster"



=== TEST 8: nginx -t: sentinels are TCP addresses
--- http_config
    rate_limit_redis unix:/tmp/sentinel.sock mode=sentinel master=rl;
--- must_die
--- error_log
sentinels are reached over TCP
