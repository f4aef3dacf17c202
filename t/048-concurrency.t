# Concurrency zones for real: two NGINX instances of two workers each
# against one Redis, in front of a slow upstream this test starts (a small
# forking HTTP server that answers /?d=SECONDS after that many seconds).
#
#   - 12 concurrent slow requests of one key, N=3: exactly 3 admitted;
#   - the lease is released when the request ends, when the client leaves
#     (also before its check was answered), and across nginx -s reload (the
#     old worker's request ends there);
#   - a request three times longer than its lease keeps its slot (renewal);
#   - SIGKILL of the worker holding a lease frees it within lease + 1 s;
#   - a worker that exits (TERM) releases the leases it holds;
#   - RateLimit-Policy and RateLimit parse as RFC 8941 lists.
#
# A plain Test::More test: it starts its own servers and stops them by pid.

use strict;
use warnings;

use Test::More;
use Test::RateLimit::Instances;
use Test::RateLimit::Slow;
use Test::RateLimit::Client qw(free_port redis_cmd http_get http_send
                               http_read wait_until worker_pids);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

for my $var (qw(TEST_NGINX_REDIS_PORT TEST_NGINX_LOAD_MODULES)) {
    plan skip_all => "$var is not set (make test sets it)" unless $ENV{$var};
}

my ($slow_port) = Test::RateLimit::Slow::start();

my $pfx = "cc048-$$";

my $http = <<"_EOC_";
    rate_limit_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT} timeout=5s;
    rate_limit_fail_open off;
    rate_limit_headers on;
    rate_limit_zone three key=\$arg_k concurrency=3 lease=2s prefix=$pfx;
    rate_limit_zone one key=\$arg_k concurrency=1 lease=2s prefix=$pfx;
    rate_limit_zone long key=\$arg_k concurrency=1 lease=30s prefix=$pfx;
_EOC_

my $server = join '', map { <<"_EOC_" } qw(three one long);
        location /$_/slow {
            rate_limit $_;
            add_header X-RL \$rate_limit_status always;
            add_header X-Pid \$pid always;
            proxy_pass http://127.0.0.1:$slow_port/;
        }
        location /$_/fast {
            rate_limit $_;
            add_header X-RL \$rate_limit_status always;
            empty_gif;
        }
_EOC_

my @nginx = map {
    Test::RateLimit::Instances::Nginx->start(
        name => $_, port => free_port(), workers => 2,
        http => $http, server => $server)
} qw(a b);

ok(wait_until(5, sub {
       4 == grep { ($_->{cmd} // '') =~ /^(script|evalsha)/ }
                 Test::RateLimit::Client::redis_clients();
   }), 'four workers connected to Redis');

sub key_of { "$pfx:{$_[0]:$_[1]}:cc" }
sub held { redis_cmd('ZCARD', key_of(@_)) }

my $seq = 0;
sub fresh { 'k' . ++$seq }

sub get { my ($i, $path) = @_; http_get($path, port => $nginx[$i]->port) }
sub send_to {
    my ($i, $path) = @_;
    return http_send($path, port => $nginx[$i]->port);
}

# 12 at once over both instances, N=3: exactly 3 pass.
{
    my $k = fresh();
    my @socks = map { send_to($_ % 2, "/three/slow?k=$k&d=2") } 1 .. 12;
    my %by;
    $by{$_->{status}}++ for map { http_read($_, timeout => 10) } @socks;
    is($by{200} // 0, 3, '12 concurrent slow requests, N=3: 3 admitted');
    is($by{429} // 0, 9, 'the other 9 rejected');
    # leases of 2 s renewed at 0.7 s: only a release frees them this soon
    ok(wait_until(1, sub { held('three', $k) == 0 }),
       'every lease released when its request ended');
}

# The headers of a passed and of a rejected request, as RFC 8941 lists.
{
    my $k = fresh();
    my $sock = send_to(0, "/one/slow?k=$k&d=1");
    ok(wait_until(2, sub { held('one', $k) == 1 }), 'a slow request holds');
    my $rej = get(1, "/one/fast?k=$k");
    my $ok = http_read($sock, timeout => 5);
    is($ok->{status}, 200, 'the slow request passed');
    is($rej->{status}, 429, 'a second one is rejected while it runs');

    for my $res ($ok, $rej) {
        my $what = $res->{status};
        my $pol = sf_list($res->{headers}{'ratelimit-policy'});
        is_deeply($pol, [['one', {q => 1, qu => 'concurrent-requests'}]],
                  "$what: RateLimit-Policy parses, q and qu, no w");
        my $rl = sf_list($res->{headers}{'ratelimit'});
        # N=1: the passed request holds the only slot
        is_deeply($rl, [['one', {r => 0}]],
                  "$what: RateLimit parses, r is the free slots, no t");
    }
    ok(defined $rej->{headers}{'retry-after'}
       && $rej->{headers}{'retry-after'} =~ /^[1-9]\d*$/,
       'the rejection has a Retry-After');
}

# The client leaves: its lease is released at once (not after 30 s).
{
    my $k = fresh();
    my $sock = send_to(0, "/long/slow?k=$k&d=6");
    ok(wait_until(2, sub { held('long', $k) == 1 }), 'a lease is held');
    close $sock;
    ok(wait_until(2, sub { held('long', $k) == 0 }),
       'the client left: the lease is released');
    is(get(1, "/long/fast?k=$k")->{status}, 200, 'and the slot is free');
}

# The client leaves while its check waits in Redis (paused): the check
# still takes the lease when Redis resumes, and the release sent when the
# request ended, queued behind it, removes it (not left for 30 s).
{
    my $k = fresh();
    # shorter than connect_timeout (1 s), which would drop the connection
    Test::RateLimit::Client::redis_pause(800);
    my $sock = send_to(0, "/long/fast?k=$k");
    sleep 0.3;                  # the check is written, Redis holds it
    close $sock;                # nginx sees the client gone at once
    ok(wait_until(4, sub { held('long', $k) == 0 }),
       'left before the answer: the lease the check took is released');
    is(get(1, "/long/fast?k=$k")->{status}, 200, 'and the slot is free');
}

# Three times the lease: renewed, it keeps its slot all along.
{
    my $k = fresh();
    my $start = time;
    my $sock = send_to(0, "/one/slow?k=$k&d=6");
    ok(wait_until(2, sub { held('one', $k) == 1 }), 'a 6 s request, 2 s lease');
    my @late;
    for my $at (1, 2.5, 4, 5.5) {
        sleep($start + $at - time) if time < $start + $at;
        push @late, get(1, "/one/fast?k=$k")->{status};
    }
    is("@late", '429 429 429 429',
       'rejected at 1, 2.5, 4 and 5.5 s: the slot is kept past the lease');
    is(http_read($sock, timeout => 5)->{status}, 200, 'the long one passed');
    ok(wait_until(2, sub { held('one', $k) == 0 }), 'and then released');
}

# nginx -s reload: the old worker finishes its request and releases.
{
    my $k = fresh();
    my $sock = send_to(0, "/long/slow?k=$k&d=2");
    ok(wait_until(2, sub { held('long', $k) == 1 }), 'a lease is held');
    my @old = worker_pids($nginx[0]->pid);
    kill 'HUP', $nginx[0]->pid;
    ok(wait_until(5, sub {
           my %o = map { $_ => 1 } @old;
           2 == grep { !$o{$_} } worker_pids($nginx[0]->pid);
       }), 'reloaded: two new workers');
    is(get(0, "/long/fast?k=$k")->{status}, 429,
       'the new workers see the old worker\'s lease');
    is(http_read($sock, timeout => 5)->{status}, 200,
       'the old worker finished the request');
    ok(wait_until(2, sub { held('long', $k) == 0 }),
       'its lease released across the reload');
}

# SIGKILL of the worker holding a lease: free within lease + 1 s.
{
    my $k = fresh();
    my $sock = send_to(1, "/one/slow?k=$k&d=8");
    ok(wait_until(2, sub { held('one', $k) == 1 }), 'a lease is held');
    my ($member) = @{ redis_cmd('ZRANGE', key_of('one', $k), 0, -1) };
    my ($hex) = $member =~ /^[0-9a-f]+-([0-9a-f]+)-[0-9a-f]+$/;
    my $pid = hex($hex // 0);
    ok($pid && grep({ $_ == $pid } worker_pids($nginx[1]->pid)),
       "the member names its worker, pid $pid");
    kill 'KILL', $pid;
    my $killed = time;
    is(get(0, "/one/fast?k=$k")->{status}, 429,
       'right after the kill the lease still holds');
    my $freed = wait_until(4, sub {
        get(0, "/one/fast?k=$k")->{status} == 200;
    });
    my $took = time - $killed;
    ok($freed && $took <= 3.2,
       sprintf('freed %.1f s after the kill (lease 2 s + 1 s)', $took));
    close $sock;
}

# A fast shutdown (TERM) while requests run: the exiting workers release
# the leases they hold (not left for 30 s).
{
    my $k = fresh();
    my $sock = send_to(1, "/long/slow?k=$k&d=5");
    ok(wait_until(2, sub { held('long', $k) == 1 }), 'a lease is held');
    kill 'TERM', $nginx[1]->pid;
    ok(wait_until(2, sub { held('long', $k) == 0 }),
       'the worker exiting on TERM released it');
    close $sock;
}

# No alert, no crash in either instance (the killed worker aside).
for my $n (@nginx) {
    my @bad = grep { /\[alert\]|\[crit\]|segfault/ && !/signal 9/ }
        $n->error_log;
    is(scalar(@bad), 0, 'no alert in ' . $n->prefix) or diag(@bad);
}

$_->stop for @nginx;

done_testing();


# A strict RFC 8941 sf-list of items whose bare items are strings (the
# names) and whose parameters are integers or strings: [[name, {k => v}]]
# or undef when the field is malformed.
sub sf_list {
    my ($s) = @_;
    return undef unless defined $s;

    my @items;
    my $str = qr/"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"/;
    my $key = qr/([a-z*][a-z0-9_.*-]*)/;
    pos($s) = 0;
    while (1) {
        $s =~ /\G$str/gc or return undef;
        my ($name, %p) = ($1);
        while ($s =~ /\G;$key/gc) {
            my $k = $1;
            return undef if exists $p{$k};
            if ($s =~ /\G=/gc) {
                if ($s =~ /\G(-?[0-9]{1,15})(?![0-9.])/gc) {
                    $p{$k} = $1 + 0;
                } elsif ($s =~ /\G$str/gc) {
                    $p{$k} = $1;
                } else {
                    return undef;
                }
            } else {
                $p{$k} = 1;     # a boolean true
            }
        }
        push @items, [$name, \%p];
        last if pos($s) == length $s;
        $s =~ /\G[ \t]*,[ \t]*/gc or return undef;
        return undef if pos($s) == length $s;   # a trailing comma
    }
    return \@items;
}
