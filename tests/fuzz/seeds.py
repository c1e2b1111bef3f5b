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
    if target == "jws":
        seeds += [s for s in strings(fx) if s.count(".") == 2][:50]
    if target == "jwks":
        seeds += [json.dumps(v) for v in (fx.values() if isinstance(fx, dict) else []) if isinstance(v, dict) and "keys" in v]
for f in glob.glob(os.path.join(root, "tests", "fixtures", "*.json")):
    if target == "jwks":
        seeds.append(open(f).read()[:20000])
if target == "b64":
    seeds += ["", "QQ", "QUI", "QUJD", "-_-_", "eyJhbGciOiJSUzI1NiJ9"]
if target == "claims":
    seeds += ['{"exp":1,"nbf":2.5,"iat":3,"aud":["api"],"roles":["admin"],"scope":"read x"}',
              '{"realm_access":{"roles":["admin"]},"email":"a@example.com","n":3,"scp":["write"]}']
for i, s in enumerate(seeds):
    with open(os.path.join(out, "seed%03d" % i), "w") as fh:
        fh.write(s)
