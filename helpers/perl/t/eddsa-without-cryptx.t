# Without Crypt::PK::Ed25519, EdDSA tokens are refused as unsupported_algorithm with
# a message that says what to install; HS256 is unaffected. Runs a fresh perl in
# which loading Crypt::PK::* fails, whether or not CryptX is installed here.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib", "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use SGTest;

my $script = <<'PERL';
BEGIN { unshift @INC, sub { die "blocked for the test\n" if $_[1] =~ m{\ACrypt/PK/}; return } }
use strict; use warnings; use JSON::PP ();
use SessionGateway::Protocol qw(verify_token public_keys_from_jwks eddsa_available);
my $vectors = do { local $/; open my $fh, '<:raw', $ARGV[0] or die $!; JSON::PP->new->utf8->decode(<$fh>) };
my %out = (available => eddsa_available());
for my $v (@{ $vectors->{tokens}{valid} }) {
  my $keys = $v->{alg} eq 'EdDSA' ? public_keys_from_jwks($vectors->{keys}{jwks}) : $vectors->{keys}{mountKeys}{shop};
  my $ok = eval { verify_token($v->{token}, rid => $v->{rid}, mount => 'shop', keys => $keys, alg => $v->{alg},
    now => $v->{now}); 1 };
  $out{ $v->{name} } = $ok ? 'ok' : [$@->code, "$@"];
}
print JSON::PP->new->canonical->encode(\%out);
PERL

# List-form open: no shell, so the script needs no quoting.
open my $child, '-|', $^X, "-I$FindBin::Bin/../lib", '-e', $script, "$REPO/test/vectors/protocol-v3.json"
  or die "cannot run $^X: $!";
my $out = do { local $/; <$child> };
close $child;
is $?, 0, 'the child perl ran';
my $result = JSON::PP->new->decode($out);
is $result->{available}, 0, 'Crypt::PK::Ed25519 is blocked in the child';
is $result->{'EdDSA token'}[0], 'unsupported_algorithm', 'EdDSA token refused';
like $result->{'EdDSA token'}[1], qr/Crypt::PK::Ed25519.*libcryptx-perl/, 'the message says what to install';
is $result->{'session with data, newest key'}, 'ok', 'HS256 still verifies';

done_testing;
