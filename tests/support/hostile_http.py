#!/usr/bin/env python3
"""A hostile HTTP/1.1 server for the upload targets' hostile-server tests (stdlib only).

    hostile_http.py [--host 127.0.0.1] [--port 0] [--log FILE] [--redirect-to BASE]
                    [--tls CERT KEY] [--webdav-size N] [--trickle-all S]

Prints "PORT=<n>" once it listens on <host>:<port>. Every request is appended to FILE as
one JSON line {"method","path","headers":{lower-case names}} before it is answered, so a
test can prove what reached this server (e.g. that no credential did).
With --redirect-to every request is answered "307 Temporary Redirect" with
"Location: BASE<path>" (a server sending the client to another host). Otherwise:
  /endless           200 without a length, then 'x' forever (a body that never ends)
  /huge/<n>          200 with "Content-Length: n", then n bytes of 'x'
  /trickle/<s>       200 with "Content-Length: 1000", then one byte every <s> seconds
  anything else      200 with the JSON line above
With --webdav-size N it plays a WebDAV server that says every file exists with N bytes and
no checksum (PROPFIND 207) and then answers a GET of it with an endless body; MKCOL, PUT,
MOVE and DELETE are answered 201.
With --trickle-all S every request is answered like /trickle/S.
With --tls the listener speaks TLS with that certificate and key.
"""
import argparse
import http.server
import json
import ssl
import threading
import time

ARGS = None
LOG_LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _record(self):
        entry = {"method": self.command, "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()}}
        if ARGS.log:
            with LOG_LOCK, open(ARGS.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
        return entry

    def _drain_body(self):
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def _stream(self, total, step, pause):
        sent = 0
        try:
            while total is None or sent < total:
                n = step if total is None else min(step, total - sent)
                self.wfile.write(b"x" * n)
                self.wfile.flush()
                sent += n
                if pause:
                    time.sleep(pause)
        except OSError:  # the client gave up: what the test expects
            pass
        self.close_connection = True

    def _empty(self, status):
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _handle(self):
        entry = self._record()
        self._drain_body()
        parts = self.path.split("?")[0].strip("/").split("/")
        if ARGS.redirect_to:
            self.send_response(307)
            self.send_header("Location", ARGS.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if ARGS.trickle_all is not None:
            parts = ["trickle", str(ARGS.trickle_all)]
        if ARGS.webdav_size is not None and self.command != "GET":
            if self.command != "PROPFIND":
                return self._empty(201)
            body = ('<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response>'
                    '<d:href>%s</d:href><d:propstat><d:prop><d:getcontentlength>%d'
                    '</d:getcontentlength><d:resourcetype/></d:prop>'
                    '<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>'
                    '</d:multistatus>' % (self.path, ARGS.webdav_size)).encode()
            self.send_response(207)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if parts[0] == "endless" or ARGS.webdav_size is not None:
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            return self._stream(None, 64 * 1024, 0)
        if parts[0] == "huge" and len(parts) > 1:
            self.send_response(200)
            self.send_header("Content-Length", parts[1])
            self.end_headers()
            return self._stream(int(parts[1]), 64 * 1024, 0)
        if parts[0] == "trickle" and len(parts) > 1:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            return self._stream(1000, 1, float(parts[1]))
        payload = json.dumps(entry).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", default="")
    ap.add_argument("--redirect-to", default="")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--webdav-size", type=int)
    ap.add_argument("--trickle-all", type=float)
    ARGS = ap.parse_args()
    server = http.server.ThreadingHTTPServer((ARGS.host, ARGS.port), Handler)
    server.daemon_threads = True
    if ARGS.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls[0], ARGS.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT=%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
