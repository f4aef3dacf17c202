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
#
# and the block sections several suites share:
#
#   add_block_preprocessor(sub {
#       set_defaults(shift, config => open_closed_config(),
#                    no_shutdown_error_log => clean_shutdown());
#   });
#
#   set_defaults($block, SECTION => TEXT, ...)
#                           each SECTION the block does not have itself
#   open_closed_config(HEADER...)
#                           /open and /closed, limited by zone z, failing
#                           open and closed, with $rate_limit_status in
#                           X-RL and each HEADER ("X-Time $request_time")
#                           added to both
#   quiet_log()             what no request may log: alerts, critical
#                           lines, a worker killed by a signal
#   clean_shutdown()        what a stop must not log: alerts, an open
#                           socket left, a worker killed by a signal
#   master_pid()            the pid of the suite's nginx master
#                           (master_on())

use strict;
use warnings;

use Test::RateLimit::Redis;

use Exporter 'import';
our @EXPORT_OK = qw(redis flush block_keys block_client set_defaults
                    open_closed_config quiet_log clean_shutdown
                    master_pid);

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

sub set_defaults {
    my ($block, %sections) = @_;

    for my $name (sort keys %sections) {
        $block->set_value($name, $sections{$name})
            unless defined $block->$name;
    }
}

sub open_closed_config {
    my $headers = join '', map { "        add_header $_ always;\n" }
                               'X-RL $rate_limit_status', @_;

    return <<"_EOC_";
    location = /open {
        rate_limit z;
$headers        empty_gif;
    }

    location = /closed {
        rate_limit z;
        rate_limit_fail_open off;
$headers        empty_gif;
    }
_EOC_
}

sub quiet_log { "[alert]\n[crit]\nsignal\n" }

sub clean_shutdown { "[alert]\nopen socket\nexited on signal\n" }

sub master_pid {
    no warnings 'once';
    open my $fh, '<', $Test::Nginx::Util::PidFile or die "no pid file: $!";
    my $pid = <$fh>;
    chomp $pid;
    return $pid;
}

1;
