package SessionGateway::Protocol;
# session-gateway wire protocol v3 (docs/PROTOCOL.md) for Perl backends, on core
# modules only: verify the X-Session-Gateway-Token and X-Session-Gateway-Rid a request
# carries, build the X-Session-Gateway-Write header a response answers with.
#
# EdDSA tokens (the gateway's asymmetric mode) need Ed25519, which core Perl lacks:
# they are verified only when Crypt::PK::Ed25519 (Debian: libcryptx-perl) loads;
# otherwise verifying one fails with unsupported_algorithm saying so.
use strict;
use warnings;
use B ();
use Digest::SHA qw(hmac_sha256);
use JSON::PP ();
use MIME::Base64 qw(encode_base64url decode_base64url);
use Scalar::Util qw(blessed);
use Exporter 'import';
use SessionGateway::Error;

our $VERSION = '3.000';
our @EXPORT_OK = qw(
  PROTOCOL_VERSION TOKEN_HEADER RID_HEADER WRITE_HEADER DEFAULT_SKEW MAX_WRITE_BACK_BYTES OPERATIONS
  verify_token rid_from build_write_back derive_mount_key keys_from_env normalise_keys
  public_keys_from_jwks merge_diff same_json clone_json eddsa_available
  b64url_encode b64url_decode prefix_from url_for
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

use constant {
  PROTOCOL_VERSION     => 3,
  TOKEN_HEADER         => 'X-Session-Gateway-Token',
  RID_HEADER           => 'X-Session-Gateway-Rid',
  WRITE_HEADER         => 'X-Session-Gateway-Write',
  DEFAULT_SKEW         => 10,
  MAX_WRITE_BACK_BYTES => 8192,
  DERIVATION_LABEL     => 'session-gateway/v1 mount ',    # unchanged since protocol v1 (PROTOCOL.md §10)
  MAX_SAFE_INT         => 9007199254740991,    # the reference checks Number.isSafeInteger
};

my %RESERVED = map { $_ => 1 } qw(cookie _gateway);
# The write-back's atomic operations (PROTOCOL.md section 6.4), in the order the gateway applies them.
use constant OPERATIONS => qw(incr add remove);
# Header names compare case-insensitively with "_" as "-" (PROTOCOL.md §2); the second
# is the PSGI/CGI env spelling HTTP_X_SESSION_GATEWAY_TOKEN.
my %TOKEN_NAMES = map { $_ => 1 } qw(x-session-gateway-token http-x-session-gateway-token);
my %RID_NAMES   = map { $_ => 1 } qw(x-session-gateway-rid http-x-session-gateway-rid);
# PROTOCOL.md §4.3 step 11: 16 random bytes as base64url, 22 characters.
my $RID_PATTERN = qr/\A[A-Za-z0-9_-]{22}\z/;
# X-Forwarded-Prefix: segments of RFC 3986 path characters, no trailing "/".
my %PREFIX_NAMES   = map { $_ => 1 } qw(x-forwarded-prefix http-x-forwarded-prefix);
my $PREFIX_PATTERN = qr{\A(?:/[A-Za-z0-9\-._~!\$&'()*+,;=:\@%]+)+\z};

my $JSON_IN  = JSON::PP->new->utf8->allow_nonref;
my $JSON_OUT = JSON::PP->new->utf8->canonical;

sub _fail { SessionGateway::Error->throw(@_) }

# --- encodings (PROTOCOL.md §3) ---------------------------------------------------

sub b64url_encode { encode_base64url($_[0]) }

# Strict: decode_base64url alone skips characters outside the alphabet.
sub b64url_decode {
  my ($text, $what) = @_;
  _fail('malformed', ($what // 'value') . ' is not base64url')
    unless defined $text && $text =~ /\A[A-Za-z0-9_-]*\z/ && length($text) % 4 != 1;
  my $bytes = decode_base64url($text);
  # Canonical only (PROTOCOL.md section 3): set unused bits would spell one value several ways.
  _fail('malformed', ($what // 'value') . ' is not canonical base64url') unless encode_base64url($bytes) eq $text;
  return $bytes;
}

sub _json_object {
  my ($bytes, $what) = @_;
  my $value = eval { $JSON_IN->decode($bytes) };
  _fail('malformed', "$what is not JSON") if $@;
  _fail('malformed', "$what is not a JSON object") unless ref $value eq 'HASH';
  return $value;
}

# JSON types survive in Perl only as flags on fresh scalars: JSON::PP gives numbers
# IOK/NOK and strings POK. Checked before anything stringifies the value.
sub _flags { B::svref_2object(\$_[0])->FLAGS }

sub _is_string {
  my $v = $_[0];
  return defined $v && !ref $v && (_flags($v) & B::SVf_POK) ? 1 : 0;
}

sub _is_int {
  my $v = $_[0];
  return 0 if !defined $v || ref $v;
  my $f = _flags($v);
  return 0 if $f & B::SVf_POK || !($f & (B::SVf_IOK | B::SVf_NOK));
  return $v == int($v) && abs($v) <= MAX_SAFE_INT ? 1 : 0;
}

sub _is_int_or_null { !defined $_[0] || _is_int($_[0]) }

# --- keys (PROTOCOL.md §5) --------------------------------------------------------

# HMAC-SHA256(secret, "session-gateway/v1 mount " + mount): the 32-byte mount key.
sub derive_mount_key {
  my ($secret, $mount) = @_;
  utf8::encode($secret) if utf8::is_utf8($secret);
  my $message = DERIVATION_LABEL . $mount;
  utf8::encode($message);
  return hmac_sha256($message, $secret);
}

# A key as 32 raw bytes or as base64url text (43 characters); anything else is a
# configuration mistake, most often the gateway secret instead of the mount key.
sub _key_bytes {
  my ($kid, $key) = @_;
  die "session-gateway: key '$kid' is undefined\n" unless defined $key;
  (my $text = $key) =~ s/\A\s+|\s+\z//g;
  if (length($text) == 43 && $text =~ /\A[A-Za-z0-9_-]+\z/) {
    return decode_base64url($text);
  }
  return $key if length($key) == 32 && !utf8::is_utf8($key);
  die "session-gateway: key '$kid' must be the 32-byte derived mount key "
    . "(`session-gateway keys --mount NAME` prints it), not the gateway secret\n";
}

sub normalise_keys {
  my ($keys) = @_;
  die "session-gateway: no keys configured\n" unless ref $keys eq 'HASH' && %$keys;
  return { map { $_ => _key_bytes($_, $keys->{$_}) } keys %$keys };
}

# SESSION_GATEWAY_MOUNT and SESSION_GATEWAY_KEYS ("kid:base64urlkey,kid2:key2", newest
# first). Returns { mount => ..., keys => {kid => bytes}, key_ids => [in order] }.
sub keys_from_env {
  my ($env) = @_;
  $env ||= \%ENV;
  my $mount = $env->{SESSION_GATEWAY_MOUNT} // '';
  my $list  = $env->{SESSION_GATEWAY_KEYS}  // '';
  s/\A\s+|\s+\z//g for $mount, $list;
  die "session-gateway: set SESSION_GATEWAY_MOUNT and SESSION_GATEWAY_KEYS (kid:key,kid2:key2)\n"
    unless length $mount && length $list;
  my (%keys, @ids);
  for my $entry (split /,/, $list) {
    my ($kid, $key) = $entry =~ /\A\s*([^:\s]+)\s*:\s*(\S+)\s*\z/
      or die "session-gateway: SESSION_GATEWAY_KEYS entry '$entry' is not kid:key\n";
    $keys{$kid} = _key_bytes($kid, $key);
    push @ids, $kid;
  }
  return { mount => $mount, keys => \%keys, key_ids => \@ids };
}

# kid => Ed25519 public key bytes, from the gateway's /_gateway/jwks.json document.
sub public_keys_from_jwks {
  my ($jwks) = @_;
  return {
    map { $_->{kid} => b64url_decode($_->{x}, 'JWKS x') }
    grep { ($_->{kty} // '') eq 'OKP' && ($_->{crv} // '') eq 'Ed25519' && defined $_->{kid} && defined $_->{x} }
    @{ $jwks->{keys} || [] }
  };
}

sub eddsa_available { eval { require Crypt::PK::Ed25519; 1 } ? 1 : 0 }

# --- verifying the request token (PROTOCOL.md §4.3) -------------------------------

sub _equal_constant_time {
  my ($x, $y) = @_;
  return 0 unless length $x == length $y;
  my $diff = 0;
  $diff |= ord(substr $x, $_, 1) ^ ord(substr $y, $_, 1) for 0 .. length($x) - 1;
  return $diff == 0;
}

sub _signature_ok {
  my ($alg, $key, $input, $signature) = @_;
  return _equal_constant_time(hmac_sha256($input, $key), $signature) if $alg eq 'HS256';
  _fail('unsupported_algorithm',
    'EdDSA tokens need Crypt::PK::Ed25519 (Debian package libcryptx-perl); core Perl has no Ed25519')
    unless eddsa_available();
  return eval {
    my $pk = Crypt::PK::Ed25519->new;
    $pk->import_key_raw($key, 'public');
    $pk->verify_message($signature, $input);
  } ? 1 : 0;
}

# Steps 2-5: structure, alg, kid, signature, and only then the payload JSON.
sub _verify_compact {
  my ($token, $keys, $alg) = @_;
  my @parts = split /\./, $token, -1;
  _fail('malformed', 'a JWS has three dot-separated parts') unless @parts == 3;
  # Order as PROTOCOL.md section 4.3: the header first (alg, kid), then the other two parts.
  my $header = _json_object(b64url_decode($parts[0], 'the JWS header'), 'the JWS header');
  my $got = $header->{alg};
  _fail('unsupported_algorithm', "expected alg $alg") unless _is_string($got) && $got eq $alg;
  my $kid = $header->{kid};
  _fail('malformed', 'the JWS header has no kid') unless _is_string($kid);
  _fail('unknown_key', "no key with kid '$kid'") unless exists $keys->{$kid};
  my $payload   = b64url_decode($parts[1], 'the JWS payload');
  my $signature = b64url_decode($parts[2], 'the JWS signature');
  _fail('bad_signature', 'the signature does not match')
    unless _signature_ok($alg, $keys->{$kid}, "$parts[0].$parts[1]", $signature);
  return ($kid, _json_object($payload, 'the JWS payload'));
}

# Steps 7-8: version and field types, as the reference verifier checks them. A rid in
# the payload (version 1 had one) is an unknown field here and ignored: rid comes from
# the X-Session-Gateway-Rid header only (PROTOCOL.md §4.4).
sub _check_payload {
  my ($p) = @_;
  _fail('unsupported_version', 'payload.v is not ' . PROTOCOL_VERSION)
    unless _is_int($p->{v}) && $p->{v} == PROTOCOL_VERSION;
  my $omitted = ref $p->{dataOmitted} && $p->{dataOmitted} ? 1 : 0;    # only JSON true counts
  my $data    = $p->{data};
  _fail('malformed', 'the token payload lacks a field or has one of the wrong type')
    unless _is_string($p->{aud}) && _is_int($p->{iat}) && _is_int($p->{exp})
    && (!defined $p->{sid} || _is_string($p->{sid}))
    && _is_int_or_null($p->{idleExp}) && _is_int_or_null($p->{absExp})
    && (ref $data eq 'HASH' || (!defined $data && $omitted));
  return $omitted;
}

# The distinct values of the headers %$names names in a hashref of headers or a PSGI
# env, in order of first appearance by sorted key (for a stable error message).
sub _header_values {
  my ($from, $names) = @_;
  my (%seen, @values);
  for my $name (sort keys %$from) {
    (my $norm = lc $name) =~ tr/_/-/;
    next unless $names->{$norm} && defined $from->{$name};
    push @values, $from->{$name} unless $seen{ $from->{$name} }++;
  }
  return @values;
}

# The token from a header value, a hashref of headers or a PSGI env, or an object
# with a ->header method (HTTP::Headers).
sub _token_from {
  my ($from) = @_;
  return $from if !ref $from;
  return scalar $from->header(TOKEN_HEADER) if blessed $from && $from->can('header');
  my @found = _header_values($from, \%TOKEN_NAMES);
  # Two different tokens: refuse rather than guess which one the gateway sent.
  _fail('malformed', 'more than one X-Session-Gateway-Token header') if @found > 1;
  return $found[0];
}

# rid_from($headers): the X-Session-Gateway-Rid value of a hashref of headers or a PSGI
# env (HTTP_X_SESSION_GATEWAY_RID), or of an object with a ->header method; undef when
# absent. Several different values come back joined with ", ", as an HTTP stack joins
# repeated headers, which verify_token then refuses (PROTOCOL.md §4.3 step 11).
# Never dies: a bad rid must not be reported before the token's own errors.
sub rid_from {
  my ($from) = @_;
  return undef unless ref $from;
  return scalar $from->header(RID_HEADER) if blessed $from && $from->can('header');
  return undef unless ref $from eq 'HASH';
  my @found = _header_values($from, \%RID_NAMES);
  return @found ? join(', ', @found) : undef;
}

# prefix_from($headers): the mount's public path prefix from X-Forwarded-Prefix in a
# hashref of headers or a PSGI env (HTTP_X_FORWARDED_PREFIX); '' when absent, '/',
# repeated, or not a clean absolute path (so url_for can never build an open redirect,
# e.g. from '//evil.example'); a trailing '/' is dropped.
sub prefix_from {
  my ($from) = @_;
  return '' unless ref $from eq 'HASH';
  my @found = _header_values($from, \%PREFIX_NAMES);
  return '' unless @found == 1 && !ref $found[0];
  (my $prefix = $found[0]) =~ s{(?<=.)/\z}{};
  return $prefix =~ $PREFIX_PATTERN ? $prefix : '';
}

# url_for($env, $path): the public URL path of $path (as this app sees it, starting with
# one '/'): the prefix the middleware put in $env->{'session_gateway.prefix'} (or read
# from $env), then $path. Behind a stripPrefix mount, url_for($env, '/') is '/shop/'.
sub url_for {
  my ($env, $path) = @_;
  die "session-gateway: url_for(\$env, \$path): \$path must start with a single '/'\n"
    unless defined $path && !ref $path && $path =~ m{\A/(?![/\\])};
  my $prefix = ref $env eq 'HASH' && exists $env->{'session_gateway.prefix'} ? $env->{'session_gateway.prefix'} : prefix_from($env);
  return $prefix . $path;
}

# verify_token($value_or_headers, mount => 'shop', keys => {kid => key}, rid => $rid,
#              alg => 'HS256', now => time, skew => 10)
# All of PROTOCOL.md §4.3. rid is the request's X-Session-Gateway-Rid value; without
# the rid option it is read from $value_or_headers when that is a hashref of headers,
# a PSGI env or an HTTP::Headers (a bare token value has none: pass rid).
# Returns the claims hashref (aud iat exp rid sid data idleExp absExp dataOmitted; rid
# is the header's), in list context also the kid that signed it; dies with a
# SessionGateway::Error.
sub verify_token {
  my ($from, %opt) = @_;
  my $rid   = exists $opt{rid} ? $opt{rid} : rid_from($from);
  my $token = _token_from($from);
  _fail('missing', 'no session token header') unless defined $token && length $token;
  my $alg = $opt{alg} // 'HS256';
  die "session-gateway: alg must be HS256 or EdDSA\n" unless $alg eq 'HS256' || $alg eq 'EdDSA';
  die "session-gateway: mount is required\n" unless defined $opt{mount};
  my ($kid, $p) = _verify_compact($token, normalise_keys($opt{keys}), $alg);
  my $omitted = _check_payload($p);
  _fail('wrong_audience', "token is for '$p->{aud}', not '$opt{mount}'") unless $p->{aud} eq $opt{mount};
  my $now  = $opt{now}  // time;
  my $skew = $opt{skew} // DEFAULT_SKEW;
  _fail('future', "issued at $p->{iat}, now is $now") if $p->{iat} - $skew > $now;
  _fail('stale', "expired at $p->{exp}, now is $now") if $p->{exp} + $skew < $now;
  # Step 11, after every token check: the request's nonce, sent beside the token.
  _fail('malformed', 'no well-formed X-Session-Gateway-Rid header (22 base64url characters)')
    unless defined $rid && !ref $rid && $rid =~ $RID_PATTERN;
  my %claims = map { $_ => $p->{$_} } qw(aud iat exp sid data idleExp absExp);
  $claims{rid} = "$rid";
  $claims{dataOmitted} = $omitted ? JSON::PP::true : JSON::PP::false;
  return wantarray ? (\%claims, $kid) : \%claims;
}

# --- comparing and diffing session data -------------------------------------------

sub _is_plain_hash  { ref $_[0] eq 'HASH' }
sub _is_plain_array { ref $_[0] eq 'ARRAY' }

# Equality of JSON-like data. Scalars compare as strings: a Perl app that reads 42
# and prints it, or gets "42" from a form, has not changed the value.
sub same_json {
  my ($x, $y) = @_;
  return !defined $y if !defined $x;
  return 0 if !defined $y;
  if (_is_plain_hash($x) || _is_plain_hash($y)) {
    return 0 unless _is_plain_hash($x) && _is_plain_hash($y) && keys %$x == keys %$y;
    for my $k (keys %$x) { return 0 unless exists $y->{$k} && same_json($x->{$k}, $y->{$k}) }
    return 1;
  }
  if (_is_plain_array($x) || _is_plain_array($y)) {
    return 0 unless _is_plain_array($x) && _is_plain_array($y) && @$x == @$y;
    for my $i (0 .. $#$x) { return 0 unless same_json($x->[$i], $y->[$i]) }
    return 1;
  }
  return "$x" eq "$y";
}

# A JSON Merge Patch (RFC 7396) that turns $old into $new. Needed because a patch
# merges objects: {"user":{"id":7}} over a stored {"user":{"id":42,"name":"Ada"}}
# would keep "name"; the diff sends "name":null.
sub merge_diff {
  my ($old, $new) = @_;
  return $new unless _is_plain_hash($old) && _is_plain_hash($new);
  my %patch = map { $_ => undef } grep { !exists $new->{$_} } keys %$old;
  for my $k (keys %$new) {
    if (!exists $old->{$k})                     { $patch{$k} = $new->{$k} }
    elsif (!same_json($old->{$k}, $new->{$k})) { $patch{$k} = merge_diff($old->{$k}, $new->{$k}) }
  }
  return \%patch;
}

# A deep copy of JSON-like data; JSON::PP booleans are shared, they are constants.
sub clone_json {
  my ($v) = @_;
  return { map { $_ => clone_json($v->{$_}) } keys %$v } if _is_plain_hash($v);
  return [ map { clone_json($_) } @$v ] if _is_plain_array($v);
  return $v;
}

# --- building the write-back (PROTOCOL.md §6) -------------------------------------

# Dies unsafe_number for a number beyond +-(2^53-1) anywhere in $v (PROTOCOL.md section 3).
sub _check_numbers {
  my ($v, $where) = @_;
  my @stack = ($v);
  while (@stack) {
    my $node = pop @stack;
    if    (_is_plain_hash($node))  { push @stack, values %$node }
    elsif (_is_plain_array($node)) { push @stack, @$node }
    elsif (defined $node && !ref $node && _flags($node) & (B::SVf_IOK | B::SVf_NOK) && !(_flags($node) & B::SVf_POK)
           && abs($node) > MAX_SAFE_INT) {
      _fail('unsafe_number', "$node in $where is beyond +-(2^53-1); store it as a string");
    }
  }
}

# PROTOCOL.md section 6.2 step 5 for incr/add/remove: shapes, no key changed two ways.
sub _check_operations {
  my ($set, %ops) = @_;
  my %seen = map { $_ => 'set' } keys %{ $set || {} };
  for my $op (OPERATIONS) {
    my $args = $ops{$op};
    next unless defined $args;
    die "session-gateway: $op must be a hashref\n" unless _is_plain_hash($args);
    for my $key (sort keys %$args) {
      my $arg = $args->{$key};
      _fail('malformed', "incr{$key} must be an integer") if $op eq 'incr' && !_is_int($arg);
      _fail('malformed', "$op\{$key} must be an arrayref of members") if $op ne 'incr' && !_is_plain_array($arg);
      _fail('malformed', "'$key' is changed by both $seen{$key} and $op") if $seen{$key};
      _fail('reserved_key', "'$key' belongs to the gateway") if $RESERVED{$key};
      $seen{$key} = $op;
    }
  }
}

sub _write_back_payload {
  my ($binding, %ask) = @_;
  my $set = $ask{set};
  die "session-gateway: set must be a hashref (a JSON Merge Patch)\n" if defined $set && !_is_plain_hash($set);
  my $changes_data = defined $set || grep { defined $ask{$_} } OPERATIONS;
  _fail('malformed', 'destroy excludes set, incr, add, remove and regenerate') if $ask{destroy} && ($changes_data || $ask{regenerate});
  _fail('malformed', 'a write-back must ask for something')
    unless $changes_data || $ask{regenerate} || $ask{destroy} || $ask{revoke_user};
  for my $key (keys %{ $set || {} }) {
    _fail('reserved_key', "'$key' belongs to the gateway") if $RESERVED{$key};
  }
  _check_numbers([ $set, map { $ask{$_} } OPERATIONS ], 'the write-back');
  _check_operations($set, map { $_ => $ask{$_} } OPERATIONS);
  my %payload = (v => PROTOCOL_VERSION, map { $_ => $binding->{$_} } qw(aud rid sid));
  $payload{set}        = $set           if defined $set;
  for my $op (OPERATIONS) { $payload{$op} = $ask{$op} if defined $ask{$op} }
  $payload{regenerate} = JSON::PP::true if $ask{regenerate};
  $payload{destroy}    = JSON::PP::true if $ask{destroy};
  $payload{revokeUser} = JSON::PP::true if $ask{revoke_user};
  return \%payload;
}

# build_write_back($claims_or_binding, $key_id, $key, set => {...}, regenerate => 1,
#                  destroy => 1, revoke_user => 1,
#                  incr => { count => 1 }, add => { tags => [...] }, remove => { tags => [...] })
# The value of X-Session-Gateway-Write: HS256 under the derived mount key, bound to
# the request: aud and sid of its token, rid of its X-Session-Gateway-Rid header (the
# claims verify_token returns hold all three). Dies with the code the gateway would refuse
# it with where the helper can tell (malformed, reserved_key, unsafe_number, too_large).
sub build_write_back {
  my ($binding, $kid, $key, %ask) = @_;
  my $payload = _write_back_payload($binding, %ask);
  my $header  = b64url_encode($JSON_OUT->encode({ alg => 'HS256', kid => $kid, typ => 'JWT' }));
  my $input   = $header . '.' . b64url_encode($JSON_OUT->encode($payload));
  my $value   = $input . '.' . b64url_encode(hmac_sha256($input, _key_bytes($kid, $key)));
  _fail('too_large', 'write-back is ' . length($value) . ' bytes, limit ' . MAX_WRITE_BACK_BYTES)
    if length $value > MAX_WRITE_BACK_BYTES;
  return $value;
}

1;

__END__

=head1 NAME

SessionGateway::Protocol - verify session-gateway tokens and build write-backs (protocol v3)

=head1 SYNOPSIS

  use SessionGateway::Protocol qw(verify_token build_write_back keys_from_env WRITE_HEADER);

  my $cfg = keys_from_env();    # SESSION_GATEWAY_MOUNT, SESSION_GATEWAY_KEYS
  # A PSGI env (or headers hashref, or HTTP::Headers) holds both X-Session-Gateway-Token
  # and X-Session-Gateway-Rid:
  my ($claims, $kid) = verify_token($env, mount => $cfg->{mount}, keys => $cfg->{keys});
  # or with the two header values: verify_token($token, rid => $rid, mount => ..., keys => ...)
  print $claims->{sid}, $claims->{rid}, $claims->{data}{user}{name};

  my $value = build_write_back($claims, $kid, $cfg->{keys}{$kid}, set => { cart => [1, 2] });
  # add header WRITE_HEADER => $value to the response

Errors are C<SessionGateway::Error> objects; C<< $err->code >> is the protocol code.
A missing or ill-formed C<X-Session-Gateway-Rid> is C<malformed>, reported only after
every check of the token itself (PROTOCOL.md section 4.3, step 11).
Most apps want L<Plack::Middleware::SessionGateway> instead.

=cut
