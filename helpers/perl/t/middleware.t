# Plack::Middleware::SessionGateway with Plack::Test, on a tiny app that reads and
# writes psgix.session; run through the mock client and through a real HTTP server.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib", "$FindBin::Bin/lib";
use Test::More;
use Plack::Test;
use Plack::Builder;
use HTTP::Request::Common qw(GET);
use JSON::PP ();
use File::Temp ();
use IO::Handle ();
use SGTest;

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
# psgi.errors goes to a file: with Plack::Test's Server impl the app runs in a child process.
my $log_file = File::Temp->new;
sub clear_log { truncate $log_file->filename, 0 or die "truncate: $!" }
sub log_text  { open my $fh, '<', $log_file->filename or die $!; local $/; scalar <$fh> // '' }

my $app = sub {
  my ($env) = @_;
  my $session = $env->{'psgix.session'};
  my $options = $env->{'psgix.session.options'};
  my $error   = $env->{'session_gateway.error'};
  my $path    = $env->{PATH_INFO};
  my $body = $JSON->encode({ sid => $options->{id}, user => $session->{user}, error => $error ? $error->code : undef });
  my @headers = ('Content-Type' => 'application/json');

  if    ($path eq '/cart')    { push @{ $session->{cart} ||= [] }, 4; delete $session->{note} }    # in place
  elsif ($path eq '/login')   { $session->{user} = { id => 7, name => 'Grace' }; $options->{change_id} = 1 }
  elsif ($path eq '/logout')  { $session->{cart} = []; $options->{expire} = 1 }
  elsif ($path eq '/nostore') { $session->{cart} = []; $options->{no_store} = 1 }
  elsif ($path eq '/rename')  { $session->{user} = { id => 7 } }                # "name" must go
  elsif ($path eq '/replace') { $env->{'psgix.session'} = { %$session, cart => [7] } }    # as Catalyst's Store::PSGI does
  elsif ($path eq '/scalar')  { $env->{'psgix.session'} = time + 3600; $options->{change_id} = 1 }    # not a hash
  elsif ($path eq '/blessed') { $session->{when} = bless {}, 'Not::JSON' }
  elsif ($path eq '/spoof')   { push @headers, 'X-Session-Gateway-Write' => 'forged' }
  elsif ($path eq '/stream') {
    return sub {
      my ($responder) = @_;
      $session->{cart} = [5];
      my $writer = $responder->([200, \@headers]);
      $writer->write($body);
      $writer->close;
    };
  }
  elsif ($path eq '/delayed') {
    return sub { my ($responder) = @_; $session->{cart} = [6]; $responder->([200, \@headers, [$body]]) };
  }
  return [200, \@headers, [$body]];
};

my $wrapped = builder {
  # Collect psgi.errors so the tests can read what the middleware logged.
  enable sub {
    my $next = shift;
    sub { my $env = shift; open my $fh, '>>', $log_file->filename or die $!; $fh->autoflush(1); $env->{'psgi.errors'} = $fh; $next->($env) };
  };
  enable 'SessionGateway', mount => 'shop', keys => \%SHOP_KEYS;
  $app;
};

sub write_back_of {
  my ($res, $token) = @_;
  my $value = $res->header('X-Session-Gateway-Write');
  return undef unless defined $value;
  my ($header, $payload) = jws_parts($value);
  ok hs256_ok($value, $SHOP_KEYS{ $header->{kid} }), 'write-back signed with the mount key';
  my (undef, $claims) = jws_parts($token);
  is canonical([@$payload{qw(aud rid sid)}]), canonical([@$claims{qw(aud rid sid)}]), 'bound to the request token';
  my %asked = map { $_ => $payload->{$_} } grep { !/\A(?:v|aud|rid|sid)\z/ } keys %$payload;
  return \%asked;
}

sub run_suite {
  my ($cb) = @_;
  my $token = mint_token(fresh_payload());
  my $get = sub { my ($path, $t) = @_; $cb->(GET $path, defined $t ? ('X-Session-Gateway-Token' => $t) : ()) };

  subtest 'reads the session, no change, no header' => sub {
    my $res = $get->('/read', $token);
    is $res->code, 200;
    my $body = $JSON->decode($res->content);
    is $body->{sid}, 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe', 'psgix.session.options id';
    is canonical($body->{user}), canonical({ id => 42, name => 'Ada' }), 'psgix.session data';
    ok !defined $res->header('X-Session-Gateway-Write'), 'no write-back';
  };

  subtest 'in-place change and delete' => sub {
    my $asked = write_back_of($get->('/cart', $token), $token);
    is canonical($asked), canonical({ set => { cart => [1, 2, 3, 4], note => undef } });
  };

  subtest 'replacing an object nulls the keys it lost' => sub {
    my $asked = write_back_of($get->('/rename', $token), $token);
    is canonical($asked), canonical({ set => { user => { id => 7, name => undef } } });
    is canonical(apply_merge_patch(fresh_payload()->{data}{user}, $asked->{set}{user})), canonical({ id => 7 });
  };

  subtest 'change_id is regenerate' => sub {
    my $asked = write_back_of($get->('/login', $token), $token);
    is canonical($asked), canonical({ set => { user => { id => 7, name => 'Grace' } }, regenerate => JSON::PP::true });
  };

  subtest 'expire is destroy, alone' => sub {
    is canonical(write_back_of($get->('/logout', $token), $token)), canonical({ destroy => JSON::PP::true });
  };

  subtest 'no_store sends no data' => sub {
    ok !defined $get->('/nostore', $token)->header('X-Session-Gateway-Write');
  };

  subtest 'a new psgix.session hashref is read afresh' => sub {
    is canonical(write_back_of($get->('/replace', $token), $token)), canonical({ set => { cart => [7] } });
  };

  subtest 'streaming and delayed responses carry the header' => sub {
    my $res = $get->('/stream', $token);
    is $JSON->decode($res->content)->{sid}, 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe', 'streamed body intact';
    is canonical(write_back_of($res, $token)), canonical({ set => { cart => [5] } }), 'streaming';
    is canonical(write_back_of($get->('/delayed', $token), $token)), canonical({ set => { cart => [6] } }), 'delayed';
  };

  subtest 'anonymous visitor: no id, first write creates' => sub {
    my $anon = mint_token(fresh_payload(sid => undef, idleExp => undef, absExp => undef, data => {}));
    my $res = $get->('/cart', $anon);
    ok !defined $JSON->decode($res->content)->{sid}, 'no id';
    is canonical(write_back_of($res, $anon)), canonical({ set => { cart => [4] } });
  };

  subtest 'older key: the write-back uses the same kid' => sub {
    my $older = mint_token(fresh_payload(), kid => '2026-10');
    my ($header) = jws_parts($get->('/cart', $older)->header('X-Session-Gateway-Write'));
    is $header->{kid}, '2026-10';
  };

  subtest 'the app cannot send its own write header' => sub {
    clear_log();
    ok !defined $get->('/spoof', $token)->header('X-Session-Gateway-Write'), 'removed';
    like log_text(), qr/removed an X-Session-Gateway-Write header set by the app/, 'logged';
  };

  subtest 'psgix.session replaced by a non-hash: no data written, flags kept, logged' => sub {
    clear_log();
    is canonical(write_back_of($get->('/scalar', $token), $token)), canonical({ regenerate => JSON::PP::true }),
      'no set (a diff against nothing would delete every key)';
    like log_text(), qr/psgix.session is not a hashref after the app/, 'logged';
  };

  subtest 'a value that is not JSON: response kept, change dropped and logged' => sub {
    clear_log();
    my $res = $get->('/blessed', $token);
    is $res->code, 200, 'response delivered';
    ok !defined $res->header('X-Session-Gateway-Write'), 'no header';
    like log_text(), qr/session changes dropped/, 'logged';
  };

  subtest 'missing or bad token: anonymous, logged, changes dropped' => sub {
    for my $case ([undef, 'missing'], [mint_token(fresh_payload(), key => $BLOG_KEYS{'2026-11'}), 'bad_signature'],
      [mint_token(fresh_payload(aud => 'blog')), 'wrong_audience'],
      [mint_token(fresh_payload(iat => time - 200, exp => time - 140)), 'stale']) {
      my ($bad, $code) = @$case;
      clear_log();
      my $res = $get->('/cart', $bad);
      my $body = $JSON->decode($res->content);
      is $body->{error}, $code, "$code: the app sees the error";
      ok !defined $body->{sid} && !defined $body->{user}, "$code: empty session without id";
      ok !defined $res->header('X-Session-Gateway-Write'), "$code: no write-back";
      my $log = log_text();
      like $log, qr/token refused \(\Q$code\E\)/, "$code: logged with its code";
      like $log, qr/session changes dropped: the request had no valid token/, "$code: dropped change logged";
    }
  };
}

for my $impl (qw(MockHTTP Server)) {
  local $Plack::Test::Impl = $impl;
  subtest "via Plack::Test $impl" => sub { test_psgi app => $wrapped, client => \&run_suite };
}

subtest 'configuration from the environment' => sub {
  local $ENV{SESSION_GATEWAY_MOUNT} = 'shop';
  local $ENV{SESSION_GATEWAY_KEYS}  = "2026-11:$SHOP_KEYS{'2026-11'}";
  my $from_env = builder { enable 'SessionGateway'; $app };
  test_psgi $from_env, sub {
    my $token = mint_token(fresh_payload());
    my $asked = write_back_of($_[0]->(GET '/cart', 'X-Session-Gateway-Token' => $token), $token);
    is canonical($asked), canonical({ set => { cart => [1, 2, 3, 4], note => undef } });
  };
};

subtest 'EdDSA mode: public keys verify, mount keys sign the write-back' => sub {
  require SessionGateway::Protocol;
  plan skip_all => 'EdDSA needs Crypt::PK::Ed25519 (Debian: libcryptx-perl), which is not installed'
    unless SessionGateway::Protocol::eddsa_available();
  my ($vector) = grep { $_->{alg} eq 'EdDSA' } @{ $VECTORS->{tokens}{valid} };
  my $public = SessionGateway::Protocol::public_keys_from_jwks($VECTORS->{keys}{jwks});
  ok !eval { builder { enable 'SessionGateway', mount => 'shop', keys => $public, alg => 'EdDSA'; $app }; 1 },
    'write_keys are required';
  my $ed = builder {
    enable 'SessionGateway', mount => 'shop', keys => $public, alg => 'EdDSA',
      write_keys => { '2026-11' => $SHOP_KEYS{'2026-11'} }, clock => sub { $vector->{now} };
    $app;
  };
  test_psgi $ed, sub {
    my $value = $_[0]->(GET '/cart', 'X-Session-Gateway-Token' => $vector->{token})->header('X-Session-Gateway-Write');
    ok defined $value, 'write-back sent';
    my ($header) = jws_parts($value);
    is canonical($header), canonical({ alg => 'HS256', kid => '2026-11', typ => 'JWT' }), 'HS256 under the mount key';
    ok hs256_ok($value, $SHOP_KEYS{'2026-11'}), 'verifies';
  };
};

done_testing;
