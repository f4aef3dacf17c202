package Test::RateLimit::Script;

# Helpers for the script-level tests (t/10N-script-*.t): a connection to
# the test redis-server in a database of the test's own, the scripts from
# lua/, and EVAL wrappers.
#
#   my $r = redis_db(11);                 # SELECT 11, FLUSHDB
#   my $rep = run_alg($r, 'gcra', [$key], $now_us, $n, $period_us, $burst,
#                     $cost);
#   my $rep = run_multi($r, $now_us, [gcra => $n, $p, $b, [@keys], $cost],
#                       ...);
#   my $rep = run_mode($r, 'charge', $now_us, [...zones as above...]);

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More;
use Test::RateLimit::Redis;

use Exporter 'import';
our @EXPORT = qw(redis_db script_text assembled_script run_script run_alg
                 run_multi run_mode is_error key_name T0 pttl_within reply_ok
                 is_reply probe_retry db_keys reply_problems);

our @ALGS = qw(gcra token_bucket fixed_window sliding_window sliding_log
              concurrency);

# A Unix time (µs) at 00:00 UTC, so every period of the rates divides it.
use constant T0 => 1_699_920_000_000_000;

my $root = abs_path(dirname(__FILE__) . '/../../../..');

my %sha;

sub redis_db {
    my ($db) = @_;

    my $port = $ENV{TEST_NGINX_REDIS_PORT};
    BAIL_OUT('TEST_NGINX_REDIS_PORT is not set: start a redis-server and '
             . 'set it to its port (make test does this)')
        unless defined $port && $port =~ /^\d+$/;

    my $r = eval { Test::RateLimit::Redis->new(port => $port) };
    BAIL_OUT("no redis-server on 127.0.0.1:$port: $@") unless $r;

    for my $c (['SELECT', $db], ['FLUSHDB']) {
        my $v = $r->cmd(@$c);
        BAIL_OUT("@$c: $v") if is_error($v);
    }

    return $r;
}

sub is_error { Test::RateLimit::Redis::is_error(@_) }

sub slurp {
    my ($path) = @_;

    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

# lua/ALG.lua as it runs alone: the driver lua/standalone.lua is put at
# its "-- [standalone]" line, below which the file calls it.
sub script_text {
    my ($alg) = @_;

    my $text = slurp("$root/lua/$alg.lua");
    my $driver = slurp("$root/lua/standalone.lua");

    $text =~ s/^(-- \[standalone\]\n)/$1$driver/m
        or die "lua/$alg.lua: no \"-- [standalone]\" line";

    return $text;
}

# The module's script, as the build assembles it.
sub assembled_script {
    my $cmd = "cd '$root' && sh src/core/embed_scripts.sh --lua @ALGS";
    my $text = `$cmd`;
    die "$cmd failed: $?" if $? != 0 || !length $text;
    return $text;
}

# EVALSHA, loading the script first time round.
sub run_script {
    my ($r, $text, $keys, @argv) = @_;

    my $sha = $sha{$text} //= do {
        my $v = $r->cmd('SCRIPT', 'LOAD', $text);
        die "SCRIPT LOAD: $v" if is_error($v);
        $v;
    };

    my $v = $r->cmd('EVALSHA', $sha, scalar(@$keys), @$keys, @argv);
    if (is_error($v) && $v->message =~ /^NOSCRIPT/) {
        $v = $r->cmd('EVAL', $text, scalar(@$keys), @$keys, @argv);
    }
    return $v;
}

# One algorithm's file run alone.
sub run_alg {
    my ($r, $alg, $keys, $now, $n, $period, $burst, $cost) = @_;

    return run_script($r, script_text($alg), $keys, $now, $n, $period,
                      $burst // 0, defined $cost ? $cost : ());
}

# The assembled script in mode check: each zone is [alg, n, period_us,
# burst, [keys], cost, delay] (cost 1 when left out; delay, gcra's delay=,
# the burst when left out, as the module sends a zone without delay=;
# 0 for the other algorithms).
sub run_multi {
    my ($r, $now, @zones) = @_;

    return run_mode($r, 'check', $now, @zones);
}

# The assembled script in any mode, with the lease member $lease ('' when
# not given).
sub run_mode {
    my ($r, $mode, $now, @zones) = @_;

    my $lease = '';
    $lease = ${ shift @zones } if @zones && ref $zones[0] eq 'SCALAR';
    my (@keys, @argv);
    for my $z (@zones) {
        my ($alg, $n, $p, $b, $k, $cost, $delay) = @$z;
        $delay //= $alg eq 'gcra' ? $b : 0;
        push @argv, $alg, $n, $p, $b, $cost // 1, scalar(@$k), $delay;
        push @keys, @$k;
    }
    return run_script($r, assembled_script_cached(), \@keys, $now, $mode,
                      $lease, scalar(@zones), @argv);
}

my $assembled;

sub assembled_script_cached { $assembled //= assembled_script() }

# PREFIX:{ZONE:CLIENT}:TAG[:W]
sub key_name {
    my ($zone, $client, $tag, $w) = @_;

    my $k = "rl:{$zone:$client}:$tag";
    $k .= ":$w" if defined $w;
    return $k;
}

# PTTL of $key is set and within ($max_ms - $slack_ms, $max_ms].
sub pttl_within {
    my ($r, $key, $max_ms, $name, $slack_ms) = @_;

    $slack_ms //= 1000;
    my $t = $r->cmd('PTTL', $key);
    my $ok = !ref $t && $t > 0 && $t <= $max_ms && $t > $max_ms - $slack_ms;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok($ok, $name) or diag("PTTL $key = $t, wanted ($max_ms - $slack_ms, "
                           . "$max_ms]");
}

# A zone's reply obeys the rules every lua/ALG.lua states (and that
# rl_core_decode_reply() in src/core/rl_core.h checks): five integers,
# allowed 0|1, limit >= 1, 0 <= remaining <= limit, remaining below the
# request's cost (at least 1) when denied, times >= 0, retry_after 0 iff
# remaining > 0.  Returns true if so.
sub reply_ok {
    my ($rep, $name, $cost) = @_;

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @why = reply_problems($rep, $cost);
    return ok(!@why, "$name: reply shape")
        || diag(join('; ', @why) . ' in ' . _show($rep));
}

# What is wrong with a zone's reply (nothing: an empty list).
sub reply_problems {
    my ($rep, $cost) = @_;

    $cost = 1 unless defined $cost && $cost > 1;
    return 'not five integers: ' . _show($rep)
        if ref $rep ne 'ARRAY' || @$rep != 5
           || grep { ref || !defined || !/^-?\d+\z/ } @$rep;

    my @why;
    my ($a, $l, $rem, $reset, $retry) = @$rep;
    push @why, 'allowed not 0|1' unless $a == 0 || $a == 1;
    push @why, 'limit < 1' unless $l >= 1;
    push @why, 'remaining out of [0, limit]' unless $rem >= 0 && $rem <= $l;
    push @why, 'remaining >= cost when denied' if $a == 0 && $rem >= $cost;
    push @why, 'negative time' if $reset < 0 || $retry < 0;
    push @why, 'retry_after 0 iff remaining > 0 broken'
        unless ($retry == 0) == ($rem > 0);
    return @why;
}

# The reply is exactly @$want (and well formed).
sub is_reply {
    my ($rep, $want, $name, $cost) = @_;

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return is(_show($rep), _show($want), $name)
           && reply_ok($rep, $name, $cost);
}

sub _show {
    my ($v) = @_;
    return 'undef' unless defined $v;
    return "[" . join(' ', map { _show($_) } @$v) . "]" if ref $v eq 'ARRAY';
    return "error($v)" if is_error($v);
    return "$v";
}

# After a reply at $t with retry_after $ms > 0, with nothing else coming:
# at $t + ($ms - 1) ms the next request is still denied (so retry_after is
# tight to the ms) and at $t + $ms ms it is allowed (never too early).
# $run->($now) makes one request.
sub probe_retry {
    my ($run, $t, $ms, $name) = @_;

    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $early = $run->($t + ($ms - 1) * 1000);
    my $on = $run->($t + $ms * 1000);
    ok(ref $early eq 'ARRAY' && $early->[0] == 0,
       "$name: denied 1 ms before retry_after ($ms ms)")
        or diag(_show($early));
    ok(ref $on eq 'ARRAY' && $on->[0] == 1,
       "$name: allowed at retry_after ($ms ms)") or diag(_show($on));
}

# Every key of the test's database, sorted.
sub db_keys {
    my ($r) = @_;
    my $k = $r->cmd('KEYS', '*');
    return [ sort @$k ];
}

1;
