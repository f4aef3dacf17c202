# SCRIPT FLUSH between requests: the next EVALSHA gets NOSCRIPT; the module
# loads the script once on that connection and sends the command again as
# EVALSHA, which decides the request (PASSED or REJECTED, not ERROR).  EVAL
# is never sent, and however many commands a flush catches, a connection
# loads the script once.  INFO commandstats shows it: an always-EVAL
# module, one that never retries, or one that resends every command as
# EVAL fails here.  The request is counted once through the retry.

use Test::Nginx::Socket;
use Test::RateLimit::Client;

our (%Stats, @Burst);

# calls and failed_calls of EVALSHA, EVAL and SCRIPT LOAD since CONFIG
# RESETSTAT.
sub main::scriptstats {
    my $info = redis_cmd('INFO', 'commandstats');
    my %s = (evalsha => 0, evalsha_failed => 0, eval => 0, eval_failed => 0,
             load => 0, load_failed => 0);

    for my $cmd (['evalsha', 'evalsha'], ['eval', 'eval'],
                 ['load', 'script\|load'])
    {
        my ($name, $re) = @$cmd;
        next unless $info =~ /^cmdstat_$re:calls=(\d+).*failed_calls=(\d+)/m;
        $s{$name} = $1;
        $s{"${name}_failed"} = $2;
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

plan tests => 73;

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

=== TEST 1: EVALSHA, then SCRIPT FLUSH: one SCRIPT LOAD, the EVALSHA again decides
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
my $got = "evalsha=$s->{evalsha} failed=$s->{evalsha_failed} eval=$s->{eval} load=$s->{load}";
if ($req_idx == 0) {
    is($got, 'evalsha=1 failed=0 eval=0 load=0', "before the flush: EVALSHA ($got)");
    redis_cmd('SCRIPT', 'FLUSH');
}
if ($req_idx == 1) {
    is($got, 'evalsha=3 failed=1 eval=0 load=1', "after the flush: NOSCRIPT, SCRIPT LOAD, EVALSHA ($got)");
}
if ($req_idx == 2) {
    is($got, 'evalsha=4 failed=1 eval=0 load=1', "EVALSHA again ($got)");
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
    is("$s->{evalsha}/$s->{evalsha_failed}/$s->{eval}/$s->{load}", '3/1/0/1',
       'the rejection was decided by the EVALSHA sent again');
}
--- no_error_log
[alert]
signal



=== TEST 3: SCRIPT FLUSH with many requests in flight: one load, each NOSCRIPT sent again
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
ok($s->{evalsha_failed} >= 1 && $s->{evalsha_failed} <= 20,
   "$s->{evalsha_failed} NOSCRIPT for 20 requests");
# the burst's twenty and this block's own request
is($s->{evalsha}, 21 + $s->{evalsha_failed}, 'each NOSCRIPT sent again once');
is($s->{eval}, 0, 'no EVAL');
is("$s->{load}/$s->{load_failed}", '1/0', 'one SCRIPT LOAD for the connection');



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
    is("$s->{evalsha}/$s->{evalsha_failed}/$s->{eval}/$s->{load}", '6/1/0/1',
       'one NOSCRIPT and one load on whichever connection came first, then EVALSHA on both');
}
