"""A NUL character in every text field of every route openapi.yaml lists, one at a time.

Driven by tests/nul_fields.rs against a running server: argv is the server's base URL and the
admin key. For each operation with a JSON body, a body is built from the document (the required
fields, with their examples, defaults or enum values) and sent once per string field with that
field set to a text holding U+0000; each query parameter of type string is sent the same way. The
answer must be a 4xx: PostgreSQL cannot store the character, so no such request may succeed or
fail with a 5xx. Routes that destroy the fixture (DELETE, freezing) and the backup routes
(documented 503 without a bucket) are left out, as is the WebSocket upgrade.
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import yaml

BASE, ADMIN_KEY = sys.argv[1], sys.argv[2]
NUL = "a\u0000b"
SKIP_PATHS = ("/admin/backups", "/wss/gateway")


def resolve(doc, schema, depth=0):
    """The schema with $ref followed and allOf merged; the first branch of anyOf/oneOf."""
    if depth > 20 or not isinstance(schema, dict):
        return {}
    if "$ref" in schema:
        node = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return resolve(doc, node, depth + 1)
    out = {k: v for k, v in schema.items() if k not in ("allOf", "anyOf", "oneOf")}
    for sub in schema.get("allOf", []):
        r = resolve(doc, sub, depth + 1)
        props = dict(out.get("properties", {}))
        props.update(r.get("properties", {}))
        out.update({k: v for k, v in r.items() if k not in ("properties", "required")})
        out["properties"] = props
        out["required"] = list(out.get("required", [])) + list(r.get("required", []))
    for key in ("anyOf", "oneOf"):
        if key in schema and "type" not in out and "properties" not in out:
            branch = resolve(doc, schema[key][0], depth + 1)
            out.update(branch)
    return out


def sample(doc, schema, depth=0):
    """A value the schema accepts, from its examples where it has them."""
    s = resolve(doc, schema)
    for key in ("example", "default", "const"):
        if key in s:
            return s[key]
    if s.get("examples"):
        return s["examples"][0]
    if s.get("enum"):
        return s["enum"][0]
    ty = s.get("type")
    if isinstance(ty, list):
        ty = next((t for t in ty if t != "null"), "string")
    if ty == "object" or "properties" in s:
        if depth > 4:
            return {}
        props = s.get("properties", {})
        return {k: sample(doc, props.get(k, {}), depth + 1) for k in s.get("required", []) if k in props}
    if ty == "array":
        return []
    if ty == "integer":
        return 1
    if ty == "number":
        return 1
    if ty == "boolean":
        return False
    return "x"


def string_fields(doc, schema):
    """The body's top-level fields that take a string."""
    s = resolve(doc, schema)
    out = []
    for name, prop in s.get("properties", {}).items():
        p = resolve(doc, prop)
        ty = p.get("type")
        types = ty if isinstance(ty, list) else [ty]
        if "string" in types or (ty is None and "enum" not in p and "properties" not in p):
            out.append(name)
    return out


def send(method, path, body=None, query=None):
    url = BASE + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method.upper())
    req.add_header("Authorization", "Bearer " + ADMIN_KEY)
    req.add_header("X-Athena-Client", "default")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()[:300]
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:300]


def main():
    with open(sys.argv[3] if len(sys.argv) > 3 else "openapi.yaml") as f:
        doc = yaml.safe_load(f)
    wrong, sent = [], 0
    for path, item in doc["paths"].items():
        if path.startswith(SKIP_PATHS):
            continue
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch") or "freeze" in path:
                continue
            params = [resolve(doc, p) for p in item.get("parameters", []) + op.get("parameters", [])]
            concrete = path
            for p in params:
                if p.get("in") == "path":
                    concrete = concrete.replace("{%s}" % p["name"], "users" if "table" in p["name"] else "x")
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            cases = []
            if content and "schema" in content:
                base_body = sample(doc, content["schema"])
                if isinstance(base_body, dict):
                    for field in string_fields(doc, content["schema"]):
                        body = dict(base_body)
                        body[field] = NUL
                        cases.append(("body." + field, body, None))
            for p in params:
                schema = resolve(doc, p.get("schema", {}))
                if p.get("in") == "query" and schema.get("type") == "string" and "enum" not in schema:
                    body = sample(doc, content["schema"]) if content and "schema" in content else None
                    cases.append(("query " + p["name"], body, {p["name"]: NUL}))
            for what, body, query in cases:
                sent += 1
                status, answer = send(method, concrete, body, query)
                if not 400 <= status < 500:
                    wrong.append(f"{method.upper()} {concrete} {what}: {status} {answer!r}")
    print(f"{sent} requests with a NUL character")
    if sent < 50:
        wrong.append(f"only {sent} requests were built from the document")
    if wrong:
        print("\n".join(wrong))
        sys.exit(1)


main()
