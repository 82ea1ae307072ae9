"""--data-dir at start: what h1mock makes of the store's files (README:
"Durability and recovery"). A torn tail is dropped with one warning;
anything else that is not one consistent history refuses to start, naming
the file and the offset, and leaves store.log and store.snapshot as they
were; a store written by h1mock 0.1.0 (format version 1) is migrated.

README: "Durability and recovery", "Command line".
"""

import json
import struct
import zlib

from conftest import http, run_h1mock, start_server, wait_until

REST = None  # the built-in default provision: the REST API under /api


def record(rtype, coll=b"", id_=b"", val=b"", seq=0):
    """One record of the store's format (versions 1 and 2 share it)."""
    payload = coll + id_ + val
    head = struct.pack("<BBHHHIQ", 0xA5, rtype, len(coll), len(id_), 0, len(val), seq)
    head += struct.pack("<I", zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def records(data, start):
    """(offset, size, seq) of each record from `start` on, until one does not parse."""
    out, off = [], start
    while off + 28 <= len(data) and data[off] == 0xA5:
        clen, idlen, _, vlen, seq = struct.unpack_from("<HHHIQ", data, off + 2)
        size = 28 + clen + idlen + vlen
        out.append((off, size, seq))
        off += size
    return out


def provisions(tmp_path):
    pdir = tmp_path / "provisions"
    pdir.mkdir(exist_ok=True)
    return pdir


def fill(tmp_path, data, n):
    """Starts h1mock on `data`, creates n documents in /api/items, stops it
    (SIGTERM); returns their ids."""
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        ids = []
        for i in range(n):
            r = http("POST", srv.url + "/api/items", json={"i": i})
            assert r.status_code == 200, r.text
            ids.append(r.json()["_id"])
    finally:
        assert srv.stop() == 0
    return ids


def files(data):
    return {name: (data / name).read_bytes() if (data / name).exists() else None
            for name in ("store.log", "store.snapshot")}


def refused(tmp_path, data, want):
    """Starts h1mock on `data`: it must exit 1 with one line naming `want`,
    and leave store.log and store.snapshot byte for byte as they were."""
    before = files(data)
    srv = start_server(provisions(tmp_path), "--data-dir", str(data), wait=False)
    try:
        wait_until(lambda: srv.proc.poll() is not None or "traffic on" in srv.log,
                   timeout=20, what="h1mock to exit or to start")
        assert srv.proc.poll() is not None, "h1mock started on damaged files:\n" + srv.log
    finally:
        code = srv.stop()
    assert code == 1, srv.log
    lines = [l for l in srv.log.splitlines() if l.startswith("h1mock: ")]
    assert len(lines) == 1 and want in lines[0], srv.log
    assert files(data) == before
    return lines[0]


def test_a_zeroed_log_refuses_to_start(tmp_path):
    """A log that reads back as zeros (a lost page cache) is not an empty store."""
    data = tmp_path / "data"
    fill(tmp_path, data, 20)
    size = (data / "store.log").stat().st_size
    (data / "store.log").write_bytes(bytes(size))
    line = refused(tmp_path, data, "store.log at offset 0: its header reads back as zeros")
    assert str(data) in line


def test_a_zeroed_region_followed_by_records_refuses_to_start(tmp_path):
    data = tmp_path / "data"
    fill(tmp_path, data, 10)
    log = bytearray((data / "store.log").read_bytes())
    recs = records(log, 48)
    assert len(recs) == 10
    off, size, _ = recs[4]
    log[off:off + size] = bytes(size)
    (data / "store.log").write_bytes(bytes(log))
    refused(tmp_path, data, "store.log is damaged at offset %d (a sound record follows at %d)"
            % (off, off + size))


def test_a_truncated_snapshot_refuses_to_start(tmp_path):
    data = tmp_path / "data"
    fill(tmp_path, data, 10)
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))  # compacts at start
    assert http("GET", srv.url + "/health").status_code == 200
    assert srv.stop() == 0
    snap = (data / "store.snapshot").read_bytes()
    (data / "store.snapshot").write_bytes(snap[:len(snap) - 40])
    refused(tmp_path, data, "store.snapshot is damaged at offset")


def test_an_unknown_format_version_refuses_to_start(tmp_path):
    data = tmp_path / "data"
    fill(tmp_path, data, 3)
    log = bytearray((data / "store.log").read_bytes())
    log[8:12] = struct.pack("<I", 3)
    log[44:48] = struct.pack("<I", zlib.crc32(bytes(log[:44])))
    (data / "store.log").write_bytes(bytes(log))
    refused(tmp_path, data, "store.log at offset 0: it is in format version 3")


def test_a_torn_tail_is_dropped_with_one_warning(tmp_path):
    data = tmp_path / "data"
    ids = fill(tmp_path, data, 5)
    with open(data / "store.log", "ab") as f:
        f.write(record(1, b"items", b"x" * 36, b'{"torn":true}', 6)[:40])
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        srv.wait_log(r"WARN store: .*store\.log: dropping a torn tail at offset \d+ \(40 bytes\)")
        assert srv.log.count("WARN") == 1
        assert [d["_id"] for d in http("GET", srv.url + "/api/items").json()] == ids
    finally:
        assert srv.stop() == 0


def test_a_format_1_store_is_migrated_once(tmp_path):
    """A store as h1mock 0.1.0 wrote it: no file headers."""
    data = tmp_path / "data"
    data.mkdir()
    doc = lambda i: json.dumps({"_id": "d%d" % i, "i": i}, separators=(",", ":")).encode()
    snap = b"".join(record(1, b"items", b"d%d" % i, doc(i)) for i in range(3))
    snap += record(5, val=struct.pack("<Q", 3), seq=3)
    log = record(1, b"items", b"d3", doc(3), 4) + record(2, b"items", b"d0", seq=5)
    (data / "store.snapshot").write_bytes(snap)
    (data / "store.log").write_bytes(log)
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        srv.wait_log(r"INFO store: .*: migrated from format version 1 to 2 \(3 documents, up to "
                     r"sequence number 5\); the old files are kept as store\.log\.v1 and "
                     r"store\.snapshot\.v1")
        assert [d["i"] for d in http("GET", srv.url + "/api/items").json()] == [1, 2, 3]
        assert http("POST", srv.url + "/api/items", json={"i": 4}).status_code == 200
    finally:
        assert srv.stop() == 0
    assert (data / "store.snapshot.v1").read_bytes() == snap
    assert (data / "store.log.v1").read_bytes() == log
    assert (data / "store.log").read_bytes()[:8] == b"h1mock-L"
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        assert [d["i"] for d in http("GET", srv.url + "/api/items").json()] == [1, 2, 3, 4]
        assert "migrated" not in srv.log
    finally:
        assert srv.stop() == 0


def test_repair_store_keeps_what_verifies_and_starts_clean(tmp_path):
    """h1mock --repair-store DIR: the damaged files copied aside, every
    record that verifies kept, a fresh store that starts."""
    data = tmp_path / "data"
    ids = fill(tmp_path, data, 10)
    log = bytearray((data / "store.log").read_bytes())
    off, size, _ = records(log, 48)[3]
    log[off:off + size] = bytes(size)
    (data / "store.log").write_bytes(bytes(log))
    refused(tmp_path, data, "store.log is damaged at offset %d" % off)
    p = run_h1mock(["--repair-store", str(data)])
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    assert ("repaired %s: kept 9 records (9 documents), dropped %d bytes in 1 damaged regions"
            % (data, size)) in out, out
    copies = sorted(data.glob("store.log.damaged-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == bytes(log)
    assert str(copies[0]) in out
    srv = start_server(provisions(tmp_path), "--data-dir", str(data))
    try:
        kept = [d["_id"] for d in http("GET", srv.url + "/api/items").json()]
        assert kept == ids[:3] + ids[4:]
        assert http("POST", srv.url + "/api/items", json={"after": True}).status_code == 200
    finally:
        assert srv.stop() == 0
    # Nothing to repair, or a store in use: exit 1 and one line.
    p = run_h1mock(["--repair-store", str(tmp_path / "empty")])
    assert p.returncode == 1 and b"nothing to repair" in p.stderr, p.stderr
