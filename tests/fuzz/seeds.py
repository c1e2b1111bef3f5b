"""Write seed inputs for a fuzz target from the checked-in fixtures and vectors."""
import json, os, sys, glob

target, out = sys.argv[1], sys.argv[2]
root = os.path.join(os.path.dirname(__file__), "..", "..")
seeds = []
tok_file = os.path.join(root, "tests", "fixtures", "tokens.json")
def strings(o):
    if isinstance(o, str):
        yield o
    elif isinstance(o, dict):
        for v in o.values():
            yield from strings(v)
    elif isinstance(o, list):
        for v in o:
            yield from strings(v)
if os.path.exists(tok_file):
    fx = json.load(open(tok_file))
    if target in ("jws", "dpop"):
        seeds += [s for s in strings(fx) if s.count(".") == 2][:50]
    if target == "jwks":
        seeds += [json.dumps(v) for v in (fx.values() if isinstance(fx, dict) else []) if isinstance(v, dict) and "keys" in v]
for f in glob.glob(os.path.join(root, "tests", "fixtures", "*.json")):
    if target == "jwks":
        seeds.append(open(f).read()[:20000])
if target == "record":
    body = json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]})
    for url, ca in (("https://idp.test/jwks", None), ("http://127.0.0.1:1/j", "/ca.pem")):
        rec = {"v": 2, "url": url, "fetched": 1796000000000000, "max_age": 300,
               "etag": '"e1"', "body": body}
        if ca:
            rec["ca_file"] = ca
        seeds.append(json.dumps(rec))
if target == "b64":
    seeds += ["", "QQ", "QUI", "QUJD", "-_-_", "eyJhbGciOiJSUzI1NiJ9"]
if target == "json":
    # The parser's corners: escapes, surrogates, UTF-8, numbers at the edges, depth.
    seeds += ['{"a":"\\u00e9\\ud83d\\ude00\\n\\/","b":[1,-0,0.5e-3,1E+2,9223372036854775807,'
              '-9223372036854775808],"c":{"d":[true,false,null,{}]}, "e" : "\u00e9\u20ac\U0001f600"}',
              '{"x":9223372036854775808}', '{"x":1e400}', '{"x":"\\ud800"}', '{"x":"\\u0000"}',
              '[[[[{"deep":[[[]]]}]]]]', '{"a":1,"a":2}', '{"k\\u0041":1,"kA":2}', ' {"a":01} ',
              '{"a":"\x7f\xc3\xa9\xed\xa0\x80"}']
    seeds += [json.dumps(v) for v in (fx.values() if os.path.exists(tok_file) and isinstance(fx, dict) else [])
              if isinstance(v, dict)][:20]
if target == "claims":
    seeds += ['{"exp":1,"nbf":2.5,"iat":3,"aud":["api"],"roles":["admin"],"scope":"read x"}',
              '{"realm_access":{"roles":["admin"]},"email":"a@example.com","n":3,"scp":["write"]}',
              '{"iss":"https://login.example/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",'
              '"tid":"72f988bf-86f1-41af-91ab-2d7cd011db47","acr":"gold","auth_time":1699999990}']
if target == "statuslist":
    # The draft's examples (1-bit and 2-bit), a reference, a deny-list.
    seeds += ['{"bits":1,"lst":"eNrbuRgAAhcBXQ"}', '{"bits":2,"lst":"eNo76fITAAPfAgc"}',
              '{"status":{"status_list":{"idx":0,"uri":"https://example.com/statuslists/1"}}}',
              "jti:abc\nsub:alice\n# note\nkid:k1\n"]
for i, s in enumerate(seeds):
    with open(os.path.join(out, "seed%03d" % i), "w") as fh:
        fh.write(s)

# Structured JWS seeds ("\0" header "\0" payload "\0" signature; see fuzz_jws.c):
# every algorithm with a fitting kid and a signature of the right length.
if target == "jws":
    claims = '{"iss":"https://issuer.example","sub":"alice","aud":"api","exp":4102444800,"iat":1700000000}'
    n = len(seeds)
    for i, (alg, kid, slen) in enumerate([("EdDSA", "ed", 64), ("ES256", "ec", 64), ("ES384", "ec384", 96),
                                          ("ES512", "ec521", 132), ("RS256", "rsa", 256), ("PS256", "rsa", 256),
                                          ("RS512", None, 256), ("ES256", None, 64)]):
        hdr = {"alg": alg, "typ": "JWT"}
        if kid:
            hdr["kid"] = kid
        body = b"\0" + json.dumps(hdr).encode() + b"\0" + claims.encode() + b"\0" + bytes([0x41 + i]) * slen
        with open(os.path.join(out, "sseed%03d" % i), "wb") as fh:
            fh.write(body)
