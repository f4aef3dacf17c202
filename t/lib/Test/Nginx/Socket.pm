package Test::Nginx::Socket;

# Client side of the t/lib runner: builds the requests of a block, talks
# HTTP/1.x over a raw socket, parses the responses and runs the checks.
# Compatible with openresty's Test::Nginx::Socket for the sections listed in
# t/lib/README.md; written for this project (no upstream code).

use strict;
use warnings;

use Test::Base -base;

our $VERSION = '0.33';

use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep);
use Test::More ();

use Test::Nginx::Util;

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test repeat_each
    config_preamble worker_connections master_process_enabled
    no_long_string workers master_on master_off log_level no_shuffle
    no_root_location use_hup server_name server_addr server_root html_dir
    server_port server_port_for_client timeout no_nginx_manager
    check_accum_error_log add_block_preprocessor bail_out
    add_test_cleanup_handler add_cleanup_handler add_response_body_check
);

sub send_request ($$$$;$);
sub value_mentions ($$);

our @ResponseBodyChecks;
our $TotalConnectingTimeouts = 0;

$Test::Nginx::Util::RunTestHelper = \&run_test_helper;
$Test::Nginx::Util::CheckErrorLog = \&check_error_log;
$Test::Nginx::Util::CheckShutdownErrorLog = \&check_shutdown_error_log;

sub run_test ($) { Test::Nginx::Util::run_test(shift) }

sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

# ------------------------------------------------------ building requests

sub parse_more_headers ($) {
    my $text = shift;
    my ($out, $chunked) = ('', 0);
    for my $line (split /\n+/, $text) {
        next if $line =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $line, 2;
        $val = '' unless defined $val;
        $chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $chunked);
}

# Turns "METHOD [URI [VERSION]]\nbody" packets into a full HTTP request:
# the default URI (/) and version (HTTP/1.1), Host and Connection headers,
# the --- more_headers lines, and Content-Length for a body.  Packet
# boundaries are kept at the corresponding places of the new request.
sub build_request ($$$$$) {
    my ($name, $more_headers, $chunked, $conn, $packets) = @_;

    my $orig = join '', @$packets;
    my ($first, $rest) = $orig =~ /\A([^\n]*\n?)(.*)\z/s;
    if (!defined $first || $first !~ /\S/) {
        bail_out("$name - Request line should be non-empty");
    }
    my ($lead, $meth, $url, $ver)
        = $first =~ /^(\s*)(\S+)(?: +(\S+))?(?: +(\S+))? *\s*$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$first\".");
    $url = '/' unless defined $url;
    $ver = 'HTTP/1.1' unless defined $ver;

    my $body = $rest;
    my $body_skip = 0;
    my $len_header = '';
    if (!$chunked && $body ne ''
        && $more_headers !~ /(?:^|\n)Content-Length:/)
    {
        ($body_skip) = map { length } $body =~ /\A(\s*)/;
        $body =~ s/^\s+|\s+$//gs;
        $len_header = 'Content-Length: ' . length($body) . "\r\n";
    }

    my $headers = '';
    $headers .= "Host: $Test::Nginx::Util::ServerName\r\n"
        unless $more_headers =~ /(?:^|\n)Host:/mi;
    $headers .= "Connection: $conn\r\n"
        unless $more_headers =~ /(?:^|\n)Connection/mi;
    $headers .= $more_headers . $len_header . "\r\n";

    my $line = "$meth $url $ver\r\n";
    my $new = $line . $headers . $body;

    return [$new] if @$packets <= 1;

    # Map every original packet boundary onto the new request.
    my @cuts;
    my $off = 0;
    for my $i (0 .. $#$packets - 1) {
        $off += length $packets->[$i];
        my $cut;
        if ($off < length $first) {
            $cut = $off - length $lead;
            $cut = 0 if $cut < 0;
            $cut = length $line if $cut > length $line;
        } else {
            $cut = length($line) + length($headers)
                   + ($off - length($first) - $body_skip);
            $cut = length($line) + length($headers)
                if $cut < length($line) + length($headers);
        }
        $cut = length $new if $cut > length $new;
        $cut = $cuts[-1] if @cuts && $cut < $cuts[-1];
        push @cuts, $cut;
    }
    my @out;
    my $prev = 0;
    for my $cut (@cuts, length $new) {
        push @out, substr($new, $prev, $cut - $prev);
        $prev = $cut;
    }
    return \@out;
}

sub headers_for ($$$) {
    my ($name, $more_headers, $i) = @_;
    if (ref $more_headers eq 'ARRAY') {
        my $hdr = $more_headers->[$i];
        bail_out("--- more_headers lacks data for the ${i}th request")
            unless defined $hdr;
        return parse_more_headers($hdr);
    }
    return parse_more_headers($more_headers);
}

# Returns a list of requests; each request is a list of packets, each
# packet a hash { value => BYTES, delay_before => SECONDS }.
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;
    my @reqs;

    if (defined(my $raw = $block->raw_request)) {
        my @bits = ref $raw eq 'ARRAY' ? @$raw : ($raw);
        push @reqs, [map { ref $_ ? $_ : { value => $_ } } @bits];
        return \@reqs;
    }

    my $more_headers = $block->more_headers || '';

    if (my $pipelined = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $pipelined eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$pipelined) {
            my $req = expand_env_in_text($pipelined->[$i], $name,
                                         $Test::Nginx::Util::RandPorts);
            my ($hdr, $chunked) = headers_for($name, $more_headers, $i);
            my $conn = $i == $#$pipelined ? 'close' : 'keep-alive';
            $all .= build_request($name, $hdr, $chunked, $conn, [$req])->[0];
        }
        push @reqs, [{ value => $all }];
        return \@reqs;
    }

    my $request;
    if (defined $block->request_eval) {
        Test::More::diag("$name - request_eval DEPRECATED. Use request "
                         . "eval instead.");
        $request = eval $block->request_eval;
        warn $@ if $@;
    } else {
        $request = $block->request;
        if (defined $request && !ref $request) {
            # Leading blank and comment lines are not part of the request.
            1 while $request =~ s/^\s*#[^\n]+\s+|^\s+//s;
        }
    }

    if (!ref $request) {
        my ($hdr, $chunked) = headers_for($name, $more_headers, 0);
        my $r = build_request($name, $hdr, $chunked, 'close',
                              [defined $request ? $request : '']);
        push @reqs, [{ value => $r->[0] }];
        return \@reqs;
    }

    bail_out("$name - invalid ---request : MUST be string or array of "
             . "requests") unless ref $request eq 'ARRAY';

    my $i = 0;
    for my $one (@$request) {
        my ($hdr, $chunked) = headers_for($name, $more_headers, $i);
        if (!ref $one) {
            my $r = build_request($name, $hdr, $chunked, 'close', [$one]);
            push @reqs, [{ value => $r->[0] }];
        } elsif (ref $one eq 'ARRAY') {
            my @values = map {
                ref $_ eq 'HASH' ? $_->{value}
                : !ref $_ ? $_
                : bail_out("$name - Invalid syntax. $_ should be a string "
                           . "or hash with value.")
            } @$one;
            my $r = build_request($name, $hdr, $chunked, 'close', \@values);
            my @packets;
            for my $k (0 .. $#$r) {
                my %p = ref $one->[$k] eq 'HASH' ? %{ $one->[$k] } : ();
                $p{value} = $r->[$k];
                push @packets, \%p;
            }
            push @reqs, \@packets;
        } else {
            bail_out("$name - Invalid syntax. $one should be a string or "
                     . "an array of packets.");
        }
        $i++;
    }
    return \@reqs;
}

# -------------------------------------------------------------- the client

# Sends one request (its packets, in order) on a new connection and reads
# until the server closes it.  The timeout bounds each wait for the socket
# (the inactivity between two I/O events), as upstream's does.
sub send_request ($$$$;$) {
    my ($packets, $middle_delay, $timeout, $block, $tries) = @_;
    my $name = $block->name;
    my @bits = @$packets;

    my $head_req = (join '', map { $_->{value} } @bits) =~ /^\s*HEAD\s+/
                   ? 1 : 0;

    my $addr = $block->server_addr_for_client
               // $Test::Nginx::Util::ServerAddr;
    my $port = $Test::Nginx::Util::ServerPortForClient;

    my $sock = IO::Socket::INET->new(
        PeerAddr => $addr,
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => $timeout,
    );

    if (!$sock) {
        my $err = $!;
        $tries ||= 1;
        my $total = $TotalConnectingTimeouts ? 20 : 50;
        if ($tries <= $total) {
            my $step = sleep_time();
            my $wait = ($step + $step * $tries) * $tries / 2;
            $wait = 1 if $wait > 1;
            warn "$name - Can't connect to $addr:$port: $err\n"
                if $wait >= 0.6;
            sleep $wait;
            return send_request($packets, $middle_delay, $timeout, $block,
                                $tries + 1);
        }
        my $msg = "$name - Can't connect to $addr:$port: $err (aborted)\n";
        if (++$TotalConnectingTimeouts < 3) {
            Test::More->builder->no_ending(1);
            Test::More::fail($msg);
        } else {
            bail_out($msg);
        }
        return (undef, $head_req);
    }

    $sock->blocking(0);

    my $resp = '';
    my $first = shift @bits;
    my $wbuf = $first->{value};
    my $woff = 0;
    my ($reading, $writing) = (1, 1);

    while ($reading || $writing) {
        my $rsel = $reading ? IO::Select->new($sock) : undef;
        my $wsel = $writing ? IO::Select->new($sock) : undef;
        $! = 0;
        my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $timeout);

        if (!$r && !$w) {
            next if $! == EINTR;
            # Timed out: give up on this connection.
            close $sock;
            if (!defined $block->abort) {
                Test::More->builder->no_ending(1);
                Test::More::fail("ERROR: client socket timed out - $name\n");
            } else {
                sleep 0.005;
            }
            return ($resp, $head_req);
        }

        if ($r && @$r) {
            while (1) {
                my $n = sysread($sock, my $chunk, 8192);
                if (!defined $n) {
                    last if $! == EAGAIN || $! == EWOULDBLOCK;
                    next if $! == EINTR;
                    warn "WARNING: $name - HTTP response read failure: $!";
                    ($reading, $writing) = (0, 0);
                    last;
                }
                if ($n == 0) {
                    ($reading, $writing) = (0, 0);
                    last;
                }
                $resp .= $chunk;
            }
        }

        if ($writing && $w && @$w) {
            while (1) {
                my $left = length($wbuf) - $woff;
                if ($left > 0) {
                    my $n = syswrite($sock, $wbuf, $left, $woff);
                    if (!defined $n) {
                        last if $! == EAGAIN || $! == EWOULDBLOCK;
                        next if $! == EINTR;
                        warn "write failed: $!\n";
                        $resp = "write failed: $!" if $resp eq '';
                        ($reading, $writing) = (0, 0);
                        last;
                    }
                    $woff += $n;
                    next;
                }

                my $next = shift @bits;
                if (!$next) {
                    $writing = 0;
                    my $how = $block->shutdown;
                    if (defined $how) {
                        $how = 1 if $how =~ /^\s*$/;
                        shutdown($sock, $how);
                    }
                    last;
                }
                my $delay = defined $next->{delay_before}
                            ? $next->{delay_before} : $middle_delay;
                sleep $delay if $delay;
                ($wbuf, $woff) = ($next->{value}, 0);
            }
        }
    }

    close $sock;
    return ($resp, $head_req);
}

# ---------------------------------------------------------- the responses

{
    # The little of HTTP::Response the checks need.
    package Test::Nginx::Socket::Response;

    sub new {
        my ($class, $code, $headers, $content) = @_;
        return bless { code => $code, headers => $headers,
                       content => $content }, $class;
    }

    sub code {
        my $self = shift;
        $self->{code} = shift if @_;
        return $self->{code};
    }

    sub content {
        my $self = shift;
        $self->{content} = shift if @_;
        return $self->{content};
    }

    # Case-insensitive, "_" as "-"; several fields are joined with ", ".
    sub header {
        my ($self, $name) = @_;
        (my $want = lc $name) =~ tr/_/-/;
        my @vals = map { $_->[1] }
                   grep { lc($_->[0]) eq $want } @{ $self->{headers} };
        # as HTTP::Headers: an empty list (not one undef) when absent
        return wantarray ? @vals : (@vals ? join(', ', @vals) : undef);
    }
}

sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;

    my $raw_headers = '';
    $raw_headers = $1 if $raw =~ /(.*?\r\n)\r\n/s;

    my $rest = $raw;
    my $status_line = $rest =~ s/^([^\n]*)\n// ? $1 : do {
        my $l = $rest;
        $rest = '';
        $l;
    };
    $status_line =~ s/\r\z//;

    my $code;
    if ($status_line =~ /^\d{3} /) {
        ($code) = split ' ', $status_line, 2;
    } else {
        (undef, $code) = split ' ', $status_line, 3;
    }
    undef $code if defined $code && $code !~ /^\d+$/;

    my @headers;
    while ($rest =~ s/^([^\s:]+)[ \t]*: ?([^\n]*)\n?//) {
        my ($k, $v) = ($1, $2);
        $v =~ s/\r\z//;
        push @headers, [$k, $v];
    }
    $rest =~ s/^\r?\n//;

    my $res = Test::Nginx::Socket::Response->new($code, \@headers, $rest);
    my $left;

    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $te = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    if (defined $te && $te eq 'chunked') {
        my @trailers = $res->header('Trailer');
        my $body = $rest;
        my $decoded = '';
        pos($body) = 0;
        while (1) {
            if ($body =~ /\G0[ \t]*\r\n/gc) {
                for my $t (@trailers) {
                    if ($body !~ /\G\Q$t\E: [^\n]*\r\n/gc) {
                        Test::More->builder->no_ending(1);
                        Test::More::fail("$name - invalid trailer data "
                                         . "received (expected $t).");
                        return;
                    }
                }
                if ($body !~ /\G\r\n/gc) {
                    Test::More->builder->no_ending(1);
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(expected CRLF).");
                    return;
                }
                $left = $1 if $body =~ /\G(.+)/gcs;
                last;
            }
            if ($body =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
                my $size = hex $1;
                my $at = pos $body;
                if (length($body) - $at < $size) {
                    Test::More->builder->no_ending(1);
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(not enought octets for the data "
                                     . "section)");
                    return;
                }
                $decoded .= substr($body, $at, $size);
                pos($body) = $at + $size;
                if ($body !~ /\G\r\n/gc) {
                    Test::More->builder->no_ending(1);
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(expected CRLF).");
                    return;
                }
                next;
            }
            Test::More->builder->no_ending(1);
            if ($body =~ /\G(.+)/gcs) {
                Test::More::fail("$name - invalid chunked body received: $1");
            } else {
                Test::More::fail("$name - no last chunk found - $body");
            }
            return;
        }
        $res->content($decoded);

    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $rest < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($rest) . "\n" unless $head_req;
        } elsif (length $rest > $len) {
            $left = substr($rest, $len);
            $res->content(substr($rest, 0, $len));
        }
    }

    return ($res, $raw_headers, $left);
}

# ----------------------------------------------------------------- checks

sub patterns_of ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return 1 if ref $pat && $line =~ /$pat/;
    return $line =~ /\Q$pat\E/ ? 1 : 0;
}

sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub value_mentions ($$) {
    my ($val, $str) = @_;
    return 0 unless defined $val;
    return index("$val", $str) >= 0 ? 1 : 0 if !ref $val || ref $val eq 'Regexp';
    if (ref $val eq 'ARRAY') {
        for (@$val) { return 1 if value_mentions($_, $str) }
    }
    return 0;
}

sub get_indexed_value ($$$$) {
    my ($name, $value, $idx, $need_array) = @_;
    if ($need_array) {
        return $value->[$idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return $value->[0] if ref $value eq 'ARRAY';
    return $value;
}

sub skip_if_dry ($$) {
    my ($dry_run, $what) = @_;
    Test::More::skip("$what - tests skipped due to $dry_run", 1) if $dry_run;
}

sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';
    SKIP: {
        skip_if_dry($dry_run, "$name - error_code");
        if (defined $block->error_code_like) {
            my $pat = get_indexed_value($name, $block->error_code_like, $idx,
                                        $need_array);
            Test::More::like($code, qr/$pat/sm, "$name - status code ok");
        } elsif (defined $block->error_code) {
            Test::More::is($code, get_indexed_value($name, $block->error_code,
                                                    $idx, $need_array),
                           "$name - status code ok");
        } else {
            Test::More::is($code, 200, "$name - status code ok");
        }
    }
}

sub check_raw_response_headers ($$$$$) {
    my ($block, $raw_headers, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    if (defined $block->raw_response_headers_like) {
        SKIP: {
            skip_if_dry($dry_run, "$name - raw_response_headers_like");
            my $pat = get_indexed_value($name,
                $block->raw_response_headers_like, $idx, $need_array);
            Test::More::like($raw_headers, qr/$pat/s,
                             "$name - raw resp headers like");
        }
    }
    if (defined $block->raw_response_headers_unlike) {
        SKIP: {
            skip_if_dry($dry_run, "$name - raw_response_headers_unlike");
            my $pat = get_indexed_value($name,
                $block->raw_response_headers_unlike, $idx, $need_array);
            Test::More::unlike($raw_headers, qr/$pat/s,
                               "$name - raw resp headers unlike");
        }
    }
}

# "Name: value" lines; "!Name" means "no such field".  Like a hash: a name
# given twice is checked once, with its last value.
sub parse_header_spec ($) {
    my $text = shift;
    my (@order, %spec);
    for my $line (split /\n/, $text) {
        $line =~ s/^\s+|\s+$//g;
        my ($key, $val);
        if ($line =~ s/^!\s*//) {
            $key = $line;
        } else {
            ($key, $val) = split /\s*:\s*/, $line, 2;
        }
        push @order, $key unless exists $spec{$key};
        $spec{$key} = $val;
    }
    return map { [$_, $spec{$_}] } @order;
}

sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw_headers, $dry_run, $idx, $need_array) = @_;
    my $name = $block->name;
    my $port = $Test::Nginx::Util::ServerPort;
    my $cport = $Test::Nginx::Util::ServerPortForClient;

    if (defined $block->response_headers) {
        my $spec = get_indexed_value($name, $block->response_headers, $idx,
                                     $need_array);
        for my $h (parse_header_spec($spec)) {
            my ($key, $val) = @$h;
            SKIP: {
                skip_if_dry($dry_run, "$name - response_headers");
                if (!defined $val) {
                    Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                        "$name - header $key not present in the raw headers");
                    next;
                }
                $val =~ s/\$ServerPort\b/$port/g;
                $val =~ s/\$ServerPortForClient\b/$cport/g;
                my $got = $res ? $res->header($key) : undef;
                Test::More::is(defined $got ? $got : '', $val,
                               "$name - header $key ok");
            }
        }

    } elsif (defined $block->response_headers_like) {
        my $spec = get_indexed_value($name, $block->response_headers_like,
                                     $idx, $need_array);
        for my $h (parse_header_spec($spec)) {
            my ($key, $val) = @$h;
            $val = '' unless defined $val;
            my $got = $res ? $res->header($key) : undef;
            SKIP: {
                skip_if_dry($dry_run, "$name - response_headers_like");
                Test::More::like(defined $got ? $got : '', qr/^$val$/,
                                 "$name - header $key like ok");
            }
        }
    }
}

sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $idx, $rep_idx, $need_array) = @_;
    my $name = $block->name;
    my $port = $Test::Nginx::Util::ServerPort;
    my $cport = $Test::Nginx::Util::ServerPortForClient;

    if (defined(my $file = $block->write_resp_body_file)) {
        if ($res && open my $out, '>', $file) {
            print $out $res->content // '';
            close $out;
        }
    }

    my $content = $res ? $res->content : undef;

    if (defined $block->response_body || defined $block->response_body_eval)
    {
        my $expected;
        if (defined $block->response_body_eval) {
            Test::More::diag("$name - response_body_eval is DEPRECATED. Use "
                             . "response_body eval instead.");
            $expected = eval get_indexed_value($name,
                $block->response_body_eval, $idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body, $idx,
                                          $need_array);
        }

        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$port/g;
            $expected =~ s/\$ServerPortForClient\b/$cport/g;
            $expected = expand_env_in_text($expected, $name,
                                           $Test::Nginx::Util::RandPorts);
        }

        SKIP: {
            skip_if_dry($dry_run, "$name - response_body");
            if (ref $expected) {
                Test::More::like($content, $expected,
                    "$name - response_body - like (repeated req $rep_idx, "
                    . "req $idx)");
            } else {
                is_str($content, $expected,
                    "$name - response_body - response is expected (repeated "
                    . "req $rep_idx, req $idx)");
            }
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my $like = defined $block->response_body_like;
        my $pat = get_indexed_value($name,
            $like ? $block->response_body_like : $block->response_body_unlike,
            $idx, $need_array);
        $pat =~ s/\$ServerPort\b/$port/g;
        $pat =~ s/\$ServerPortForClient\b/$cport/g;
        my $summary = defined $content ? $content : '';
        $summary =~ s/^\s+|\s+$//g;
        $summary =~ s/\s+/ /g;
        my $type = $like ? 'like' : 'unlike';
        SKIP: {
            skip_if_dry($dry_run, "$name - response_body_$type");
            if ($like) {
                Test::More::like($content, qr/$pat/s,
                    "$name - response_body_like - response is expected "
                    . "($summary)");
            } else {
                Test::More::unlike($content, qr/$pat/s,
                    "$name - response_body_unlike - response is expected "
                    . "($summary)");
            }
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $idx, $rep_idx, $dry_run);
    }
}

# --- error_log / --- no_error_log style checks of a list of log lines.
sub check_log_patterns ($$$$$$) {
    my ($name, $pats, $lines, $negate, $dry_run, $what) = @_;
    my ($file, $suffix) = @$what;
    $pats = patterns_of($pats);

    if (!$negate) {
        my @left = @$pats;
        for my $line (@$lines) {
            for my $pat (@left) {
                next unless defined $pat;
                if (line_matches($line, $pat)) {
                    SKIP: {
                        skip_if_dry($dry_run, "$name - $file");
                        Test::More::pass("$name - pattern \"$pat\" matches a "
                                         . "line in $file$suffix");
                    }
                    undef $pat;
                }
            }
        }
        for my $pat (grep { defined } @left) {
            SKIP: {
                skip_if_dry($dry_run, "$name - $file");
                Test::More::fail("$name - pattern \"$pat\" should match a "
                                 . "line in $file$suffix");
            }
        }
        return;
    }

    my %found;
    for my $i (0 .. $#$lines) {
        my $line = $lines->[$i];
        for my $pat (@$pats) {
            next unless defined $pat && line_matches($line, $pat);
            Test::More->builder->no_ending(1) if $found{$pat}++;
            SKIP: {
                skip_if_dry($dry_run, "$name - no_$file");
                my $after = join '', @$lines[$i + 1 .. ($i + 9 < $#$lines
                                                        ? $i + 9
                                                        : $#$lines - 1)];
                Test::More::fail("$name - pattern \"" . fmt_str($pat)
                    . "\" should not match any line in $file but matches "
                    . "line \"" . fmt_str($line) . "\"$suffix\n$after");
            }
        }
    }
    for my $pat (@$pats) {
        next if !defined $pat || $found{$pat};
        SKIP: {
            skip_if_dry($dry_run, "$name - no_$file");
            Test::More::pass("$name - pattern \"" . fmt_str($pat)
                             . "\" does not match a line in $file$suffix");
        }
    }
}

sub check_access_log ($$$) {
    my ($block, $dry_run, $rep_idx) = @_;
    my $name = $block->name;
    return unless defined $block->access_log
                  || defined $block->no_access_log;
    my $lines = access_log_data();
    my $what = ['access.log', " (req $rep_idx)"];
    check_log_patterns($name, $block->access_log, $lines, 0, $dry_run, $what)
        if defined $block->access_log;
    check_log_patterns($name, $block->no_access_log, $lines, 1, $dry_run,
                       $what) if defined $block->no_access_log;
}

sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $rep_idx, $need_array) = @_;
    my $name = $block->name;

    # Every check consumes the lines logged since the previous one.
    my $lines = error_log_data();

    my $grep = $block->grep_error_log;
    if (defined $grep) {
        $grep = $grep->[$rep_idx] if ref $grep eq 'ARRAY';
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- "
                 . "grep_error_log is defined") unless defined $expected;
        $expected = expand_env_in_text($expected, $name,
                                       $Test::Nginx::Util::RandPorts);
        $expected = $expected->[$rep_idx] if ref $expected eq 'ARRAY';
        SKIP: {
            skip_if_dry($dry_run, "$name - error_log");
            my $out = '';
            for my $line (@$lines) {
                my $m;
                if (ref $grep && $line =~ /$grep/) {
                    $m = $&;
                } elsif ($line =~ /\Q$grep\E/) {
                    $m = $&;
                }
                $out .= "$m\n" if defined $m && $m !~ /\n/;
            }
            if (ref $expected eq 'Regexp') {
                Test::More::like($out, $expected,
                    "$name - grep_error_log_out (req $rep_idx)");
            } else {
                is_str($out, $expected,
                       "$name - grep_error_log_out (req $rep_idx)");
            }
        }
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but --- "
                 . "grep_error_log_out is defined");
    }

    my $what = ['error.log', " (req $rep_idx)"];
    if (defined $block->error_log) {
        check_log_patterns($name, $block->error_log, $lines, 0, $dry_run,
                           $what);
    }
    if (defined $block->no_error_log) {
        check_log_patterns($name, $block->no_error_log, $lines, 1, $dry_run,
                           $what);
    }

    # Not test failures, but never silent: severe lines nobody asked about.
    if (!$dry_run) {
        for my $level (qw(alert crit emerg)) {
            next if value_mentions($block->error_log, "[$level")
                    || value_mentions($block->no_error_log, "[$level");
            for my $line (@$lines) {
                warn "WARNING: $name - " . fmt_str($line) . "\n"
                    if $line =~ /\[$level\]/;
            }
        }
    }

    for my $line (@$lines) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            Test::More->builder->no_ending(1);
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $name = $block->name;
    my $lines = error_log_data();
    my $what = ['error.log', ''];

    if (defined $block->shutdown_error_log) {
        check_log_patterns($name, $block->shutdown_error_log, $lines, 0,
                           $dry_run, $what);
        for my $line (@$lines) {
            if ($line =~ /\bAssertion .*? failed\.$/) {
                Test::More->builder->no_ending(1);
                chomp(my $l = $line);
                Test::More::fail("$name - $l");
            }
        }
    }
    if (defined $block->no_shutdown_error_log) {
        check_log_patterns($name, $block->no_shutdown_error_log, $lines, 1,
                           $dry_run, $what);
    }
}

# ------------------------------------------------- one repetition, a block

sub run_test_helper ($$$) {
    my ($block, $dry_run, $rep_idx) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time($block->timeout);
    $timeout = timeout() unless defined $timeout;

    my $pipelined = $block->pipelined_requests;
    my $need_array = $pipelined ? 1 : @$reqs > 1;
    my $ignore = defined $block->ignore_response;

    my $res;
    my $idx = 0;
    for my $r (0 .. $#$reqs) {
        my ($raw, $head_req) = send_request($reqs->[$r],
            $block->raw_request_middle_delay, $timeout, $block);
        $raw = '' unless defined $raw;

        # Pipelined responses all come on one connection: take them one by
        # one.  Each one is checked like a response of an array request.
        my $n = $pipelined ? scalar @$pipelined : 0;
        while (1) {
            my ($raw_headers, $left) = ('', undef);
            if (!$ignore) {
                if (defined $block->http09) {
                    $res = Test::Nginx::Socket::Response->new(200, [], $raw);
                } else {
                    ($res, $raw_headers, $left)
                        = parse_response($name, $raw, $head_req);
                    $raw_headers = '' unless defined $raw_headers;
                }
            }

            if ($n) {
                $raw = defined $left ? $left : '';
                $n--;
            } elsif (defined $left && $left ne '') {
                (my $show = $left) =~ s/([\0-\037\200-\377])/
                                        sprintf('\x{%02x}', ord $1)/ge;
                warn "WARNING: $name - unexpected extra bytes after last "
                     . "chunk in response: \"$show\"\n";
            }

            if (!$ignore) {
                check_error_code($block, $res, $dry_run, $idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $dry_run,
                                           $idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $dry_run,
                                       $idx, $need_array);
                check_response_body($block, $res, $dry_run, $idx, $rep_idx,
                                    $need_array);
            }

            # Between requests the logs are checked too (upstream does).
            if ($n || $r < $#$reqs) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $res, $dry_run, $rep_idx,
                                $need_array);
                check_access_log($block, $dry_run, $rep_idx) unless $ignore;
            }

            $idx++;
            last unless $n;
        }
    }

    sleep $block->wait if $block->wait;
    check_error_log($block, $res, $dry_run, $rep_idx, $need_array);
    check_access_log($block, $dry_run, $rep_idx) unless $ignore;
}

1;
