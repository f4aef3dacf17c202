package Test::RateLimit::Redis;

# A tiny synchronous RESP2 client for the tests: binary-safe (every
# argument is sent as a bulk string of its bytes), replies as Perl values:
#
#   +OK            'OK'                    (a plain string)
#   -ERR msg       Test::RateLimit::Redis::Error object ($e->message)
#   :42            42
#   $n bytes       the bytes, or undef for a null bulk string
#   *n ...         an array reference, or undef for a null array
#
#   my $r = Test::RateLimit::Redis->new(port => $port);
#   my $v = $r->cmd('SET', $key, $value);
#   die $v->message if Test::RateLimit::Redis::is_error($v);

use strict;
use warnings;

use IO::Socket::INET;
use Carp qw(croak);

sub new {
    my ($class, %opt) = @_;

    my $host = $opt{host} // '127.0.0.1';
    my $port = $opt{port} // croak 'port is required';

    my $sock = IO::Socket::INET->new(
        PeerAddr => $host,
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => $opt{timeout} // 5,
    ) or croak "cannot connect to redis at $host:$port: $@";

    binmode $sock;
    $sock->autoflush(1);

    return bless { sock => $sock, buf => '' }, $class;
}

# Sends one command and returns its reply.
sub cmd {
    my ($self, @args) = @_;

    $self->send_cmd(@args);
    return $self->read_reply;
}

sub send_cmd {
    my ($self, @args) = @_;

    croak 'empty command' unless @args;

    my $out = '*' . scalar(@args) . "\r\n";
    for my $a (@args) {
        croak 'undef argument' unless defined $a;
        my $b = "$a";
        utf8::encode($b) if utf8::is_utf8($b);
        $out .= '$' . length($b) . "\r\n" . $b . "\r\n";
    }

    my $off = 0;
    while ($off < length $out) {
        my $n = syswrite $self->{sock}, $out, length($out) - $off, $off;
        croak "write to redis: $!" unless defined $n;
        $off += $n;
    }
}

sub read_reply {
    my ($self) = @_;

    my $line = $self->_line;
    my $type = substr $line, 0, 1, '';

    return $line if $type eq '+';
    return Test::RateLimit::Redis::Error->new($line) if $type eq '-';
    return 0 + $line if $type eq ':';

    if ($type eq '$') {
        return undef if $line < 0;
        my $data = $self->_bytes($line + 2);
        croak 'bulk string not ended by CRLF' unless $data =~ s/\r\n\z//;
        return $data;
    }

    if ($type eq '*') {
        return undef if $line < 0;
        return [ map { $self->read_reply } 1 .. $line ];
    }

    croak "unexpected reply type '$type'";
}

sub is_error {
    my ($v) = @_;
    return ref $v && ref $v eq 'Test::RateLimit::Redis::Error';
}

sub _fill {
    my ($self) = @_;

    my $n = sysread $self->{sock}, $self->{buf}, 65536, length $self->{buf};
    croak "read from redis: $!" unless defined $n;
    croak 'redis closed the connection' if $n == 0;
}

sub _line {
    my ($self) = @_;

    my $i;
    $self->_fill while ($i = index $self->{buf}, "\r\n") < 0;
    my $line = substr $self->{buf}, 0, $i + 2, '';
    substr $line, -2, 2, '';
    return $line;
}

sub _bytes {
    my ($self, $n) = @_;

    $self->_fill while length $self->{buf} < $n;
    return substr $self->{buf}, 0, $n, '';
}


package Test::RateLimit::Redis::Error;

use overload '""' => sub { $_[0]->{message} }, fallback => 1;

sub new { my ($class, $msg) = @_; return bless { message => $msg }, $class }

sub message { $_[0]->{message} }

1;
