#!/usr/bin/env python3
"""A scriptable HTTP/1.1 peer for the HTTP client tests (Python stdlib only).

Listens on 127.0.0.1:<port> (0 = any free port) and prints "PORT=<n>" once it listens.
Every request body is read (streamed, never kept) and hashed. Paths:
  /status/<code>     answer <code> with the JSON description below
  /stall/<seconds>   read the body, then say nothing for <seconds>, then answer 200
  /bytes/<n>         answer 200 with n bytes of 'x'
  /close             read the body, then close the connection without an answer
  anything else      answer 200
The JSON description: {"method","path","headers":{lower-case},"length","sha256","connection"}
where "connection" numbers the TCP connections the server accepted (keep-alive check).
"""
import hashlib
import http.server
import itertools
import json
import sys
import time

_connections = itertools.count(1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection_no = next(_connections)

    def log_message(self, fmt, *args):  # quiet: the test log stays readable
        pass

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        digest = hashlib.sha256()
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        return length - left, digest.hexdigest()

    def _handle(self):
        length, sha = self._read_body()
        parts = self.path.split("?")[0].strip("/").split("/")
        status = 200
        payload = None
        if parts[0] == "status" and len(parts) > 1:
            status = int(parts[1])
        elif parts[0] == "stall" and len(parts) > 1:
            time.sleep(float(parts[1]))
        elif parts[0] == "bytes" and len(parts) > 1:
            payload = b"x" * int(parts[1])
        elif parts[0] == "close":
            self.close_connection = True
            self.connection.close()
            return
        if payload is None:
            payload = json.dumps({
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "length": length,
                "sha256": sha,
                "connection": self.connection_no,
            }).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Multi", "a")
        self.send_header("X-Multi", "b")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("PORT=%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
