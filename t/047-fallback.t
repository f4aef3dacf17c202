# fallback=: a zone whose Redis decision fails (timeout, lost connection,
# node down) is decided in the node's shared memory by GCRA at the
# fallback rate, the same for every worker, with $rate_limit_decided_by
# "local"; a zone without fallback keeps the fail policy.  With Redis
# stopped (SIGSTOP) and with Redis killed under load, two workers admit
# the fallback's limit, not everything and not nothing, and decide by
# Redis again within seconds of its return.  When the shared memory is
# full the least recently used states are dropped; a state that cannot
# fit at all gets the fail policy, logged.
#
# A redis-server of this test's own, stopped, killed and restarted by its
# pid.

use Test::RateLimit::Instances;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(set_defaults clean_shutdown);
use Test::RateLimit::Metrics qw(parse metric metrics_location);
use Time::HiRes qw(time sleep);

our (%Got, %Pids, %BackGot, $Back, $M);

our $Redis = Test::RateLimit::Instances::Redis->start(port => free_port());

$ENV{TEST_NGINX_FB_REDIS_PORT} = $Redis->port;
$ENV{TEST_NGINX_DEAD_PORT} = free_port();
$ENV{TEST_NGINX_REUSEPORT_PORT} = free_port();

workers(2);
master_on();

# Counts over a whole block: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 91;

no_long_string();
no_shuffle();

sub main::private { Test::RateLimit::Redis->new(port => $Redis->port) }

# Redis running, both workers connected, its data flushed.
sub main::ready {
    $Redis->restart unless $Redis->pid;
    main::private()->cmd('FLUSHALL');
    wait_until(5, sub { redis_clients(port => $Redis->port) >= 2 })
        or die "nginx did not connect to redis\n";
    sleep 0.3;
}

sub main::outcome {
    my ($r) = @_;
    return $r->{status} ? "$r->{status} " . ($r->{headers}{'x-rl'} // '-')
                        : "failed";
}

sub main::got {
    return join ', ', map { "$_=$Got{$_}" } sort keys %Got;
}

# Seconds until $path is decided by Redis again (at most $max); what the
# requests meanwhile got in %BackGot.
sub main::back_after {
    my ($path, $max) = @_;

    %BackGot = ();
    my $start = time;
    wait_until($max, sub {
        my $o = main::outcome(http_get($path));
        $BackGot{$o}++;
        $o =~ / redis$/;
    }) or return 'never';
    return time - $start;
}

# Redis stopped: $n requests to /t and two to /nf, then continued.
sub main::stopped {
    my ($n) = @_;

    main::ready();
    %Got = ();
    $Redis->kill('STOP');
    $Got{ main::outcome(http_get('/t?k=s')) }++ for 1 .. $n;
    $Got{ 'nf ' . main::outcome(http_get('/nf?k=s')) }++ for 1 .. 2;
    $Redis->kill('CONT');
    $Back = main::back_after('/t?k=back', 10);
    $M = main::parse(http_get('/metrics')->{body});
}

# $clients clients on one key for $secs, each request on a new connection
# to the reuseport listener (the kernel spreads them over the workers);
# Redis killed at 0.7 s and started again at 2 s.
sub main::killed {
    my ($clients, $secs) = @_;

    main::ready();
    my $start = time;
    my @bg = map { run_bg(sub {
        my (%st, $n);
        while (time < $start + $secs && $n++ < 5000) {
            my $r = http_get('/t?k=hot', timeout => 3,
                             port => $ENV{TEST_NGINX_REUSEPORT_PORT});
            my $o = main::outcome($r);
            $st{$o}++;
            $st{ 'pid ' . ($r->{headers}{'x-pid'} // '-') }++ if $o =~ /local/;
        }
        return join '', map { "$_=$st{$_}\n" } sort keys %st;
    }) } 1 .. $clients;

    sleep 0.7;
    $Redis->kill('KILL');
    sleep 1.3;
    $Redis->restart;

    # while the clients go on
    $Back = main::back_after('/t?k=back', 10);

    %Got = ();
    %Pids = ();
    for my $bg (@bg) {
        for (split /\n/, wait_bg($bg, $secs + 20)) {
            my ($k, $v) = /^(.*)=(\d+)$/ or next;
            if ($k =~ /^pid (.*)/) {
                $Pids{$1} += $v;
            } else {
                $Got{$k} += $v;
            }
        }
    }

    $M = main::parse(http_get('/metrics')->{body});
}

# Redis stopped: costs of 2, 2, 2, 1, 1 on one key, in @Seq.
sub main::costly {
    main::ready();
    $Redis->kill('STOP');
    @main::Seq = map { main::outcome(http_get("$_?k=cost")) }
                     qw(/c /c /c /t /t);
    $Redis->kill('CONT');
    $Back = main::back_after('/t?k=back', 10);
}

# One key, then $n others, then the first again.
sub main::crowd {
    my ($n) = @_;

    %Got = ();
    $Got{ 'first ' . main::outcome(http_get('/t?k=victim')) }++ for 1 .. 2;
    $Got{ main::outcome(http_get("/t?k=other$_")) }++ for 1 .. $n;
    $Got{ 'again ' . main::outcome(http_get('/t?k=victim')) }++;
}

add_block_preprocessor(sub {
    my $block = shift;

    set_defaults($block, no_shutdown_error_log => clean_shutdown(),
                 config => <<'_EOC_' . metrics_location());
    location = /t {
        rate_limit z;
        add_header X-RL "$rate_limit_status $rate_limit_decided_by" always;
        empty_gif;
    }
    location = /nf {
        rate_limit n;
        rate_limit_fail_open off;
        add_header X-RL "$rate_limit_status $rate_limit_decided_by" always;
        empty_gif;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: Redis stopped: the fallback admits burst + 1 for the key, both workers alike; no fallback, the fail policy; Redis again after SIGCONT
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FB_REDIS_PORT timeout=50ms;
    rate_limit_zone z key=$arg_k rate=100r/s burst=4 fallback=1r/m cache=0;
    rate_limit_zone n key=$arg_k rate=100r/s cache=0;
--- init
main::stopped(10);
--- request
GET /t?k=after
--- response_headers
X-RL: PASSED redis
--- post_check
is(main::got(), '200 PASSED local=5, 429 REJECTED local=5, nf 503 ERROR redis=2',
   'while stopped: 5 admitted locally (burst 4 + 1), 5 rejected, the zone without fallback failed closed');
ok($main::Back ne 'never' && $main::Back < 5, "decided by redis again $main::Back s after SIGCONT");
my $r = 'nginx_rate_limit_requests_total';
is(main::metric($main::M, $r, zone => 'z', outcome => 'local_passed'), 5, 'metrics: 5 local_passed');
is(main::metric($main::M, $r, zone => 'z', outcome => 'local_rejected'), 5, 'metrics: 5 local_rejected');
is(main::metric($main::M, $r, zone => 'n', outcome => 'error_rejected'), 2, 'metrics: 2 error_rejected');
my $t = main::metric($main::M, 'nginx_rate_limit_redis_commands_total',
                     node => '127.0.0.1:' . $main::Redis->port, result => 'timeout');
ok($t >= 12, "timeouts counted ($t)");
my $redis = grep { / redis$/ } map { ($_) x $main::BackGot{$_} } keys %main::BackGot;
is(main::metric($main::M, 'nginx_rate_limit_redis_commands_total',
                node => '127.0.0.1:' . $main::Redis->port, result => 'ok'), $redis,
   "ok: the $redis decided by redis after SIGCONT; the timed-out commands' late replies are not counted again");
--- no_error_log
[alert]
[crit]
no room



=== TEST 2: Redis killed under load: the node admits its fallback limit, not everything and not nothing, and Redis decides again after its restart
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FB_REDIS_PORT timeout=100ms;
    rate_limit_zone z key=$arg_k rate=1000r/s burst=4 fallback=1r/m cache=0;
    rate_limit_zone n key=$arg_k rate=100r/s cache=0;

    server {
        listen 127.0.0.1:$TEST_NGINX_REUSEPORT_PORT reuseport;
        location = /t {
            rate_limit z;
            add_header X-RL "$rate_limit_status $rate_limit_decided_by" always;
            add_header X-Pid $pid always;
            empty_gif;
        }
    }
--- init
main::killed(4, 3.5);
--- request
GET /t?k=after
--- response_headers
X-RL: PASSED redis
--- post_check
my $got = main::got();
is($main::Got{'200 PASSED local'}, 5, "locally admitted: exactly the fallback's burst + 1 ($got)");
ok($main::Got{'429 REJECTED local'} > 0, "locally rejected: the rest ($got)");
ok($main::Got{'200 PASSED redis'} > 0, "decided by redis before the kill and after the restart ($got)");
ok(!grep(/ERROR|failed/, keys %main::Got), "no request got the fail policy or failed ($got)");
is(scalar(grep { $_ ne '-' } keys %main::Pids), 2, 'both workers decided locally, from one shared state: '
   . join(' ', map { "$_=$main::Pids{$_}" } sort keys %main::Pids));
ok($main::Back ne 'never' && $main::Back < 5, "decided by redis again $main::Back s after the restart");
my $back = $main::BackGot{'200 PASSED local'} // 0;
is(main::metric($main::M, 'nginx_rate_limit_requests_total', zone => 'z', outcome => 'local_passed'), 5 + $back,
   "metrics: local_passed 5 + the $back of the wait for redis");
--- no_error_log
[alert]
[crit]
no room



=== TEST 3: a tiny shared memory: the least recently used states are dropped for new keys, so the first key is fresh again
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    rate_limit_shm_size 32k;
    rate_limit_zone z key=$arg_k rate=1r/m fallback=1r/m;
    rate_limit_zone n key=$arg_k rate=1r/m;
--- init
main::crowd(600);
--- request
GET /t?k=last
--- response_headers
X-RL: PASSED local
--- post_check
is(main::got(), '200 PASSED local=600, again 200 PASSED local=1, first 200 PASSED local=1, first 429 REJECTED local=1',
   'every key decided locally; the first one evicted by the 600 after it');
--- no_error_log
[alert]
[crit]
no room



=== TEST 4: a state that cannot fit even in an emptied shared memory gets the fail policy, logged
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    rate_limit_shm_size 32k;
    rate_limit_zone z key=$arg_k$arg_k$arg_k$arg_k fallback=1r/m rate=1r/m;
    rate_limit_zone n key=$arg_k rate=1r/m;
--- request eval
"GET /t?k=" . ('x' x 7000)
--- error_code: 200
--- response_headers
X-RL: ERROR redis
--- error_log
no room in rate_limit_shm_size for a fallback state of zone "z", fail policy
--- no_error_log
[alert]
[crit]



=== TEST 5: a bad fallback rate
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m fallback=lots;
    rate_limit_zone n key=$arg_k rate=1r/m;
--- must_die
--- error_log
invalid fallback rate "lots"



=== TEST 6: a fallback rate out of range
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m fallback=0r/s;
    rate_limit_zone n key=$arg_k rate=1r/m;
--- must_die
--- error_log
fallback rate "0r/s" is out of range



=== TEST 7: a fallback whose burst x interval is beyond exact arithmetic
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    rate_limit_zone z key=$arg_k rate=1000000r/s burst=1000000000 fallback=1r/d;
    rate_limit_zone n key=$arg_k rate=1r/m;
--- must_die
--- error_log
fallback rate with burst=1000000000 is out of range



=== TEST 8: rate_limit_shm_size below 8 pages
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    rate_limit_shm_size 8k;
    rate_limit_zone z key=$arg_k rate=1r/m;
    rate_limit_zone n key=$arg_k rate=1r/m;
--- must_die
--- error_log
rate_limit_shm_size of 8192 is too small



=== TEST 9: rate_limit_metrics takes no argument
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m;
    rate_limit_zone n key=$arg_k rate=1r/m;
--- config
    location = /metrics {
        rate_limit_metrics on;
    }
--- must_die
--- error_log
invalid number of arguments in "rate_limit_metrics"



=== TEST 10: the README's log_format with every variable: a local decision in the access log
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m fallback=1r/m;
    rate_limit_zone n key=$arg_k rate=1r/m;

    log_format rate_limit escape=json
        '$remote_addr [$time_local] "$request" $status '
        'rl_status=$rate_limit_status rl_by=$rate_limit_decided_by '
        'rl_zone=$rate_limit_zone rl_remaining=$rate_limit_remaining '
        'rl_reset=$rate_limit_reset rl_retry_after=$rate_limit_retry_after '
        'rl_delay=$rate_limit_delay';
--- config
    location = /t {
        rate_limit z;
        access_log logs/rl.log rate_limit;
        add_header X-RL "$rate_limit_status $rate_limit_decided_by" always;
        empty_gif;
    }
--- request eval
["GET /t?k=l", "GET /t?k=l"]
--- error_code eval
[200, 429]
--- post_check
if ($req_idx == 1) {
    sleep 0.2;
    open my $fh, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/rl.log" or die "rl.log: $!";
    my @l = <$fh>;
    like($l[0], qr/" 200 rl_status=PASSED rl_by=local rl_zone=z rl_remaining=0 rl_reset=60 rl_retry_after= rl_delay=0$/,
         'passed locally, logged');
    like($l[1], qr/" 429 rl_status=REJECTED rl_by=local rl_zone=z rl_remaining=0 rl_reset=\d+ rl_retry_after=\d+ rl_delay=0$/,
         'rejected locally, logged');
}
--- no_error_log
[alert]
[crit]



=== TEST 11: with Redis stopped, a cost of 2 takes two of the fallback's units: one that does not fit is rejected and takes nothing
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_FB_REDIS_PORT timeout=50ms;
    rate_limit_zone z key=$arg_k rate=100r/s burst=4 fallback=1r/m cache=0;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL "$rate_limit_status $rate_limit_decided_by" always;
        empty_gif;
    }
    location = /c {
        rate_limit z cost=2;
        add_header X-RL "$rate_limit_status $rate_limit_decided_by" always;
        empty_gif;
    }
--- init
main::costly();
--- request
GET /t?k=after
--- response_headers
X-RL: PASSED redis
--- post_check
is(join(', ', @main::Seq),
   '200 PASSED local, 200 PASSED local, 429 REJECTED local, 200 PASSED local, 429 REJECTED local',
   'of 5 units: 2 + 2, then 2 > 1 left is rejected and takes nothing, 1 passes, then none');
--- no_error_log
[alert]
[crit]
