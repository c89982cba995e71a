package Plack::Middleware::SessionGateway;
# The shared session from session-gateway as psgix.session, the way
# Plack::Middleware::Session offers its own: apps (and Catalyst::Plugin::Session::PSGI)
# read and change a plain hashref; the changes go back to the gateway as one signed
# X-Session-Gateway-Write header on the response.
use strict;
use warnings;
use parent 'Plack::Middleware';
use Plack::Util;
# No accessor for the "keys" option: a sub named keys would replace the keys builtin
# in this package. It is read as $self->{keys}.
use Plack::Util::Accessor qw(mount alg skew write_keys write_key_id clock);
use Scalar::Util qw(blessed);
use SessionGateway::Protocol qw(
  verify_token rid_from build_write_back keys_from_env normalise_keys merge_diff clone_json same_json prefix_from
  DEFAULT_SKEW WRITE_HEADER OPERATIONS
);
use Exporter 'import';

our $VERSION = '3.000';
our @EXPORT_OK = qw(session_incr session_add session_remove);

# psgix.session is a plain hash: `$session->{count}++` can only say "count is now 8",
# which is last-writer-wins when requests of one session run in parallel. These say what
# the app means (PROTOCOL.md section 6.4); the gateway applies them to what is stored.
# They are kept in psgix.session.options (incr / add / remove: key => amount or
# members), the place Plack::Middleware::Session keeps other per-request requests such
# as change_id, and mirrored into psgix.session so the rest of the request sees them.

# session_incr($env, $key, $by = 1): add $by (negative subtracts) to the integer at $key.
sub session_incr {
  my ($env, $key, $by) = @_;
  $by = 1 unless defined $by;
  die "session_incr: the amount must be an integer\n" unless $by =~ /\A-?[0-9]+\z/;
  my $ops = _operations($env, 'incr', $key);
  $ops->{incr}{$key} = ($ops->{incr}{$key} || 0) + $by;
  my $session = $env->{'psgix.session'};
  my $shown = $session->{$key};
  $session->{$key} = ($shown || 0) + $by if !defined $shown || (!ref $shown && $shown =~ /\A-?[0-9]+\z/);
  return $session->{$key};
}

# session_add($env, $key, @members): add each member to the list at $key unless an equal one is there.
sub session_add {
  my ($env, $key, @members) = @_;
  push @{ _operations($env, 'add', $key)->{add}{$key} }, @{ clone_json(\@members) };
  my $session = $env->{'psgix.session'};
  my $list = $session->{$key};
  if (!defined $list || ref $list eq 'ARRAY') {
    $list = $session->{$key} = [ @{ $list || [] } ];
    for my $m (@members) { push @$list, clone_json($m) unless grep { same_json($_, $m) } @$list }
  }
  return;
}

# session_remove($env, $key, @members): remove every member equal to one given from the list at $key.
sub session_remove {
  my ($env, $key, @members) = @_;
  push @{ _operations($env, 'remove', $key)->{remove}{$key} }, @{ clone_json(\@members) };
  my $session = $env->{'psgix.session'};
  my $list = $session->{$key};
  $session->{$key} = [ grep { my $m = $_; !grep { same_json($m, $_) } @members } @$list ] if ref $list eq 'ARRAY';
  return;
}

sub _operations {
  my ($env, $op, $key) = @_;
  my $options = $env->{'psgix.session.options'} ||= {};
  for my $other (OPERATIONS) {
    die "session_$op: '$key' is already changed by $other in this request\n" if $other ne $op && exists(($options->{$other} || {})->{$key});
  }
  return $options;
}

sub prepare_app {
  my ($self) = @_;
  unless (defined $self->mount && $self->{keys}) {
    my $cfg = keys_from_env();
    $self->mount($cfg->{mount}) unless defined $self->mount;
    $self->{keys} ||= $cfg->{keys};
    $self->{key_ids} = $cfg->{key_ids};
  }
  $self->alg('HS256')        unless $self->alg;
  $self->skew(DEFAULT_SKEW)  unless defined $self->skew;
  $self->clock(sub { time }) unless $self->clock;
  $self->{keys} = normalise_keys($self->{keys});
  # EdDSA: keys are the public keys; write-backs stay HS256 under the mount keys.
  die "session-gateway: with alg EdDSA pass write_keys (the derived mount keys)\n"
    if $self->alg eq 'EdDSA' && !$self->write_keys;
  $self->write_keys(normalise_keys($self->write_keys || $self->{keys}));
}

sub call {
  my ($self, $env) = @_;
  my $request = $self->_open($env);
  my $res = $self->app->($env);
  # response_cb also covers delayed and streaming responses: the callback runs when
  # the app hands over status and headers, before any of them is sent.
  return $self->response_cb($res, sub { $self->_close($env, $request, $_[0]); return });
}

# Verifies the token and the request's X-Session-Gateway-Rid (PROTOCOL.md section 4.3) and
# fills psgix.session / psgix.session.options.
# A missing or bad token, or a missing or ill-formed rid header (malformed), is logged
# with its code and the app gets an empty session without id, as an anonymous visitor
# would: a PSGI app behind Plack::Middleware::Session expects a session hash on every
# request, and refusing here would break pages that work without one. Changes to that
# session cannot be written back (no verified request to bind them to).
sub _open {
  my ($self, $env) = @_;
  # The mount's public prefix (X-Forwarded-Prefix), with or without a session: url_for reads it.
  $env->{'session_gateway.prefix'} = prefix_from($env);
  my ($claims, $kid) = eval {
    # HTTP_X_SESSION_GATEWAY_RID; a server joins two such headers with ", ", refused.
    verify_token($env, rid => rid_from($env), mount => $self->mount, keys => $self->{keys},
      alg => $self->alg, now => $self->clock->(), skew => $self->skew);
  };
  if (!$claims) {
    my $error = $@;
    die $error unless blessed $error && $error->isa('SessionGateway::Error');    # a config bug
    $self->_log($env, 'token refused (' . $error->code . '): ' . $error->message);
    $env->{'session_gateway.error'} = $error;
    $env->{'psgix.session'}         = {};
    $env->{'psgix.session.options'} = {};
    return { error => $error };
  }
  my $data = $claims->{data} || {};    # null only with dataOmitted: nothing readable
  $env->{'session_gateway.claims'} = $claims;
  $env->{'psgix.session'}          = clone_json($data);
  $env->{'psgix.session.options'}  = defined $claims->{sid} ? { id => $claims->{sid} } : {};
  return { claims => $claims, kid => $kid, before => clone_json($data) };
}

sub _close {
  my ($self, $env, $request, $res) = @_;
  if (Plack::Util::header_exists($res->[1], WRITE_HEADER)) {
    # The middleware owns the header: one write-back per response, built from psgix.session
    # and bound to this request's X-Session-Gateway-Rid (the claims' rid).
    Plack::Util::header_remove($res->[1], WRITE_HEADER);
    $self->_log($env, 'removed an X-Session-Gateway-Write header set by the app');
  }
  my %ask = $self->_asked($env, $request->{before} || {});
  return unless %ask;
  if ($request->{error}) {
    $self->_log($env, 'session changes dropped: the request had no valid token (' . $request->{error}->code . ')');
    return;
  }
  my $value = eval { $self->_build($request, %ask) };
  if (!defined $value) {
    # The response is ready; like the gateway when it refuses a write-back, deliver it anyway.
    $self->_log($env, "session changes dropped: $@");
    return;
  }
  Plack::Util::header_push($res->[1], WRITE_HEADER, $value);
}

# What the app asked for, with Plack::Middleware::Session's meaning of the options:
# expire ends the session, change_id gives it a new id, no_store skips saving data.
sub _asked {
  my ($self, $env, $before) = @_;
  my $options = $env->{'psgix.session.options'} || {};
  return (destroy => 1) if $options->{expire};
  my %ask;
  $ask{regenerate} = 1 if $options->{change_id};
  # Catalyst::Plugin::Session::Store::PSGI replaces the hashref: read it afresh.
  my $after = $env->{'psgix.session'};
  if ($options->{no_store}) {
    # nothing to store, as with Plack::Middleware::Session
  } elsif (ref $after ne 'HASH') {
    # Diffing against {} would delete every key; refuse to guess instead.
    $self->_log($env, 'psgix.session is not a hashref after the app: session data not written back');
  } else {
    # Keys changed by an operation are sent as the operation; what session_incr & co.
    # mirrored into the hash is not a set.
    my %by_op = map { %{ $options->{$_} || {} } } OPERATIONS;
    my %before = %$before;
    my %after = %$after;
    delete @before{ keys %by_op };
    delete @after{ keys %by_op };
    my $patch = merge_diff(\%before, \%after);
    $ask{set} = $patch if %$patch;
  }
  for my $op (OPERATIONS) {
    $ask{$op} = $options->{$op} if ref $options->{$op} eq 'HASH' && %{ $options->{$op} };
  }
  return %ask;
}

sub _build {
  my ($self, $request, %ask) = @_;
  my $keys = $self->write_keys;
  my $kid = $self->write_key_id;
  # Sign with the key that signed the token (it is the newest) when this backend holds it.
  $kid = $request->{kid} if !defined $kid && exists $keys->{ $request->{kid} };
  $kid //= ($self->{key_ids} || [])->[0];
  ($kid) = keys %$keys if !defined $kid && keys %$keys == 1;
  die "no write key for this request: set write_key_id\n" unless defined $kid && exists $keys->{$kid};
  return build_write_back($request->{claims}, $kid, $keys->{$kid}, %ask);
}

sub _log {
  my ($self, $env, $line) = @_;
  chomp $line;
  my $errors = $env->{'psgi.errors'} or return;
  $errors->print("session-gateway: $line\n");
}

1;

__END__

=head1 NAME

Plack::Middleware::SessionGateway - the session-gateway session as psgix.session

=head1 SYNOPSIS

  use Plack::Builder;
  builder {
    enable 'SessionGateway';    # SESSION_GATEWAY_MOUNT, SESSION_GATEWAY_KEYS
    # or: enable 'SessionGateway', mount => 'shop', keys => { '2026-11' => 'AQD7...' };
    $app;
  };

  # in the app
  my $session = $env->{'psgix.session'};           # readable keys of the shared session
  my $sid     = $env->{'psgix.session.options'}{id};
  $session->{cart} = [1, 2, 3];                     # set
  delete $session->{note};                          # delete
  $env->{'psgix.session.options'}{change_id} = 1;   # new id (login)
  $env->{'psgix.session.options'}{expire}    = 1;   # end the session (logout)

  # atomic (parallel requests all count; PROTOCOL.md section 6.4)
  use Plack::Middleware::SessionGateway qw(session_incr session_add session_remove);
  session_incr($env, 'visits');                     # +1 (or session_incr($env, 'visits', -2))
  session_add($env, 'tags', 'new');                 # add to a list used as a set
  session_remove($env, 'tags', 'old');              # remove from it
  # the same, without the functions:
  $env->{'psgix.session.options'}{incr}{visits} = 1;

=head1 DESCRIPTION

Speaks session-gateway protocol version 3. Verifies C<X-Session-Gateway-Token> and
the request's C<X-Session-Gateway-Rid> (C<HTTP_X_SESSION_GATEWAY_RID>), puts a copy
of the readable session data in C<psgix.session> and C<< { id => $sid } >> in
C<psgix.session.options> (no C<id> for a visitor without a session), runs the app,
and turns what changed into the C<X-Session-Gateway-Write> header, bound to that
request's rid: changed or added top-level keys are set (objects diffed so the stored
value ends up equal to the app's), removed keys deleted;
C<change_id> asks for a new id, C<expire> for the end of the session, C<no_store>
skips the data, as with L<Plack::Middleware::Session>.

B<Read-modify-write> such as C<< $session->{visits}++ >> sends the value this
request computed: when requests of one session run in parallel (they do, behind the
gateway, unlike in one Plack process) the last write wins and increments are lost.
For counters and lists used as sets, use the atomic operations: C<session_incr>,
C<session_add>, C<session_remove> (exported on request), or the same requests
written directly as C<< $env->{'psgix.session.options'}{incr}{$key} = $amount >>,
C<< {add}{$key} = [members] >>, C<< {remove}{$key} = [members] >>. The gateway
applies them to the value stored when the response passes (PROTOCOL.md section 6.4);
the functions also update C<psgix.session>, so the app sees the result at once. A key
changed by an operation is sent only as that operation (whatever the hash says); one
request changes a key one way. A stored value of the wrong kind (C<incr> on a string)
makes the gateway refuse the write-back (C<type_mismatch>). Or lock the mount
(C<mounts[].lock> in the gateway's config), which serializes the session's requests.

The verified claims are in C<< $env->{'session_gateway.claims'} >> (C<dataOmitted>
tells that the data did not fit in the token; C<rid> is the rid header's value).

B<Links and redirects>: behind a C<stripPrefix> mount the app sees C</login> for
C</shop/login>; the gateway sends the mount's prefix in C<X-Forwarded-Prefix>, which the
middleware puts in C<< $env->{'session_gateway.prefix'} >> (C<''> when none, or when
the value is not a clean absolute path), with or without a session.
C<SessionGateway::Protocol::url_for($env, '/')> is then C</shop/>.

B<A missing or bad token>, or a missing or ill-formed C<X-Session-Gateway-Rid>
(C<malformed>, named only when the token itself is good), is logged to
C<psgi.errors> with its protocol code; the app gets an empty C<psgix.session>
without id, like an anonymous visitor, and the error in
C<< $env->{'session_gateway.error'} >>. Changes made to that session are dropped
(and logged): there is no verified request to bind a write-back to.

Options: C<mount>, C<keys> (kid => derived mount key, raw or base64url; both default
to the environment), C<alg> (HS256 or EdDSA), C<write_keys> and C<write_key_id> (EdDSA
mode), C<skew> (10 s), C<clock> (a coderef returning epoch seconds).

Changes must be made before the app returns its status and headers (for a streaming
response: before it calls the responder); later ones cannot be sent.

=cut
