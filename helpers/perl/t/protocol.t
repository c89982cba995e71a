# Every protocol-v2 token vector (each with its X-Session-Gateway-Rid header), the
# write-back round trip, and the protocol edges.
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

# The two header values as separate arguments: rid undef is a request without the header.
sub verify_vector {
  my ($v) = @_;
  return verify_token($v->{token}, rid => $v->{rid}, mount => $v->{mount}, keys => vector_keys($v),
    alg => $v->{alg}, now => $v->{now}, skew => $skew);
}

# The same request as a PSGI env, both values read from it (a null rid: no such key).
sub verify_vector_env {
  my ($v) = @_;
  my %env = (REQUEST_METHOD => 'GET', PATH_INFO => '/', HTTP_X_SESSION_GATEWAY_TOKEN => $v->{token},
    (defined $v->{rid} ? (HTTP_X_SESSION_GATEWAY_RID => $v->{rid}) : ()));
  return verify_token(\%env, mount => $v->{mount}, keys => vector_keys($v), alg => $v->{alg},
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
    my $from_env = eval { verify_vector_env($v) };
    ok $from_env, 'verifies from a PSGI env' or diag $@;
    is canonical($from_env), canonical($v->{expect}), 'claims from the env equal expect';
  };
}

for my $v (@{ $VECTORS->{tokens}{invalid} }) {
  subtest "invalid token: $v->{name}" => sub {
    plan skip_all => $NO_ED25519 if needs_ed25519($v) && !eddsa_available();
    is error_of(sub { verify_vector($v) }), $v->{error}, "refused as $v->{error}";
    is error_of(sub { verify_vector_env($v) }), $v->{error}, "refused as $v->{error} from a PSGI env";
  };
}

subtest 'every valid write-back round trips' => sub {
  for my $v (@{ $VECTORS->{writeBacks}{valid} }) {
    my ($ref_header, $ref_payload) = jws_parts($v->{header});
    my $kid = $ref_header->{kid};
    my $wb = $v->{writeBack};
    my $built = build_write_back($v->{binding}, $kid, $SHOP_KEYS{$kid},
      (exists $wb->{set} ? (set => $wb->{set}) : ()),
      (map { exists $wb->{$_} ? ($_ => $wb->{$_}) : () } qw(incr add remove)),
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

subtest 'a write-back built from verified claims is bound to the rid header' => sub {
  my $v = $VECTORS->{tokens}{valid}[0];
  my $rid = mint_rid();
  isnt $rid, $v->{rid}, 'a rid other than the vectors\' one';
  my ($claims, $kid) = verify_token($v->{token}, rid => $rid, mount => 'shop', keys => \%SHOP_KEYS, now => $v->{now});
  my $built = build_write_back($claims, $kid, $SHOP_KEYS{$kid}, set => { cart => [] });
  my (undef, $payload) = jws_parts($built);
  is canonical($payload),
    canonical({ v => 3, aud => 'shop', rid => $rid, sid => $v->{expect}{sid}, set => { cart => [] } }),
    'v 3, the header\'s rid, the token\'s aud and sid';
  ok hs256_ok($built, $SHOP_KEYS{$kid}), 'signed with the mount key';
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
    [{ set => { note => 9007199254740992 } },  'unsafe_number'],
    [{ incr => { count => 9007199254740992 } }, 'unsafe_number'],
    [{ incr => { count => 1.5 } },             'malformed'],
    [{ add => { tags => 'a' } },               'malformed'],
    [{ set => { count => 1 }, incr => { count => 1 } }, 'malformed'],
    [{ destroy => 1, incr => { count => 1 } }, 'malformed'],
    [{ incr => { _gateway => 1 } },            'reserved_key'],
  );
  for my $case (@cases) {
    my ($ask, $code) = @$case;
    is error_of(sub { build_write_back($binding, '2026-11', $key, %$ask) }), $code, "$code: " . join(',', sort keys %$ask);
  }
};

subtest 'header lookup: value, headers, PSGI env' => sub {
  my $v = $VECTORS->{tokens}{valid}[0];
  my %opt = (mount => 'shop', keys => \%SHOP_KEYS, now => $v->{now});
  my $rid = mint_rid();
  for my $from ({ 'x-session-gateway-token' => $v->{token}, 'x-session-gateway-rid' => $rid },
    { HTTP_X_SESSION_GATEWAY_TOKEN => $v->{token}, HTTP_X_SESSION_GATEWAY_RID => $rid },
    { 'X_Session_Gateway_Token' => $v->{token}, 'X_Session_Gateway_Rid' => $rid },
    { 'X-SESSION-GATEWAY-TOKEN' => $v->{token}, 'X-Session-Gateway-RID' => $rid }) {
    my $claims = verify_token($from, %opt);
    is canonical([@$claims{qw(sid rid)}]), canonical([$v->{expect}{sid}, $rid]), join(',', sort keys %$from);
  }
  is verify_token($v->{token}, %opt, rid => $rid)->{rid}, $rid, 'a value, with the rid option';
  is error_of(sub { verify_token($v->{token}, %opt) }), 'malformed', 'a value without the rid option has no rid';
  is error_of(sub { verify_token({ 'Content-Type' => 'text/plain' }, %opt) }), 'missing', 'absent header';
  is error_of(sub { verify_token({ 'Content-Type' => 'text/plain', HTTP_X_SESSION_GATEWAY_RID => $rid }, %opt) }),
    'missing', 'absent token header, rid present';
  is error_of(sub { verify_token(undef, %opt) }), 'missing', 'undef';
  is error_of(sub { verify_token({ HTTP_X_SESSION_GATEWAY_TOKEN => $v->{token}, HTTP_X_SESSION_GATEWAY_RID => $rid,
    'x-session-gateway-token' => $VECTORS->{tokens}{valid}[1]{token} }, %opt) }), 'malformed', 'two different tokens';
  my ($claims, $kid) = verify_token($v->{token}, %opt, rid => $v->{rid});
  is $kid, '2026-11', 'list context gives the kid';
  my %raw = map { $_ => decode_base64url($SHOP_KEYS{$_}) } keys %SHOP_KEYS;
  is verify_token($v->{token}, %opt, rid => $v->{rid}, keys => \%raw)->{sid}, $v->{expect}{sid}, 'raw 32-byte keys';
  ok !eval { verify_token($v->{token}, %opt, rid => $v->{rid},
    keys => { '2026-11' => $VECTORS->{keys}{secrets}{'2026-11'} }); 1 },
    'the gateway secret instead of the mount key is a config error';
  like $@, qr/derived mount key/, '... saying so';
};

subtest 'the rid header (PROTOCOL.md section 4.3 step 11)' => sub {
  my $v = $VECTORS->{tokens}{valid}[0];
  my %opt = (mount => 'shop', keys => \%SHOP_KEYS, now => $v->{now});
  my $env = sub { +{ HTTP_X_SESSION_GATEWAY_TOKEN => $v->{token}, @_ } };
  # Well-formed: exactly 22 characters of the base64url alphabet, '-' and '_' included.
  for my $rid ('A' x 22, '-' x 22, '_' x 22, 'aZ09-_' x 3 . 'abcd') {
    is error_of(sub { verify_token($v->{token}, %opt, rid => $rid) }), 'no error', "accepted: $rid";
  }
  for my $case (['', 'empty'], ['A' x 21, '21 characters'], ['A' x 23, '23 characters'],
    ['A' x 21 . '=', 'padding character'], ['A' x 21 . '+', '+ (base64, not base64url)'],
    ['A' x 21 . '.', 'a dot'], ["@{['A' x 22]}\n", 'a trailing newline'], [' ' . 'A' x 22, 'a leading space'],
    ["$v->{rid}, $v->{rid}", 'two rid headers joined'], [[$v->{rid}], 'an array reference']) {
    my ($rid, $name) = @$case;
    is error_of(sub { verify_token($v->{token}, %opt, rid => $rid) }), 'malformed', "refused: $name";
  }
  is error_of(sub { verify_token($v->{token}, %opt, rid => undef) }), 'malformed', 'refused: rid undef (no header)';
  # An explicit rid wins over the headers, so a caller can pass what it read.
  is error_of(sub { verify_token($env->(HTTP_X_SESSION_GATEWAY_RID => $v->{rid}), %opt, rid => undef) }),
    'malformed', 'explicit rid undef beats the env';
  is verify_token($env->(HTTP_X_SESSION_GATEWAY_RID => 'A' x 22), %opt, rid => $v->{rid})->{rid}, $v->{rid},
    'explicit rid beats the env';
  is rid_from($env->(HTTP_X_SESSION_GATEWAY_RID => $v->{rid})), $v->{rid}, 'rid_from: PSGI env';
  is rid_from({ 'X-Session-Gateway-Rid' => $v->{rid} }), $v->{rid}, 'rid_from: header hash';
  ok !defined rid_from($env->()), 'rid_from: absent';
  ok !defined rid_from($v->{token}), 'rid_from: a bare value has none';
  # Two different spellings in one hash are two headers: joined, then refused.
  my $two = $env->(HTTP_X_SESSION_GATEWAY_RID => $v->{rid}, 'x-session-gateway-rid' => 'A' x 22);
  like rid_from($two), qr/\A[A-Za-z0-9_-]{22}, [A-Za-z0-9_-]{22}\z/, 'rid_from: two values joined with ", "';
  is error_of(sub { verify_token($two, %opt) }), 'malformed', 'two different rid headers';
  SKIP: {
    skip 'HTTP::Headers (libhttp-message-perl) is not installed', 3 unless eval { require HTTP::Headers; 1 };
    my $headers = HTTP::Headers->new('X-Session-Gateway-Token' => $v->{token}, 'X-Session-Gateway-Rid' => $v->{rid});
    is verify_token($headers, %opt)->{rid}, $v->{rid}, 'HTTP::Headers: token and rid';
    $headers->push_header('X-Session-Gateway-Rid' => $v->{rid});
    is rid_from($headers), "$v->{rid}, $v->{rid}", 'HTTP::Headers: two rid headers joined';
    is error_of(sub { verify_token($headers, %opt) }), 'malformed', 'HTTP::Headers: two rid headers refused';
  }
  # Token errors come first, whatever the rid.
  my $now = time;
  for my $case ([mint_token(fresh_payload(iat => $now - 200, exp => $now - 140)), 'stale'],
    [mint_token(fresh_payload(iat => $now + 100, exp => $now + 160)), 'future'],
    [mint_token(fresh_payload(aud => 'blog')), 'wrong_audience'],
    [mint_token(fresh_payload(v => 1)), 'unsupported_version'],
    [mint_token(fresh_payload(), kid => 'not-held', key => $SHOP_KEYS{'2026-11'}), 'unknown_key']) {
    my ($token, $code) = @$case;
    for my $rid (undef, 'short') {
      is error_of(sub { verify_token($token, mount => 'shop', keys => \%SHOP_KEYS, now => $now, rid => $rid) }),
        $code, "$code before the rid check (rid " . ($rid // 'absent') . ')';
    }
  }
  # Both are malformed: the message tells which check refused it.
  ok !eval { verify_token(mint_token(fresh_payload(sid => 42)), mount => 'shop', keys => \%SHOP_KEYS, now => $now); 1 },
    'a token field of the wrong type and no rid';
  is $@->code, 'malformed', '... is malformed';
  like $@->message, qr/wrong type/, '... for the token field, not the rid';
  ok !eval { verify_token(mint_token(fresh_payload()), mount => 'shop', keys => \%SHOP_KEYS, now => $now); 1 },
    'a good token and no rid';
  like $@->message, qr/X-Session-Gateway-Rid/, '... names the rid header';
  # The rid comes from the header only: one in the payload (as version 1 had) is ignored.
  my $with_rid = mint_token(fresh_payload(rid => 'T' x 22));
  is verify_token($with_rid, mount => 'shop', keys => \%SHOP_KEYS, now => $now, rid => $v->{rid})->{rid}, $v->{rid},
    'a rid inside the token is not used';
  is error_of(sub { verify_token($with_rid, mount => 'shop', keys => \%SHOP_KEYS, now => $now) }), 'malformed',
    'nor does it stand in for a missing header';
};

subtest 'keys_from_env' => sub {
  my $cfg = keys_from_env({ SESSION_GATEWAY_MOUNT => 'shop',
    SESSION_GATEWAY_KEYS => "2026-11:$SHOP_KEYS{'2026-11'}, 2026-10:$SHOP_KEYS{'2026-10'}" });
  is $cfg->{mount}, 'shop', 'mount';
  is_deeply $cfg->{key_ids}, ['2026-11', '2026-10'], 'key order kept';
  my $older = $VECTORS->{tokens}{valid}[1];
  is verify_token($older->{token}, rid => $older->{rid}, mount => $cfg->{mount}, keys => $cfg->{keys},
    now => $older->{now})->{sid}, $older->{expect}{sid}, 'verifies the older-key vector';
  for my $bad ({}, { SESSION_GATEWAY_MOUNT => 'shop' }, { SESSION_GATEWAY_MOUNT => 'shop', SESSION_GATEWAY_KEYS => 'nokid' },
    { SESSION_GATEWAY_MOUNT => 'shop', SESSION_GATEWAY_KEYS => 'k:short' }) {
    ok !eval { keys_from_env($bad); 1 }, 'refuses ' . join(' ', map {"$_=$bad->{$_}"} sort keys %$bad);
  }
};

subtest 'skew boundaries and JSON types' => sub {
  my $token = mint_token(fresh_payload(iat => 1000, exp => 1060));
  my %opt = (mount => 'shop', keys => \%SHOP_KEYS, rid => $RID);
  is error_of(sub { verify_token($token, %opt, now => 990) }),  'no error', 'iat 10 s ahead';
  is error_of(sub { verify_token($token, %opt, now => 989) }),  'future',   'iat 11 s ahead';
  is error_of(sub { verify_token($token, %opt, now => 1070) }), 'no error', 'exp 10 s ago';
  is error_of(sub { verify_token($token, %opt, now => 1071) }), 'stale',    'exp 11 s ago';
  my $now = time;
  is error_of(sub { verify_token(mint_token(fresh_payload()), %opt, now => $now) }), 'no error', 'v: 2';
  is error_of(sub { verify_token(mint_token(fresh_payload(v => JSON::PP::true)), %opt, now => $now) }),
    'unsupported_version', 'v: true is not 2';
  is error_of(sub { verify_token(mint_token(fresh_payload(v => 1, rid => $RID)), %opt, now => $now) }),
    'unsupported_version', 'v: 1 (with its rid inside) is not 2';
  is error_of(sub { verify_token(mint_token(fresh_payload(v => '2')), %opt, now => $now) }),
    'unsupported_version', 'v: "2" is not 2';
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
