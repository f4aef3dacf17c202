# SCRIPT FLUSH between requests: the next EVALSHA gets NOSCRIPT and the
# module sends EVAL once, which decides the request (PASSED or REJECTED, not
# ERROR) and loads the script again, so the request after is EVALSHA again.
# INFO commandstats shows it: an always-EVAL module, or one that never
# retries, fails here.  The request is counted once through the retry.

use Test::Nginx::Socket;
use Test::RateLimit::Client;

our (%Stats, @Burst);

# calls and failed_calls of EVALSHA and EVAL since CONFIG RESETSTAT.
sub main::scriptstats {
    my $info = redis_cmd('INFO', 'commandstats');
    my %s = (evalsha => 0, evalsha_failed => 0, eval => 0, eval_failed => 0);

    for my $cmd (qw(evalsha eval)) {
        next unless $info =~ /^cmdstat_$cmd:calls=(\d+).*failed_calls=(\d+)/m;
        $s{$cmd} = $1;
        $s{"${cmd}_failed"} = $2;
    }

    return \%s;
}

sub main::fresh {
    redis_cmd('FLUSHALL');
    redis_cmd('CONFIG', 'RESETSTAT');
}

sub main::flush_and_burst {
    my ($n) = @_;

    main::fresh();
    redis_cmd('SCRIPT', 'FLUSH');

    my @socks = map { http_send("/t?k=burst$_") } 1 .. $n;
    @Burst = map { http_read($_) } @socks;
}

# Counts matter: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 72;

no_long_string();
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('config', <<'_EOC_')
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
_EOC_
        unless defined $block->config;

    $block->set_value('no_error_log', "[error]\n[alert]\nsignal\n")
        unless defined $block->no_error_log;
});

run_tests();

__DATA__

=== TEST 1: EVALSHA, then SCRIPT FLUSH: one EVAL decides, then EVALSHA again
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;
--- init
main::fresh();
--- request eval
["GET /t?k=a", "GET /t?k=a", "GET /t?k=a"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 9",
 "X-RL: PASSED\nX-RateLimit-Remaining: 8",
 "X-RL: PASSED\nX-RateLimit-Remaining: 7"]
--- post_check
my $s = main::scriptstats();
my $got = "evalsha=$s->{evalsha} failed=$s->{evalsha_failed} eval=$s->{eval}";
if ($req_idx == 0) {
    is($got, 'evalsha=1 failed=0 eval=0', "before the flush: EVALSHA ($got)");
    redis_cmd('SCRIPT', 'FLUSH');
}
if ($req_idx == 1) {
    is($got, 'evalsha=2 failed=1 eval=1', "after the flush: NOSCRIPT, then EVAL ($got)");
}
if ($req_idx == 2) {
    is($got, 'evalsha=3 failed=1 eval=1', "EVALSHA again ($got)");
}



=== TEST 2: a rejection after SCRIPT FLUSH is still a rejection
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m;
--- init
main::fresh();
--- request eval
["GET /t?k=b", "GET /t?k=b"]
--- error_code eval
[200, 429]
--- response_headers eval
["X-RL: PASSED", "X-RL: REJECTED\nRetry-After: 60"]
--- post_check
if ($req_idx == 0) {
    redis_cmd('SCRIPT', 'FLUSH');
}
if ($req_idx == 1) {
    my $s = main::scriptstats();
    is("$s->{evalsha}/$s->{evalsha_failed}/$s->{eval}", '2/1/1',
       'the rejection was decided by EVAL');
}
--- no_error_log
[alert]
signal



=== TEST 3: SCRIPT FLUSH with many requests in flight: each NOSCRIPT is retried once
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;
--- init
main::flush_and_burst(20);
--- request
GET /t?k=burst1
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 8
--- post_check
is(scalar(grep { $_->{status} == 200 && $_->{headers}{'x-rl'} eq 'PASSED' } @main::Burst),
   20, 'twenty requests decided');
my $s = main::scriptstats();
ok($s->{eval} >= 1 && $s->{eval} <= 20, "$s->{eval} EVAL for 20 requests");
is($s->{eval}, $s->{evalsha_failed}, 'one EVAL for each NOSCRIPT');
is($s->{eval_failed}, 0, 'no EVAL failed');



=== TEST 4: two connections, one script cache: both recover
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT connections=2;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;
--- init
main::fresh();
--- request eval
["GET /t?k=c", "GET /t?k=c", "GET /t?k=c", "GET /t?k=c", "GET /t?k=c"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
["X-RL: PASSED\nX-RateLimit-Remaining: 9",
 "X-RL: PASSED\nX-RateLimit-Remaining: 8",
 "X-RL: PASSED\nX-RateLimit-Remaining: 7",
 "X-RL: PASSED\nX-RateLimit-Remaining: 6",
 "X-RL: PASSED\nX-RateLimit-Remaining: 5"]
--- post_check
if ($req_idx == 0) {
    redis_cmd('SCRIPT', 'FLUSH');
}
if ($req_idx == 4) {
    my $s = main::scriptstats();
    is("$s->{evalsha}/$s->{evalsha_failed}/$s->{eval}", '5/1/1',
       'one NOSCRIPT on whichever connection came first, then EVALSHA on both');
}
