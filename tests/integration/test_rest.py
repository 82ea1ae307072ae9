"""The generic REST API (lua/rest.lua, `rest.mount(prefix)`) and what the
built-in default serves with it: /api/<resource>[/<id>], json-server's query
conventions on lists, GET /health, the home page and the 404 guide
(DESIGN.md, "The generic REST API"; issue 4).

README: "The REST API", "A REST API with zero code".
"""

import json
import re
import subprocess

import pytest

from conftest import BIN, assert_exit_2, http, run_h1mock, wait_until

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
BAD = {"message": "Unable to process request."}
HEALTH_KEYS = {"name", "version", "uptime", "uptime_seconds", "database", "status"}
UPTIME = re.compile(r"^(\d+) hrs (\d|[1-5]\d) mins (\d|[1-5]\d) secs$")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def call(srv, method, path, body=None, raw=None, **kw):
    """One request to the traffic port; `body` is sent as JSON text, `raw` as is."""
    if body is not None:
        kw["data"] = json.dumps(body).encode()
        kw.setdefault("headers", {"Content-Type": "application/json"})
    elif raw is not None:
        kw["data"] = raw
    return http(method, srv.url + path, **kw)


def ok_json(r):
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    return r.json()


def create(srv, resource, doc, prefix="/api"):
    return ok_json(call(srv, "POST", "%s/%s" % (prefix, resource), doc))


def listing(srv, resource, query="", prefix="/api"):
    r = call(srv, "GET", "%s/%s%s" % (prefix, resource, ("?" + query) if query else ""))
    return ok_json(r)


def names(docs, key="name"):
    return [d.get(key) for d in docs]


def assert_bad(r):
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.json() == BAD, r.text


def assert_missing(r, rid):
    assert r.status_code == 404, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.json() == {"message": "Resource %s does not exist." % rid}, r.text



def admin_post(srv, name, source):
    r = http("POST", srv.admin_url + "/app/v1/provision/" + name, data=source.encode())
    assert r.status_code == 201, r.text
    return r


@pytest.fixture
def srv(h1mock):
    """A server with no initial provision: the built-in default."""
    return h1mock()


# a resource set for the query tests, created in this order
PEOPLE = [
    {"name": "ada", "age": 36, "city": "London", "admin": True, "tags": ["math"],
     "address": {"zip": "N1", "geo": {"lat": 51}}},
    {"name": "bob", "age": 9, "city": "Paris", "admin": False, "address": {"zip": "P2"}},
    {"name": "Cyd", "age": 100, "city": "london", "admin": False, "note": "Likes LONDON fog"},
    {"name": "dan", "city": "Berlin", "admin": True, "address": {"zip": "N1"}},
    {"name": "eve", "age": 36, "city": "Paris", "admin": False, "score": 2.5},
]


def people(srv):
    created = create(srv, "people", PEOPLE)
    assert names(created) == names(PEOPLE)
    return created


# --------------------------------------------------------------------------
# create, read, replace, merge, delete
# --------------------------------------------------------------------------

def test_create_assigns_uuid4_and_echoes(srv):
    doc = {"name": "ada", "n": 1, "f": 1.5, "ok": True, "none": None, "list": [],
           "nested": {"a": [1, {"b": "c"}]}}
    out = create(srv, "users", doc)
    assert UUID4.match(out["_id"]), out
    assert {k: v for k, v in out.items() if k != "_id"} == doc
    got = ok_json(call(srv, "GET", "/api/users/" + out["_id"]))
    assert got == out
    other = create(srv, "users", {"name": "bob"})
    assert UUID4.match(other["_id"]) and other["_id"] != out["_id"]
    assert listing(srv, "users") == [out, other]


def test_create_ignores_content_type_and_a_given_id(srv):
    r = call(srv, "POST", "/api/notes", raw=b'{"text": "plain", "_id": "mine"}',
             headers={"Content-Type": "text/plain"})
    out = ok_json(r)
    assert out["text"] == "plain" and UUID4.match(out["_id"]), out
    r = call(srv, "POST", "/api/notes", raw=b'{"text": "none"}')  # no Content-Type at all
    assert ok_json(r)["text"] == "none"
    assert names(listing(srv, "notes"), "text") == ["plain", "none"]
    assert_missing(call(srv, "GET", "/api/notes/mine"), "mine")


def test_create_array_each_gets_an_id_in_order(srv):
    docs = [{"name": "a"}, {"name": "b"}, {}, {"name": "d"}]
    out = create(srv, "items", docs)
    assert isinstance(out, list) and len(out) == 4
    assert [{k: v for k, v in d.items() if k != "_id"} for d in out] == docs
    ids = [d["_id"] for d in out]
    assert all(UUID4.match(i) for i in ids) and len(set(ids)) == 4, ids
    assert listing(srv, "items") == out
    for d in out:
        assert ok_json(call(srv, "GET", "/api/items/" + d["_id"])) == d


def test_create_empty_array_stores_nothing(srv):
    r = call(srv, "POST", "/api/items", raw=b"[]")
    assert ok_json(r) == [] and r.text == "[]\n"
    assert call(srv, "GET", "/api/items").text == "[]\n"
    assert ok_json(call(srv, "GET", "/health"))["database"]["resources"] == []


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b'{"a":1', b"3", b'"text"',
                                 b"null", b"true", b"[1, 2]", b'[{"a": 1}, 2]',
                                 b'[{"a": 1}, [{"b": 2}]]', b"[null]", b"\xff\xfe"])
def test_create_bad_body_400_stores_nothing(srv, raw):
    assert_bad(call(srv, "POST", "/api/things", raw=raw,
                    headers={"Content-Type": "application/json"}))
    assert_bad(call(srv, "POST", "/api/things", raw=raw))  # whatever the type
    assert call(srv, "GET", "/api/things").text == "[]\n"
    assert ok_json(call(srv, "GET", "/health"))["database"]["total_resources_count"] == 0


def test_unknown_resource_lists_empty_array(srv):
    r = call(srv, "GET", "/api/nothing-here")
    assert ok_json(r) == []
    assert r.text == "[]\n"  # an array, never {}
    assert call(srv, "GET", "/api/nothing-here?_page=2&name=x&_sort=a").text == "[]\n"


def test_read_replace_merge_delete(srv):
    a = create(srv, "users", {"name": "ada", "age": 36, "address": {"city": "London", "zip": "N1"}})
    b = create(srv, "users", {"name": "bob"})
    rid = a["_id"]
    url = "/api/users/" + rid

    assert ok_json(call(srv, "GET", url)) == a

    # PUT replaces the whole document; _id stays (also when the body names another)
    put = ok_json(call(srv, "PUT", url, {"name": "ada2", "_id": "other"}))
    assert put == {"_id": rid, "name": "ada2"}
    assert ok_json(call(srv, "GET", url)) == put
    assert_missing(call(srv, "GET", "/api/users/other"), "other")

    # PATCH merges the top-level keys; nested objects are replaced whole
    patched = ok_json(call(srv, "PATCH", url, {"age": 37, "address": {"zip": "E1"},
                                               "none": None, "_id": "x"}))
    assert patched == {"_id": rid, "name": "ada2", "age": 37, "address": {"zip": "E1"},
                       "none": None}
    assert ok_json(call(srv, "GET", url)) == patched
    assert ok_json(call(srv, "PATCH", url, {})) == patched

    # replaced documents keep their place in the list
    assert listing(srv, "users") == [patched, b]

    # DELETE echoes what it deleted; then it is gone
    assert ok_json(call(srv, "DELETE", url)) == patched
    assert_missing(call(srv, "GET", url), rid)
    assert_missing(call(srv, "DELETE", url), rid)
    assert listing(srv, "users") == [b]


def test_put_and_patch_accept_any_content_type(srv):
    a = create(srv, "users", {"name": "ada"})
    url = "/api/users/" + a["_id"]
    r = call(srv, "PUT", url, raw=b'{"name": "x"}', headers={"Content-Type": "text/plain"})
    assert ok_json(r) == {"_id": a["_id"], "name": "x"}
    r = call(srv, "PATCH", url, raw=b'{"age": 1}')
    assert ok_json(r) == {"_id": a["_id"], "name": "x", "age": 1}


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_unknown_id_404_exact_message(srv, method):
    create(srv, "users", {"name": "ada"})
    body = {"name": "x"} if method in ("PUT", "PATCH") else None
    assert_missing(call(srv, method, "/api/users/nope", body), "nope")
    # in a collection that does not exist either, and with a decoded id
    assert_missing(call(srv, method, "/api/ghosts/a%20b", body), "a b")
    # nothing was created on the way
    assert names(listing(srv, "users")) == ["ada"]
    assert listing(srv, "ghosts") == []


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'[{"a": 1}]', b"3", b'"s"',
                                 b"null", b"false"])
def test_put_patch_bad_body_400_leaves_document(srv, method, raw):
    a = create(srv, "users", {"name": "ada"})
    url = "/api/users/" + a["_id"]
    assert_bad(call(srv, method, url, raw=raw, headers={"Content-Type": "application/json"}))
    assert ok_json(call(srv, "GET", url)) == a


def test_trailing_slash_variants(srv):
    r = call(srv, "POST", "/api/slashed/", {"name": "s"})
    s = ok_json(r)
    assert UUID4.match(s["_id"])
    for path in ("/api/slashed/", "/api/slashed"):
        r = call(srv, "GET", path)
        assert ok_json(r) == [s], path  # no 308 redirect
    for path in ("/api/slashed/%s/" % s["_id"], "/api/slashed/%s" % s["_id"]):
        assert ok_json(call(srv, "GET", path)) == s
    assert ok_json(call(srv, "PATCH", "/api/slashed/%s/" % s["_id"], {"x": 1}))["x"] == 1
    assert ok_json(call(srv, "DELETE", "/api/slashed/%s/" % s["_id"]))["x"] == 1
    assert call(srv, "GET", "/api/slashed/").text == "[]\n"


def test_collections_are_independent(srv):
    a = create(srv, "cats", {"name": "tom"})
    create(srv, "dogs", {"name": "rex"})
    assert names(listing(srv, "cats")) == ["tom"]
    assert names(listing(srv, "dogs")) == ["rex"]
    assert_missing(call(srv, "GET", "/api/dogs/" + a["_id"]), a["_id"])


def test_head_and_options(srv):
    create(srv, "users", {"name": "ada"})
    get = call(srv, "GET", "/api/users")
    head = call(srv, "HEAD", "/api/users")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(get.content))
    assert head.headers["Content-Type"].startswith("application/json")
    r = call(srv, "OPTIONS", "/api/users")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    r = call(srv, "OPTIONS", "/api/users/some-id")
    assert r.status_code == 200
    assert r.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    # a method the collection does not take is a 405 that says what is allowed
    r = call(srv, "DELETE", "/api/users")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    assert names(listing(srv, "users")) == ["ada"]


# --------------------------------------------------------------------------
# json-server's query conventions
# --------------------------------------------------------------------------

def test_filter_field_equals(srv):
    people(srv)
    assert names(listing(srv, "people", "city=Paris")) == ["bob", "eve"]
    assert names(listing(srv, "people", "age=36")) == ["ada", "eve"]      # numbers as text
    assert names(listing(srv, "people", "admin=true")) == ["ada", "dan"]  # booleans too
    assert names(listing(srv, "people", "score=2.5")) == ["eve"]
    assert names(listing(srv, "people", "city=london")) == ["Cyd"]       # exact, case counts
    assert listing(srv, "people", "city=Rome") == []
    # a field no document has is no filter: ignored, as the original ignores the query
    assert names(listing(srv, "people", "nofield=1")) == names(PEOPLE)
    assert listing(srv, "people", "tags=math") == []                     # arrays match nothing
    assert names(listing(srv, "people", "name=bob+")) == []              # '+' is a space
    assert names(listing(srv, "people", "city=New%20York")) == []


def test_parameters_about_no_field_are_ignored(srv):
    created = people(srv)
    # python-flask-mock-rest-api ignores the query: a client's api_key must not empty the list
    assert listing(srv, "people", "api_key=secret") == created
    assert listing(srv, "people", "api_key=secret&token=x&nofield_ne=1&x_like=y") == created
    assert names(listing(srv, "people", "api_key=secret&city=Paris")) == ["bob", "eve"]
    # a field one document has is a field: the others do not match
    assert names(listing(srv, "people", "score=2.5&api_key=1")) == ["eve"]
    # dotted names count by their first segment
    assert listing(srv, "people", "nothing.deeper=1") == created
    assert listing(srv, "people", "address.nothing=1") == []
    # paging and sorting still apply
    r = call(srv, "GET", "/api/people?api_key=secret&_limit=2&_sort=name")
    assert names(ok_json(r)) == ["Cyd", "ada"]
    assert r.headers["X-Total-Count"] == str(len(PEOPLE))
    # an empty collection lists nothing whatever the query
    assert listing(srv, "nobody", "api_key=secret") == []


def test_filters_and_across_keys_or_within_a_key(srv):
    people(srv)
    assert names(listing(srv, "people", "city=Paris&age=36")) == ["eve"]
    assert names(listing(srv, "people", "city=Paris&city=Berlin")) == ["bob", "dan", "eve"]
    assert names(listing(srv, "people", "city=Paris&city=Berlin&admin=true")) == ["dan"]
    assert names(listing(srv, "people", "age=9&age=100&age=7")) == ["bob", "Cyd"]


def test_filter_nested_fields_with_dots(srv):
    people(srv)
    assert names(listing(srv, "people", "address.zip=N1")) == ["ada", "dan"]
    assert names(listing(srv, "people", "address.geo.lat=51")) == ["ada"]
    assert names(listing(srv, "people", "tags.0=math")) == ["ada"]  # arrays, 0-based
    assert listing(srv, "people", "address.nothing.deeper=1") == []
    assert listing(srv, "people", "name.first=ada") == []


def test_filter_by_id_and_unknown_underscore_params_ignored(srv):
    created = people(srv)
    eve = created[4]
    assert listing(srv, "people", "_id=" + eve["_id"]) == [eve]
    assert listing(srv, "people", "_foo=1&_embed=x&_expand=y") == created
    assert names(listing(srv, "people", "_bogus=1&city=Paris")) == ["bob", "eve"]


def test_filter_operators_ne_gte_lte_like(srv):
    people(srv)
    assert names(listing(srv, "people", "city_ne=Paris")) == ["ada", "Cyd", "dan"]
    assert names(listing(srv, "people", "city_ne=Paris&city_ne=Berlin")) == ["ada", "Cyd"]
    assert names(listing(srv, "people", "age_gte=36")) == ["ada", "Cyd", "eve"]  # numerically
    assert names(listing(srv, "people", "age_lte=36")) == ["ada", "bob", "eve"]
    assert names(listing(srv, "people", "age_gte=10&age_lte=99")) == ["ada", "eve"]
    assert names(listing(srv, "people", "name_like=^[ab]")) == ["ada", "bob"]
    assert names(listing(srv, "people", "city_like=LOND")) == ["ada", "Cyd"]  # ignoring case


def test_sort_numbers_numerically_strings_lexically_missing_last(srv):
    people(srv)
    # 9 < 36 < 100 (numerically: "100" < "36" < "9" as text); dan has no age
    assert names(listing(srv, "people", "_sort=age")) == ["bob", "ada", "eve", "Cyd", "dan"]
    assert names(listing(srv, "people", "_sort=age&_order=desc")) == \
        ["Cyd", "ada", "eve", "bob", "dan"]  # ties keep creation order, missing stays last
    assert names(listing(srv, "people", "_sort=name")) == ["Cyd", "ada", "bob", "dan", "eve"]
    assert names(listing(srv, "people", "_sort=name&_order=DESC")) == \
        ["eve", "dan", "bob", "ada", "Cyd"]
    assert names(listing(srv, "people", "_sort=address.zip")) == \
        ["ada", "dan", "bob", "Cyd", "eve"]
    assert names(listing(srv, "people", "_sort=-age")) == ["Cyd", "ada", "eve", "bob", "dan"]
    assert names(listing(srv, "people", "_sort=nothing")) == names(PEOPLE)
    assert names(listing(srv, "people", "_order=desc")) == names(PEOPLE)  # no _sort: no effect


def test_sort_several_keys(srv):
    people(srv)
    assert names(listing(srv, "people", "_sort=city,age&_order=asc,desc")) == \
        ["dan", "ada", "eve", "bob", "Cyd"]
    assert names(listing(srv, "people", "_sort=admin,name&_order=desc")) == \
        ["ada", "dan", "Cyd", "bob", "eve"]  # _order shorter than _sort: asc for the rest
    assert names(listing(srv, "people", "_sort=age,name&_order=desc,desc")) == \
        ["Cyd", "eve", "ada", "bob", "dan"]


def test_page_and_limit_with_total_count_and_link(srv):
    docs = [{"n": i} for i in range(25)]
    create(srv, "nums", docs)
    r = call(srv, "GET", "/api/nums?_page=2&_limit=10")
    assert [d["n"] for d in ok_json(r)] == list(range(10, 20))
    assert r.headers["X-Total-Count"] == "25"
    link = r.headers["Link"]
    rels = dict((m.group(2), m.group(1)) for m in re.finditer(r'<([^>]*)>; rel="(\w+)"', link))
    assert set(rels) == {"first", "prev", "next", "last"}, link
    assert rels["first"].endswith("/api/nums?_limit=10&_page=1"), link
    assert rels["prev"].endswith("_page=1") and rels["next"].endswith("_page=3"), link
    assert rels["last"].endswith("_page=3"), link
    assert "X-Total-Count" in r.headers["Access-Control-Expose-Headers"]
    # following a link gives the next page
    r = http("GET", rels["next"])
    assert [d["n"] for d in ok_json(r)] == list(range(20, 25))
    assert "next" not in r.headers["Link"] and 'rel="prev"' in r.headers["Link"]

    # _limit alone: page 1
    r = call(srv, "GET", "/api/nums?_limit=3")
    assert [d["n"] for d in ok_json(r)] == [0, 1, 2]
    assert r.headers["X-Total-Count"] == "25"
    # _page alone: 10 per page
    r = call(srv, "GET", "/api/nums?_page=3")
    assert [d["n"] for d in ok_json(r)] == list(range(20, 25))
    assert r.headers["X-Total-Count"] == "25"
    # past the end: [] (still an array) with the count
    r = call(srv, "GET", "/api/nums?_page=9&_limit=10")
    assert r.text == "[]\n" and r.headers["X-Total-Count"] == "25"
    # nonsense values fall back to page 1, 10 per page
    r = call(srv, "GET", "/api/nums?_page=abc&_limit=-4")
    assert [d["n"] for d in ok_json(r)] == list(range(10))
    assert r.headers["X-Total-Count"] == "25"


def test_no_total_count_without_paging(srv):
    create(srv, "nums", [{"n": 1}, {"n": 2}])
    r = call(srv, "GET", "/api/nums")
    assert "X-Total-Count" not in r.headers and "Link" not in r.headers
    r = call(srv, "GET", "/api/nums?n=1&_sort=n")
    assert "X-Total-Count" not in r.headers
    r = call(srv, "GET", "/api/empty?_limit=5")
    assert r.text == "[]\n" and r.headers["X-Total-Count"] == "0"


def test_start_end_slicing(srv):
    create(srv, "nums", [{"n": i} for i in range(12)])
    r = call(srv, "GET", "/api/nums?_start=2&_end=5")
    assert [d["n"] for d in ok_json(r)] == [2, 3, 4]
    assert r.headers["X-Total-Count"] == "12"
    r = call(srv, "GET", "/api/nums?_end=2")
    assert [d["n"] for d in ok_json(r)] == [0, 1]
    r = call(srv, "GET", "/api/nums?_start=10")
    assert [d["n"] for d in ok_json(r)] == [10, 11]
    r = call(srv, "GET", "/api/nums?_start=4&_limit=3")
    assert [d["n"] for d in ok_json(r)] == [4, 5, 6]
    r = call(srv, "GET", "/api/nums?_start=20&_end=30")
    assert r.text == "[]\n" and r.headers["X-Total-Count"] == "12"
    r = call(srv, "GET", "/api/nums?_start=5&_end=3")
    assert r.text == "[]\n"
    # with a sort, the slice is of the sorted list
    r = call(srv, "GET", "/api/nums?_sort=n&_order=desc&_start=0&_end=2")
    assert [d["n"] for d in ok_json(r)] == [11, 10]


def test_filter_sort_and_page_combined(srv):
    docs = [{"n": i, "kind": "even" if i % 2 == 0 else "odd"} for i in range(30)]
    create(srv, "nums", docs)
    r = call(srv, "GET", "/api/nums?kind=odd&_sort=n&_order=desc&_page=2&_limit=4")
    assert [d["n"] for d in ok_json(r)] == [21, 19, 17, 15]
    assert r.headers["X-Total-Count"] == "15"  # counted after filtering
    assert 'rel="last"' in r.headers["Link"] and r.headers["Link"].count("_page=4") == 1
    r = call(srv, "GET", "/api/nums?kind=odd&n_gte=20&_sort=n&_limit=2&q=od")
    assert [d["n"] for d in ok_json(r)] == [21, 23]
    assert r.headers["X-Total-Count"] == "5"


def test_q_full_text(srv):
    people(srv)
    assert names(listing(srv, "people", "q=london")) == ["ada", "Cyd"]  # any case, any field
    assert names(listing(srv, "people", "q=FOG")) == ["Cyd"]
    assert names(listing(srv, "people", "q=p2")) == ["bob"]            # nested objects too
    assert names(listing(srv, "people", "q=mat")) == ["ada"]           # and arrays
    assert names(listing(srv, "people", "q=ar")) == ["bob", "eve"]     # substrings
    assert listing(srv, "people", "q=2.5") == []                       # strings only
    assert listing(srv, "people", "q=zzz") == []
    assert names(listing(srv, "people", "q=")) == names(PEOPLE)        # empty: no filter
    assert names(listing(srv, "people", "q=on&admin=false")) == ["Cyd"]
    assert names(listing(srv, "people", "q=%25")) == []                # not a pattern
    create(srv, "people", {"name": "pct", "note": "100%"})
    assert names(listing(srv, "people", "q=0%25")) == ["pct"]


# --------------------------------------------------------------------------
# /health, the home page, the guide
# --------------------------------------------------------------------------

def health(srv):
    r = call(srv, "GET", "/health")
    doc = ok_json(r)
    assert set(doc) == HEALTH_KEYS, doc
    assert set(doc["database"]) == {"total_resources_count", "resources"}, doc
    assert doc["status"] == "pass", doc
    # the original's text form, and the integer seconds it stands for
    m = UPTIME.match(doc["uptime"])
    assert m, doc
    assert isinstance(doc["uptime_seconds"], int) and doc["uptime_seconds"] >= 0, doc
    h, mi, se = (int(x) for x in m.groups())
    assert h * 3600 + mi * 60 + se == doc["uptime_seconds"], doc
    for res in doc["database"]["resources"]:
        assert set(res) == {"name", "count"}, doc
    return doc


def test_health_empty(srv):
    r = call(srv, "GET", "/health")
    doc = health(srv)
    assert doc["name"] == "h1mock", doc  # without APP_NAME: h1mock's own
    assert re.match(r"^\d+\.\d+\.\d+", doc["version"]), doc
    assert doc["database"] == {"total_resources_count": 0, "resources": []}
    assert '"resources":[]' in r.text  # an array, not {}
    # the version is the binary's
    assert r.headers["Server"] == "h1mock/" + doc["version"], r.headers
    p = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=10)
    assert doc["version"] in p.stdout + p.stderr


def test_health_counts_follow_creates_and_deletes(srv):
    users = create(srv, "users", [{"n": 1}, {"n": 2}, {"n": 3}])
    create(srv, "books", {"t": "x"})
    create(srv, "users", {"n": 4})
    doc = health(srv)
    assert doc["database"] == {"total_resources_count": 5, "resources": [
        {"name": "users", "count": 4}, {"name": "books", "count": 1}]}
    call(srv, "DELETE", "/api/users/" + users[0]["_id"])
    doc = health(srv)
    assert doc["database"] == {"total_resources_count": 4, "resources": [
        {"name": "users", "count": 3}, {"name": "books", "count": 1}]}
    # replacing does not count twice; a failed create counts nothing
    call(srv, "PUT", "/api/users/" + users[1]["_id"], {"n": 20})
    call(srv, "POST", "/api/users", raw=b"[1]")
    assert health(srv)["database"]["total_resources_count"] == 4
    # a collection goes with its last document
    books = listing(srv, "books")
    call(srv, "DELETE", "/api/books/" + books[0]["_id"])
    assert health(srv)["database"] == {"total_resources_count": 3, "resources": [
        {"name": "users", "count": 3}]}


def test_health_uptime_counts_seconds(srv):
    first = health(srv)["uptime_seconds"]
    assert first < 60
    second = wait_until(lambda: health(srv)["uptime_seconds"] > first and health(srv),
                        what="a second of uptime")["uptime_seconds"]
    assert second <= first + 5, (first, second)


def test_health_reports_app_name_and_version(h1mock):
    # python-flask-mock-rest-api's variables, honoured when set
    srv = h1mock(env={"APP_NAME": "orders-mock", "APP_VERSION": "2.3.4-rc1"})
    doc = health(srv)
    assert (doc["name"], doc["version"]) == ("orders-mock", "2.3.4-rc1"), doc
    page = call(srv, "GET", "/").text
    assert "<title>orders-mock 2.3.4-rc1</title>" in page and "<h1>orders-mock</h1>" in page
    # the Server header stays h1mock's own
    assert call(srv, "GET", "/health").headers["Server"].startswith("h1mock/")
    # one of them set, or set empty: the other is h1mock's
    doc = health(h1mock(env={"APP_VERSION": "9", "APP_NAME": ""}))
    assert doc["name"] == "h1mock" and doc["version"] == "9", doc


def test_home_page_shows_health_and_resources(srv):
    create(srv, "users", [{"n": 1}, {"n": 2}])
    create(srv, "book-shelf", {"t": 1})
    # a hostile name is escaped in text and in the link
    create(srv, "%3Cb%3E%26x%22", {"t": 1})
    r = call(srv, "GET", "/")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    page = r.text
    version = health(srv)["version"]
    assert "h1mock" in page and version in page
    assert re.search(r"up <b>[\dhms ]+</b> \(\d+ s\)", page), page
    assert 'href="/api/users"' in page and 'href="/api/book-shelf"' in page
    assert re.search(r'>users</a></td><td class=n>2<', page), page
    assert re.search(r'>book-shelf</a></td><td class=n>1<', page), page
    assert "&lt;b&gt;&amp;x&quot;" in page and "<b>&x" not in page
    assert 'href="/api/%3Cb%3E%26x%22"' in page
    assert "<script" not in page and "http://" not in page.split("<pre>")[0]  # no external assets
    # HEAD / too
    head = call(srv, "HEAD", "/")
    assert head.status_code == 200 and head.content == b""


def test_home_page_without_resources(srv):
    r = call(srv, "GET", "/")
    assert r.status_code == 200
    assert "No resources yet" in r.text
    assert "/api/" in r.text


@pytest.mark.parametrize("path", ["/nope", "/api", "/api/users/1/extra", "/healthz",
                                  "/health/x", "/app/v1/foo/bar"])
def test_other_paths_get_the_404_guide(srv, path):
    r = call(srv, "GET", path)
    assert r.status_code == 404, (path, r.status_code)
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "app.add_url_rule" in r.text and "/app/v1/provision" in r.text
    assert "/api/&lt;resource&gt;" in r.text and "/health" in r.text  # mentions the REST API
    assert "<code>GET %s</code>" % path in r.text


def test_wrong_method_on_default_routes_is_405_with_allow(srv):
    # a short page naming the method and the allowed ones, not the "no rule" guide
    # (#16 point 9): the path has rules, for other methods
    r = call(srv, "POST", "/health", raw=b"{}")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "app.add_url_rule" not in r.text
    assert "<title>405 Method Not Allowed</title>" in r.text
    assert "This URL does not accept POST; it accepts GET, HEAD, OPTIONS." in r.text
    assert len(r.content) < 300
    r = call(srv, "POST", "/api/users/abc", {"a": 1})
    assert r.status_code == 405
    assert r.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, PUT"
    assert "This URL does not accept POST; it accepts DELETE, GET, HEAD, OPTIONS, PATCH, PUT." \
        in r.text
    assert "app.add_url_rule" not in r.text
    assert listing(srv, "users") == []
    # 404s keep the guide
    assert "app.add_url_rule" in call(srv, "POST", "/nowhere").text


def test_differences_from_python_flask_mock_rest_api_as_documented(srv):
    """Each h1mock row of the README's table "From python-flask-mock-rest-api"."""
    a = create(srv, "users", {"name": "ada"})
    b = create(srv, "users", {"name": "bob"})
    # HEAD: the GET answer without its body
    head = call(srv, "HEAD", "/api/users")
    assert head.status_code == 200 and head.content == b""
    # OPTIONS: 200, empty, Allow
    r = call(srv, "OPTIONS", "/api/users")
    assert (r.status_code, r.content, r.headers["Allow"]) == (200, b"", "GET, HEAD, OPTIONS, POST")
    # a trailing slash is the same path
    assert listing(srv, "users/") == [a, b]
    # PATCH merges
    assert ok_json(call(srv, "PATCH", "/api/users/" + a["_id"], {"age": 36}))["age"] == 36
    # arrays of objects create each; other bodies are a 400
    assert len(create(srv, "tags", [{"t": 1}, {"t": 2}])) == 2
    for raw in (b"[1]", b'"s"', b"3"):
        assert_bad(call(srv, "POST", "/api/users", raw=raw, headers={"Content-Type":
                                                                    "application/json"}))
    # any Content-Type is read as JSON
    r = call(srv, "POST", "/api/users", raw=b'{"name": "cyd"}',
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    cyd = ok_json(r)
    # a target over 8 KiB is 414; a long id is 404
    assert call(srv, "GET", "/api/users/" + "x" * 9000).status_code == 414
    assert_missing(call(srv, "GET", "/api/users/" + "x" * 2000), "x" * 2000)
    # a replaced document keeps its place
    call(srv, "PUT", "/api/users/" + a["_id"], {"name": "ada2"})
    assert names(listing(srv, "users")) == ["ada2", "bob", "cyd"]
    assert listing(srv, "users")[2] == cyd


# --------------------------------------------------------------------------
# --default help: the Flask-based h1mock's behaviour without an initial
# --------------------------------------------------------------------------

def assert_help_page(r, method, path):
    assert r.status_code == 404, (method, path, r.status_code)
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<code>%s %s</code>" % (method, path) in r.text
    assert "app.add_url_rule" in r.text and "/app/v1/provision" in r.text
    assert "started with <code>--default help</code>" in r.text
    assert "Out of the box h1mock serves" not in r.text


@pytest.mark.parametrize("how", ["option", "variable"])
def test_default_help_answers_every_path_with_the_guide(h1mock, how):
    srv = h1mock(None, "--default", "help") if how == "option" else \
        h1mock(None, env={"H1MOCK_DEFAULT": "HELP"})
    srv.wait_log(r"serving the built-in default \(--default help: the guide page for every "
                 r"path\)")
    for method, path in [("GET", "/"), ("GET", "/health"), ("GET", "/api/users"),
                         ("GET", "/app/v1/foo/bar"), ("DELETE", "/api/users/1"),
                         ("PATCH", "/x")]:
        assert_help_page(call(srv, method, path), method, path)
    r = call(srv, "POST", "/api/users", {"name": "ada"})
    assert_help_page(r, "POST", "/api/users")
    assert http("GET", srv.admin_url + "/app/v1/store/users").json() == []  # nothing stored
    # a provision still takes over as usual
    r = http("POST", srv.admin_url + "/app/v1/provision/mine",
             data='function registerRules() app.get("/", function() return "mine" end) end')
    assert r.status_code == 201, r.text
    assert call(srv, "GET", "/").text == "mine"


def test_default_rest_is_the_default_and_initial_wins(h1mock):
    srv = h1mock(None, "--default", "rest")
    assert call(srv, "GET", "/health").status_code == 200
    srv = h1mock('function registerRules() app.get("/", function() return "own" end) end',
                 "--default", "help")
    assert call(srv, "GET", "/").text == "own"
    assert "started with" not in srv.log and "--default help" not in srv.log


def test_default_bad_value_exits_2(tmp_path):
    res = run_h1mock(["--default", "json"], provisions=tmp_path)
    assert_exit_2(res, "h1mock: --default: 'json' is not what the default serves (rest or help)")
    res = run_h1mock([], env={"H1MOCK_DEFAULT": "x"}, provisions=tmp_path)
    assert_exit_2(res, "h1mock: H1MOCK_DEFAULT: 'x' is not what the default serves")


# --------------------------------------------------------------------------
# rest in other provisions
# --------------------------------------------------------------------------

V2 = '''
store.put("seeded", "fixed", {name = "seed"})  -- the store works at load time
function registerRules()
  rest.mount("/v2")
  app.get("/who", function() return "v2" end)
end
'''


def test_mount_under_another_prefix(h1mock):
    srv = h1mock(V2)
    out = create(srv, "users", {"name": "ada"}, prefix="/v2")
    assert UUID4.match(out["_id"])
    assert listing(srv, "users", prefix="/v2") == [out]
    assert ok_json(call(srv, "GET", "/v2/users/" + out["_id"])) == out
    assert_missing(call(srv, "GET", "/v2/users/zzz"), "zzz")
    assert ok_json(call(srv, "GET", "/v2/seeded/fixed")) == {"name": "seed"}
    r = call(srv, "GET", "/v2/users?_limit=1")
    assert r.headers["X-Total-Count"] == "1"
    assert call(srv, "GET", "/api/users").status_code == 404
    assert call(srv, "GET", "/health").status_code == 404  # only what the provision asks for
    assert call(srv, "GET", "/who").text == "v2"


def test_mount_default_prefix_root_prefix_and_helpers(h1mock):
    srv = h1mock('function registerRules()\n'
                 '  rest.mount()\n'
                 '  rest.mount("/")\n'
                 '  app.get("/status", rest.health)\n'
                 '  app.get("/home", rest.home("/"))\n'
                 'end\n')
    out = create(srv, "users", {"name": "ada"})
    assert listing(srv, "users", prefix="") == [out]
    assert ok_json(call(srv, "GET", "/users/" + out["_id"])) == out
    doc = ok_json(call(srv, "GET", "/status"))
    assert doc["database"]["resources"] == [{"name": "users", "count": 1}]
    r = call(srv, "GET", "/home")
    assert r.status_code == 200 and 'href="/users"' in r.text


def test_mount_rejects_a_bad_prefix(tmp_path):
    f = tmp_path / "bad.lua"
    f.write_text('function registerRules()\n  rest.mount("api")\nend\n')
    p = subprocess.run([BIN, "--check", str(f)], capture_output=True, text=True, timeout=15,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "bad.lua:2: rest.mount: the prefix must be a string starting with '/'" in p.stderr


def test_data_survives_provision_swaps(srv):
    ada = create(srv, "users", {"name": "ada"})
    books = create(srv, "books", [{"t": "a"}, {"t": "b"}])

    admin_post(srv, "v2", V2)
    wait_until(lambda: call(srv, "GET", "/who").text == "v2", what="v2 serving")
    assert listing(srv, "users", prefix="/v2") == [ada]
    assert listing(srv, "books", prefix="/v2") == books
    bob = create(srv, "users", {"name": "bob"}, prefix="/v2")

    # a provision without rest: the documents stay in the store
    admin_post(srv, "plain", 'function registerRules()\n'
                             '  app.get("/count", function() return {n = store.count("users")} end)\n'
                             'end\n')
    wait_until(lambda: call(srv, "GET", "/count").status_code == 200, what="plain serving")
    assert ok_json(call(srv, "GET", "/count")) == {"n": 2}
    assert call(srv, "GET", "/v2/users").status_code == 404

    # and back to one that mounts rest at /api
    admin_post(srv, "again", 'function registerRules()\n  rest.mount("/api")\n'
                             '  app.get("/health", rest.health)\nend\n')
    wait_until(lambda: call(srv, "GET", "/api/users").status_code == 200, what="again serving")
    assert listing(srv, "users") == [ada, bob]
    assert ok_json(call(srv, "GET", "/api/users/" + bob["_id"])) == bob
    # users 2, books 2, and the document V2 put at load time
    assert ok_json(call(srv, "GET", "/health"))["database"]["total_resources_count"] == 5
