# Shutting down with requests waiting on a paused Redis.  A graceful stop
# (QUIT) or a reload (HUP): the old worker answers its waiting requests by
# their wait timers, within `timeout`, with the fail policy, and exits, well
# before Redis resumes; its connect, backoff and watchdog timers are
# cancelable and keep nobody waiting.  A fast stop (TERM) exits at once.
# No alert, no "open socket left", no crashed worker in the log.
#
# Each block first serves its --- request; its --- post_check then stops
# or reloads nginx itself.

use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers
    qw(set_defaults open_closed_config clean_shutdown master_pid);
use Time::HiRes qw(time sleep);

our (@Waiting, $Stopped, $Exit);

$ENV{TEST_NGINX_DEAD_REDIS_PORT} = free_port();

master_on();

# Every block stops nginx and pauses Redis: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 60;

no_long_string();
no_shuffle();

# Alive and not a zombie.
sub main::alive {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // '';
    return $stat !~ /^\d+ \(.*\) Z/;
}

sub main::wait_resumed {
    wait_until(5, sub { (redis_cmd('PING') // '') eq 'PONG' })
        or die "redis did not resume\n";
}

# Redis paused for $ms; $n requests sent to $path; after 0.1 s nginx gets
# $signal; the responses are read and the master's exit awaited.
sub main::signal_while_waiting {
    my ($signal, $ms, $n, $path) = @_;

    my $master = main::master_pid();
    redis_pause($ms) if $ms;

    my $start = time;
    my @socks = map { http_send($path) } 1 .. $n;
    sleep 0.1;

    kill $signal, $master or die "kill $signal: $!";
    $Stopped = time;

    @Waiting = map { http_read($_, start => $start, timeout => 3) } @socks;

    if ($signal ne 'HUP') {
        wait_until(3, sub { !main::alive($master) });
        $Exit = main::alive($master) ? undef : time - $Stopped;
    }

    main::wait_resumed() if $ms;
}

sub main::summary {
    my %by;
    for (@Waiting) {
        my $k = $_->{status} ? "$_->{status} " . ($_->{headers}{'x-rl'} // '-')
                             : "no response";
        $by{$k}++;
    }
    return join ', ', map { "$_: $by{$_}" } sort keys %by;
}

sub main::slowest {
    my ($s) = sort { $b <=> $a } map { $_->{elapsed} } @Waiting;
    return $s;
}

add_block_preprocessor(sub {
    set_defaults(shift,
        http_config => <<'_EOC_',
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=300ms;
    rate_limit_zone z key=$arg_k rate=10r/s burst=100;
_EOC_
        config => open_closed_config(),
        no_error_log => "[alert]\n[crit]\nopen socket\nexited on signal\n",
        no_shutdown_error_log => clean_shutdown());
});

run_tests();

__DATA__

=== TEST 1: graceful stop with a request waiting, fail open: answered in time, then exit
--- request
GET /open?k=a
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
main::signal_while_waiting('QUIT', 2000, 1, '/open?k=q');
is(main::summary(), '200 ERROR: 1', 'the waiting request passed with ERROR');
cmp_ok(main::slowest(), '<', 0.6, sprintf('within the 300 ms timeout (%.3f s)', main::slowest()));
ok(defined $main::Exit && $main::Exit < 1.0,
   sprintf('nginx exited %.3f s after QUIT, redis still paused', $main::Exit // -1));
ok(log_count(qr/\[notice\].*gracefully shutting down/), 'the worker shut down gracefully');



=== TEST 2: graceful stop with three requests waiting, fail closed: 503 each, then exit
--- request
GET /closed?k=a
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
main::signal_while_waiting('QUIT', 2000, 3, '/closed?k=q');
is(main::summary(), '503 ERROR: 3', 'the waiting requests got 503');
cmp_ok(main::slowest(), '<', 0.6, sprintf('within the 300 ms timeout (%.3f s)', main::slowest()));
ok(defined $main::Exit && $main::Exit < 1.0,
   sprintf('nginx exited %.3f s after QUIT', $main::Exit // -1));



=== TEST 3: fast stop (TERM) with a request waiting: exit at once, no crash
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=2s;
    rate_limit_zone z key=$arg_k rate=10r/s burst=100;
--- request
GET /open?k=a
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
main::signal_while_waiting('TERM', 1500, 2, '/open?k=t');
ok(defined $main::Exit && $main::Exit < 1.0,
   sprintf('nginx exited %.3f s after TERM', $main::Exit // -1));
like(main::summary(), qr/^(no response: 2|200 ERROR: \d, no response: \d|200 ERROR: 2)$/,
     'the waiting clients were closed or answered: ' . main::summary());



=== TEST 4: graceful stop while Redis is down: the backoff timer keeps nobody waiting
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_DEAD_REDIS_PORT timeout=1s
                     connect_timeout=5s;
    rate_limit_zone z key=$arg_k rate=10r/s burst=100;
--- request
GET /open?k=a
--- error_code: 200
--- response_headers
X-RL: ERROR
--- post_check
sleep 1.6;    # the backoff is at 800 ms or more by now
main::signal_while_waiting('QUIT', 0, 1, '/open?k=d');
is(main::summary(), '200 ERROR: 1', 'a request sent as it stops gets the fail policy');
ok(defined $main::Exit && $main::Exit < 0.5,
   sprintf('nginx exited %.3f s after QUIT', $main::Exit // -1));



=== TEST 5: reload (HUP) with requests waiting: the old worker answers them and exits
--- request
GET /open?k=a
--- error_code: 200
--- response_headers
X-RL: PASSED
--- post_check
main::signal_while_waiting('HUP', 1500, 2, '/open?k=h');
is(main::summary(), '200 ERROR: 2', 'the waiting requests passed with ERROR');
cmp_ok(main::slowest(), '<', 0.6, sprintf('within the 300 ms timeout (%.3f s)', main::slowest()));
ok(wait_until(3, sub { (http_get('/open?k=after')->{headers}{'x-rl'} // '') eq 'PASSED' }),
   'the new worker decides');
ok(wait_until(3, sub { log_count(qr/\[notice\].*gracefully shutting down/) }),
   'the old worker shut down gracefully');
