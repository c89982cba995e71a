# examples/app.psgi, the login counter, behind the middleware (as plackup would load it),
# sent requests as the gateway sends them: the token and a fresh X-Session-Gateway-Rid.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib", "$FindBin::Bin/lib";
use Test::More;
use Plack::Test;
use Plack::Util;
use HTTP::Request::Common qw(GET POST);
use JSON::PP ();
use SGTest;

$ENV{SESSION_GATEWAY_MOUNT} = 'shop';
$ENV{SESSION_GATEWAY_KEYS}  = "2026-11:$SHOP_KEYS{'2026-11'},2026-10:$SHOP_KEYS{'2026-10'}";
my $app  = Plack::Util::load_psgi("$FindBin::Bin/../examples/app.psgi");
my $JSON = JSON::PP->new->utf8;

# The gateway's headers for one request: the token and a fresh rid.
sub gateway_headers { my ($token) = @_; return ('X-Session-Gateway-Token' => $token, 'X-Session-Gateway-Rid' => mint_rid()) }

sub asked {
  my ($res) = @_;
  my $value = $res->header('X-Session-Gateway-Write') // return undef;
  ok hs256_ok($value, $SHOP_KEYS{'2026-11'}), 'write-back verifies';
  my (undef, $payload) = jws_parts($value);
  is $payload->{v}, 3, 'protocol version 3';
  is $payload->{rid}, $res->request->header('X-Session-Gateway-Rid'), 'bound to the request\'s rid header';
  delete @$payload{qw(v aud rid sid)};
  return $payload;
}

# psgi.errors is STDERR under Plack::Test's mock client: catch it to check the log.
open my $stderr, '>', \my $log or die;
test_psgi $app, sub {
  local *STDERR = $stderr;
  my ($cb) = @_;
  my $anon = mint_token(fresh_payload(sid => undef, idleExp => undef, absExp => undef, data => {}));
  my $res = $cb->(POST '/shop/login', [name => 'Ada'], gateway_headers($anon));
  is $res->code, 200, 'login';
  is canonical(asked($res)), canonical({ set => { user => { name => 'Ada' }, logins => 1 }, regenerate => JSON::PP::true }),
    'login sets user and logins, asks for a new id';

  my $logged_in = mint_token(fresh_payload(data => { user => { name => 'Ada' }, logins => 1, visits => 2 }));
  $res = $cb->(GET '/shop/', gateway_headers($logged_in));
  my $body = $JSON->decode($res->content);
  is_deeply [$body->{user}{name}, $body->{logins}, $body->{visits}], ['Ada', 1, 3], 'the counter page reads the session';
  ok $body->{session}, 'with a session id';
  is canonical(asked($res)), canonical({ set => { visits => 3 } }), 'the visit is written back';

  $res = $cb->(POST '/shop/logout', gateway_headers($logged_in));
  is canonical(asked($res)), canonical({ destroy => JSON::PP::true }), 'logout destroys';

  $res = $cb->(GET '/shop/');
  $body = $JSON->decode($res->content);
  is $body->{error}, 'missing', 'without the gateway: anonymous, error shown';
  ok !defined $res->header('X-Session-Gateway-Write'), 'and nothing written back';
  like $log, qr/token refused \(missing\): no session token header/, 'the refusal is logged';

  $res = $cb->(GET '/shop/', 'X-Session-Gateway-Token' => $logged_in);
  $body = $JSON->decode($res->content);
  is_deeply [$body->{error}, $body->{session}, $body->{user}, $body->{visits}], ['malformed', JSON::PP::false, undef, 1],
    'a token without its rid header: anonymous, malformed';
  ok !defined $res->header('X-Session-Gateway-Write'), 'and nothing written back';
  like $log, qr/token refused \(malformed\): no well-formed X-Session-Gateway-Rid header/, 'the refusal is logged';
};

done_testing;
