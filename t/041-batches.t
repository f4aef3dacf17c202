# Batches on the Redis connection: requests that arrive in one event-loop
# turn are written as they come, 16 commands at a time, not all at the end
# of the turn (so Redis starts on the first batch while the worker reads
# the next requests), and a batch is still one write that Redis reads as
# one: more than one command per read.  That a command whose request timed
# out before it was written is never written is t/035-backpressure.t's.
#
# 40 keep-alive connections, each with a request answered (so all are
# accepted and idle); the worker stopped (SIGSTOP) while a second request
# goes out on each; continued: its next epoll_wait returns the 40 together.
# A redis-server of this test's own, whose INFO counts only this.

use Test::RateLimit::Instances;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults master_pid);

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';

if (`$nginx -V 2>&1` !~ /--with-debug/) {
    plan(skip_all => "$nginx is not built --with-debug");
}

our $Redis = Test::RateLimit::Instances::Redis->start(port => free_port());
$ENV{TEST_NGINX_BATCH_REDIS_PORT} = $Redis->port;

our $Clients = 40;
our %Burst;

master_on();
workers(1);

# $n requests in one event-loop turn of the one worker; what Redis saw
sub main::burst {
    my ($n) = @_;

    my $p = $Redis->port;
    wait_until(10, sub { redis_clients(port => $p) >= 1 })
        or die "nginx did not connect to redis\n";

    my @ka = map {
        Test::RateLimit::Client::KeepAlive->new(timeout => 5)
    } 1 .. $n;
    for my $i (0 .. $n - 1) {
        my $res = $ka[$i]->get("/t?k=warm$i");
        die "warm-up request $i: $res->{status} $res->{error}\n"
            unless $res->{status} == 200;
    }

    my ($worker) = worker_pids(master_pid());
    my $r = Test::RateLimit::Redis->new(port => $p);

    # (none found: not a worker by its name, as under valgrind; the burst
    # still runs, only not in one turn for sure)
    %Burst = ();
    kill 'STOP', $worker or die "SIGSTOP $worker: $!\n" if $worker;
    my $reads0 = redis_info('stats', conn => $r)->{total_reads_processed};
    my $calls0 = redis_calls('evalsha', port => $p);

    for my $i (0 .. $n - 1) {
        syswrite $ka[$i]->{sock},
            "GET /t?k=burst$i HTTP/1.1\r\nHost: localhost\r\n\r\n"
            or die "write: $!\n";
    }

    # the requests are in the worker's sockets before it runs again
    sleep 0.2;
    kill 'CONT', $worker or die "SIGCONT $worker: $!\n" if $worker;

    my %st;
    $st{ $_->read_response->{status} }++ for @ka;
    $_->close for @ka;

    $Burst{status} = join ', ', map { "$_=$st{$_}" } sort keys %st;
    $Burst{calls} = redis_calls('evalsha', port => $p) - $calls0;

    # less the read of this INFO itself (redis_calls used a connection
    # of its own, also one read: counted before and after, so twice)
    $Burst{reads} = redis_info('stats', conn => $r)->{total_reads_processed}
                    - $reads0 - 1 - 2;
}

repeat_each(1);

post_check_hook();

plan tests => 8;

no_long_string();
no_shuffle();
log_level('debug');

add_block_preprocessor(sub {
    set_defaults(shift,
        config => <<'EOF');
    location = /t {
        rate_limit z;
        empty_gif;
    }
EOF
});

run_tests();

__DATA__

=== TEST 1: 40 requests in one turn: a batch of 16 written at once, then the rest, each batch read by Redis as one
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_BATCH_REDIS_PORT timeout=2s;
    rate_limit_zone z key=$arg_k rate=100r/s;
--- init
main::burst($main::Clients);
--- request
GET /t?k=after
--- error_code: 200
--- error_log eval
qr/wrote 16 commands at once, \d+ sent/
--- no_error_log
[error]
[alert]
--- post_check
my %b = %main::Burst;
is($b{status}, "200=$main::Clients", 'every request of the burst passed');
is($b{calls}, $main::Clients, 'one EVALSHA per request of the burst');
ok($b{reads} >= 1 && $b{calls} / $b{reads} > 1,
   "more than one command per Redis read: $b{calls} commands in $b{reads} reads");
ok(log_count(qr/wrote 16 commands at once/) >= 2,
   'the burst went out in batches of 16 before the end of the turn');
