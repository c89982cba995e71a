# The mount prefix from X-Forwarded-Prefix: prefix_from, url_for, and the middleware's
# $env->{'session_gateway.prefix'}, with and without a verified session.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib", "$FindBin::Bin/lib";
use Test::More;
use Plack::Middleware::SessionGateway;
use SessionGateway::Protocol qw(prefix_from url_for);
use SGTest;

my %clean = ('/shop' => '/shop', '/shop/' => '/shop', '/a/b-c.d~e' => '/a/b-c.d~e', '/caf%C3%A9' => '/caf%C3%A9', '/' => '', '' => '');
is(prefix_from({ 'X-Forwarded-Prefix' => $_ }), $clean{$_}, "'$_' is '$clean{$_}'") for sort keys %clean;
is(prefix_from({ HTTP_X_FORWARDED_PREFIX => '/shop' }), '/shop', 'read from a PSGI env');
is(prefix_from({}), '', 'absent: no prefix');
for my $bad ('//evil.example', '/\\evil.example', 'shop', 'https://evil.example', "/shop\r\nX: y", '/shop, /blog', '/sh op', '/shop?x=1') {
  (my $shown = $bad) =~ s/\r\n/\\r\\n/;
  is(prefix_from({ 'X-Forwarded-Prefix' => $bad }), '', "'$shown' could start an open redirect: no prefix");
}
is(prefix_from({ 'X-Forwarded-Prefix' => '/a', 'x-forwarded-prefix' => '/b' }), '', 'two different values: no prefix');

is(url_for({ 'session_gateway.prefix' => '/shop' }, '/'), '/shop/', 'url_for puts the prefix first');
is(url_for({ 'session_gateway.prefix' => '/shop' }, '/cart?item=7'), '/shop/cart?item=7', 'query strings stay');
is(url_for({ HTTP_X_FORWARDED_PREFIX => '/shop' }, '/me'), '/shop/me', 'without the middleware it reads the header');
is(url_for({}, '/me'), '/me', 'no prefix: the path itself');
for my $bad ('cart', '//evil.example', '/\\evil.example', 'https://evil.example/') {
  ok(!eval { url_for({}, $bad); 1 } && $@ =~ /must start with a single/, "url_for refuses '$bad'");
}

my $seen;
my $app = Plack::Middleware::SessionGateway->wrap(
  sub { $seen = { prefix => $_[0]{'session_gateway.prefix'}, url => url_for($_[0], '/'), sid => $_[0]{'psgix.session.options'}{id} };
        [200, [], ['ok']] },
  mount => 'shop', keys => \%SHOP_KEYS);
open my $errors, '>', \my $log;
$app->({ HTTP_X_SESSION_GATEWAY_TOKEN => mint_token(fresh_payload()), HTTP_X_SESSION_GATEWAY_RID => mint_rid(),
         HTTP_X_FORWARDED_PREFIX => '/shop', 'psgi.errors' => $errors });
is_deeply($seen, { prefix => '/shop', url => '/shop/', sid => 'Yq3vGd0mXo8QkzV4b1lT2uNcWw5sPaRe' }, 'a verified request: the prefix beside the session');
$app->({ HTTP_X_FORWARDED_PREFIX => '/shop', 'psgi.errors' => $errors });
is_deeply($seen, { prefix => '/shop', url => '/shop/', sid => undef }, 'an anonymous visitor gets the prefix too');
like($log, qr/token refused \(missing\)/, 'and the missing token is logged');

done_testing;
