# The distribution's shape: one package per file, each with the distribution's $VERSION,
# and cpanfile listing the prerequisites Makefile.PL declares (read back from the
# MYMETA.json that `perl Makefile.PL` writes).
use strict;
use warnings;
use FindBin;
use File::Find ();
use File::Spec;
use JSON::PP ();
use Test::More;

my $dist = File::Spec->catdir($FindBin::Bin, '..');
my @modules;
File::Find::find({ no_chdir => 1, wanted => sub { push @modules, $_ if /\.pm\z/ } }, "$dist/lib");
@modules = sort @modules;
ok(@modules >= 3, 'lib/ holds the modules (' . scalar(@modules) . ')');

sub code_of {
  open my $fh, '<', $_[0] or die "$_[0]: $!";
  local $/;
  my $text = <$fh>;
  $text =~ s/^__END__\n.*\z//ms;    # POD after __END__ may show package names in examples
  return $text;
}

my ($dist_version) = code_of("$dist/lib/Plack/Middleware/SessionGateway.pm") =~ /^our \$VERSION = '([^']+)';/m;
ok(defined $dist_version, "the distribution's version comes from Plack::Middleware::SessionGateway ($dist_version)");

for my $file (@modules) {
  my $code = code_of($file);
  (my $rel = $file) =~ s{\A\Q$dist\E/lib/}{};
  (my $expected = $rel) =~ s{/}{::}g;
  $expected =~ s/\.pm\z//;
  my @packages = $code =~ /^package\s+([\w:]+)\s*;/mg;
  is_deeply(\@packages, [$expected], "$rel declares one package, $expected");
  my ($version) = $code =~ /^our \$VERSION = '([^']+)';/m;
  is($version, $dist_version, "$rel has \$VERSION $dist_version");
}

SKIP: {
  my $meta_file = "$dist/MYMETA.json";
  skip 'no MYMETA.json: run perl Makefile.PL first (make test does)', 4 unless -e $meta_file;
  my $meta = JSON::PP->new->decode(do { open my $fh, '<', $meta_file or die $!; local $/; <$fh> });

  my %cpanfile;
  {
    package CpanfileReader;
    our $phase = 'runtime';
    no strict 'refs';
    *{"CpanfileReader::requires"}   = sub { $cpanfile{$phase}{requires}{ $_[0] }   = $_[1] // 0 };
    *{"CpanfileReader::recommends"} = sub { $cpanfile{$phase}{recommends}{ $_[0] } = $_[1] // 0 };
    *{"CpanfileReader::on"}         = sub { local $phase = $_[0]; $_[1]->() };
  }
  my $source = do { open my $fh, '<', "$dist/cpanfile" or die $!; local $/; <$fh> };
  eval "package CpanfileReader; $source; 1" or die "cpanfile: $@";

  for my $phase (qw(configure runtime test)) {
    my $declared = { %{ $meta->{prereqs}{$phase}{requires} || {} } };
    delete $declared->{perl} if $phase ne 'runtime';
    is_deeply($cpanfile{$phase}{requires} || {}, $declared, "cpanfile and Makefile.PL agree on the $phase requirements");
  }
  is_deeply($cpanfile{runtime}{recommends} || {}, $meta->{prereqs}{runtime}{recommends} || {}, 'and on what is recommended');
}

done_testing;
