# Only worker processes speak to Redis: with proxy_cache_path configured,
# NGINX also runs a cache manager and a cache loader, and neither (nor the
# master) connects.  Two workers with connections=1 are exactly two clients
# in CLIENT LIST of a redis-server that only this test's nginx uses.

use Test::RateLimit::Instances;     # first: its END runs after nginx stopped
use Test::Nginx::Socket;
use Test::RateLimit::Client;
use Test::RateLimit::Helpers qw(master_pid);
use Time::HiRes qw(time sleep);

our $Redis = Test::RateLimit::Instances::Redis->start(port => free_port());
$ENV{TEST_NGINX_PROC_REDIS_PORT} = $Redis->port;

our ($Clients, $Helpers);

workers(2);
master_on();

# The master's children whose command line matches $re.
sub main::children {
    my ($re) = @_;

    my $master = main::master_pid();
    my @pids;
    for my $dir (glob '/proc/[0-9]*') {
        open my $st, '<', "$dir/stat" or next;
        my ($ppid) = (<$st> // '') =~ /\)\s+\S+\s+(\d+)/ or next;
        next unless $ppid == $master;
        open my $cl, '<', "$dir/cmdline" or next;
        my $cmd = <$cl> // '';
        push @pids, $dir =~ m{(\d+)$} if $cmd =~ $re;
    }
    return @pids;
}

# Once every process had time to connect: how many did.
sub main::settle {
    my $p = $Redis->port;

    wait_until(10, sub { redis_clients(port => $p) >= 2 })
        or die "nginx did not connect to redis\n";
    wait_until(5, sub { main::children(qr/cache (manager|loader)/) >= 2 });
    sleep 1.5;

    $Helpers = join ', ', map { s/\0+$//r }
        map { my $pid = $_; open my $fh, '<', "/proc/$pid/cmdline";
              scalar(<$fh>) // "$pid gone" }
        main::children(qr/cache (manager|loader)/);
    $Clients = redis_clients(port => $p);
}

# Counts over a block: no repetition.
repeat_each(1);

post_check_hook();

plan tests => 7;

no_long_string();
no_shuffle();

run_tests();

__DATA__

=== TEST 1: proxy_cache_path and two workers: two clients in CLIENT LIST
--- http_config
    proxy_cache_path cache levels=1 keys_zone=rl_cache:1m;
    rate_limit_redis 127.0.0.1:$TEST_NGINX_PROC_REDIS_PORT connections=1;
    rate_limit_zone z key=$arg_k rate=100r/s;
--- config
    location = /t {
        rate_limit z;
        add_header X-RL $rate_limit_status always;
        empty_gif;
    }
--- init
main::settle();
--- request
GET /t?k=a
--- error_code: 200
--- response_headers
X-RL: PASSED
--- no_error_log
[alert]
[crit]
--- post_check
ok($main::Helpers =~ /cache manager/,
   "the cache manager runs ($main::Helpers)");
is($main::Clients, 2, 'two clients in CLIENT LIST once all had time to connect');
sleep 0.5;
is(scalar(redis_clients(port => $ENV{TEST_NGINX_PROC_REDIS_PORT})), 2,
   'still two after a request');
