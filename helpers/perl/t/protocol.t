# Every protocol-v1 token vector, the write-back round trip, and the protocol edges.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib", "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use MIME::Base64 qw(decode_base64url encode_base64url);
use Digest::SHA qw(hmac_sha256);
use SGTest;
use SessionGateway::Protocol qw(:all);

my $NO_ED25519 = 'EdDSA needs Crypt::PK::Ed25519 (Debian: libcryptx-perl), which is not installed';
my $skew = $VECTORS->{skewSeconds};

sub vector_keys {
  my ($v) = @_;
  return public_keys_from_jwks($VECTORS->{keys}{jwks}) if $v->{alg} eq 'EdDSA';
  return $VECTORS->{keys}{mountKeys}{ $v->{mount} };
}

# True when verifying reaches the Ed25519 check (the token itself says EdDSA).
sub needs_ed25519 {
  my ($v) = @_;
  return 0 unless $v->{alg} eq 'EdDSA';
  my ($header) = eval { jws_parts($v->{token}) };
  return $header && ($header->{alg} // '') eq 'EdDSA';
}

sub verify_vector {
  my ($v) = @_;
  return verify_token($v->{token}, mount => $v->{mount}, keys => vector_keys($v), alg => $v->{alg},
    now => $v->{now}, skew => $skew);
}

sub error_of {
  my ($code) = @_;
  my $ok = eval { $code->(); 1 };
  return 'no error' if $ok;
  return ref $@ && $@->isa('SessionGateway::Error') ? $@->code : "not a protocol error: $@";
}

subtest 'derived mount keys match the vectors' => sub {
  for my $mount (sort keys %{ $VECTORS->{keys}{mountKeys} }) {
    for my $kid (sort keys %{ $VECTORS->{keys}{mountKeys}{$mount} }) {
      is b64url_encode(derive_mount_key($VECTORS->{keys}{secrets}{$kid}, $mount)),
        $VECTORS->{keys}{mountKeys}{$mount}{$kid}, "$mount/$kid";
    }
  }
};

for my $v (@{ $VECTORS->{tokens}{valid} }) {
  subtest "valid token: $v->{name}" => sub {
    plan skip_all => $NO_ED25519 if needs_ed25519($v) && !eddsa_available();
    my $claims = eval { verify_vector($v) };
    ok $claims, 'verifies' or diag $@;
    is canonical($claims), canonical($v->{expect}), 'claims equal expect';
  };
}

for my $v (@{ $VECTORS->{tokens}{invalid} }) {
  subtest "invalid token: $v->{name}" => sub {
    plan skip_all => $NO_ED25519 if needs_ed25519($v) && !eddsa_available();
    is error_of(sub { verify_vector($v) }), $v->{error}, "refused as $v->{error}";
  };
}

subtest 'every valid write-back round trips' => sub {
  for my $v (@{ $VECTORS->{writeBacks}{valid} }) {
    my ($ref_header, $ref_payload) = jws_parts($v->{header});
    my $kid = $ref_header->{kid};
    my $wb = $v->{writeBack};
    my $built = build_write_back($v->{binding}, $kid, $SHOP_KEYS{$kid},
      (exists $wb->{set} ? (set => $wb->{set}) : ()),
      regenerate => $wb->{regenerate}, destroy => $wb->{destroy}, revoke_user => $wb->{revokeUser});
    my ($header, $payload) = jws_parts($built);
    is canonical($header), canonical($ref_header), "$v->{name}: header";
    is canonical($payload), canonical($ref_payload), "$v->{name}: payload";
    ok hs256_ok($built, $SHOP_KEYS{$kid}), "$v->{name}: verifies under the derived key";
    ok !hs256_ok($built, $BLOG_KEYS{$kid}), "$v->{name}: not under another mount's key";
    my %asked = map { $_ => $payload->{$_} } grep { !/\A(?:v|aud|rid|sid)\z/ } keys %$payload;
    is canonical(\%asked), canonical($v->{expect}), "$v->{name}: asks for what expect says";
  }
};

subtest 'the builder refuses what the gateway would refuse' => sub {
  my $binding = $VECTORS->{writeBacks}{valid}[0]{binding};
  my $key = $SHOP_KEYS{'2026-11'};
  my @cases = (
    [{ destroy => 1, set => { cart => [] } }, 'malformed'],
    [{ destroy => 1, regenerate => 1 },        'malformed'],
    [{},                                       'malformed'],
    [{ set => { cookie => {} } },              'reserved_key'],
    [{ set => { _gateway => {} } },            'reserved_key'],
    [{ set => { note => 'x' x 9000 } },        'too_large'],
  );
  for my $case (@cases) {
    my ($ask, $code) = @$case;
    is error_of(sub { build_write_back($binding, '2026-11', $key, %$ask) }), $code, "$code: " . join(',', sort keys %$ask);
  }
};

subtest 'header lookup: value, headers, PSGI env' => sub {
  my $v = $VECTORS->{tokens}{valid}[0];
  my %opt = (mount => 'shop', keys => \%SHOP_KEYS, now => $v->{now});
  for my $from ({ 'x-session-gateway-token' => $v->{token} }, { HTTP_X_SESSION_GATEWAY_TOKEN => $v->{token} },
    { 'X_Session_Gateway_Token' => $v->{token} }, $v->{token}) {
    is verify_token($from, %opt)->{sid}, $v->{expect}{sid}, ref $from ? join(',', keys %$from) : 'value';
  }
  is error_of(sub { verify_token({ 'Content-Type' => 'text/plain' }, %opt) }), 'missing', 'absent header';
  is error_of(sub { verify_token(undef, %opt) }), 'missing', 'undef';
  is error_of(sub { verify_token({ HTTP_X_SESSION_GATEWAY_TOKEN => $v->{token},
    'x-session-gateway-token' => $VECTORS->{tokens}{valid}[1]{token} }, %opt) }), 'malformed', 'two different tokens';
  my ($claims, $kid) = verify_token($v->{token}, %opt);
  is $kid, '2026-11', 'list context gives the kid';
  my %raw = map { $_ => decode_base64url($SHOP_KEYS{$_}) } keys %SHOP_KEYS;
  is verify_token($v->{token}, %opt, keys => \%raw)->{rid}, $v->{expect}{rid}, 'raw 32-byte keys';
  ok !eval { verify_token($v->{token}, %opt, keys => { '2026-11' => $VECTORS->{keys}{secrets}{'2026-11'} }); 1 },
    'the gateway secret instead of the mount key is a config error';
  like $@, qr/derived mount key/, '... saying so';
};

subtest 'keys_from_env' => sub {
  my $cfg = keys_from_env({ SESSION_GATEWAY_MOUNT => 'shop',
    SESSION_GATEWAY_KEYS => "2026-11:$SHOP_KEYS{'2026-11'}, 2026-10:$SHOP_KEYS{'2026-10'}" });
  is $cfg->{mount}, 'shop', 'mount';
  is_deeply $cfg->{key_ids}, ['2026-11', '2026-10'], 'key order kept';
  my $older = $VECTORS->{tokens}{valid}[1];
  is verify_token($older->{token}, mount => $cfg->{mount}, keys => $cfg->{keys}, now => $older->{now})->{sid},
    $older->{expect}{sid}, 'verifies the older-key vector';
  for my $bad ({}, { SESSION_GATEWAY_MOUNT => 'shop' }, { SESSION_GATEWAY_MOUNT => 'shop', SESSION_GATEWAY_KEYS => 'nokid' },
    { SESSION_GATEWAY_MOUNT => 'shop', SESSION_GATEWAY_KEYS => 'k:short' }) {
    ok !eval { keys_from_env($bad); 1 }, 'refuses ' . join(' ', map {"$_=$bad->{$_}"} sort keys %$bad);
  }
};

subtest 'skew boundaries and JSON types' => sub {
  my $token = mint_token(fresh_payload(iat => 1000, exp => 1060));
  my %opt = (mount => 'shop', keys => \%SHOP_KEYS);
  is error_of(sub { verify_token($token, %opt, now => 990) }),  'no error', 'iat 10 s ahead';
  is error_of(sub { verify_token($token, %opt, now => 989) }),  'future',   'iat 11 s ahead';
  is error_of(sub { verify_token($token, %opt, now => 1070) }), 'no error', 'exp 10 s ago';
  is error_of(sub { verify_token($token, %opt, now => 1071) }), 'stale',    'exp 11 s ago';
  my $now = time;
  is error_of(sub { verify_token(mint_token(fresh_payload(v => JSON::PP::true)), %opt, now => $now) }),
    'unsupported_version', 'v: true is not 1';
  is error_of(sub { verify_token(mint_token(fresh_payload(iat => "$now")), %opt, now => $now) }),
    'malformed', 'iat as a string';
  is error_of(sub { verify_token(mint_token(fresh_payload(aud => 42)), %opt, now => $now) }),
    'malformed', 'aud as a number';
  is error_of(sub { verify_token(mint_token(fresh_payload(idleExp => 1.5)), %opt, now => $now) }),
    'malformed', 'idleExp not an integer';
  # A base64url length with remainder 1 mod 4 is refused even where a lax decoder would
  # drop the extra characters and the signature would still match.
  my $good = mint_token(fresh_payload());
  is error_of(sub { verify_token($good, %opt, now => $now) }), 'no error', 'the untouched token verifies';
  is error_of(sub { verify_token($good . 'AA', %opt, now => $now) }), 'malformed', 'signature of 45 characters';
  is error_of(sub { verify_token($good =~ s/\./AA./r, %opt, now => $now) }), 'malformed', 'header of 45 characters';
};

subtest 'merge_diff reproduces what the app set' => sub {
  my $before = { user => { id => 42, name => 'Ada' }, cart => [1, 2, 3], note => 'hi', n => 42 };
  my $after  = { user => { id => 7 }, cart => [1, 2, 3], promo => { code => 'X' }, n => '42' };
  my $patch = merge_diff($before, $after);
  is canonical($patch), canonical({ user => { id => 7, name => undef }, note => undef, promo => { code => 'X' } }),
    'patch: nested delete, delete, add; "42" is not a change of 42';
  is canonical(apply_merge_patch($before, $patch)), canonical({ %$after, n => 42 }), 'applying it gives the new data';
};

done_testing;
