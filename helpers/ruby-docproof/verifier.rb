# frozen_string_literal: true
# session-gateway protocol v3 helper for Ruby, written from docs/PROTOCOL.md only.
# Standard library only: openssl, base64, json.
require "openssl"
require "base64"
require "json"

module SessionGateway
  VERSION = 3                                       # §4.2, §10
  DERIVATION_LABEL = "session-gateway/v1 mount "   # §5.1 (unchanged in v2 and v3, §10)
  DEFAULT_SKEW = 10                                 # §4.3 step 10
  RID_PATTERN = /\A[A-Za-z0-9_-]{22}\z/             # §2, §4.3 step 11
  MAX_SAFE_INT = 2**53 - 1                          # §3
  WRITE_BACK_MAX_BYTES = 8192                       # §6.2 step 1, §8
  MAX_PATCH_DEPTH = 16                              # §6.2 step 6, §8
  UNSAFE_KEYS = %w[__proto__ constructor prototype].freeze
  RESERVED_KEYS = %w[cookie _gateway].freeze       # §6.2
  OPERATIONS = %w[incr add remove].freeze          # §6.4
  WRITE_BACK_FIELDS = (%w[v aud rid sid set] + OPERATIONS + %w[regenerate destroy revokeUser]).freeze
  WRITE_BACK_FLAGS = %w[regenerate destroy revokeUser].freeze
  # Ed25519 SubjectPublicKeyInfo DER prefix (RFC 8410); followed by the 32 raw key bytes.
  ED25519_SPKI_PREFIX = ["302a300506032b6570032100"].pack("H*").freeze

  # Carries the exact protocol error code of §7 in #code.
  class ProtocolError < StandardError
    attr_reader :code
    def initialize(code, detail = nil)
      @code = code
      super(detail ? "#{code}: #{detail}" : code)
    end
  end

  module_function

  def fail!(code, detail = nil)
    raise ProtocolError.new(code, detail)
  end

  # §3: RFC 4648 §5 without padding; reject other characters and length % 4 == 1.
  def b64url_decode(str)
    fail!("malformed", "not base64url") unless str.is_a?(String) && str.match?(/\A[A-Za-z0-9_-]*\z/)
    fail!("malformed", "bad base64url length") if str.length % 4 == 1
    std = str.tr("-_", "+/")
    std += "=" * ((4 - std.length % 4) % 4)
    bytes = std.unpack1("m")
    # Added after PROTOCOL.md §3 was tightened (canonical spellings only).
    fail!("malformed", "not canonical base64url") unless b64url_encode(bytes) == str
    bytes
  end

  def b64url_encode(bytes)
    Base64.urlsafe_encode64(bytes, padding: false)
  end

  def parse_json_object(bytes)
    text = bytes.dup.force_encoding(Encoding::UTF_8)
    fail!("malformed", "not UTF-8") unless text.valid_encoding?
    value = begin
      JSON.parse(text, max_nesting: false, allow_nan: false, create_additions: false)
    rescue JSON::ParserError, EncodingError => e
      fail!("malformed", "not JSON (#{e.class})")
    end
    fail!("malformed", "not a JSON object") unless value.is_a?(Hash)
    value
  end

  # §5.1: HMAC-SHA256(key = UTF-8(secret), message = UTF-8(label + mount)); 32 bytes,
  # returned as base64url text (the form backends are given).
  def derive_mount_key(secret, mount)
    raw = OpenSSL::HMAC.digest("SHA256", secret.encode(Encoding::UTF_8),
                               (DERIVATION_LABEL + mount).encode(Encoding::UTF_8))
    b64url_encode(raw)
  end

  # HS256 key: base64url text as handed out (decoded to its 32 bytes).
  def hmac_key_bytes(key)
    b64url_decode(key)
  end

  # EdDSA key: an OpenSSL::PKey, a JWK Hash ({"kty":"OKP","crv":"Ed25519","x":...}) or 32 raw bytes.
  def ed25519_public_key(key)
    return key if key.is_a?(OpenSSL::PKey::PKey)
    raw = key.is_a?(Hash) ? b64url_decode(key["x"] || key[:x]) : key.b
    raise ArgumentError, "Ed25519 public key must be 32 bytes" unless raw.bytesize == 32
    OpenSSL::PKey.read(ED25519_SPKI_PREFIX + raw)
  end

  # kid -> public key map from a JWKS document (§5.2, GET /_gateway/jwks.json).
  def keys_from_jwks(jwks)
    jwks = JSON.parse(jwks) if jwks.is_a?(String)
    jwks.fetch("keys").each_with_object({}) do |jwk, map|
      next unless jwk["kty"] == "OKP" && jwk["crv"] == "Ed25519" && jwk["kid"].is_a?(String)
      map[jwk["kid"]] = ed25519_public_key(jwk)
    end
  end

  def hs256(key, input)
    OpenSSL::HMAC.digest("SHA256", hmac_key_bytes(key), input)
  end

  def signature_ok?(alg, key, input, sig)
    case alg
    when "HS256"
      mac = hs256(key, input)
      mac.bytesize == sig.bytesize && OpenSSL.secure_compare(mac, sig)
    when "EdDSA"
      begin
        ed25519_public_key(key).verify(nil, sig, input)
      rescue OpenSSL::PKey::PKeyError
        false
      end
    else
      false
    end
  end

  # §4.3 steps 2-6 (shared with the gateway's write-back check, §6.2 step 2).
  # Returns [header, payload].
  def verify_jws(token, keys:, alg:)
    parts = token.split(".", -1)
    fail!("malformed", "expected 3 parts, got #{parts.length}") unless parts.length == 3
    header = parse_json_object(b64url_decode(parts[0]))  # header first (§4.3 as later clarified)
    fail!("unsupported_algorithm", header["alg"].inspect) unless header["alg"] == alg
    fail!("malformed", "kid is not a string") unless header["kid"].is_a?(String)
    key = keys[header["kid"]]
    fail!("unknown_key", header["kid"]) if key.nil?
    p_bytes, sig = b64url_decode(parts[1]), b64url_decode(parts[2])
    input = "#{parts[0]}.#{parts[1]}" # bytes as received
    fail!("bad_signature") unless signature_ok?(alg, key, input, sig)
    [header, parse_json_object(p_bytes)]
  end

  # §3 integer: a JSON number with no fractional part (1.0 counts) within ±(2^53-1).
  def int?(v)
    (v.is_a?(Integer) || (v.is_a?(Float) && v.finite? && v == v.floor)) &&
      v.abs <= MAX_SAFE_INT
  end

  def int_or_nil?(v)
    v.nil? || int?(v)
  end

  # Verifies an X-Session-Gateway-Token value with its X-Session-Gateway-Rid header (§4.3).
  # Returns the claims {"aud","iat","exp","sid","data","idleExp","absExp","dataOmitted","rid"}
  # or raises ProtocolError. `rid` is the Rid header's value (nil when absent); it is
  # checked last (step 11), after every token check.
  #   keys: kid => base64url mount key (HS256) or kid => Ed25519 public key (EdDSA)
  def verify(token, rid:, mount:, keys:, alg: "HS256", now: Time.now.to_i, skew: DEFAULT_SKEW)
    fail!("missing") if token.nil? || token.empty?                     # 1
    _header, c = verify_jws(token, keys: keys, alg: alg)                # 2-6
    fail!("unsupported_version", c["v"].inspect) unless int?(c["v"]) && c["v"] == VERSION # 7
    types_ok =                                                          # 8 (iss not checked)
      c["aud"].is_a?(String) && int?(c["iat"]) && int?(c["exp"]) &&
      (c["sid"].nil? || c["sid"].is_a?(String)) &&
      int_or_nil?(c["idleExp"]) && int_or_nil?(c["absExp"]) &&
      (c["dataOmitted"] == true ? c["data"].nil? : c["data"].is_a?(Hash)) &&
      c.key?("sid") && c.key?("idleExp") && c.key?("absExp") && c.key?("data")
    fail!("malformed", "field of the wrong type") unless types_ok
    fail!("wrong_audience", c["aud"]) unless c["aud"] == mount         # 9
    fail!("future") if c["iat"] - skew > now                            # 10
    fail!("stale") if c["exp"] + skew < now
    fail!("malformed", "no well-formed X-Session-Gateway-Rid") unless rid.is_a?(String) && rid.match?(RID_PATTERN) # 11
    {
      "aud" => c["aud"], "iat" => c["iat"].to_i, "exp" => c["exp"].to_i,
      "sid" => c["sid"], "data" => c["data"],
      "idleExp" => c["idleExp"]&.to_i, "absExp" => c["absExp"]&.to_i,
      "dataOmitted" => c["dataOmitted"] == true,
      "rid" => rid
    }
  end

  # Depth of a JSON value: scalars 0, each object/array level adds 1. `set` itself counts.
  def json_depth(v)
    case v
    when Hash then 1 + (v.values.map { |x| json_depth(x) }.max || 0)
    when Array then 1 + (v.map { |x| json_depth(x) }.max || 0)
    else 0
    end
  end

  def unsafe_key?(v)
    case v
    when Hash then v.any? { |k, x| UNSAFE_KEYS.include?(k) || unsafe_key?(x) }
    when Array then v.any? { |x| unsafe_key?(x) }
    else false
    end
  end

  # §3: a number beyond ±(2^53-1) anywhere, whatever its spelling.
  def unsafe_number?(v)
    case v
    when Hash then v.values.any? { |x| unsafe_number?(x) }
    when Array then v.any? { |x| unsafe_number?(x) }
    when Numeric then v.abs > MAX_SAFE_INT
    else false
    end
  end

  # §6 / §6.2 step 5 shape rules on the request part of a write-back (§6.4 for the operations).
  def check_write_back_shape(req)
    WRITE_BACK_FLAGS.each do |f|
      fail!("malformed", "#{f} must be true") if req.key?(f) && req[f] != true
    end
    fail!("malformed", "set must be an object") if req.key?("set") && !req["set"].is_a?(Hash)
    fail!("malformed", "destroy must be alone") if req["destroy"] && (req.keys - %w[destroy]).any?
    fail!("malformed", "asks for nothing") if req.empty?
    seen = req["set"].is_a?(Hash) ? req["set"].keys : []
    OPERATIONS.each do |op|
      next unless req.key?(op)
      fail!("malformed", "#{op} must be an object") unless req[op].is_a?(Hash)
      req[op].each do |k, arg|
        # "an object of integers": an integer beyond the range is still one (§3 refuses it later).
        ok = op == "incr" ? (arg.is_a?(Integer) || (arg.is_a?(Float) && arg.finite? && arg == arg.floor)) : arg.is_a?(Array)
        fail!("malformed", "#{op}.#{k}") unless ok
        fail!("malformed", "#{k} changed twice") if seen.include?(k)
        seen << k
      end
    end
  end

  # §6.2 step 6 (write: nil skips the per-mount write list), for set and each operation.
  def check_patch(set, write: nil, reserved: RESERVED_KEYS)
    return if set.nil?
    fail!("too_deep") if json_depth(set) > MAX_PATCH_DEPTH
    fail!("unsafe_key") if unsafe_key?(set)
    fail!("unsafe_number") if unsafe_number?(set)
    set.each_key { |k| fail!("reserved_key", k) if reserved.include?(k) }
    set.each_key { |k| fail!("forbidden_key", k) unless write.include?(k) } if write
  end

  def check_request(req, write: nil, reserved: RESERVED_KEYS)
    (["set"] + OPERATIONS).each { |f| check_patch(req[f], write: write, reserved: reserved) }
  end

  # RFC 7396 (§6 `set`).
  def merge_patch(target, patch)
    return patch unless patch.is_a?(Hash)
    result = target.is_a?(Hash) ? target.dup : {}
    patch.each { |k, v| v.nil? ? result.delete(k) : result[k] = merge_patch(result[k], v) }
    result
  end

  # §6.4 "equal as JSON values": Ruby's == already ignores member order and has 1 == 1.0.
  def json_equal?(a, b)
    a == b && (a.is_a?(Numeric) == b.is_a?(Numeric))
  end

  # What the gateway stores (§6.4): set merged first, then incr, add, remove, each on its key.
  def apply(data, req)
    out = merge_patch(data, req["set"] || {})
    (req["incr"] || {}).each do |k, n|
      s = out[k]
      fail!("type_mismatch", k) unless s.nil? || int_value?(s)
      sum = (s || 0) + n
      fail!("unsafe_number", k) if sum.abs > MAX_SAFE_INT
      out[k] = sum.is_a?(Float) ? sum.to_i : sum
    end
    (req["add"] || {}).each do |k, members|
      s = out[k].nil? ? [] : out[k]
      fail!("type_mismatch", k) unless s.is_a?(Array)
      s = s.dup
      members.each { |m| s << m unless s.any? { |x| json_equal?(x, m) } }
      out[k] = s
    end
    (req["remove"] || {}).each do |k, members|
      next if out[k].nil?
      fail!("type_mismatch", k) unless out[k].is_a?(Array)
      out[k] = out[k].reject { |x| members.any? { |m| json_equal?(x, m) } }
    end
    out
  end

  def int_value?(v)
    v.is_a?(Integer) || (v.is_a?(Float) && v.finite? && v == v.floor)
  end

  # Builds an X-Session-Gateway-Write value (§6). `binding` is the result of #verify, whose
  # "rid" is the request's X-Session-Gateway-Rid header (§6.1), or any Hash with "aud", "rid",
  # "sid"; `write_back` holds any of "set", "incr", "add", "remove", "regenerate", "destroy",
  # "revokeUser"; `key` is the
  # base64url mount key, `kid` its id.
  def build_write_back(binding, write_back, key:, kid:)
    req = write_back.transform_keys(&:to_s)
    unknown = req.keys - (WRITE_BACK_FIELDS - %w[v aud rid sid])
    fail!("malformed", "unknown write-back field(s) #{unknown.join(', ')}") unless unknown.empty?
    check_write_back_shape(req)
    check_request(req)
    b = binding.transform_keys(&:to_s)
    payload = { "v" => VERSION, "aud" => b.fetch("aud"), "rid" => b.fetch("rid"), "sid" => b.fetch("sid") }
    (%w[set] + OPERATIONS + %w[regenerate destroy revokeUser]).each { |f| payload[f] = req[f] if req.key?(f) }
    header = { "alg" => "HS256", "kid" => kid, "typ" => "JWT" }
    input = "#{b64url_encode(JSON.generate(header))}.#{b64url_encode(JSON.generate(payload))}"
    value = "#{input}.#{b64url_encode(hs256(key, input))}"
    fail!("too_large", "#{value.bytesize} bytes") if value.bytesize > WRITE_BACK_MAX_BYTES
    value
  end

  # Gateway side of §6.2 steps 1-6 (step 7 needs the store). Used only to test the
  # document against writeBacks.invalid; returns the accepted request part.
  def check_write_back(value, binding:, keys:, write:, reserved: RESERVED_KEYS)
    fail!("too_large") if value.bytesize > WRITE_BACK_MAX_BYTES                      # 1
    _h, p = verify_jws(value, keys: keys, alg: "HS256")                              # 2
    fail!("unsupported_version") unless int?(p["v"]) && p["v"] == VERSION           # 3
    fail!("malformed", "unknown field") unless (p.keys - WRITE_BACK_FIELDS).empty?
    fail!("wrong_audience") unless p["aud"] == binding["aud"]                         # 4
    fail!("replayed") unless p["rid"] == binding["rid"] && p["sid"] == binding["sid"]
    req = p.reject { |k, _| %w[v aud rid sid].include?(k) }
    check_write_back_shape(req)                                                      # 5
    check_request(req, write: write, reserved: reserved)                             # 6
    req
  end
end
