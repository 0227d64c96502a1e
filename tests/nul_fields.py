"""A NUL character in every text field, and a null in every field, of every route openapi.yaml
lists, one at a time.

Driven by tests/it/nul_fields.rs against a running server: argv is the server's base URL, the
admin key, the document, the id of an API key to edit and the URI of the test's database. For each
operation with a JSON body, a valid body is taken from the document (the operation's example, else
one built from the schema's required fields, examples, defaults and enum values). It is sent once
per string field with that field set to a text holding U+0000, and each query parameter of type
string is sent the same way: PostgreSQL cannot store the character, so the answer must be 400
`invalid_value` naming the field (a 4xx for a query parameter). Then each field is sent as null:
where the document does not admit a null the answer must be a 400 naming the field; where it does,
the answer the body without the field gets. Routes that destroy the fixture (DELETE, freezing) and
the backup routes (documented 503 without a bucket) are left out, as is the WebSocket upgrade.
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import yaml

BASE, ADMIN_KEY = sys.argv[1], sys.argv[2]
DB_URI = sys.argv[5] if len(sys.argv) > 5 else ""
NUL = "a\u0000b"
SKIP_PATHS = ("/admin/backups", "/wss/gateway")
# What a path parameter names in the fixture tests/it/nul_fields.rs creates ("reporting" is the
# client the document's example of POST /admin/clients adds).
PATH_VALUES = {
    "table": "users",
    "right": "users.read",
    "client_name": "reporting",
    "function": "add_numbers",
    "id": sys.argv[4] if len(sys.argv) > 4 else "x",
}


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


def example_body(doc, content):
    """The operation's own example body where the document gives one, else one built from the
    schema. An example naming a connection by environment variable names the test's database
    instead (the server's environment is the test process's, shared with other tests)."""
    body = None
    if isinstance(content.get("example"), dict):
        body = content["example"]
    for ex in content.get("examples", {}).values():
        ex = resolve(doc, ex)
        if body is None and isinstance(ex.get("value"), dict):
            body = ex["value"]
    if body is None:
        return sample(doc, content["schema"])
    if "pg_uri_env_var" in body:
        body = {k: v for k, v in body.items() if k != "pg_uri_env_var"}
        body["pg_uri"] = DB_URI
    return body


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


def nullable(doc, prop):
    """Whether the document lets the field be null."""
    p = resolve(doc, prop)
    ty = p.get("type")
    if p.get("nullable") or (isinstance(ty, list) and "null" in ty) or ty == "null":
        return True
    branches = prop.get("anyOf", []) + prop.get("oneOf", []) if isinstance(prop, dict) else []
    return any(resolve(doc, b).get("type") == "null" or nullable(doc, b) for b in branches)


def fields(doc, schema):
    """The body's top-level fields and their schemas."""
    return resolve(doc, schema).get("properties", {})


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


def check_nulls(route, base_body, schema_fields, doc, wrong):
    """Each field of the body as null, one at a time."""
    method, concrete = route.split(" ", 1)
    for field, prop in schema_fields.items():
        body = dict(base_body)
        body[field] = None
        status, answer = send(method, concrete, body)
        if not nullable(doc, prop):
            if status != 400 or field.encode() not in answer:
                wrong.append(f"{route} body.{field} = null: {status} {answer!r}")
            continue
        # A null the document admits reads as the field's absence: the same status (a create
        # sent twice conflicts the second time; an edit without its only field edits nothing).
        without = {k: v for k, v in body.items() if k != field}
        status_without, answer_without = send(method, concrete, without)
        created_twice = status // 100 == 2 and status_without == 409
        if status >= 500 or (status != status_without and not created_twice and without):
            wrong.append(
                f"{route} body.{field} = null: {status} {answer!r}, "
                f"left out: {status_without} {answer_without!r}"
            )
    return len(schema_fields)


def main():
    with open(sys.argv[3] if len(sys.argv) > 3 else "openapi.yaml") as f:
        doc = yaml.safe_load(f)
    wrong, sent, nulls, typed, served = [], 0, 0, 0, 0
    for path, item in doc["paths"].items():
        if path.startswith(SKIP_PATHS):
            continue
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch") or "freeze" in path:
                continue
            route = method.upper() + " "
            params = [resolve(doc, p) for p in item.get("parameters", []) + op.get("parameters", [])]
            concrete = path
            for p in params:
                if p.get("in") == "path":
                    concrete = concrete.replace("{%s}" % p["name"], PATH_VALUES.get(p["name"], "x"))
            route += concrete
            content = resolve(doc, op.get("requestBody", {})).get("content", {}).get("application/json")
            base_body = example_body(doc, content) if content and "schema" in content else None
            cases = []
            if isinstance(base_body, dict):
                # The example itself, so that the refusals below are not for another reason.
                status, _ = send(method, concrete, base_body)
                served += status // 100 == 2
                for field in string_fields(doc, content["schema"]):
                    body = dict(base_body)
                    body[field] = NUL
                    cases.append(("body." + field, body, None))
            for p in params:
                schema = resolve(doc, p.get("schema", {}))
                if p.get("in") == "query" and schema.get("type") == "string" and "enum" not in schema:
                    cases.append(("query " + p["name"], base_body, {p["name"]: NUL}))
                if p.get("in") == "query" and schema.get("type") in ("integer", "boolean"):
                    bad = ["many", "1.5"] if schema["type"] == "integer" else ["maybe", "1"]
                    if schema["type"] == "integer" and schema.get("minimum", -1) >= 0:
                        bad.append("-1")
                    for value in bad:
                        typed += 1
                        status, answer = send(method, concrete, base_body, {p["name"]: value})
                        if status != 400 or p["name"].encode() not in answer:
                            wrong.append(f"{route}?{p['name']}={value}: {status} {answer!r}")
            for what, body, query in cases:
                sent += 1
                status, answer = send(method, concrete, body, query)
                if not 400 <= status < 500:
                    wrong.append(f"{route} {what}: {status} {answer!r}")
                elif what.startswith("body.") and (
                    b'"invalid_value"' not in answer or what[5:].encode() not in answer
                ):
                    wrong.append(f"{route} {what}: not refused naming it: {answer!r}")
            if isinstance(base_body, dict):
                nulls += check_nulls(route, base_body, fields(doc, content["schema"]), doc, wrong)
    print(f"{sent} requests with a NUL character")
    print(f"{nulls} requests with a null in a field")
    print(f"{typed} requests with a query parameter of the wrong type")
    print(f"{served} documented examples served")
    if sent < 50 or nulls < 100 or served < 15:
        wrong.append("too few requests were built from the document")
    if wrong:
        print("\n".join(wrong))
        sys.exit(1)


main()
