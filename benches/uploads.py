#!/usr/bin/env python3
"""Concurrent large uploads for the proxy benchmark (row 7), loopback only.

  uploads.py sink PORTFILE            an HTTP server on 127.0.0.1 that reads each
                                      request body whole and answers 200 (writes
                                      its port to PORTFILE)
  uploads.py put HOST:PORT N MIB PATH N concurrent PUTs of MIB MiB each; prints
                                      the seconds from the first byte to the
                                      last answer
"""
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self):
        left = int(self.headers.get("Content-Length", "0"))
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def sink(port_file):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


def put(addr, n, mib, path):
    host, port = addr.rsplit(":", 1)
    chunk = b"x" * (1 << 20)
    failures = []

    def one(i):
        s = socket.create_connection((host, int(port)))
        s.sendall(
            f"PUT {path}/c{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {mib << 20}\r\nConnection: close\r\n\r\n".encode()
        )
        for _ in range(mib):
            s.sendall(chunk)
        answer = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            answer += data
        if not answer.startswith(b"HTTP/1.1 200"):
            failures.append(answer[:200])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    if failures:
        sys.exit(f"uploads: {len(failures)} PUTs failed: {failures[0]!r}")
    print(f"{elapsed:.3f}")


if __name__ == "__main__":
    if sys.argv[1] == "sink":
        sink(sys.argv[2])
    else:
        put(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
