"""--record DIR: what --proxy forwards is written as a provision that
answers the same requests with the upstream gone (README "Recording a real
service").

README: "Recording a real service".
"""

import re

import requests

from conftest import http, run_h1mock, wait_until
from test_outbound import answer, upstream  # noqa: F401 - the fixture

HOSTILE = b'"); os.exit(1) --\n]] ]=] \\ \x00\xff end'


def counting(req):
    """Answers by path; /seq counts, so repeated requests differ."""
    counting.n = getattr(counting, "n", 0)
    if req["target"].startswith("/seq"):
        counting.n += 1
        return answer(200, [("Content-Type", "text/plain")], b"call %d" % counting.n)
    if req["method"] == "POST":
        return answer(201, [("Content-Type", "application/json"), ("Location", "/items/9")],
                      b'{"id":9,"got":' + str(len(req["body"])).encode() + b"}")
    if "hostile" in req["target"]:
        return answer(200, [("Content-Type", "application/octet-stream"),
                            ("X-Evil", '"]] os.exit(1) --[[ \\')], HOSTILE)
    page = req["target"].partition("page=")[2] or "none"
    return answer(200, [("Content-Type", "application/json"), ("Set-Cookie", "a=1"),
                        ("Set-Cookie", "b=2")], b'{"page":"' + page.encode() + b'"}')


REQUESTS = [("GET", "/items?page=1", None), ("GET", "/items?page=2", None),
            ("POST", "/items", b'{"name":"x"}'), ("GET", "/seq", None), ("GET", "/seq", None),
            ("GET", '/we"ird%20path/hostile', None)]


def exchange(base, method, target, body):
    r = http(method, base + target, data=body)
    headers = [(k, v) for k, v in r.raw.headers.items() if k.lower() != "date"]
    return r.status_code, headers, r.content


def test_record_then_replay_with_the_upstream_gone(h1mock, upstream, tmp_path):
    up = upstream(counting)
    rec = tmp_path / "rec"
    front = h1mock('function registerRules() app.get("/mine", function() return "mine" end) end',
                   "--proxy", up.url, "--record", str(rec))
    live = [exchange(front.url, *r) for r in REQUESTS]
    # Answers from the upstream, in order; a rule of the provision is not recorded.
    assert live[3][2] == b"call 1" and live[4][2] == b"call 2"
    assert live[5][2] == HOSTILE
    assert http("GET", front.url + "/mine").text == "mine"
    path = rec / "recorded.lua"
    wait_until(lambda: path.exists() and "6 exchanges" in path.read_text("latin-1"),
               what="the recording holds every exchange")
    text = path.read_text("latin-1")
    assert "/mine" not in text
    assert len(re.findall(r"^  \{method = ", text, re.M)) == 4  # one rule per method + path
    front.stop()
    up.close()
    # A fresh server, no --proxy, no upstream: the recording answers.
    replay = h1mock(text)
    replay.wait_log(r"provision 'initial' loaded: 4 rules")
    again = [exchange(replay.url, *r) for r in REQUESTS]
    assert again == live
    # Past the recorded ones, the last answer repeats.
    assert http("GET", replay.url + "/seq").text == "call 2"
    r = http("GET", replay.url + "/items?page=3")
    assert r.status_code == 404 and r.text == "no answer was recorded for GET /items?page=3\n"


def test_the_recording_is_written_as_it_happens_and_replaced_whole(h1mock, upstream, tmp_path):
    up = upstream(counting)
    rec = tmp_path / "rec"
    front = h1mock(None, "--proxy", up.url, "--record", str(rec))
    path = rec / "recorded.lua"
    for n in range(1, 4):
        http("GET", front.url + "/seq")
        wait_until(lambda: path.exists() and "%d exchange" % n in path.read_text(),
                   what="exchange %d in the file" % n)
    front.wait_log(r"INFO --record: recording into .*recorded\.lua")
    assert [p.name for p in rec.iterdir()] == ["recorded.lua"]  # no temporary file left


def test_the_recording_is_capped(h1mock, upstream, tmp_path):
    up = upstream(lambda req: answer(200, body=b"x"))
    rec = tmp_path / "rec"
    front = h1mock(None, "--proxy", up.url, "--record", str(rec))
    with requests.Session() as s:
        s.trust_env = False
        for i in range(1003):
            assert s.get(front.url + "/n/%d" % i, timeout=10).status_code == 200
    front.wait_log(r"WARN --record: .*recorded\.lua holds 1000 exchanges .* later ones are "
                   r"forwarded but not recorded")
    path = rec / "recorded.lua"
    wait_until(lambda: "1000 exchanges" in path.read_text(), what="the full recording")
    assert front.log.count("later ones are forwarded but not recorded") == 1


def test_bad_record_setups_are_refused_at_start(tmp_path):
    res = run_h1mock(["--proxy", "http://127.0.0.1:9", "--record", str(tmp_path)],
                     provisions=tmp_path)
    assert res.returncode == 1
    assert ("h1mock: --record: '%s' is the provisions directory" % tmp_path
            in res.stderr.decode()), res.stderr
    res = run_h1mock(["--record", str(tmp_path / "rec")], provisions=tmp_path)
    assert res.returncode == 1
    assert res.stderr.decode() == (
        "h1mock: --record records what --proxy forwards: give --proxy URL too\n")
    assert not (tmp_path / "rec").exists()
