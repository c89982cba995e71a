# frozen_string_literal: true
# Runs test/vectors/protocol-v3.json against verifier.rb.
#   ruby run_vectors.rb            keys, tokens.valid, tokens.invalid, writeBacks.valid (builder), writeBacks.apply
#   ruby run_vectors.rb --gateway  also the gateway-side write-back checks (writeBacks.*)
require "json"
require_relative "verifier"

SG = SessionGateway
vectors = JSON.parse(File.read(File.expand_path("../../test/vectors/protocol-v3.json", __dir__)))
gateway = ARGV.include?("--gateway")
$passed = 0
$failed = 0

def report(kind, name, ok, detail = nil)
  ok ? $passed += 1 : $failed += 1
  puts "#{ok ? 'PASS' : 'FAIL'} #{kind}: #{name}#{detail && !ok ? " (#{detail})" : ''}"
end

def check(kind, name)
  ok, detail = yield
  report(kind, name, ok, detail)
rescue StandardError => e
  report(kind, name, false, "#{e.class}: #{e.message}")
end

keys = vectors.fetch("keys")
skew = vectors.fetch("skewSeconds", SG::DEFAULT_SKEW)
hs_keys = keys.fetch("mountKeys")                  # mount => { kid => base64url key }
ed_keys = SG.keys_from_jwks(keys.fetch("jwks"))   # kid => public key, one set for every mount
keys_for = ->(alg, mount) { alg == "EdDSA" ? ed_keys : hs_keys.fetch(mount) }

# keys: each mount's derived key from each configured secret (§5.1)
keys.fetch("mountKeys").each do |mount, by_kid|
  by_kid.each do |kid, expected|
    check("keys", "derive #{mount}/#{kid}") do
      got = SG.derive_mount_key(keys.fetch("secrets").fetch(kid), mount)
      [got == expected, "got #{got}"]
    end
  end
end

vectors.fetch("tokens").fetch("valid").each do |v|
  check("tokens.valid", v["name"]) do
    claims = SG.verify(v["token"], rid: v["rid"], mount: v["mount"], keys: keys_for.(v["alg"], v["mount"]),
                                   alg: v["alg"], now: v["now"], skew: skew)
    [claims == v["expect"], "got #{JSON.generate(claims)}"]
  end
end

vectors.fetch("tokens").fetch("invalid").each do |v|
  check("tokens.invalid", v["name"]) do
    SG.verify(v["token"], rid: v["rid"], mount: v["mount"], keys: keys_for.(v["alg"], v["mount"]),
                          alg: v["alg"], now: v["now"], skew: skew)
    [false, "verified, expected #{v['error']}"]
  rescue SG::ProtocolError => e
    [e.code == v["error"], "got #{e.message}, expected #{v['error']}"]
  end
end

wb = vectors.fetch("writeBacks")
mount = wb.fetch("mount")
newest_kid = keys.fetch("secrets").keys.first      # "newest first" (§5.1)
mount_keys = hs_keys.fetch(mount)

wb.fetch("valid").each do |v|
  check("writeBacks.valid", v["name"]) do
    header = SG.build_write_back(v["binding"], v["writeBack"], key: mount_keys.fetch(newest_kid), kid: newest_kid)
    mine = SG.parse_json_object(SG.b64url_decode(header.split(".")[1]))
    ref = SG.parse_json_object(SG.b64url_decode(v["header"].split(".")[1]))
    next [false, "payload differs: #{JSON.generate(mine)} vs #{JSON.generate(ref)}"] unless mine == ref
    _h, p = SG.verify_jws(header, keys: mount_keys, alg: "HS256") # signature under the derived key
    [p == ref, "signature check returned other payload"]
  end
end

# §6.4 / §9: what the gateway stores for each writeBacks.apply case, or the code it refuses with.
wb.fetch("apply").each do |v|
  check("writeBacks.apply", v["name"]) do
    got = SG.apply(v["data"], v["writeBack"])
    next [false, "stored #{JSON.generate(got)}, expected #{v['error']}"] if v.key?("error")
    [got == v["expect"], "got #{JSON.generate(got)}"]
  rescue SG::ProtocolError => e
    [e.code == v["error"], "got #{e.message}, expected #{v['expect'] || v['error']}"]
  end
end

if gateway
  perms = wb.fetch("permissions")
  reserved = wb.fetch("reserved")
  wb.fetch("valid").each do |v|
    check("gateway writeBacks.valid", v["name"]) do
      req = SG.check_write_back(v["header"], binding: v["binding"], keys: mount_keys,
                                             write: perms.fetch("write"), reserved: reserved)
      [req == v["expect"], "got #{JSON.generate(req)}"]
    end
  end
  wb.fetch("invalid").each do |v|
    check("gateway writeBacks.invalid", v["name"]) do
      SG.check_write_back(v["header"], binding: v["binding"], keys: mount_keys,
                                       write: perms.fetch("write"), reserved: reserved)
      [false, "accepted, expected #{v['error']}"]
    rescue SG::ProtocolError => e
      [e.code == v["error"], "got #{e.message}, expected #{v['error']}"]
    end
  end
end

puts "#{$passed} passed, #{$failed} failed"
exit($failed.zero? ? 0 : 1)
