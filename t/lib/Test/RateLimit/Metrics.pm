package Test::RateLimit::Metrics;

# The module's metrics as an independent parser reads them: the text a
# rate_limit_metrics location serves, handed to Debian's
# python3-prometheus-client (prometheus_parse.py beside this file).
#
#   use Test::RateLimit::Metrics qw(scrape parse metric);
#
#   scrape(PATH, %http_get_options)
#                   GET PATH; returns { text => BODY, families => {NAME =>
#                   {type, help}}, samples => [{sample, labels, value}] }
#                   (parse() of the body), or dies when the parser refuses
#   parse(TEXT)     the same for a text
#   metrics_location()
#                   a "location = /metrics" with rate_limit_metrics, not
#                   limited itself, for a block's config
#   metric($m, NAME, LABEL => VALUE, ...)
#                   the value of the one sample NAME with those labels (others
#                   may be there too), undef when there is none

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Temp ();
use JSON::PP ();

use Test::RateLimit::Client qw(http_get);

use Exporter 'import';
our @EXPORT_OK = qw(scrape parse metric metrics_location);

my $Parser = dirname(__FILE__) . '/prometheus_parse.py';

sub scrape {
    my ($path, %opt) = @_;

    my $r = http_get($path, %opt);
    die "GET $path: " . ($r->{status} // $r->{error}) . "\n"
        unless ($r->{status} // 0) == 200;

    my $m = parse($r->{body});
    $m->{content_type} = $r->{headers}{'content-type'};
    return $m;
}

sub parse {
    my ($text) = @_;

    # the text goes in through a file: no pipe to fill both ways
    my $in = File::Temp->new;
    binmode $in;
    print $in $text;
    close $in;

    my $json = `/usr/bin/python3 $Parser < @{[ $in->filename ]} 2>&1`;
    die "prometheus parser refused the text: $json\n" if $? != 0;

    my (%families, @samples);
    my $j = JSON::PP->new;
    for my $line (split /\n/, $json) {
        my $o = $j->decode($line);
        if (exists $o->{family}) {
            $families{ $o->{family} } = { type => $o->{type},
                                          help => $o->{help} };
        } else {
            push @samples, $o;
        }
    }

    return { text => $text, families => \%families, samples => \@samples };
}

sub metrics_location {
    return <<'_EOC_';
    location = /metrics {
        rate_limit off;
        rate_limit_metrics;
    }
_EOC_
}

sub metric {
    my ($m, $name, %labels) = @_;

    SAMPLE: for my $s (@{ $m->{samples} }) {
        next unless $s->{sample} eq $name;
        for my $k (keys %labels) {
            next SAMPLE unless ($s->{labels}{$k} // "\0") eq $labels{$k};
        }
        return $s->{value};
    }

    return undef;
}

1;
