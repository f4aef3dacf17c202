# The handshake on each new connection (AUTH, SELECT, ROLE, INFO server,
# SCRIPT EXISTS, then SCRIPT LOAD only if the script is missing) fails the
# connection before any script runs on it:
#
# - a replica (ROLE says "slave") is logged and treated as down, retried at
#   the capped backoff pace (the backoff resets only after a script was
#   answered), and never sent SCRIPT LOAD;
# - SELECT of a database the server does not have: nothing runs in db 0;
# - a server older than 5.0 (INFO redis_version) is refused, naming its
#   version, and no script reaches it.
#
# Private redis-servers (a primary and its replica) and a fake Redis that
# says it is 4.0.14, all on loopback ports of this test, stopped by pid.

use Test::RateLimit::FakeRedis;     # first: their END runs after nginx stopped
use Test::RateLimit::Instances;
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults open_closed_config quiet_log);
use Time::HiRes qw(time sleep);

our $Primary = Test::RateLimit::Instances::Redis->start(port => free_port());
our $Replica = Test::RateLimit::Instances::Redis->start(port => free_port(),
    args => ['--replicaof', '127.0.0.1', $Primary->port]);
$ENV{TEST_NGINX_PRIMARY_PORT} = $Primary->port;
$ENV{TEST_NGINX_REPLICA_PORT} = $Replica->port;

# One connection to the replica for every question this test asks it: a
# new connection each time would count in total_connections_received.
our $ReplicaConn = Test::RateLimit::Redis->new(port => $Replica->port);

wait_until(10, sub {
    (redis_info('replication', conn => $ReplicaConn)->{master_link_status}
        // '') eq 'up'
}) or die "the replica did not sync with its primary\n";

our $Old = Test::RateLimit::FakeRedis->start(version => '4.0.14');
$ENV{TEST_NGINX_OLD_REDIS_PORT} = $Old->port;

our (%Outcomes, $Conns, $Took, $Race);

# Sequential requests for $secs (at most $max), tallied by outcome; the
# replica's connections received meanwhile, nginx's only.
sub main::replica_run {
    my ($secs, $max) = @_;

    my $before = redis_info('stats', conn => $ReplicaConn)
        ->{total_connections_received};
    my $start = time;
    my $n = 0;

    %Outcomes = ();
    while (time - $start < $secs && $n++ < $max) {
        my $r = http_get("/open?k=r$n", timeout => 3);
        my $k = $r->{status} ? "$r->{status} " . ($r->{headers}{'x-rl'} // '-')
                             : "failed: $r->{error}";
        $Outcomes{$k}++;
        sleep 0.005;
    }

    $Took = time - $start;
    $Conns = redis_info('stats', conn => $ReplicaConn)
        ->{total_connections_received} - $before;
}

sub main::flush_primary {
    redis_cmd({ port => $ENV{TEST_NGINX_PRIMARY_PORT} }, 'FLUSHALL');
    redis_cmd({ port => $ENV{TEST_NGINX_PRIMARY_PORT} }, 'CONFIG', 'RESETSTAT');
    sleep 0.3;
}

# Requests from a child for about $secs while the primary is paused again
# and again (CLIENT PAUSE, shorter than connect_timeout): a connection made
# meanwhile has its SELECT unanswered for a while, and whatever was written
# behind it would run after the refused SELECT, in db 0.
sub main::select_race {
    my ($secs) = @_;

    wait_until(5, sub { log_count('refused SELECT') })
        or die "SELECT was never refused\n";

    my $bg = run_bg(sub {
        my ($n, %st) = (0);
        my $end = time + $secs;
        while (time < $end && $n++ < 5000) {
            my $r = http_get("/open?k=race$n", timeout => 3);
            $st{ $r->{status} ? "$r->{status} " . ($r->{headers}{'x-rl'} // '-')
                              : 'failed' }++;
        }
        return join ', ', map { "$_=$st{$_}" } sort keys %st;
    });

    my $end = time + $secs;
    while (time < $end) {
        redis_cmd({ port => $ENV{TEST_NGINX_PRIMARY_PORT} },
                  'CLIENT', 'PAUSE', 600, 'ALL');
        sleep 0.7;
    }

    $Race = wait_bg($bg, $secs + 10);
    sleep 0.5;
}

sub main::outcomes {
    return join ', ', map { "$_=$Outcomes{$_}" } sort keys %Outcomes;
}

# Counts over a block: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 50;

check_accum_error_log();
no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    set_defaults(shift,
        config => open_closed_config(),
        no_error_log => quiet_log());
});

run_tests();

__DATA__

=== TEST 1: a replica as the target: down for us, retried at the capped pace, never SCRIPT LOAD
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REPLICA_PORT timeout=100ms;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- init
main::replica_run(5, 3000);
--- request eval
["GET /open?k=last", "GET /closed?k=last"]
--- error_code eval
[200, 503]
--- response_headers eval
["X-RL: ERROR", "X-RL: ERROR"]
--- error_log
is a replica
--- post_check
if ($req_idx == 1) {
    my $all = main::outcomes();
    is(scalar(grep { $_ ne '200 ERROR' } keys %main::Outcomes), 0,
       "every request failed open ($all)");
    my $n = 0;
    $n += $_ for values %main::Outcomes;
    ok($main::Conns >= 3 && $main::Conns <= 12,
       sprintf('%d connections to the replica in %.1f s for %d requests '
               . '(3 to 12: retried at the capped backoff)',
               $main::Conns, $main::Took, $n));
    is(redis_calls('script|load', conn => $main::ReplicaConn), 0,
       'no SCRIPT LOAD on the replica');
    is(redis_calls('evalsha', conn => $main::ReplicaConn)
       + redis_calls('eval', conn => $main::ReplicaConn), 0,
       'no script ran on the replica');
}



=== TEST 2: db=99 (the server has 16): SELECT refused, fail policy, db 0 stays empty
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_PRIMARY_PORT db=99 timeout=100ms connect_timeout=2s;
    rate_limit_zone z key=$arg_k rate=1r/h;
--- init
main::flush_primary();
main::select_race(3);
--- request eval
["GET /open?k=a", "GET /open?k=b", "GET /closed?k=c"]
--- error_code eval
[200, 200, 503]
--- response_headers eval
["X-RL: ERROR", "X-RL: ERROR", "X-RL: ERROR"]
--- error_log
refused SELECT
--- post_check
if ($req_idx == 2) {
    sleep 0.3;
    is(redis_cmd({ port => $ENV{TEST_NGINX_PRIMARY_PORT} }, 'DBSIZE'), 0,
       "nothing was written in db 0 (requests meanwhile: $main::Race)");
    my %p = (port => $ENV{TEST_NGINX_PRIMARY_PORT});
    is(redis_calls('evalsha', %p) + redis_calls('eval', %p), 0,
       'no script ran: the handshake failed before any');
}



=== TEST 3: a server older than 5.0 is refused at the handshake, naming its version
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_OLD_REDIS_PORT timeout=100ms;
    rate_limit_zone z key=$arg_k rate=10r/s;
--- request eval
["GET /open?k=ok.1", "GET /closed?k=ok.2"]
--- error_code eval
[200, 503]
--- response_headers eval
["X-RL: ERROR", "X-RL: ERROR"]
--- error_log eval
qr/older than 5\.0.*4\.0\.14|4\.0\.14.*older than 5\.0/
--- post_check
if ($req_idx == 1) {
    my $st = $main::Old->stats;
    ok(($st->{info} // 0) >= 1, 'the handshake asked INFO');
    is(($st->{evalsha} // 0) + ($st->{eval} // 0), 0,
       'no script command reached the old server');
}
