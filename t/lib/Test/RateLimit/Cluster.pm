package Test::RateLimit::Cluster;

# A Redis Cluster for the tests: N redis-servers with --cluster-enabled on
# loopback ports of the test's own (each an Instances::Redis, with its own
# directory for nodes.conf), joined by `redis-cli --cluster create` with
# one replica per master.  cluster-node-timeout is short (1000 ms) so a
# killed master's replica is promoted within seconds.  Stopped by pid at
# END (Instances does it).
#
#   my $c = Test::RateLimit::Cluster->start(nodes => 6);
#   $c->ports;                  # every node
#   $c->masters;                # the ports of the masters now
#   $c->slot_port($slot);       # the master serving a slot now
#   $c->keyslot($key);          # CLUSTER KEYSLOT
#   $c->node($port);            # its Instances::Redis (kill, restart)
#   $c->move_slot($slot, $to, sub { ... });   # resharding, step by step
#   $c->drop_slot($slot); $c->give_slot($slot, $port);  # a slot unserved

use strict;
use warnings;

use Time::HiRes qw(time sleep);
use Test::RateLimit::Client qw(free_port);
use Test::RateLimit::Redis;
use Test::RateLimit::Instances;

sub start {
    my ($class, %opt) = @_;

    my $n = $opt{nodes} // 6;
    my $self = bless { nodes => {}, ports => [] }, $class;

    for (1 .. $n) {
        # the bus port is its own: port + 10000 may be past 65535
        my $port = free_port();
        $self->{nodes}{$port} = Test::RateLimit::Instances::Redis->start(
            port => $port,
            args => ['--cluster-enabled', 'yes',
                     '--cluster-port', free_port(),
                     '--cluster-config-file', 'nodes.conf',
                     '--cluster-node-timeout', $opt{node_timeout} // 1000,
                     # a replica takes over however long it was apart
                     '--cluster-replica-validity-factor', 0,
                     # a slot without a master stops only that slot
                     '--cluster-require-full-coverage', 'no',
                     '--enable-debug-command', 'local']);
        push @{ $self->{ports} }, $port;
    }

    my $cli = $ENV{TEST_NGINX_REDIS_CLI} || 'redis-cli';
    my $out = `$cli --cluster create @{[ map { "127.0.0.1:$_" } $self->ports ]} --cluster-replicas 1 --cluster-yes 2>&1`;
    die "redis-cli --cluster create failed:\n$out\n" if $?;

    $self->wait_ok(20) or die "the cluster is not ok:\n$out\n";

    return $self;
}

sub ports { @{ $_[0]->{ports} } }

sub node { $_[0]->{nodes}{ $_[1] } }

sub cmd {
    my ($self, $port, @args) = @_;
    return Test::RateLimit::Redis->new(port => $port, timeout => 2)
        ->cmd(@args);
}

# Every node that runs says cluster_state:ok, the masters it names run,
# and every replica has synced with its master.
sub wait_ok {
    my ($self, $secs) = @_;

    my $deadline = time + $secs;
    while (time < $deadline) {
        my $ok = 1;
        for my $port ($self->ports) {
            next unless $self->node($port)->pid;
            my $info = eval { $self->cmd($port, 'CLUSTER', 'INFO') } // '';
            $ok = 0 unless $info =~ /cluster_state:ok/;
            my $slots = eval { $self->cmd($port, 'CLUSTER', 'SLOTS') };
            $ok = 0 unless ref $slots eq 'ARRAY' && @$slots
                && !grep { !$self->node($_->[2][1])->pid } @$slots;
            my $repl = eval { $self->cmd($port, 'INFO', 'replication') } // '';
            $ok = 0 if $repl =~ /role:slave/
                && $repl !~ /master_link_status:up/;
        }
        return 1 if $ok;
        sleep 0.1;
    }
    return 0;
}

sub _slots {
    my ($self) = @_;
    for my $port ($self->ports) {
        next unless $self->node($port)->pid;
        my $r = eval { $self->cmd($port, 'CLUSTER', 'SLOTS') };
        return $r if ref $r eq 'ARRAY';
    }
    return [];
}

sub masters {
    my ($self) = @_;
    my %m = map { $_->[2][1] => 1 } @{ $self->_slots };
    return sort { $a <=> $b } keys %m;
}

sub slot_port {
    my ($self, $slot) = @_;
    for my $r (@{ $self->_slots }) {
        return $r->[2][1] if $slot >= $r->[0] && $slot <= $r->[1];
    }
    return undef;
}

sub keyslot {
    my ($self, $key) = @_;
    return $self->cmd($self->{ports}[0], 'CLUSTER', 'KEYSLOT', $key);
}

# The slot Redis computes for a key: CRC-16/XMODEM of its hash tag.
sub slot_of {
    my ($key) = @_;
    $key = $1 if $key =~ /\{([^}]+)\}/;
    my $crc = 0;
    for my $c (unpack 'C*', $key) {
        $crc ^= $c << 8;
        for (1 .. 8) {
            $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) & 0xffff
                                 : ($crc << 1) & 0xffff;
        }
    }
    return $crc % 16384;
}

sub node_id {
    my ($self, $port) = @_;
    return $self->cmd($port, 'CLUSTER', 'MYID');
}

# Moves a slot to another master as redis-cli --cluster reshard does:
# IMPORTING on the target, MIGRATING on the source, MIGRATE of its keys,
# SETSLOT NODE everywhere.  $between->($phase) runs after 'migrating'
# (ASK is what a client gets then) and after 'migrated'.
sub move_slot {
    my ($self, $slot, $to, $between) = @_;

    my $from = $self->slot_port($slot);
    die "slot $slot is already on $to\n" if $from == $to;
    my ($fid, $tid) = ($self->node_id($from), $self->node_id($to));

    _ok($self->cmd($to, 'CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $fid));
    _ok($self->cmd($from, 'CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $tid));
    $between->('migrating') if $between;

    while (1) {
        my $keys = $self->cmd($from, 'CLUSTER', 'GETKEYSINSLOT', $slot, 100);
        last unless ref $keys eq 'ARRAY' && @$keys;
        _ok($self->cmd($from, 'MIGRATE', '127.0.0.1', $to, '', 0, 5000,
                       'KEYS', @$keys));
    }
    $between->('migrated') if $between;

    for my $port ($to, $from, grep { $_ != $to && $_ != $from }
                                   $self->masters)
    {
        _ok($self->cmd($port, 'CLUSTER', 'SETSLOT', $slot, 'NODE', $tid));
    }
}

# Every running node forgets who serves $slot (CLUSTER DELSLOTS); give
# it back with give_slot.
sub drop_slot {
    my ($self, $slot) = @_;
    for my $port ($self->ports) {
        next unless $self->node($port)->pid;
        _ok($self->cmd($port, 'CLUSTER', 'DELSLOTS', $slot));
    }
}

sub give_slot {
    my ($self, $slot, $port) = @_;
    _ok($self->cmd($port, 'CLUSTER', 'ADDSLOTS', $slot));
    my $deadline = time + 10;
    sleep 0.1 until ($self->slot_port($slot) // 0) == $port
                    || time > $deadline;
}

sub _ok {
    my ($r) = @_;
    die 'cluster command: ' . (ref $r ? $r->message : $r // 'undef') . "\n"
        if ref $r;
}

1;
