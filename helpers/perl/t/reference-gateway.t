# The gateway's own write-back verifier (packages/backend/src/protocol, TypeScript, run by the
# project's Node 24) judges the write-backs this helper builds.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib", "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use SGTest;
use SessionGateway::Protocol qw(build_write_back verify_token);

my $node = "$REPO/node_modules/.bin/node";
plan skip_all => 'node_modules/.bin/node (Node 24, from npm ci) is not installed; this cross-check needs it'
  unless -x $node;

my $JSON = JSON::PP->new->utf8->canonical;
my $index = "$REPO/packages/backend/src/protocol/index.ts";
my $script = <<"JS";
import { verifyWriteBack, hs256Key, ProtocolError } from ${\ $JSON->encode($index) };
const input = JSON.parse(process.argv[1]);
const keys = new Map(Object.entries(input.keys).map(([kid, k]) => [kid, hs256Key(kid, Buffer.from(k, 'base64url'))]));
console.log(JSON.stringify(input.cases.map((c) => {
  try {
    return { ok: verifyWriteBack(c.header, { keys, binding: c.binding, reserved: new Set(input.reserved),
                                             mayWrite: (k) => input.write.includes(k) }) };
  } catch (e) { return { error: e instanceof ProtocolError ? e.code : String(e) }; }
})));
JS

my @vectors = @{ $VECTORS->{writeBacks}{valid} };
my @cases = map {
  my $wb = $_->{writeBack};
  { binding => $_->{binding},
    header  => build_write_back($_->{binding}, '2026-11', $SHOP_KEYS{'2026-11'},
      (exists $wb->{set} ? (set => $wb->{set}) : ()),
      regenerate => $wb->{regenerate}, destroy => $wb->{destroy}, revoke_user => $wb->{revokeUser}) }
} @vectors;
# A request as the gateway sends it: the token, and a fresh X-Session-Gateway-Rid beside
# it. The write-back built from the verified claims must be bound to that rid.
my $token_vector = $VECTORS->{tokens}{valid}[0];
my $request_rid = mint_rid();
my $claims = verify_token({ HTTP_X_SESSION_GATEWAY_TOKEN => $token_vector->{token}, HTTP_X_SESSION_GATEWAY_RID => $request_rid },
  mount => 'shop', keys => \%SHOP_KEYS, now => $token_vector->{now});
my $from_request = build_write_back($claims, '2026-11', $SHOP_KEYS{'2026-11'}, set => { cart => [9] });
my $request_binding = { aud => 'shop', rid => $request_rid, sid => $token_vector->{expect}{sid} };
push @cases, { header => $from_request, binding => $request_binding };
# Replays onto another request, so the check is seen to refuse as well: a vector's
# write-back under another rid, and the request's under the vectors' rid.
push @cases, { header => $cases[0]{header}, binding => { %{ $vectors[0]{binding} }, rid => 'Other0request0nonce000' } };
push @cases, { header => $from_request, binding => { %$request_binding, rid => $token_vector->{rid} } };

my $input = $JSON->encode({ keys => \%SHOP_KEYS, reserved => $VECTORS->{writeBacks}{reserved},
  write => $VECTORS->{writeBacks}{permissions}{write}, cases => \@cases });
open my $child, '-|', $node, '--input-type=module', '-e', $script, $input or die "cannot run node: $!";
my $out = do { local $/; <$child> };
close $child;
is $?, 0, 'node ran the reference verifier';
my $results = $JSON->decode($out);
for my $i (0 .. $#vectors) {
  is canonical($results->[$i]), canonical({ ok => $vectors[$i]{expect} }), "accepted: $vectors[$i]{name}";
}
is canonical($results->[-3]), canonical({ ok => { set => { cart => [9] } } }),
  'accepted: built from a verified request, bound to its rid header';
is canonical($results->[-2]), canonical({ error => 'replayed' }), 'refused: replay onto another rid';
is canonical($results->[-1]), canonical({ error => 'replayed' }), 'refused: the request\'s write-back under another rid';

done_testing;
