# The deny cache, both halves.  A key Redis rejected is rejected by the
# worker without a round trip until the command's send time plus its wait:
# those rejections cost no script call.  And it never rejects what Redis
# would pass: over a second of back-to-back requests on one key, a zone
# with the cache admits as many as the same zone without it (which asks
# Redis every time), so the cache never outlives Redis's own answer.
#
# A plain Test::More test: it starts its own nginx (one worker), so the
# Redis call counts are its alone.

use strict;
use warnings;

use Test::More;
use Test::RateLimit::Instances;
use Test::RateLimit::Client qw(free_port redis_cmd);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

for my $var (qw(TEST_NGINX_REDIS_PORT TEST_NGINX_LOAD_MODULES)) {
    plan skip_all => "$var is not set (make test sets it)" unless $ENV{$var};
}

my $port = free_port();
my $nginx = Test::RateLimit::Instances::Nginx->start(
    name => 'deny-cache', port => $port, workers => 1,
    http => <<"_EOC_",
    rate_limit_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT} timeout=1s;
    rate_limit_zone slow        key=\$arg_k rate=1r/m;
    rate_limit_zone slow_nocache key=\$arg_k rate=1r/m cache=0;
    rate_limit_zone fast        key=\$arg_k rate=50r/s;
    rate_limit_zone fast_nocache key=\$arg_k rate=50r/s cache=0;
    rate_limit_log_level info;
_EOC_
    server => <<'_EOC_',
    location /slow         { rate_limit slow;         empty_gif; }
    location /slow_nocache { rate_limit slow_nocache; empty_gif; }
    location /fast         { rate_limit fast;         empty_gif; }
    location /fast_nocache { rate_limit fast_nocache; empty_gif; }
_EOC_
);

# One keep-alive connection; returns (status, headers) per request.
my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
    or die "connect: $!";

sub get {
    my ($path) = @_;

    print $sock "GET $path HTTP/1.1\r\nHost: t\r\n\r\n";

    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($sock, $head, 4096, length $head) or die "read: $!";
    }

    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($len) = $head =~ /^Content-Length: (\d+)/mi;
    my $body = substr $head, index($head, "\r\n\r\n") + 4;
    while (length $body < ($len // 0)) {
        sysread($sock, $body, 4096, length $body) or die "read: $!";
    }

    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1, $2) : () } split /\r\n/,
        substr($head, 0, index $head, "\r\n\r\n");
    return ($status, \%h);
}

sub script_calls {
    my $info = redis_cmd('INFO', 'commandstats');
    my $n = 0;
    $n += $1 while $info =~ /^cmdstat_eval(?:sha)?:calls=(\d+)/mg;
    return $n;
}

redis_cmd('FLUSHALL');

# Half 1: after Redis's first rejection, the next ones cost no script call
# and carry the same fields, counted from the time left.
for my $zone (qw(slow slow_nocache)) {
    my $before = script_calls();
    my @status;
    my @retry;

    for (1 .. 22) {
        my ($status, $h) = get("/$zone?k=a-$zone");
        push @status, $status;
        push @retry, $h->{'retry-after'} if $status == 429;
        if ($status == 429) {
            like $h->{ratelimit} // '', qr/^"$zone";r=0;t=\d+$/,
                "$zone: rejection $#retry carries RateLimit";
        }
    }

    my $calls = script_calls() - $before;

    is "@status", join(' ', 200, (429) x 21), "$zone: one pass, then 429s";
    ok !grep({ $_ < 1 || $_ > 60 } @retry),
        "$zone: Retry-After within 1..60 (@retry[0, -1])";

    if ($zone eq 'slow') {
        is $calls, 2, "$zone: 2 script calls for 22 requests (the rest cached)";
    } else {
        is $calls, 22, "$zone: a script call for every request";
    }
}

# Half 2: 50r/s (one admission per 20 ms) for one second of back-to-back
# requests.  The cache rejects between admissions without asking Redis,
# yet admits as many as Redis alone: it never holds a key past the moment
# Redis would let it in.
my %passed;
my %calls;

for my $zone (qw(fast fast_nocache)) {
    my $before = script_calls();
    my $end = time + 1;
    my $n = 0;

    $passed{$zone} = 0;

    while (time < $end) {
        my ($status) = get("/$zone?k=b-$zone");
        $passed{$zone}++ if $status == 200;
        $n++;
    }

    $calls{$zone} = script_calls() - $before;

    note "$zone: $n requests, $passed{$zone} passed, $calls{$zone} calls";
}

cmp_ok $passed{fast_nocache}, '>=', 45,
    "without the cache, Redis admits about 50 in a second "
    . "($passed{fast_nocache})";
cmp_ok abs($passed{fast} - $passed{fast_nocache}), '<=', 2,
    "with the cache as many are admitted ($passed{fast} against "
    . "$passed{fast_nocache})";
cmp_ok $calls{fast}, '<', $calls{fast_nocache} / 2,
    "with the cache far fewer script calls ($calls{fast} against "
    . "$calls{fast_nocache})";

unlike $nginx->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert in the log';

close $sock;
$nginx->stop;

done_testing;
