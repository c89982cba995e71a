# Plack::Middleware::SessionGateway with Plack::Test, on a tiny app that reads and
# writes psgix.session; run through the mock client and through a real HTTP server.
# Requests carry what the gateway sends (protocol v3): X-Session-Gateway-Token and a
# fresh X-Session-Gateway-Rid on each request.
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
  my $claims  = $env->{'session_gateway.claims'};
  my $path    = $env->{PATH_INFO};
  my $body = $JSON->encode({ sid => $options->{id}, user => $session->{user}, error => $error ? $error->code : undef,
    rid => $claims ? $claims->{rid} : undef });
  my @headers = ('Content-Type' => 'application/json');

  if    ($path eq '/cart')    { push @{ $session->{cart} ||= [] }, 4; delete $session->{note} }    # in place
  elsif ($path eq '/login')   { $session->{user} = { id => 7, name => 'Grace' }; $options->{change_id} = 1 }
  elsif ($path eq '/logout')  { $session->{cart} = []; $options->{expire} = 1 }
  elsif ($path eq '/nostore') { $session->{cart} = []; $options->{no_store} = 1 }
  elsif ($path eq '/rename')  { $session->{user} = { id => 7 } }                # "name" must go
  elsif ($path eq '/replace') { $env->{'psgix.session'} = { %$session, cart => [7] } }    # as Catalyst's Store::PSGI does
  elsif ($path eq '/scalar')  { $env->{'psgix.session'} = time + 3600; $options->{change_id} = 1 }    # not a hash
  elsif ($path eq '/blessed') { $session->{when} = bless {}, 'Not::JSON' }
  elsif ($path eq '/count')   { Plack::Middleware::SessionGateway::session_incr($env, 'visits');
                                Plack::Middleware::SessionGateway::session_add($env, 'tags', 'b', 'a');
                                Plack::Middleware::SessionGateway::session_remove($env, 'cart', 2);
                                $body = $JSON->encode({ visits => $session->{visits}, tags => $session->{tags}, cart => $session->{cart} }) }
  elsif ($path eq '/count-raw') { $options->{incr}{visits} = 3; $session->{visits} = 'ignored: the operation is sent' }
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

# Collect psgi.errors so the tests can read what the middleware logged.
my $collect_log = sub {
  my $next = shift;
  sub { my $env = shift; open my $fh, '>>', $log_file->filename or die $!; $fh->autoflush(1); $env->{'psgi.errors'} = $fh; $next->($env) };
};

my $wrapped = builder {
  enable $collect_log;
  enable 'SessionGateway', mount => 'shop', keys => \%SHOP_KEYS;
  $app;
};

# A request as the gateway makes it: the token (unless undef) and X-Session-Gateway-Rid,
# a fresh one unless given; undef sends none, an arrayref one header per element.
sub gateway_request {
  my ($path, $token, @rid) = @_;
  my $req = GET $path;
  $req->header('X-Session-Gateway-Token' => $token) if defined $token;
  my $rid = @rid ? $rid[0] : mint_rid();
  $req->push_header('X-Session-Gateway-Rid' => $_) for grep { defined } ref $rid ? @$rid : ($rid);
  return $req;
}

# The write-back's asks; checks it is v 2, signed with the mount key and bound to the
# aud and sid of the token and the rid header of the request the response answers.
sub write_back_of {
  my ($res, $token) = @_;
  my $value = $res->header('X-Session-Gateway-Write');
  return undef unless defined $value;
  my ($header, $payload) = jws_parts($value);
  ok hs256_ok($value, $SHOP_KEYS{ $header->{kid} }), 'write-back signed with the mount key';
  is $payload->{v}, 3, 'protocol version 3';
  my (undef, $claims) = jws_parts($token);
  my $rid = $res->request->header('X-Session-Gateway-Rid');
  like $rid, qr/\A[A-Za-z0-9_-]{22}\z/, 'the request carried a rid header';
  is canonical([@$payload{qw(aud sid rid)}]), canonical([@$claims{qw(aud sid)}, $rid]),
    'bound to the request: aud and sid of its token, its rid header';
  my %asked = map { $_ => $payload->{$_} } grep { !/\A(?:v|aud|rid|sid)\z/ } keys %$payload;
  return \%asked;
}

# What the app saw and what came back, for a request the middleware must refuse.
sub check_refused {
  my ($res, $code, $name, $reason) = @_;
  my $body = $JSON->decode($res->content);
  is $res->code, 200, "$name: the app still answers";
  is $body->{error}, $code, "$name: the app sees $code";
  ok !defined $body->{sid} && !defined $body->{user} && !defined $body->{rid}, "$name: empty session without id";
  ok !defined $res->header('X-Session-Gateway-Write'), "$name: no write-back";
  my $log = log_text();
  like $log, qr/token refused \(\Q$code\E\)\Q$reason\E/, "$name: logged with its code";
  like $log, qr/session changes dropped: the request had no valid token \(\Q$code\E\)/, "$name: dropped change logged";
}

sub run_suite {
  my ($cb) = @_;
  my $token = mint_token(fresh_payload());
  my $get = sub { $cb->(gateway_request(@_)) };

  subtest 'reads the session, no change, no header' => sub {
    my $rid = mint_rid();
    my $res = $get->('/read', $token, $rid);
    is $res->code, 200;
    my $body = $JSON->decode($res->content);
    is $body->{error}, undef, 'no error';
    is $body->{sid}, 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe', 'psgix.session.options id';
    is $body->{rid}, $rid, 'session_gateway.claims rid is the header\'s';
    is canonical($body->{user}), canonical({ id => 42, name => 'Ada' }), 'psgix.session data';
    ok !defined $res->header('X-Session-Gateway-Write'), 'no write-back';
  };

  subtest 'atomic operations: session_incr/add/remove become incr/add/remove, and show in psgix.session' => sub {
    my $res = $get->('/count', $token);
    is canonical($JSON->decode($res->content)), canonical({ visits => 1, tags => ['b', 'a'], cart => [1, 3] }), 'the app sees the results';
    is canonical(write_back_of($res, $token)), canonical({ incr => { visits => 1 }, add => { tags => ['b', 'a'] }, remove => { cart => [2] } }),
      'sent as operations, not as a set of what the app saw';
    is canonical(write_back_of($get->('/count-raw', $token), $token)), canonical({ incr => { visits => 3 } }),
      'psgix.session.options{incr} directly; the hash value of that key is not sent';
  };

  subtest 'one token, two requests: each write-back bound to its own rid header' => sub {
    my ($rid1, $rid2) = (mint_rid(), mint_rid());
    my @rids = map { (jws_parts($get->('/cart', $token, $_)->header('X-Session-Gateway-Write')))[1]{rid} } $rid1, $rid2;
    is_deeply \@rids, [$rid1, $rid2], 'the same token, the rid of each request';
  };

  subtest 'a rid inside the token is ignored: the header binds' => sub {
    my $odd = mint_token(fresh_payload(rid => 'T' x 22));
    my $rid = mint_rid();
    my (undef, $payload) = jws_parts($get->('/cart', $odd, $rid)->header('X-Session-Gateway-Write'));
    is $payload->{rid}, $rid, 'rid from the header';
    clear_log();
    check_refused($get->('/cart', $odd, undef), 'malformed', 'and without the header', ': no well-formed X-Session-Gateway-Rid');
  };

  subtest 'missing or malformed rid header: anonymous, logged as malformed, changes dropped' => sub {
    my $rid = mint_rid();
    for my $case ([undef, 'no rid header'], ['', 'empty rid header'], [substr($rid, 1), '21 characters'],
      [$rid . 'A', '23 characters'], [substr($rid, 1) . '=', 'a character outside base64url'],
      [[$rid, mint_rid()], 'two rid headers'], [[$rid, $rid], 'two equal rid headers (joined)']) {
      my ($bad, $name) = @$case;
      clear_log();
      my $res = $get->('/cart', $token, $bad);
      is $res->request->header('X-Session-Gateway-Rid'), (ref $bad ? join(', ', @$bad) : $bad), "$name: as sent";
      check_refused($res, 'malformed', $name, ': no well-formed X-Session-Gateway-Rid');
    }
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

  subtest 'missing or bad token: anonymous, logged, changes dropped; token errors before the rid' => sub {
    for my $case ([undef, 'missing'], [mint_token(fresh_payload(), key => $BLOG_KEYS{'2026-11'}), 'bad_signature'],
      [mint_token(fresh_payload(aud => 'blog')), 'wrong_audience'],
      [mint_token(fresh_payload(iat => time - 200, exp => time - 140)), 'stale'],
      [mint_token(fresh_payload(v => 1, rid => $RID)), 'unsupported_version']) {
      my ($bad, $code) = @$case;
      # With a good rid header, with none, with an ill-formed one: the token's error each time.
      for my $rid ([mint_rid(), 'rid header'], [undef, 'no rid header'], ['short', 'bad rid header']) {
        clear_log();
        check_refused($get->('/cart', $bad, $rid->[0]), $code, "$code, $rid->[1]", '');
      }
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
  my $from_env = builder { enable $collect_log; enable 'SessionGateway'; $app };
  test_psgi $from_env, sub {
    my $token = mint_token(fresh_payload());
    my $asked = write_back_of($_[0]->(gateway_request('/cart', $token)), $token);
    is canonical($asked), canonical({ set => { cart => [1, 2, 3, 4], note => undef } });
    clear_log();
    check_refused($_[0]->(gateway_request('/cart', $token, undef)), 'malformed', 'no rid header',
      ': no well-formed X-Session-Gateway-Rid');
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
    enable $collect_log;
    enable 'SessionGateway', mount => 'shop', keys => $public, alg => 'EdDSA',
      write_keys => { '2026-11' => $SHOP_KEYS{'2026-11'} }, clock => sub { $vector->{now} };
    $app;
  };
  test_psgi $ed, sub {
    my $value = $_[0]->(gateway_request('/cart', $vector->{token}, $vector->{rid}))->header('X-Session-Gateway-Write');
    ok defined $value, 'write-back sent';
    my ($header, $payload) = jws_parts($value);
    is canonical($header), canonical({ alg => 'HS256', kid => '2026-11', typ => 'JWT' }), 'HS256 under the mount key';
    ok hs256_ok($value, $SHOP_KEYS{'2026-11'}), 'verifies';
    is canonical([@$payload{qw(v aud rid sid)}]), canonical([2, 'shop', $vector->{rid}, $vector->{expect}{sid}]),
      'v 2, bound to the rid header';
    clear_log();
    check_refused($_[0]->(gateway_request('/cart', $vector->{token}, undef)), 'malformed', 'no rid header',
      ': no well-formed X-Session-Gateway-Rid');
  };
};

done_testing;
