#!/usr/bin/env python3
"""Checks omnicastd against docs/openapi.yaml (tests/integration/test_openapi.sh).

  openapi_check.py drift SPEC HTTP_C LUA_DIR
      The spec against the daemon's sources: every row of http.c's scope
      table (scope_rules) is an operation of the spec with that scope in its
      security, and every /v1 operation of the spec is a row; every route of
      http.c's route table outside /v1 is a path of the spec, every
      sub-route api.c compares (strcmp(slash, "/pause")) ends a path of the
      spec with a parameter before it; every event
      type daemon/lua (lib/ too) publishes has its schema (components.schemas, named by
      the type) and its webhook. Every schema is valid Draft 2020-12 and
      every $ref resolves.

  openapi_check.py answers SPEC DIR
      Every answer recorded in DIR (N.meta: {"method", "path", "status",
      "type"}; N.body: the body) against the spec: the operation the method
      and path name, the response of the status (exact, else NXX, else
      default), the body against the schema of the media type
      (application/x-ndjson: each line against its x-ndjson-items). Then the
      coverage: every response of every operation of the spec (paths, not
      webhooks) must have been answered at least once, unless the response
      says x-not-driven.

  openapi_check.py events SPEC XRANGE_FILE [CRM_JSONL] [--require T1,T2,...]
      Every event of omni:conversations (redis-cli --raw XRANGE output) and,
      given the mock's record, every CRM post, against the schema of its
      type (a type without a schema fails); --require: types that must have
      been seen.

Exit 0 when everything holds; else 1, with one line per fault.
"""
import json
import os
import re
import sys

import jsonschema
import yaml

METHODS = ("get", "post", "put", "delete", "patch", "head")
# the statuses conv_status publishes as message.STATUS (docs/api.md)
MESSAGE_STATUSES = ("sent", "delivered", "read", "failed")


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def validator(spec, schema):
    # a root that holds the spec's components: "#/components/..." resolves
    root = dict(schema) if isinstance(schema, dict) else {"allOf": [schema]}
    root["components"] = spec.get("components", {})
    return jsonschema.Draft202012Validator(root)


def errors_of(spec, schema, value):
    v = validator(spec, schema)
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(root)", e.message)
            for e in sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path))]


def resolve(spec, node):
    """A {$ref: '#/...'} node followed to what it names (repeatedly)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise KeyError("only local references: %s" % ref)
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
        if seen > 20:
            raise KeyError("reference loop at %s" % ref)
    return node


def all_refs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v)
            else:
                all_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            all_refs(v, out)


def template_re(path):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def star(path):
    return re.sub(r"\{[^}]+\}", "*", path)


def operations(spec):
    for path, item in (spec.get("paths") or {}).items():
        for m in METHODS:
            if m in item:
                yield path, m, item[m]


# ---- drift


def c_block(src, start):
    i = src.index(start)
    return src[i:src.index("};", i)]


def drift(spec_path, http_c, lua_dir):
    spec = load(spec_path)
    faults = []
    if str(spec.get("openapi", "")).split(".")[:2] != ["3", "1"]:
        faults.append("openapi: must be 3.1.x")
    for name, schema in (spec.get("components", {}).get("schemas") or {}).items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            faults.append("components.schemas.%s: not a valid schema: %s" % (name, e.message))
    refs = []
    all_refs(spec, refs)
    for r in set(refs):
        try:
            resolve(spec, {"$ref": r})
        except (KeyError, TypeError) as e:
            faults.append("unresolved $ref %s (%s)" % (r, e))
    for path, m, op in operations(spec):
        if not op.get("operationId"):
            faults.append("%s %s: no operationId" % (m.upper(), path))
        if not op.get("responses"):
            faults.append("%s %s: no responses" % (m.upper(), path))

    src = open(http_c).read()
    rows = re.findall(r'\{\s*(M_[A-Z]+)\s*,\s*"([^"]+)"\s*,\s*SCOPE_([A-Z]+)\s*\}',
                      c_block(src, "scope_rules[] = {"))
    if not rows:
        faults.append("%s: no rows found in scope_rules" % http_c)
    method_of = {"M_READ": "get", "M_GET": "get", "M_POST": "post"}
    table = {}
    for mac, pat, scope in rows:
        if mac not in method_of:
            faults.append("scope_rules: %s %s: method %s unknown to this check" % (mac, pat, mac))
            continue
        table[(method_of[mac], pat)] = scope.lower()
    ops = {}
    for path, m, op in operations(spec):
        if path.startswith("/v1/"):
            ops[(m, star(path))] = (path, op)
    for key, scope in sorted(table.items()):
        if key not in ops:
            faults.append("http.c scope_rules has %s %s; docs/openapi.yaml has no such operation"
                          % (key[0].upper(), key[1]))
            continue
        path, op = ops[key]
        sec = op.get("security", spec.get("security"))
        scopes = sorted({s for req in sec or [] for s in req.get("bearer", [])})
        if scopes != ([] if scope == "all" else [scope]):  # SCOPE_ALL: any token
            faults.append("%s %s: security scopes %s, http.c says %s"
                          % (key[0].upper(), path, scopes, scope))
    for key, (path, op) in sorted(ops.items()):
        if key not in table:
            faults.append("docs/openapi.yaml has %s %s; http.c scope_rules has no row for it"
                          % (key[0].upper(), path))
    # the route table: everything outside /v1, and each /v1 entry covered
    for p, prefix in re.findall(r'\{\s*"(/[^"]*)"\s*,\s*([01])\s*,', c_block(src, "} routes[] = {")):
        want = [s for s in spec.get("paths", {})
                if (s.startswith(p) if prefix == "1" else star(s) == p)]
        if not want:
            faults.append("http.c routes has %s%s; docs/openapi.yaml has no path for it"
                          % (p, "..." if prefix == "1" else ""))

    # the sub-routes api.c dispatches itself (strcmp(slash, "/pause")...):
    # each is the last segment of some /v1 path of the spec
    api_c = os.path.join(os.path.dirname(http_c), "api.c")
    if os.path.exists(api_c):
        tails = {"/" + p.rsplit("/", 1)[1] for p in spec.get("paths", {})
                 if p.startswith("/v1/") and "}/" in p}
        for sub in sorted(set(re.findall(r'strcmp\(\s*slash\s*,\s*"(/[A-Za-z0-9_.-]+)"\s*\)',
                                         open(api_c).read()))):
            if sub not in tails:
                faults.append("api.c answers a sub-route %s; no /v1 path of docs/openapi.yaml "
                              "ends with it" % sub)

    schemas = spec.get("components", {}).get("schemas") or {}
    hooks = spec.get("webhooks") or {}
    types = set()
    for top, _, files in sorted(os.walk(lua_dir)):
        for f in sorted(files):
            if not f.endswith(".lua"):
                continue
            text = open(os.path.join(top, f)).read()
            types |= set(re.findall(r"'((?:conversation|message|contact|conversion|campaign)"
                                    r"\.[a-z_]+)'", text))
            # lib/prelude.lua's conv_status publishes 'message.' .. status:
            # a message job's statuses after queued
            if re.search(r"'message\.'\s*\.\.\s*status", text):
                types |= {"message." + st for st in MESSAGE_STATUSES}
    if not types:
        faults.append("%s: no event types found" % lua_dir)
    for t in sorted(types):
        if t not in schemas:
            faults.append("daemon/lua publishes %s; components.schemas has no %s" % (t, t))
        if t not in hooks:
            faults.append("daemon/lua publishes %s; webhooks has no %s" % (t, t))
    for t, item in hooks.items():
        body = resolve(spec, item.get("post", {}).get("requestBody", {}))
        sch = body.get("content", {}).get("application/json", {}).get("schema")
        if sch != {"$ref": "#/components/schemas/" + t}:
            faults.append("webhooks.%s: its body schema must be components.schemas.%s" % (t, t))
    print("drift: %d scope rows, %d /v1 operations, %d event types" % (len(table), len(ops),
                                                                       len(types)))
    return faults


# ---- answers


def find_op(spec, method, path):
    for p, m, op in operations(spec):
        if m == method.lower() and template_re(p).match(path):
            return p, op
    return None, None


def find_response(spec, op, status):
    rs = op.get("responses") or {}
    for k in (str(status), str(status)[0] + "XX", "default"):
        if k in rs:
            return k, resolve(spec, rs[k])
    return None, None


def check_body(spec, resp, ctype, body):
    content = resp.get("content")
    if not content:
        return [] if not body else ["a body where the spec has none"]
    base = (ctype or "").split(";")[0].strip().lower()
    if base not in content:
        return ["content type %r; the spec has %s" % (ctype, sorted(content))]
    schema = content[base].get("schema", {})
    if base == "application/x-ndjson":
        # a stream of JSON lines: each against the media type's
        # x-ndjson-items schema
        items = schema.get("x-ndjson-items")
        if items is None:
            return ["%s without x-ndjson-items in the spec" % base]
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if text and not text.endswith("\n"):
            return ["the last NDJSON line does not end with a newline"]
        out = []
        for k, line in enumerate(text.split("\n")[:-1]):
            try:
                value = json.loads(line)
            except ValueError as e:
                out.append("line %d: not JSON (%s): %r" % (k + 1, e, line[:200]))
                continue
            out += ["line %d: %s" % (k + 1, e) for e in errors_of(spec, items, value)]
        return out
    if base == "application/json":
        try:
            value = json.loads(body)
        except ValueError as e:
            return ["not JSON (%s): %r" % (e, body[:200])]
    else:
        value = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return errors_of(spec, schema, value)


def answers(spec_path, d):
    spec = load(spec_path)
    faults = []
    covered = set()
    n = 0
    for f in sorted(os.listdir(d)):
        if not f.endswith(".meta"):
            continue
        n += 1
        meta = json.load(open(os.path.join(d, f)))
        body = open(os.path.join(d, f[:-5] + ".body"), "rb").read()
        method, path = meta["method"], meta["path"].split("?")[0]
        what = "%s %s -> %s" % (method, meta["path"], meta["status"])
        p, op = find_op(spec, method, path)
        if not op:
            faults.append("%s: no operation in the spec" % what)
            continue
        key, resp = find_response(spec, op, meta["status"])
        if resp is None:
            faults.append("%s: status %s not documented for %s %s"
                          % (what, meta["status"], method, p))
            continue
        covered.add((method.lower(), p, key))
        for e in check_body(spec, resp, meta.get("type"), body):
            faults.append("%s: %s" % (what, e))
    missing = []
    for p, m, op in operations(spec):
        for k, r in (op.get("responses") or {}).items():
            if "x-not-driven" in r or "x-not-driven" in resolve(spec, r):
                continue
            if (m, p, str(k)) not in covered:
                missing.append("%s %s %s" % (m.upper(), p, k))
    for x in missing:
        faults.append("never answered: %s (drive it in test_openapi.sh, or mark it x-not-driven "
                      "with the reason)" % x)
    print("answers: %d checked, %d operation/status pairs covered" % (n, len(covered)))
    return faults


# ---- events


def events(spec_path, xrange_file, crm_file=None, require=()):
    spec = load(spec_path)
    schemas = spec.get("components", {}).get("schemas") or {}
    hooks = spec.get("webhooks") or {}
    faults = []
    seen = {}
    lines = open(xrange_file).read().split("\n")
    evs = []
    i = 0
    while i < len(lines):
        if lines[i] == "event" and i + 3 < len(lines) and lines[i + 2] == "data":
            evs.append((lines[i + 1], lines[i + 3]))
            i += 4
        else:
            i += 1

    def one(where, etype, raw):
        try:
            data = json.loads(raw)
        except ValueError:
            faults.append("%s: data is not JSON: %r" % (where, raw[:200]))
            return
        if data.get("type") != etype:
            faults.append("%s: event %r but data.type %r" % (where, etype, data.get("type")))
        if etype not in schemas:
            faults.append("%s: event type %s has no schema" % (where, etype))
            return
        seen[etype] = seen.get(etype, 0) + 1
        for e in errors_of(spec, {"$ref": "#/components/schemas/" + etype}, data):
            faults.append("%s %s: %s: %s" % (where, etype, e, raw[:300]))

    for k, (t, raw) in enumerate(evs):
        one("omni:conversations[%d]" % k, t, raw)
    if not evs:
        faults.append("no events in %s" % xrange_file)
    n_crm = 0
    if crm_file:
        for line in open(crm_file):
            r = json.loads(line)
            if r.get("path") != "/crm":
                continue
            n_crm += 1
            h = r.get("headers", {})
            t = h.get("x-omnicast-event", "")
            where = "CRM post %s" % h.get("x-omnicast-delivery", "?")
            if t not in hooks:
                faults.append("%s: X-Omnicast-Event %r is no webhook of the spec" % (where, t))
            else:
                for prm in hooks[t]["post"].get("parameters", []):
                    prm = resolve(spec, prm)
                    v = h.get(prm["name"].lower())
                    if v is None:
                        if prm.get("required"):
                            faults.append("%s: no %s header" % (where, prm["name"]))
                        continue
                    for e in errors_of(spec, prm.get("schema", {}), v):
                        faults.append("%s: header %s: %s" % (where, prm["name"], e))
            if not h.get("content-type", "").startswith("application/json"):
                faults.append("%s: Content-Type %r" % (where, h.get("content-type")))
            one(where, t, r.get("body", ""))
        if not n_crm:
            faults.append("no CRM posts in %s" % crm_file)
    for t in require:
        if t and t not in seen:
            faults.append("no %s event was seen" % t)
    print("events: %d on the stream, %d CRM posts; types %s" % (len(evs), n_crm,
                                                                 ", ".join(sorted(seen))))
    return faults


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd = argv[1]
    if cmd == "drift" and len(argv) == 5:
        faults = drift(argv[2], argv[3], argv[4])
    elif cmd == "answers" and len(argv) == 4:
        faults = answers(argv[2], argv[3])
    elif cmd == "events" and len(argv) >= 4:
        rest = argv[4:]
        require = []
        if "--require" in rest:
            i = rest.index("--require")
            require = rest[i + 1].split(",")
            rest = rest[:i] + rest[i + 2:]
        faults = events(argv[2], argv[3], rest[0] if rest else None, require)
    else:
        print(__doc__)
        return 2
    for f in faults:
        print("FAULT: " + f)
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
