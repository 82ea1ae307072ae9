#!/usr/bin/python3
"""tests/bench/conns.py - the matrix's own HTTP/1.1 clients, for what wrk cannot do.

  conns.py idle PORT PATH N [--sources K]
      Opens N keep-alive connections to 127.0.0.1:PORT, spread over the
      source addresses 127.0.0.2 ... 127.0.0.(K+1) (one address has about
      28,000 ephemeral ports), sends one GET PATH on each and reads its
      answer (it must be a 200), so that every connection has served a
      request and sits idle. Prints "open N" and holds them until a line
      (or EOF) arrives on stdin, then closes them and exits.
  conns.py probe PORT PATH K
      2K GETs one after the other on one fresh keep-alive connection; prints
      "p50_us p99_us max_us" of the round trips of the last K (the first K
      warm the caches of both sides).
  conns.py requests PORT PATH N
      N GETs one after the other on one keep-alive connection (every answer
      a 200); prints nothing. For the callgrind row: a fixed request count.

Answers are read whole: Content-Length or chunked framing (nginx's Lua
module answers chunked). Never part of the test suite; see README.md.
"""

import resource
import socket
import sys
import time


def request_bytes(path):
    return ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path).encode()


def read_answer(sock, buf):
    """Reads one answer from sock; `buf` holds bytes read past the previous
    one. Returns (status, leftover bytes)."""
    while b"\r\n\r\n" not in buf:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError("the server closed the connection")
        buf += more
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        while len(rest) < length:
            more = sock.recv(65536)
            if not more:
                raise ConnectionError("the server closed the connection mid-body")
            rest += more
        return status, rest[length:]
    while True:  # chunk-size CRLF data CRLF ... 0 CRLF CRLF (no trailers)
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(rest) < size + 2:
            more = sock.recv(65536)
            if not more:
                raise ConnectionError("the server closed the connection mid-chunk")
            rest += more
        rest = rest[size + 2:]
        if size == 0:
            return status, rest


def connect(port, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def get(sock, req, buf=b""):
    sock.sendall(req)
    status, buf = read_answer(sock, buf)
    if status != 200:
        raise SystemExit("conns.py: GET answered %d, expected 200" % status)
    return buf


def raise_open_files(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 64) if hard != resource.RLIM_INFINITY else n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < n + 16:
        raise SystemExit("conns.py: the open-files limit (%d) is too low for %d connections" % (hard, n))


def idle(port, path, n, sources):
    raise_open_files(n)
    req = request_bytes(path)
    socks = []
    for i in range(n):
        s = connect(port, "127.0.0.%d" % (2 + i % sources))
        get(s, req)
        socks.append(s)
    print("open %d" % len(socks), flush=True)
    sys.stdin.readline()
    for s in socks:
        s.close()


def probe(port, path, k):
    req = request_bytes(path)
    s = connect(port)
    buf = b""
    for _ in range(k):  # as many unmeasured first: warm caches on both sides
        buf = get(s, req, buf)
    times = []
    for _ in range(k):
        t0 = time.perf_counter_ns()
        buf = get(s, req, buf)
        times.append((time.perf_counter_ns() - t0) / 1000)
    s.close()
    times.sort()
    print("%.0f %.0f %.0f" % (times[len(times) // 2], times[min(len(times) - 1, len(times) * 99 // 100)],
                              times[-1]))


def requests(port, path, n):
    req = request_bytes(path)
    s = connect(port)
    buf = b""
    for _ in range(n):
        buf = get(s, req, buf)
    s.close()


def main(argv):
    if len(argv) < 5 or argv[1] not in ("idle", "probe", "requests"):
        raise SystemExit(__doc__)
    cmd, port, path, n = argv[1], int(argv[2]), argv[3], int(argv[4])
    if cmd == "idle":
        sources = int(argv[6]) if len(argv) > 6 and argv[5] == "--sources" else 8
        idle(port, path, n, sources)
    elif cmd == "probe":
        probe(port, path, n)
    else:
        requests(port, path, n)


if __name__ == "__main__":
    main(sys.argv)
