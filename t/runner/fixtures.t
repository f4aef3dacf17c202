# Self-tests of the t/lib runner: runs every t/runner/fixtures/*.tn file
# through perl, as prove would run a .t, and checks the TAP it prints
# against the "#? ..." expectations at the top of that file:
#
#   #? ok SUBSTRING       every result line whose text contains SUBSTRING
#   #? not ok SUBSTRING   is "ok" (or "not ok"), and there is at least one
#   #? tests N            N results were printed
#   #? plan ok            the plan ("1..N") matches the results printed
#   #? none SUBSTRING     no result line contains SUBSTRING
#   #? bail SUBSTRING     the run bailed out with a reason containing it
#   #? stderr SUBSTRING   stderr contains SUBSTRING
#   #? term-after SECS    send SIGTERM to the fixture after SECS seconds
#   #? ours-only          skipped when checking upstream Test::Nginx
#
# After every fixture no nginx may be left running on its server root.
#
#   prove -I t/lib t/runner/
#   TEST_RUNNER_LIB=/path/to/test-nginx/lib prove t/runner/fixtures.t
#
# The second form checks the same expectations against upstream
# Test::Nginx (fixtures marked ours-only are skipped).  Each fixture gets
# its own temporary server root and free port, so the suites of t/ can
# run at the same time.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

my $root = abs_path(dirname(__FILE__) . '/../..');
chdir $root or die "chdir $root: $!";

my $lib = $ENV{TEST_RUNNER_LIB} || "$root/t/lib";
my $upstream = $ENV{TEST_RUNNER_LIB} ? 1 : 0;

my @fixtures = @ARGV ? @ARGV : sort glob('t/runner/fixtures/*.tn');

sub free_port {
    for (1 .. 100) {
        my $port = 20000 + int rand 30000;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Listen => 1,
                                      ReuseAddr => 1) or next;
        close $s;
        return $port;
    }
    die "no free port";
}

sub slurp {
    my $f = shift;
    open my $in, '<', $f or return '';
    local $/;
    my $s = <$in>;
    close $in;
    return $s // '';
}

sub nginx_left_on {
    my $servroot = shift;
    my @left;
    for my $dir (glob '/proc/[0-9]*') {
        my $cmd = slurp("$dir/cmdline");
        next unless index($cmd, $servroot) >= 0 && $cmd =~ /nginx/;
        my $stat = slurp("$dir/stat");
        next if $stat =~ /^\d+ \(.*\) [ZX] /s;
        push @left, ($dir =~ m{(\d+)$})[0];
    }
    return @left;
}

sub run_fixture {
    my ($file, $servroot, $port, $term_after) = @_;
    my $out = File::Temp->new;
    my $err = File::Temp->new;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        $ENV{TEST_NGINX_SERVROOT} = $servroot;
        $ENV{TEST_NGINX_SERVER_PORT} = $port;
        $ENV{TEST_NGINX_RUNNER_VALUE} = "from-the-environment";
        delete $ENV{$_} for qw(TEST_NGINX_NO_SHUFFLE TEST_NGINX_LOAD_MODULES
                               TEST_NGINX_BINARY_UNUSED HARNESS_ACTIVE
                               TEST_NGINX_CLIENT_PORT TEST_NGINX_PORT);
        open STDOUT, '>', $out->filename or die;
        open STDERR, '>', $err->filename or die;
        exec $^X, '-I', $lib, $file;
        die "exec: $!";
    }
    my $deadline = time + 120;
    my $term_at = defined $term_after ? time + $term_after : undef;
    while (waitpid($pid, WNOHANG) == 0) {
        if (defined $term_at && time > $term_at) {
            kill 'TERM', $pid;
            undef $term_at;
        }
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.05;
    }
    my $status = $?;
    return (slurp($out->filename), slurp($err->filename), $status);
}

for my $file (@fixtures) {
    my $text = slurp($file);
    my @expect = $text =~ /^#\?\s*(.*?)\s*$/mg;

    subtest $file => sub {
        if ($upstream && grep { $_ eq 'ours-only' } @expect) {
            plan skip_all => 'ours-only fixture';
        }

        my $servroot = tempdir('rl-runner-XXXXXX', TMPDIR => 1,
                               CLEANUP => 1) . '/servroot';
        my ($term_after) = map { /^term-after\s+([\d.]+)$/ ? $1 : () }
                            @expect;
        my ($tap, $stderr, $status) = run_fixture($file, $servroot,
                                                  free_port(), $term_after);

        my @results;
        my $planned;
        for my $line (split /\n/, $tap) {
            if ($line =~ /^(not ok|ok)\b\s*\d*\s*(?:-\s*)?(.*)$/) {
                push @results, [$1, $2];
            } elsif ($line =~ /^1\.\.(\d+)/) {
                $planned = $1;
            }
        }

        my $show = "TAP:\n$tap\nSTDERR:\n$stderr";
        my $ok_all = 1;

        for my $e (@expect) {
            if ($e =~ /^(not ok|ok)\s+(.+)$/) {
                my ($want, $sub) = ($1, $2);
                my @hits = grep { index($_->[1], $sub) >= 0 } @results;
                my @bad = grep { $_->[0] ne $want } @hits;
                $ok_all &= ok(@hits && !@bad,
                              "$want: $sub (" . scalar(@hits) . " lines)");
            } elsif ($e =~ /^none\s+(.+)$/) {
                my $sub = $1;
                $ok_all &= ok(!grep({ index($_->[1], $sub) >= 0 } @results),
                              "no result has: $sub");
            } elsif ($e =~ /^tests\s+(\d+)$/) {
                $ok_all &= is(scalar @results, $1, "$1 results");
            } elsif ($e eq 'plan ok') {
                $ok_all &= is($planned, scalar @results,
                              'the plan matches the results');
            } elsif ($e =~ /^bail\s+(.+)$/) {
                my $sub = $1;
                $ok_all &= ok(scalar(grep { /^Bail out!.*\Q$sub\E/ }
                                     split /\n/, $tap),
                              "bailed out: $sub");
            } elsif ($e =~ /^stderr\s+(.+)$/) {
                $ok_all &= ok(index($stderr, $1) >= 0, "stderr has: $1");
            } elsif ($e eq 'ours-only' || $e =~ /^term-after\s/) {
                next;
            } else {
                fail("unknown expectation: $e");
            }
        }

        my @left = nginx_left_on($servroot);
        $ok_all &= is("@left", '', 'no nginx left running on the '
                                   . 'server root');
        kill 'KILL', @left if @left;

        diag($show) if !$ok_all || $ENV{TEST_RUNNER_VERBOSE};
    };
}

done_testing();
