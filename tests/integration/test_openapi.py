"""The admin API's OpenAPI document (src/admin_openapi.yaml) against the
admin server that actually runs.

Both directions are checked: every operation the document describes is
called on a live server and must answer one of the statuses it lists, with
a body that fits the schema it gives; and every method the server answers on
a documented path, and the Allow header of its 405, must be the document's.
The server also serves the document itself at GET /app/v1/openapi.yaml.

README: "Admin API".
"""

import re
import subprocess

import jsonschema
import pytest
import yaml

from conftest import BIN, ROOT, http

SPEC_FILE = ROOT / "src" / "admin_openapi.yaml"
SPEC_URL = "/app/v1/openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PROBE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
OPEN_OPERATIONS = {("/healthz", "GET"), ("/metrics", "GET")}
TOKEN = "s3cret-token"

INITIAL = """
function registerRules()
  app.add_url_rule("/hello", "hello", function() return {hello = "world"} end, {"GET"})
end
"""
STORED = 'function registerRules() app.get("/", function() return "stored" end) end\n'
SPARE = 'function registerRules() app.get("/", function() return "spare" end) end\n'
BROKEN = "function registerRules()\n  local x = = 1\nend\n"
POSTED = 'function registerRules() app.get("/", function() return "posted" end) end\n'
MAX_PROVISION = 4096


def load_spec():
    with open(SPEC_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


SPEC = load_spec()


def resolve(node):
    """`node`, or what its $ref points to (followed until no $ref is left)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), "only local references are used: %r" % ref
        target = SPEC
        for part in ref[2:].split("/"):
            assert isinstance(target, dict) and part in target, "dangling $ref %r" % ref
            target = target[part]
        node = target
        seen += 1
        assert seen < 20, "$ref cycle at %r" % ref
    return node


def inline(node):
    """A copy of a schema with every $ref replaced by its target, for jsonschema."""
    node = resolve(node)
    if isinstance(node, dict):
        return {k: inline(v) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v) for v in node]
    return node


def operations():
    """(path template, METHOD, operation) for every operation of the document."""
    for path, item in SPEC["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method.upper(), item[method]


def spec_methods(path):
    return {m.upper() for m in HTTP_METHODS if m in SPEC["paths"][path]}


def operation(path, method):
    return SPEC["paths"][path][method.lower()]


def secured(op):
    return bool(op.get("security", SPEC.get("security", [])))


def mimetype(value):
    return value.split(";")[0].strip().lower()


def params_of(value):
    return {p.strip().replace(" ", "").lower() for p in value.split(";")[1:] if p.strip()}


def media_for(content, ctype):
    """The document's media type object that an answer's Content-Type fits."""
    for key, media in content.items():
        base = mimetype(key)
        if base == "*/*" or base == mimetype(ctype) or (
                base.endswith("/*") and mimetype(ctype).startswith(base[:-1])):
            if params_of(key) <= params_of(ctype):
                return media
    return None


def check_answer(path, method, r, head=False):
    """The answer `r` to METHOD path is one the document describes (`head`:
    it answered a HEAD, which the document describes as its GET)."""
    op = operation(path, method)
    listed = op["responses"]
    status = str(r.status_code)
    assert status in listed, "%s %s answered %d, the document lists %s; body %r" % (
        method, path, r.status_code, sorted(listed), r.text[:300])
    response = resolve(listed[status])
    for name, h in response.get("headers", {}).items():
        h = resolve(h)
        assert name in r.headers, "%s %s %s: no %s header" % (method, path, status, name)
        jsonschema.validate(r.headers[name], inline(h["schema"]))
    content = response.get("content")
    if not content:
        return
    ctype = r.headers.get("Content-Type", "")
    media = media_for(content, ctype)
    assert media is not None, "%s %s %s: Content-Type %r is none of %s" % (
        method, path, status, ctype, sorted(content))
    if head:
        assert r.content == b"", "HEAD %s answered a body: %r" % (path, r.content[:100])
        return
    if "schema" not in media:
        return
    schema = inline(media["schema"])
    if mimetype(ctype) == "application/json":
        assert r.content.endswith(b"\n"), r.content[-40:]
        value = r.json()
    else:
        value = r.text
    try:
        jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    except jsonschema.ValidationError as e:
        pytest.fail("%s %s %s: the body does not fit the document's schema: %s\nbody: %s"
                    % (method, path, status, e.message, r.text[:600]))


# --------------------------------------------------------------------------
# The document on its own
# --------------------------------------------------------------------------

def test_document_is_openapi_3_1_with_the_program_version():
    assert re.fullmatch(r"3\.1\.\d+", str(SPEC["openapi"])), SPEC["openapi"]
    assert SPEC["info"]["title"]
    version = subprocess.run([BIN, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.split()
    assert version[:1] == ["h1mock"], version
    assert SPEC["info"]["version"] == version[1], \
        "info.version %r is not the program's %r" % (SPEC["info"]["version"], version[1])


def test_document_is_well_formed():
    ids = [op.get("operationId") for _, _, op in operations()]
    assert all(ids) and len(ids) == len(set(ids)), ids
    schemes = SPEC["components"]["securitySchemes"]
    for path, method, op in operations():
        where = "%s %s" % (method, path)
        assert op.get("summary"), where
        assert op["responses"], where
        for status, response in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d", str(status)), (where, status)
            assert resolve(response).get("description"), (where, status)
        # every {variable} of the template is a required path parameter, and no other
        params = [resolve(p) for p in SPEC["paths"][path].get("parameters", [])]
        params += [resolve(p) for p in op.get("parameters", [])]
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"\{(\w+)\}", path)), where
        assert all(p.get("required") for p in params if p["in"] == "path"), where
        for requirement in op.get("security", SPEC["security"]):
            assert set(requirement) <= set(schemes), (where, requirement)
    # the token is needed everywhere but the two open operations
    assert {(p, m) for p, m, op in operations() if not secured(op)} == OPEN_OPERATIONS
    assert schemes["adminToken"] == {**schemes["adminToken"], "type": "http", "scheme": "bearer"}


def test_schemas_are_valid_and_examples_fit_them():
    for name, schema in SPEC["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(inline(schema))
    checked = 0

    def walk(node, where):
        nonlocal checked
        node = resolve(node)
        if isinstance(node, dict):
            if "schema" in node and "example" in node:
                schema = inline(node["schema"])
                jsonschema.Draft202012Validator.check_schema(schema)
                try:
                    jsonschema.validate(node["example"], schema,
                                        format_checker=jsonschema.FormatChecker())
                except jsonschema.ValidationError as e:
                    pytest.fail("the example at %s does not fit its schema: %s"
                                % (where, e.message))
                checked += 1
            for k, v in node.items():
                walk(v, where + "/" + str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, "%s/%d" % (where, i))

    walk(SPEC["paths"], "#/paths")
    assert checked >= 10, checked


# --------------------------------------------------------------------------
# The document against a live server
# --------------------------------------------------------------------------

def big_provision():
    text = "-- padding\n" * (MAX_PROVISION // 11 + 1) + POSTED
    assert len(text) > MAX_PROVISION
    return text


# (method, path template, concrete path, request keywords, expected status).
# Run in this order on one server: some depend on the ones before them.
CASES = [
    ("GET", "/healthz", "/healthz", {}, 200),
    ("GET", "/metrics", "/metrics", {}, 200),
    ("GET", SPEC_URL, SPEC_URL, {}, 200),
    ("GET", "/app/v1/provision", "/app/v1/provision", {}, 200),
    ("POST", "/app/v1/provision/{name}", "/app/v1/provision/posted", {"data": POSTED}, 201),
    ("POST", "/app/v1/provision/{name}", "/app/v1/provision/posted.lua", {"data": BROKEN}, 400),
    ("POST", "/app/v1/provision/{name}", "/app/v1/provision/bad..name", {"data": POSTED}, 400),
    ("POST", "/app/v1/provision/{name}", "/app/v1/provision/big", {"data": big_provision()},
     413),
    ("GET", "/app/v1/provision/{name}", "/app/v1/provision/stored", {}, 200),
    ("GET", "/app/v1/provision/{name}", "/app/v1/provision/broken", {}, 400),
    ("GET", "/app/v1/provision/{name}", "/app/v1/provision/absent", {}, 404),
    ("GET", "/app/v1/provision/{name}", "/app/v1/provision/.hidden", {}, 400),
    ("DELETE", "/app/v1/provision/{name}", "/app/v1/provision/spare", {}, 200),
    ("DELETE", "/app/v1/provision/{name}", "/app/v1/provision/spare", {}, 404),
    ("DELETE", "/app/v1/provision/{name}", "/app/v1/provision/stored", {}, 409),
    ("DELETE", "/app/v1/provision/{name}", "/app/v1/provision/.hidden", {}, 400),
    ("GET", "/app/v1/provision", "/app/v1/provision", {}, 200),
    ("POST", "/app/v1/store/{collection}", "/app/v1/store/users",
     {"json": [{"_id": "u1", "name": "ada"}, {"name": "bob"}]}, 201),
    ("POST", "/app/v1/store/{collection}", "/app/v1/store/users", {"data": "not json"}, 400),
    ("POST", "/app/v1/store/{collection}", "/app/v1/store/users", {"json": [{"a": 1}, 2]}, 400),
    ("GET", "/app/v1/store/{collection}", "/app/v1/store/users", {}, 200),
    ("GET", "/app/v1/store/{collection}", "/app/v1/store/" + "c" * 1025, {}, 400),
    ("GET", "/app/v1/store", "/app/v1/store", {}, 200),
    ("DELETE", "/app/v1/store/{collection}", "/app/v1/store/users", {}, 200),
    ("DELETE", "/app/v1/store/{collection}", "/app/v1/store/" + "c" * 1025, {}, 400),
    ("DELETE", "/app/v1/store", "/app/v1/store", {}, 200),
    ("GET", "/app/v1/requests", "/app/v1/requests", {}, 200),
    ("GET", "/app/v1/requests", "/app/v1/requests",
     {"params": {"method": "get", "path": "/hello", "path_prefix": "/", "endpoint": "hello",
                 "status": 200, "since": 0, "limit": 5}}, 200),
    ("GET", "/app/v1/requests", "/app/v1/requests", {"params": {"status": "abc"}}, 400),
    ("GET", "/app/v1/requests", "/app/v1/requests", {"params": {"limit": "-1"}}, 400),
    ("GET", "/app/v1/requests/count", "/app/v1/requests/count", {}, 200),
    ("GET", "/app/v1/requests/count", "/app/v1/requests/count",
     {"params": {"endpoint": "hello"}}, 200),
    ("GET", "/app/v1/requests/count", "/app/v1/requests/count", {"params": {"since": "x"}}, 400),
    ("GET", "/app/v1/requests/unmatched", "/app/v1/requests/unmatched", {}, 200),
    ("GET", "/app/v1/requests/unmatched", "/app/v1/requests/unmatched",
     {"params": {"limit": "-1"}}, 400),
    ("DELETE", "/app/v1/requests", "/app/v1/requests", {"params": {"method": "GET"}}, 400),
    ("GET", "/app/v1/requests/count", "/app/v1/requests/count", {"params": {"path": "/hello"}},
     200),
    ("DELETE", "/app/v1/requests", "/app/v1/requests", {}, 200),
    ("GET", "/app/v1/requests/count", "/app/v1/requests/count", {}, 200),
]


def start(h1mock, *args):
    return h1mock(INITIAL, "--max-provision-bytes", str(MAX_PROVISION), *args,
                  files={"stored.lua": STORED, "spare.lua": SPARE, "broken.lua": BROKEN})


def some_traffic(srv):
    assert http("GET", srv.url + "/hello").json() == {"hello": "world"}
    assert http("GET", srv.url + "/nowhere").status_code == 404
    assert http("POST", srv.url + "/hello", data="x").status_code == 405


def test_cases_cover_every_documented_operation():
    documented = {(p, m) for p, m, _ in operations()}
    exercised = {(p, m) for m, p, _, _, _ in CASES}
    assert exercised == documented, "not exercised: %s; not documented: %s" % (
        sorted(documented - exercised), sorted(exercised - documented))
    succeeding = {(p, m) for m, p, _, _, st in CASES if st < 300}
    assert succeeding == documented, sorted(documented - succeeding)


def test_every_documented_operation_answers_as_documented(h1mock):
    srv = start(h1mock)
    some_traffic(srv)
    for method, template, path, kw, expected in CASES:
        r = http(method, srv.admin_url + path, **kw)
        assert r.status_code == expected, "%s %s: expected %d, got %d: %r" % (
            method, path, expected, r.status_code, r.text[:300])
        check_answer(template, method, r)
    # the cases had their effects: the posted provision replaced stored ... and back
    assert http("GET", srv.url + "/").text == "stored"
    assert not (srv.provisions / "spare.lua").exists()
    assert (srv.provisions / "posted.lua").read_text() == POSTED
    assert not (srv.provisions / "big.lua").exists()


def test_head_answers_like_get_without_a_body(h1mock):
    srv = start(h1mock)
    some_traffic(srv)
    for method, template, path, kw, expected in CASES:
        if method != "GET":
            continue
        get = http("GET", srv.admin_url + path, **kw)
        head = http("HEAD", srv.admin_url + path, **kw)
        assert head.status_code == get.status_code, (path, head.status_code, get.status_code)
        assert head.content == b"", (path, head.content[:100])
        assert mimetype(head.headers.get("Content-Type", "")) == \
            mimetype(get.headers.get("Content-Type", "")), path
        check_answer(template, "GET", head, head=True)


def concrete(template):
    return template.replace("{name}", "probe").replace("{collection}", "probe")


def allow_set(value):
    return {m.strip().upper() for m in (value or "").split(",") if m.strip()}


@pytest.mark.parametrize("template", list(SPEC["paths"]))
def test_server_methods_and_allow_match_the_document(h1mock, template):
    srv = start(h1mock)
    documented = spec_methods(template)
    path = concrete(template)
    for method in PROBE_METHODS:
        r = http(method, srv.admin_url + path)
        if method in documented or (method == "HEAD" and "GET" in documented):
            # answered with one of the document's statuses for it (with no
            # body and a made-up name, a 400 or 404 is a fine answer)
            if method == "HEAD":
                check_answer(template, "GET", r, head=True)
            else:
                check_answer(template, method, r)
            continue
        assert r.status_code == 405, "%s %s is not documented but answered %d: %r" % (
            method, path, r.status_code, r.text[:200])
        allow = allow_set(r.headers.get("Allow"))
        assert allow - {"HEAD"} == documented - {"HEAD"}, \
            "%s: Allow %r, the document has %s" % (path, r.headers.get("Allow"), sorted(documented))
        assert "HEAD" not in allow or "GET" in documented, allow
        assert r.json()["result"].startswith("failed: "), r.text


@pytest.mark.parametrize("path", ["/", "/app/v1", "/app/v1/", "/app/v1/nothing",
                                  "/app/v1/provisions", "/app/v1/storage",
                                  "/app/v1/requests/everything", "/app/v1/openapi.json",
                                  "/app/v2/provision", "/healthz/", "/metrics/x"])
def test_undocumented_paths_answer_404(h1mock, path):
    assert path not in SPEC["paths"]
    srv = start(h1mock)
    for method in ("GET", "POST", "DELETE"):
        r = http(method, srv.admin_url + path)
        assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
        assert r.headers["Content-Type"].startswith("application/json"), r.headers
        jsonschema.validate(r.json(), inline(SPEC["components"]["schemas"]["AdminError"]))


def test_served_document_is_the_source_file(h1mock):
    srv = start(h1mock)
    r = http("GET", srv.admin_url + SPEC_URL)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert mimetype(r.headers["Content-Type"]) == "application/yaml", r.headers
    assert r.content == SPEC_FILE.read_bytes(), "the served document differs from %s" % SPEC_FILE
    assert yaml.safe_load(r.content) == SPEC


def test_token_guards_exactly_the_secured_operations(h1mock):
    srv = start(h1mock, "--admin-token", TOKEN)
    some_traffic(srv)
    done = set()
    for method, template, path, kw, expected in CASES:
        if expected >= 300 or (template, method) in done:
            continue
        done.add((template, method))
        url = srv.admin_url + path
        if secured(operation(template, method)):
            for headers in ({}, {"Authorization": "Bearer wrong"},
                            {"Authorization": "bearer"}, {"Authorization": "Basic " + TOKEN}):
                r = http(method, url, headers=headers, **kw)
                assert r.status_code == 401, "%s %s with %r: %d %r" % (
                    method, path, headers, r.status_code, r.text[:200])
                check_answer(template, method, r)
        else:
            r = http(method, url, **kw)
            assert r.status_code == expected, (method, path, r.status_code)
        r = http(method, url, headers={"Authorization": "Bearer " + TOKEN}, **kw)
        assert r.status_code == expected, "%s %s with the token: %d %r" % (
            method, path, r.status_code, r.text[:200])
        check_answer(template, method, r)
    assert done == {(p, m) for p, m, _ in operations()}
    # refused calls changed nothing: "posted" was stored only by the call with the token
    assert (srv.provisions / "posted.lua").read_text() == POSTED
