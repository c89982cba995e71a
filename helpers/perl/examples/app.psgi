# A login counter on the shared session, for a PSGI app behind session-gateway.
#
#   SESSION_GATEWAY_MOUNT=shop SESSION_GATEWAY_KEYS="2026-11:<derived key>" \
#     plackup -I helpers/perl/lib -p 5001 helpers/perl/examples/app.psgi
#
# The gateway's mount must be allowed to read and write: user, logins, visits.
#
#   GET  .../          counts a visit; answers JSON {user, logins, visits, session}
#   POST .../login     name=Ada: sets user, counts a login, asks for a new session id
#   POST .../logout    ends the session (in every app behind the gateway)
#
# Routes match on the end of the path, so it works whether or not the gateway
# strips the mount's path prefix.
use strict;
use warnings;
use File::Basename ();
use File::Spec ();
use lib File::Spec->catdir(File::Basename::dirname(File::Spec->rel2abs(__FILE__)), '..', 'lib');
use JSON::PP ();
use Plack::Builder;
use Plack::Request;

my $JSON = JSON::PP->new->utf8->canonical;

sub json_response {
  my ($status, $data) = @_;
  return [$status, ['Content-Type' => 'application/json; charset=utf-8'], [$JSON->encode($data)]];
}

my $app = sub {
  my ($env) = @_;
  my $req     = Plack::Request->new($env);
  my $session = $env->{'psgix.session'};            # the readable part of the shared session
  my $options = $env->{'psgix.session.options'};    # {id => sid}; no id for a visitor without one

  if ($req->path_info =~ m{/login\z}) {
    return json_response(405, { error => 'POST only' }) unless $req->method eq 'POST';
    $session->{user}   = { name => $req->body_parameters->{name} // 'guest' };
    $session->{logins} = ($session->{logins} // 0) + 1;
    $options->{change_id} = 1;                        # new session id at login (session fixation)
    return json_response(200, { user => $session->{user}, logins => $session->{logins} });
  }
  if ($req->path_info =~ m{/logout\z}) {
    return json_response(405, { error => 'POST only' }) unless $req->method eq 'POST';
    $options->{expire} = 1;                           # the gateway destroys the session
    return json_response(200, { user => undef });
  }
  $session->{visits} = ($session->{visits} // 0) + 1;
  return json_response(200, {
    user    => $session->{user},
    logins  => $session->{logins} // 0,
    visits  => $session->{visits},
    session => defined $options->{id} ? JSON::PP::true : JSON::PP::false,
    error   => $env->{'session_gateway.error'} ? $env->{'session_gateway.error'}->code : undef,
  });
};

builder {
  enable 'SessionGateway';    # mount and keys from SESSION_GATEWAY_MOUNT / SESSION_GATEWAY_KEYS
  $app;
};
