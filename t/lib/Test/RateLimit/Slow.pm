package Test::RateLimit::Slow;

# A slow HTTP upstream for the tests of concurrency zones: one process
# accepting on a loopback port of its own, a child per connection that
# sleeps d seconds (the query's d=, at most 10) and answers 200 "ok".  It
# stops itself after 90 s; the test stops it by pid at END.
#
#   use Test::RateLimit::Slow;
#   my ($port, $pid) = Test::RateLimit::Slow::start();

use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();

my @started;

sub start {
    my $l = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1:0',
                                  ReuseAddr => 1) or die "listen: $@";
    my $port = $l->sockport;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        alarm 90;
        while (1) {
            my $c = $l->accept or next;
            my $k = fork;
            if (defined $k && $k == 0) {
                alarm 15;
                my $req = '';
                while ($req !~ /\r\n\r\n/) {
                    sysread($c, $req, 4096, length $req) or last;
                }
                my ($d) = $req =~ /[?&]d=([\d.]+)/;
                sleep(($d // 0) > 10 ? 10 : $d // 0);
                syswrite $c, "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
                close $c;
                POSIX::_exit(0);
            }
            close $c;
        }
    }
    close $l;
    push @started, [$pid, $$];
    return ($port, $pid);
}

# only in the process that started it
END { kill 'TERM', $_->[0] for grep { $_->[1] == $$ } @started }

1;
