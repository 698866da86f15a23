#!/usr/bin/env python3
"""A small WebDAV server whose total upload rate is capped, for photorig's throughput
benchmark (Python 3 standard library only).

    python3 throttled_webdav.py --port 0 --root DIR [--rate BYTES_PER_S]

Prints "LISTENING <port>" and "PORT=<port>" once it accepts connections.

Why it exists: a benchmark of "upload throughput vs. the link" needs a link whose capacity
is known exactly. Here that is one token bucket shared by every connection: PUT bodies are
read no faster than --rate bytes/s in total (0 = unthrottled), so the ideal time for N bytes
is N / rate whatever the client's concurrency. Everything else (PROPFIND, GET, MKCOL, MOVE)
is unthrottled, like the small requests on a real link whose bottleneck is the uplink.

WebDAV, enough for photorig's webdav target and `rclone copy` to an rclone webdav remote
(vendor "other"): OPTIONS, PROPFIND (Depth 0 and 1: resourcetype, getcontentlength,
getlastmodified, getcontenttype, displayname), MKCOL (201; 405 exists; 409 no parent),
PUT (201/204; 409 no parent; Content-Length or chunked), GET/HEAD, DELETE, MOVE
(Destination, Overwrite: F -> 412). No locks, no auth (credentials are accepted and ignored).
HTTP/1.1 keep-alive, one thread per connection.

GET /_stats answers JSON: for each top-level folder under the root, the monotonic time of
the first request's start and of the last response's end, the bytes of PUT bodies read and
the number of requests per method, so a benchmark can time a client from the server's side.
POST /_stats/reset clears them.

POST /_faults {"locked_mkcols": N} answers the next N MKCOLs with 423 Locked, as a server
does while another client's request holds the path (x/net/webdav behind `rclone serve
webdav` locks a path for each request's duration).
"""
import argparse
import email.utils
import io
import json
import os
import shutil
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

CHUNK = 64 * 1024


class TokenBucket:
    """One bucket for all connections, modelling a link of `rate` bytes/s.

    While at least one PUT body is being read the link is busy, and a reader that fell
    behind (this process was descheduled, a thread waited for the GIL) may catch up by at
    most SLACK seconds' worth of bytes: on a real link those bytes would have arrived in the
    kernel's buffers meanwhile. When no body is being read the link is idle and earns
    nothing, so a client never gets a burst for free after a pause of its own."""

    SLACK = 0.05

    def __init__(self, rate):
        self.rate = float(rate)
        self.lock = threading.Lock()
        self.t = 0.0  # when the bytes taken so far have passed the link
        self.active = 0

    def begin(self):
        with self.lock:
            if self.active == 0:
                self.t = max(self.t, time.monotonic())
            self.active += 1

    def end(self):
        with self.lock:
            self.active -= 1

    def take(self, n):
        if self.rate <= 0:
            return
        with self.lock:
            now = time.monotonic()
            self.t = max(self.t, now - self.SLACK) + n / self.rate
            wait = self.t - now
        if wait > 0:
            time.sleep(wait)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.folders = {}

    def note(self, folder, method, start, end, put_bytes):
        with self.lock:
            f = self.folders.setdefault(folder, {"first_start": start, "last_end": end, "put_bytes": 0,
                                                 "requests": {}})
            f["first_start"] = min(f["first_start"], start)
            f["last_end"] = max(f["last_end"], end)
            f["put_bytes"] += put_bytes
            f["requests"][method] = f["requests"].get(method, 0) + 1

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.folders))

    def reset(self):
        with self.lock:
            self.folders = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "throttled-webdav/1"
    # Replies go out in one write, and Nagle must not hold a small reply back 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    # --- helpers -------------------------------------------------------------------

    def fs_path(self, url_path):
        path = urllib.parse.unquote(urllib.parse.urlsplit(url_path).path)
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            return None, parts
        return os.path.join(self.server.root, *parts), parts

    def reply(self, status, body=b"", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self, sink=None, throttle=False):
        """Reads the request body (Content-Length or chunked); returns its size."""
        bucket = self.server.bucket if throttle else None
        if bucket:
            bucket.begin()
        try:
            return self._read_body(sink, bucket)
        finally:
            if bucket:
                bucket.end()

    def _read_body(self, sink, bucket):
        total = 0

        def consume(n):
            nonlocal total
            while n > 0:
                want = min(CHUNK, n)
                if bucket:
                    bucket.take(want)
                data = self.rfile.read(want)
                if not data:
                    raise ConnectionError("body cut short")
                if sink:
                    sink.write(data)
                total += len(data)
                n -= len(data)

        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                consume(size)
                self.rfile.readline(1024)
        else:
            consume(int(self.headers.get("Content-Length") or 0))
        return total

    def propentry(self, href, path):
        st = os.stat(path)
        is_dir = os.path.isdir(path)
        props = ["<D:displayname>%s</D:displayname>" % escape(os.path.basename(path.rstrip("/")))]
        props.append("<D:resourcetype><D:collection/></D:resourcetype>" if is_dir else "<D:resourcetype/>")
        if not is_dir:
            props.append("<D:getcontentlength>%d</D:getcontentlength>" % st.st_size)
            props.append("<D:getcontenttype>application/octet-stream</D:getcontenttype>")
        props.append("<D:getlastmodified>%s</D:getlastmodified>" % email.utils.formatdate(st.st_mtime, usegmt=True))
        return ("<D:response><D:href>%s</D:href><D:propstat><D:prop>%s</D:prop>"
                "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>") % (escape(href), "".join(props))

    # --- dispatch --------------------------------------------------------------------

    def parse_request(self):
        # Times every request for /_stats from the arrival of its request line (not from
        # when this connection began to wait for it) to the end of the reply.
        self._start = time.monotonic()
        return super().parse_request()

    def handle_one_request(self):
        self._put_bytes = 0
        self.command = None
        super().handle_one_request()
        if self.command and not self.path.startswith("/_stats"):
            _, parts = self.fs_path(self.path)
            folder = parts[0] if parts else ""
            end = time.monotonic()
            self.server.stats.note(folder, self.command, self._start, end, self._put_bytes)
            if self.server.log_requests:
                print("%.4f %.4f %s %s %d" % (self._start, end, self.command, self.path, self._put_bytes), flush=True)

    def do_OPTIONS(self):
        self.read_body()
        self.reply(200, headers={"DAV": "1, 2", "Allow": "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, PROPFIND, MOVE"})

    def do_PROPFIND(self):
        self.read_body()
        path, _ = self.fs_path(self.path)
        if path is None:
            return self.reply(400)
        if not os.path.exists(path):
            return self.reply(404)
        href = urllib.parse.urlsplit(self.path).path
        entries = [self.propentry(href, path)]
        if os.path.isdir(path) and self.headers.get("Depth", "infinity") != "0":
            base = href if href.endswith("/") else href + "/"
            for name in sorted(os.listdir(path)):
                child = os.path.join(path, name)
                child_href = base + urllib.parse.quote(name) + ("/" if os.path.isdir(child) else "")
                try:
                    entries.append(self.propentry(child_href, child))
                except FileNotFoundError:
                    pass
        body = '<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:">%s</D:multistatus>' % "".join(
            entries)
        self.reply(207, body, {"Content-Type": "application/xml; charset=utf-8"})

    def do_MKCOL(self):
        self.read_body()
        path, _ = self.fs_path(self.path)
        if path is None:
            return self.reply(400)
        with self.server.faults_lock:
            locked = self.server.locked_mkcols > 0
            if locked:
                self.server.locked_mkcols -= 1
        if locked:
            return self.reply(423)
        if os.path.exists(path):
            return self.reply(405)
        if not os.path.isdir(os.path.dirname(path.rstrip("/"))):
            return self.reply(409)
        try:
            os.mkdir(path)
        except FileExistsError:
            return self.reply(405)
        self.reply(201)

    def do_PUT(self):
        path, _ = self.fs_path(self.path)
        if path is None or os.path.isdir(path):
            self.read_body()
            return self.reply(400 if path is None else 405)
        if not os.path.isdir(os.path.dirname(path)):
            self.read_body()
            return self.reply(409)
        existed = os.path.exists(path)
        # Into a hidden temp file, renamed at the end: a cut PUT leaves no half file.
        temp = "%s.tput-%d" % (path, threading.get_ident())
        try:
            with open(temp, "wb") as f:
                self._put_bytes = self.read_body(f, throttle=True)
        except Exception:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        os.replace(temp, path)
        self.reply(204 if existed else 201)

    def do_GET(self):
        if self.path.startswith("/_stats"):
            self.read_body()
            return self.reply(200, json.dumps(self.server.stats.snapshot()), {"Content-Type": "application/json"})
        self.read_body()
        path, _ = self.fs_path(self.path)
        if path is None or not os.path.isfile(path):
            return self.reply(404)
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Last-Modified", email.utils.formatdate(os.path.getmtime(path), usegmt=True))
        self.end_headers()
        if self.command == "GET":
            with open(path, "rb") as f:
                shutil.copyfileobj(f, self.wfile, 256 * 1024)

    do_HEAD = do_GET

    def do_POST(self):
        body = io.BytesIO()
        self.read_body(sink=body)
        if self.path.startswith("/_stats/reset"):
            self.server.stats.reset()
            return self.reply(200, "{}")
        if self.path.startswith("/_faults"):
            try:
                faults = json.loads(body.getvalue() or b"{}")
                with self.server.faults_lock:
                    self.server.locked_mkcols = int(faults.get("locked_mkcols", 0))
            except (ValueError, AttributeError, TypeError):
                return self.reply(400)
            return self.reply(200, "{}")
        self.reply(405)

    def do_DELETE(self):
        self.read_body()
        path, parts = self.fs_path(self.path)
        if path is None or not parts:
            return self.reply(400)
        if not os.path.exists(path):
            return self.reply(404)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        self.reply(204)

    def do_MOVE(self):
        self.read_body()
        src, _ = self.fs_path(self.path)
        dest_url = self.headers.get("Destination", "")
        dst, _ = self.fs_path(urllib.parse.urlsplit(dest_url).path) if dest_url else (None, [])
        if src is None or dst is None:
            return self.reply(400)
        if not os.path.exists(src):
            return self.reply(404)
        if not os.path.isdir(os.path.dirname(dst.rstrip("/"))):
            return self.reply(409)
        existed = os.path.exists(dst)
        if existed and self.headers.get("Overwrite", "T").upper() == "F":
            return self.reply(412)
        if existed and os.path.isdir(dst):
            shutil.rmtree(dst)
        os.replace(src, dst)
        self.reply(204 if existed else 201)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--root", required=True)
    ap.add_argument("--rate", type=float, default=0, help="PUT body bytes/s over all connections; 0 = no cap")
    ap.add_argument("--log-requests", action="store_true", help="one line per request on stdout")
    args = ap.parse_args()
    os.makedirs(args.root, exist_ok=True)
    server = Server(("127.0.0.1", args.port), Handler)
    server.root = os.path.abspath(args.root)
    server.bucket = TokenBucket(args.rate)
    server.stats = Stats()
    server.faults_lock = threading.Lock()
    server.locked_mkcols = 0
    server.log_requests = args.log_requests
    port = server.server_address[1]
    print("LISTENING %d" % port, flush=True)
    print("PORT=%d" % port, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
