package SessionGateway::Error;
# A protocol error: ->code is exactly one of docs/PROTOCOL.md §7's codes.
use strict;
use warnings;
use overload '""' => sub { $_[0]->{code} . ': ' . $_[0]->{message} }, fallback => 1;

our $VERSION = '3.000';

sub new { my ($class, $code, $message) = @_; bless { code => $code, message => $message }, $class }
sub code    { $_[0]->{code} }
sub message { $_[0]->{message} }
sub throw   { my $class = shift; die $class->new(@_) }

1;

__END__

=head1 NAME

SessionGateway::Error - a session-gateway protocol error

=head1 SYNOPSIS

  my $claims = eval { verify_token($env, %options) };
  if (my $err = $@) { die $err unless ref $err && $err->isa('SessionGateway::Error'); warn $err->code }

C<< ->code >> is one of the protocol's error codes (C<missing>, C<malformed>,
C<bad_signature>, C<stale>, ...), C<< ->message >> says why; the object stringifies as
C<"code: message">.

=cut
