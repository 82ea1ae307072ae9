"""Files h1mock writes cannot be redirected by another user: a link planted
at the name of a temporary file (a posted provision's
.<name>.lua.tmp-<pid>, the store's store.snapshot.tmp) is never written
through, and the state directory (where posts go when the provisions
directory is read-only) is created 0700, and refused at start when it is a
link, another user's, or writable by group or others.

README: "Command line".
"""

import json
import os
import re
import stat

import pytest

from conftest import http, run_h1mock, start_server, wait_until

PRECIOUS = b"precious data\n"


def prov(text):
    return 'function registerRules() app.get("/", function() return %s end) end\n' % (
        json.dumps(text))


def post(srv, name, text):
    return http("POST", srv.admin_url + "/app/v1/provision/" + name, data=text)


def plant(tmp_path, at, dangling=False):
    """A link at `at` to a file outside; returns that file's path."""
    target = tmp_path / ("target-of-" + at.name)
    if not dangling:
        target.write_bytes(PRECIOUS)
    os.symlink(target, at)
    return target


def assert_untouched(target, dangling):
    if dangling:
        assert not os.path.lexists(target), "a file was created through the link"
    else:
        assert target.read_bytes() == PRECIOUS


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_post_never_writes_through_a_link_at_its_temp_name(h1mock, tmp_path, dangling):
    srv = h1mock(prov("initial"))
    link = srv.provisions / (".victim.lua.tmp-%d" % srv.proc.pid)
    target = plant(tmp_path, link, dangling)
    r = post(srv, "victim", prov("posted"))
    assert r.status_code == 201, r.text
    assert_untouched(target, dangling)
    stored = srv.provisions / "victim.lua"
    assert not stored.is_symlink() and stored.read_text() == prov("posted")
    assert not os.path.lexists(link)
    assert http("GET", srv.url + "/").text == "posted"
    srv.wait_log(r"WARN removed a symbolic link planted at %s" % re.escape(str(link)))


def read_only_provisions(tmp_path, make_readonly):
    pdir = tmp_path / "ro-provisions"
    pdir.mkdir()
    (pdir / "initial.lua").write_text(prov("ro initial"))
    make_readonly(pdir)
    return pdir


def test_state_dir_is_made_0700_at_start_and_links_in_it_are_not_followed(
        h1mock, tmp_path, make_readonly):
    pdir = read_only_provisions(tmp_path, make_readonly)
    state = tmp_path / "made" / "state"
    srv = h1mock(None, "--provisions", str(pdir), "--state-dir", str(state))
    srv.provisions = pdir
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700  # made at start, before any post
    assert stat.S_IMODE(os.stat(state.parent).st_mode) == 0o755
    target = plant(tmp_path, state / (".victim.lua.tmp-%d" % srv.proc.pid))
    assert post(srv, "victim", prov("posted")).status_code == 201
    assert target.read_bytes() == PRECIOUS
    assert (state / "victim.lua").read_text() == prov("posted")


def start_refused(pdir, state):
    res = run_h1mock(["--state-dir", str(state)], provisions=pdir)
    err = res.stderr.decode()
    assert res.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "h1mock: the state directory %s " % str(state).rstrip("/")), err
    return lines[0]


def test_state_dir_that_is_a_link_is_refused_at_start(tmp_path, make_readonly):
    pdir = read_only_provisions(tmp_path, make_readonly)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    state = tmp_path / "state"
    os.symlink(elsewhere, state)
    line = start_refused(pdir, state)
    assert "is a symbolic link: refused" in line
    # "state/" would follow the link: it is refused all the same
    assert "is a symbolic link" in start_refused(pdir, str(state) + "/")
    assert os.listdir(elsewhere) == []


@pytest.mark.parametrize("mode,who", [(0o770, "its group"), (0o777, "every user"),
                                      (0o1777, "every user")], ids=["0770", "0777", "1777"])
def test_state_dir_writable_by_others_is_refused_at_start(h1mock, tmp_path, make_readonly, mode,
                                                          who):
    pdir = read_only_provisions(tmp_path, make_readonly)
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, mode)
    line = start_refused(pdir, state)
    assert "is writable by %s (mode %04o): refused" % (who, mode) in line
    assert "give --state-dir a directory of your own" in line
    assert stat.S_IMODE(os.stat(state).st_mode) == mode  # left as it was
    assert os.listdir(state) == []
    # Only a state dir in use is checked: with a writable provisions
    # directory, posts go there and the same state dir stops nothing.
    srv = h1mock(prov("initial"), "--state-dir", str(state))
    assert post(srv, "w", prov("w")).status_code == 201
    assert os.listdir(state) == []


def test_state_dir_of_another_user_is_refused_at_start(tmp_path, make_readonly):
    if os.geteuid() != 0:
        pytest.skip("making a directory of another user needs root")
    pdir = read_only_provisions(tmp_path, make_readonly)
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    os.chown(state, 65534, 65534)  # e.g. nobody made /tmp/h1mock-state first
    line = start_refused(pdir, state)
    assert "belongs to uid 65534, not to this user (uid 0): refused" in line


def test_state_dir_swapped_for_a_link_later_is_refused_per_post(h1mock, tmp_path, make_readonly):
    pdir = read_only_provisions(tmp_path, make_readonly)
    state = tmp_path / "state"
    srv = h1mock(None, "--provisions", str(pdir), "--state-dir", str(state))
    srv.provisions = pdir
    assert post(srv, "first", prov("first")).status_code == 201
    # removed (a /tmp cleaner) and taken over by a link while h1mock runs
    os.rename(state, tmp_path / "old-state")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    os.symlink(elsewhere, state)
    r = post(srv, "second", prov("second"))
    assert r.status_code == 500, r.text
    assert ("the state directory %s is a symbolic link: refused" % state) in r.json()["result"]
    assert os.listdir(elsewhere) == []
    assert http("GET", srv.url + "/").text == "first"  # the refused one is not served
    # a directory that is merely gone is made again
    os.unlink(state)
    assert post(srv, "third", prov("third")).status_code == 201
    assert (state / "third.lua").read_text() == prov("third")
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700


def test_store_compaction_never_writes_through_a_link(tmp_path):
    """The log is compacted into a snapshot once it passes 64 MiB: five
    seeds of 14 MiB get it there."""
    pdir = tmp_path / "p"
    pdir.mkdir()
    data = tmp_path / "data"
    srv = start_server(pdir, "--data-dir", str(data), "--max-provision-bytes", "16M")
    try:
        target = plant(tmp_path, data / "store.snapshot.tmp")
        doc = json.dumps([{"blob": "x" * (14 << 20)}])
        for i in range(5):
            r = http("POST", srv.admin_url + "/app/v1/store/big%d" % i, data=doc, timeout=60)
            assert r.status_code == 201, r.text
        wait_until(lambda: os.path.getsize(data / "store.log") < (14 << 20),
                   what="a compaction")
        assert target.read_bytes() == PRECIOUS
        snap = data / "store.snapshot"
        assert not snap.is_symlink() and snap.stat().st_size > (64 << 20)
        assert not os.path.lexists(data / "store.snapshot.tmp")
        assert "compaction failed" not in srv.log
    finally:
        assert srv.stop() == 0
    srv = start_server(pdir, "--data-dir", str(data))
    try:
        r = http("GET", srv.admin_url + "/app/v1/store")
        assert [c["count"] for c in r.json()["collections"]] == [1] * 5
    finally:
        assert srv.stop() == 0


def test_store_log_that_is_a_link_is_refused_at_start(tmp_path):
    pdir = tmp_path / "p"
    pdir.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    target = tmp_path / "elsewhere.log"
    os.symlink(target, data / "store.log")
    res = run_h1mock(["--data-dir", str(data)], provisions=pdir)
    err = res.stderr.decode()
    assert res.returncode == 1, err
    assert ("cannot open %s/store.log: it is a symbolic link, which the store does not follow"
            % data) in err
    assert not os.path.lexists(target)
