# SCRIPT FLUSH between requests: the next EVALSHA gets NOSCRIPT, the module
# sends SCRIPT LOAD once on that connection and the failed command again as
# EVALSHA, which decides the request (PASSED or REJECTED, not ERROR).  EVAL,
# the whole script text with every command, is never sent.  INFO
# commandstats shows it: an always-EVAL module, one that resends as EVAL, or
# one that never retries, fails here.  The request is counted once through
# the retry.  Under load with flushes meanwhile, every request is decided
# and the script is loaded once per connection and flush.

use Test::Nginx::Socket;
use Test::RateLimit::Client;

use Time::HiRes qw(time sleep);

our (%Stats, @Burst, %Load);

# calls and failed_calls of EVALSHA, EVAL and SCRIPT LOAD since CONFIG
# RESETSTAT (Redis 7 names the subcommand script|load).
sub main::scriptstats {
    my $info = redis_cmd('INFO', 'commandstats');
    my %s = (evalsha => 0, evalsha_failed => 0, eval => 0, eval_failed => 0,
             load => 0);

    for my $cmd (qw(evalsha eval)) {
        next unless $info =~ /^cmdstat_$cmd:calls=(\d+).*failed_calls=(\d+)/m;
        $s{$cmd} = $1;
        $s{"${cmd}_failed"} = $2;
    }

    $s{load} = $1 if $info =~ /^cmdstat_script\|load:calls=(\d+)/m;

    return \%s;
}

# $clients children send requests (new keys, each on a new connection) for
# $secs while the script cache is flushed $flushes times.
sub main::flush_under_load {
    my ($clients, $secs, $flushes) = @_;

    main::fresh();

    my @bg = map { my $c = $_; run_bg(sub {
        my (%st, $i);
        my $end = time + $secs;
        while (time < $end && $i++ < 3000) {
            my $r = http_get("/t?k=l$c.$i", timeout => 3);
            $st{ $r->{status} ? "$r->{status} " . ($r->{headers}{'x-rl'} // '-')
                              : "failed: $r->{error}" }++;
        }
        return join '', map { "$_=$st{$_}\n" } sort keys %st;
    }) } 1 .. $clients;

    for (1 .. $flushes) {
        sleep $secs / ($flushes + 1);
        redis_cmd('SCRIPT', 'FLUSH');
    }

    %Load = ();
    for my $bg (@bg) {
        for (split /\n/, wait_bg($bg, $secs + 20)) {
            my ($k, $v) = /^(.*)=(\d+)$/ or next;
            $Load{$k} += $v;
        }
    }
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

plan tests => 83;

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

=== TEST 1: EVALSHA, then SCRIPT FLUSH: SCRIPT LOAD and EVALSHA again decide, no EVAL
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
    is("$got load=$s->{load}", 'evalsha=3 failed=1 eval=0 load=1',
       "after the flush: NOSCRIPT, SCRIPT LOAD, EVALSHA again ($got load=$s->{load})");
}
if ($req_idx == 2) {
    is($got, 'evalsha=4 failed=1 eval=0', "EVALSHA ($got)");
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
    is("$s->{evalsha}/$s->{evalsha_failed}/$s->{eval}", '3/1/0',
       'the rejection was decided by EVALSHA sent again');
}
--- no_error_log
[alert]
signal



=== TEST 3: SCRIPT FLUSH with many requests in flight: loaded once, each NOSCRIPT sent again as EVALSHA
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
is($s->{evalsha} - $s->{evalsha_failed}, 21,
   'each request decided by one EVALSHA that did not fail');
is($s->{eval}, 0, 'no EVAL');
ok($s->{load} >= 1 && $s->{load} <= 2, "loaded once ($s->{load} SCRIPT LOAD)");



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
    is("$s->{evalsha}/$s->{evalsha_failed}/$s->{eval}", '6/1/0',
       'one NOSCRIPT on whichever connection came first, sent again as '
       . 'EVALSHA, then EVALSHA on both');
}



=== TEST 5: SCRIPT FLUSH three times under load: every request decided, no EVAL, few SCRIPT LOAD
--- http_config
    rate_limit_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=1s;
    rate_limit_zone z key=$arg_k rate=1r/m burst=9;
--- init
main::flush_under_load(8, 2, 3);
--- request
GET /t?k=after
--- error_code: 200
--- response_headers
X-RL: PASSED
X-RateLimit-Remaining: 9
--- post_check
my $all = join ', ', map { "$_=$main::Load{$_}" } sort keys %main::Load;
my ($bad) = grep { !/^200 PASSED=/ } split /, /, $all;
ok(!defined $bad && $main::Load{'200 PASSED'}, "every request PASSED ($all)");
my $s = main::scriptstats();
ok($s->{evalsha_failed} >= 1, "the flushes were seen: $s->{evalsha_failed} NOSCRIPT");
is($s->{eval}, 0, 'no EVAL');
ok($s->{load} <= (3 + 1) * 1 * 1 + 2,
   "$s->{load} SCRIPT LOAD for 3 flushes (at most (3 + 1) x 1 connection "
   . 'x 1 worker + 2)');
