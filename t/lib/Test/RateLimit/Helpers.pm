package Test::RateLimit::Helpers;

# What the Test::Nginx suites do to their redis-server
# ($TEST_NGINX_REDIS_PORT, started by ci/test.sh), exported on request
# into the suite's package, so that --- init and --- post_check sections
# call them as main::NAME():
#
#   use Test::RateLimit::Helpers qw(redis flush block_keys block_client);
#
#   redis()                 a new connection (Test::RateLimit::Redis)
#   flush()                 FLUSHALL
#   block_keys(KEY...)      FLUSHALL, then each KEY a gcra state (TAT) an
#                           hour ahead: a zone with emission interval T
#                           and burst B rejects it for 3600 s - B * T
#   block_client(ZONE...)   block_keys of 127.0.0.1's key in each gcra
#                           ZONE of the default prefix

use strict;
use warnings;

use Test::RateLimit::Redis;

use Exporter 'import';
our @EXPORT_OK = qw(redis flush block_keys block_client);

sub redis {
    return Test::RateLimit::Redis->new(port => $ENV{TEST_NGINX_REDIS_PORT});
}

sub flush { redis()->cmd('FLUSHALL') }

sub block_keys {
    my $r = redis();
    $r->cmd('FLUSHALL');
    my $t = $r->cmd('TIME');
    my $tat = $t->[0] * 1_000_000 + $t->[1] + 3_600_000_000;
    $r->cmd('SET', $_, $tat, 'PX', 3_600_000) for @_;
}

sub block_client { block_keys(map { "rl:{$_:127.0.0.1}:g" } @_) }

1;
