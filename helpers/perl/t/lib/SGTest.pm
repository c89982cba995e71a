package SGTest;
# Test-side tools, written apart from the code under test: the vectors, a token and
# rid minter standing in for the gateway, JWS decoding, RFC 7396 merge.
use strict;
use warnings;
use FindBin ();
use Digest::SHA qw(hmac_sha256);
use JSON::PP ();
use MIME::Base64 qw(encode_base64url decode_base64url);
use Exporter 'import';

our @EXPORT = qw(
  $VECTORS $REPO $RID %SHOP_KEYS %BLOG_KEYS canonical jws_parts hs256_ok mint_token mint_rid fresh_payload
  apply_merge_patch
);

our $REPO = "$FindBin::Bin/../../..";
our $VECTORS = do {
  open my $fh, '<:raw', "$REPO/test/vectors/protocol-v3.json" or die "vectors: $!";
  local $/;
  JSON::PP->new->utf8->decode(<$fh>);
};
die "vectors: expected protocol version 3, got $VECTORS->{version}\n" unless ($VECTORS->{version} // 0) == 3;
# The rid header the vectors send (PROTOCOL.md section 2: 22 base64url characters).
our $RID = $VECTORS->{tokens}{valid}[0]{rid};
our %SHOP_KEYS = %{ $VECTORS->{keys}{mountKeys}{shop} };
our %BLOG_KEYS = %{ $VECTORS->{keys}{mountKeys}{blog} };

my $JSON = JSON::PP->new->utf8->canonical;

# Strict JSON equality by canonical text (types included: "42" is not 42).
sub canonical { $JSON->encode($_[0]) }

sub jws_parts {
  my ($value) = @_;
  my ($h, $p, $s) = split /\./, $value;
  return ($JSON->decode(decode_base64url($h)), $JSON->decode(decode_base64url($p)));
}

sub hs256_ok {
  my ($value, $key_text) = @_;
  my ($h, $p, $s) = split /\./, $value;
  return encode_base64url(hmac_sha256("$h.$p", decode_base64url($key_text))) eq $s;
}

sub mint_token {
  my ($payload, %opt) = @_;
  my $kid = $opt{kid} // '2026-11';
  my $key = $opt{key} // $SHOP_KEYS{$kid};
  my $h = encode_base64url($JSON->encode({ alg => 'HS256', kid => $kid, typ => 'JWT' }));
  my $p = encode_base64url($JSON->encode($payload));
  return "$h.$p." . encode_base64url(hmac_sha256("$h.$p", decode_base64url($key)));
}

# A fresh X-Session-Gateway-Rid value, as the gateway makes one per request: 16 random
# bytes in base64url.
sub mint_rid { encode_base64url(join '', map { chr int rand 256 } 1 .. 16) }

# A version 3 payload: no rid (it travels in its own header).
sub fresh_payload {
  my (%override) = @_;
  my $now = time;
  return {
    v => 3, iss => 'session-gateway', aud => 'shop', iat => $now, exp => $now + 60,
    sid => 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe',
    idleExp => $now + 1800, absExp => $now + 43200,
    data => { user => { id => 42, name => 'Ada' }, cart => [1, 2, 3], note => 'hi' },
    %override,
  };
}

sub apply_merge_patch {
  my ($target, $patch) = @_;
  return $patch unless ref $patch eq 'HASH';
  my %result = ref $target eq 'HASH' ? %$target : ();
  for my $k (keys %$patch) {
    if (defined $patch->{$k}) { $result{$k} = apply_merge_patch($result{$k}, $patch->{$k}) }
    else                      { delete $result{$k} }
  }
  return \%result;
}

1;
