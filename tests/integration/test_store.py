"""The `store` global: documents that outlive provision swaps, and with
--data-dir, restarts and kill -9.

README: "The store".
"""

import json
import re
import signal
import subprocess

from conftest import BIN, http, start_server

STORE = r'''
function registerRules()
  app.post("/put/<coll>/<id>", function(req, coll, id)
    local ok, err = store.put(coll, id, req.get_json{force = true})
    return {ok = ok, err = err}
  end)
  app.get("/get/<coll>/<id>", function(req, coll, id)
    local v = store.get(coll, id)
    if v == nil then return {missing = true} end
    return {value = v}
  end)
  app.delete("/del/<coll>/<id>", function(req, coll, id) return {deleted = store.delete(coll, id)} end)
  app.get("/list/<coll>", function(req, coll)
    return store.list(coll, {offset = tonumber(req.args.offset), limit = tonumber(req.args.limit)})
  end)
  app.get("/count/<coll>", function(req, coll) return {count = store.count(coll)} end)
  app.get("/collections", function() return store.collections() end)
  app.post("/clear", function(req) store.clear(req.args.coll) return {cleared = true} end)
  app.get("/uuid", function() return store.uuid() end)
  app.get("/misuse", function() store.put("c") end)
  app.get("/unencodable", function() store.put("c", "x", {f = print}) end)
end
'''


def put(srv, coll, id_, value):
    return http("POST", "%s/put/%s/%s" % (srv.url, coll, id_), data=json.dumps(value)).json()


def test_put_get_replace_delete(h1mock):
    srv = h1mock(STORE)
    doc = {"name": "ada", "tags": ["x", "y"], "nested": {"n": 1.5}, "none": []}
    assert put(srv, "users", "1", doc) == {"ok": True}
    assert http("GET", srv.url + "/get/users/1").json() == {"value": doc}
    assert put(srv, "users", "1", {"name": "bob"}) == {"ok": True}
    assert http("GET", srv.url + "/get/users/1").json() == {"value": {"name": "bob"}}
    assert http("DELETE", srv.url + "/del/users/1").json() == {"deleted": True}
    assert http("DELETE", srv.url + "/del/users/1").json() == {"deleted": False}
    assert http("GET", srv.url + "/get/users/1").json() == {"missing": True}


def test_list_keeps_insertion_order_with_offset_and_limit(h1mock):
    srv = h1mock(STORE)
    for i in range(10):
        put(srv, "items", "k%d" % (9 - i), {"i": i})
    put(srv, "items", "k5", {"i": "replaced"})  # keeps its place
    values = http("GET", srv.url + "/list/items").json()
    assert [v["i"] for v in values] == [0, 1, 2, 3, "replaced", 5, 6, 7, 8, 9]
    page = http("GET", srv.url + "/list/items?offset=3&limit=2").json()
    assert [v["i"] for v in page] == [3, "replaced"]
    assert http("GET", srv.url + "/list/nothing").text == "[]\n"
    assert http("GET", srv.url + "/count/items").json() == {"count": 10}


def test_collections_and_clear(h1mock):
    srv = h1mock(STORE)
    put(srv, "b", "1", 1)
    put(srv, "a", "1", 1)
    put(srv, "a", "2", 2)
    assert http("GET", srv.url + "/collections").json() == ["b", "a"]
    http("POST", srv.url + "/clear?coll=a")
    assert http("GET", srv.url + "/collections").json() == ["b"]
    http("POST", srv.url + "/clear")
    assert http("GET", srv.url + "/collections").text == "[]\n"


def test_uuid_is_v4(h1mock):
    srv = h1mock(STORE)
    ids = {http("GET", srv.url + "/uuid").text for _ in range(20)}
    assert len(ids) == 20
    for u in ids:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", u)


def test_misuse_raises_with_the_callers_line(h1mock):
    srv = h1mock(STORE)
    assert http("GET", srv.url + "/misuse").status_code == 500
    srv.wait_log(r"initial\.lua:\d+: bad argument #2 to 'put'")
    assert http("GET", srv.url + "/unencodable").status_code == 500
    srv.wait_log(r"initial\.lua:\d+: store\.put: cannot encode a function")


def test_documents_outlive_a_provision_swap(h1mock):
    srv = h1mock(STORE)
    put(srv, "keep", "1", {"v": "before"})
    other = 'function registerRules() app.get("/", function() return store.get("keep", "1") end) end'
    r = http("POST", srv.admin_url + "/app/v1/provision/other", data=other)
    assert r.status_code == 201
    assert http("GET", srv.url + "/").json() == {"v": "before"}


def test_check_accepts_a_provision_that_seeds_the_store(tmp_path):
    f = tmp_path / "seed.lua"
    f.write_text('store.put("fixtures", "1", {a = 1})\n'
                 'function registerRules() app.get("/", function() return "x" end) end\n')
    p = subprocess.run([BIN, "--check", str(f)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def test_data_dir_survives_kill_9_and_a_torn_tail(tmp_path):
    pdir = tmp_path / "provisions"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(STORE)
    data = tmp_path / "data"
    srv = start_server(pdir, "--data-dir", str(data))
    try:
        for i in range(50):
            assert put(srv, "durable", "d%d" % i, {"i": i}) == {"ok": True}
    finally:
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
    # A power cut in the middle of a write leaves half a record at the end.
    with open(data / "store.log", "ab") as f:
        f.write(b"\xa5\x01garbage")
    srv = start_server(pdir, "--data-dir", str(data))
    try:
        srv.wait_log(r"WARN .*store\.log")
        values = http("GET", srv.url + "/list/durable").json()
        assert [v["i"] for v in values] == list(range(50))
        assert put(srv, "durable", "after", {"i": "after"}) == {"ok": True}
    finally:
        assert srv.stop() == 0
    srv = start_server(pdir, "--data-dir", str(data))
    try:
        assert http("GET", srv.url + "/count/durable").json() == {"count": 51}
    finally:
        assert srv.stop() == 0


def test_unusable_data_dir_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    pdir = tmp_path / "p"
    pdir.mkdir()
    p = subprocess.run([BIN, "--port", "0", "--admin-port", "0", "--address", "127.0.0.1",
                        "--provisions", str(pdir), "--data-dir", str(blocker / "sub")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("h1mock: "), p.stderr
    assert str(blocker) in lines[0]


def test_admin_store_seed_list_and_reset(h1mock):
    srv = h1mock(None)  # the built-in default: the REST API under /api
    seed = [{"_id": "u1", "name": "ada"}, {"name": "bob"}]
    r = http("POST", srv.admin_url + "/app/v1/store/users", data=json.dumps(seed))
    assert r.status_code == 201
    assert r.json() == {"result": "success: 2 documents stored in 'users'"}
    assert http("GET", srv.url + "/api/users/u1").json() == {"_id": "u1", "name": "ada"}
    docs = http("GET", srv.admin_url + "/app/v1/store/users").json()
    assert [d["name"] for d in docs] == ["ada", "bob"]
    assert re.fullmatch(r"[0-9a-f-]{36}", docs[1]["_id"])
    http("POST", srv.url + "/api/orders", json={"n": 1})
    assert http("GET", srv.admin_url + "/app/v1/store").json() == {
        "collections": [{"name": "users", "count": 2}, {"name": "orders", "count": 1}]}
    r = http("DELETE", srv.admin_url + "/app/v1/store/users")
    assert r.json() == {"result": "success: collection 'users' cleared"}
    assert http("GET", srv.url + "/api/users").json() == []
    assert http("DELETE", srv.admin_url + "/app/v1/store").json() == {
        "result": "success: store cleared"}
    assert http("GET", srv.admin_url + "/app/v1/store").json() == {"collections": []}


def test_admin_store_seed_refuses_bad_bodies(h1mock):
    srv = h1mock(None)
    for body, what in ((b"not json", "the body is not JSON"),
                       (b'{"a": 1}', "the body must be a JSON array of objects"),
                       (b'[{"a": 1}, 2]', "element 2 is not a JSON object")):
        r = http("POST", srv.admin_url + "/app/v1/store/things", data=body)
        assert r.status_code == 400, body
        assert r.json()["result"].startswith("failed: " + what), r.json()
    # the element before the bad one went in, and the answer said where it stopped
    docs = http("GET", srv.admin_url + "/app/v1/store/things").json()
    assert len(docs) == 1 and docs[0]["a"] == 1
    assert http("PUT", srv.admin_url + "/app/v1/store/things").status_code == 405
    assert http("POST", srv.admin_url + "/app/v1/store").status_code == 405


def test_rest_api_example_provision_serves_like_the_default(h1mock):
    from conftest import PROVISIONS
    srv = h1mock((PROVISIONS / "rest-api.lua").read_text())
    created = http("POST", srv.url + "/api/books", json={"title": "Dune"}).json()
    assert http("GET", srv.url + "/api/books/" + created["_id"]).json() == created
    health = http("GET", srv.url + "/health").json()
    assert health["status"] == "pass"
    assert health["database"]["resources"] == [{"name": "books", "count": 1}]
    home = http("GET", srv.url + "/")
    assert home.status_code == 200 and "books" in home.text
