#!/usr/bin/env python3
"""A Google Drive API v3 fake for photorig's tests (Python 3 standard library only).

    python3 gdrive_fake.py --port 0 --state-dir DIR [--client-id ID] [--client-secret S]
                           [--refresh-token T] [--expires-in SECONDS]

Prints "LISTENING <port>" and "PORT=<port>" on stdout once it accepts connections.

What it implements, after the public Drive v3 and Google OAuth 2.0 documentation:
  POST /token                      form grant_type=refresh_token, client_id, client_secret,
                                   refresh_token -> {access_token, expires_in, scope,
                                   token_type}; a wrong refresh token -> 400
                                   {"error":"invalid_grant",...}; a wrong client -> 401
                                   {"error":"invalid_client",...}
  GET  /drive/v3/files             files.list: q (name/mimeType =, !=, contains; 'ID' in
                                   parents; trashed = true|false; appProperties/properties
                                   has { key='k' and value='v' }; and/or/not/parentheses),
                                   fields (e.g. "files(id,name,size)"), pageSize, pageToken,
                                   orderBy/spaces/corpora/supportsAllDrives... tolerated
  POST /drive/v3/files             files.create without content (folders)
  GET  /drive/v3/files/ID          files.get (fields honoured)
  PATCH /drive/v3/files/ID         files.update of metadata (name, trashed, appProperties)
  DELETE /drive/v3/files/ID        files.delete -> 204
  POST /upload/drive/v3/files?uploadType=resumable
                                   JSON metadata (name, parents, mimeType, appProperties);
                                   X-Upload-Content-Length/-Type honoured; answers 200 with
                                   "Location: <session URI>"
  PUT  <session URI>               Content-Range "bytes A-B/TOTAL" (or ".../*"): each chunk
                                   but the last a multiple of 256 KiB, A must be the next
                                   byte; 308 with "Range: bytes=0-N" while incomplete (no
                                   Range header when nothing was received); 200 with the
                                   file resource at the end. An empty PUT with
                                   "Content-Range: bytes */TOTAL" asks for the status.
                                   Unknown or expired session -> 404.
  Bearer auth on every /drive and /upload call; 401 when missing, unknown or expired. The
  session URI is itself the credential (as in the documentation's examples), so its PUTs may
  come without a token, but a token that is sent along must be valid.
  A chunk whose start is not the next byte, or a cut connection, is handled like this: a
  wrong start -> 400 (the body is read and dropped: "bytes_discarded"); a connection cut
  mid-body keeps the bytes read so far (see partial_keep).
  Responses honour "fields" like Drive: by default a file is {kind,id,name,mimeType}; size
  is a decimal string; md5Checksum and sha256Checksum are reported for stored content.
  Errors use Drive's JSON error shape ({"error":{"code","message","errors":[{reason}]}}).

Test controls on the same server (no auth):
  POST /_fake/faults   JSON, every count is consumed one request at a time:
      "401": n          API calls answered 401 (and the presented token revoked)
      "403_rate": n     403 userRateLimitExceeded      "429": n  429 rateLimitExceeded
      "500": n          500 backendError               "503": n  503 backendError
      "403_quota": n    403 storageQuotaExceeded
      "token_500": n    token endpoint answers 500
      "corrupt": n      the next finished upload is stored with one byte flipped
      "drop_mid_chunk": n  a chunk PUT reads part of its body ("drop_after_bytes", default
                        half), keeps what it read, then resets the connection
      "retry_after_s": s   Retry-After on the 403_rate/429/500/503 answers (0 = none)
      "only": "chunk"|"status"|"session"|"list"|"create"|"get"|"any"  which API calls the
                        HTTP-status faults hit (default "any")
      "drop_after_bytes": n
      "partial_keep": "exact"|"aligned"|"none"  what a cut chunk leaves behind: all bytes
                        read (default), rounded down to 256 KiB, or nothing
      "expire_sessions": true   forget every open upload session now (-> 404)
      "clear": true     reset all faults first
  POST /_fake/config   JSON {"expires_in": s, "refresh_token": t, "client_secret": s,
                        "revoke_access_tokens": true, "max_send_rate": bytes/s (reading
                        speed of chunk bodies, 0 = unlimited), "session_origin":
                        "http://host:port" (the origin of the resumable session URIs it
                        hands out: a hostile Location; "" = this server)}
  GET  /_fake/files    every stored file: id, name, mimeType, parents, path (folder names
                        from the root), size, md5Checksum, sha256Checksum (of the bytes on
                        disk), appProperties, trashed
  GET  /_fake/stats    counters: requests by kind, token grants/failures, 401s, folder and
                        file creates, sessions created, faults fired, bytes received and
                        discarded, and per session: total, received, bytes_received (PUT body
                        bytes stored or read before a cut, so bytes_received - total = bytes
                        that arrived twice), bytes_discarded, puts, status_queries, drops,
                        file_id, job_id
  POST /_fake/reset_stats
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FOLDER_MIME = "application/vnd.google-apps.folder"
CHUNK_UNIT = 256 * 1024
ROOT_ID = "0AROOTfolderFAKE"
DEFAULT_FILE_FIELDS = ["kind", "id", "name", "mimeType"]


class QueryError(Exception):
    pass


# ---------------------------------------------------------------- the q language (subset)

TOKEN_RE = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>!=|<=|>=|=|<|>|\(|\)|\{|\})"
                      r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))")


def tokenize(q):
    tokens = []
    pos = 0
    q = q.rstrip()
    while pos < len(q):
        m = TOKEN_RE.match(q, pos)
        if not m or m.end() == pos:
            raise QueryError("Invalid Value")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            tokens.append(("str", re.sub(r"\\(.)", r"\1", raw)))
        elif m.group("op") is not None:
            tokens.append(("op", m.group("op")))
        else:
            tokens.append(("word", m.group("word")))
    return tokens


class Parser:
    """expr := term (or term)*; term := factor (and factor)*; factor := not factor | ( expr ) | clause"""

    def __init__(self, q):
        self.t = tokenize(q)
        self.i = 0

    def peek(self, kind=None, value=None):
        if self.i >= len(self.t):
            return None
        k, v = self.t[self.i]
        if kind and k != kind:
            return None
        if value is not None and (v.lower() if k == "word" else v) != value:
            return None
        return self.t[self.i]

    def take(self, kind=None, value=None):
        tok = self.peek(kind, value)
        if tok is None:
            raise QueryError("Invalid Value")
        self.i += 1
        return tok[1]

    def parse(self):
        e = self.expr()
        if self.i != len(self.t):
            raise QueryError("Invalid Value")
        return e

    def expr(self):
        left = self.term()
        while self.peek("word", "or"):
            self.i += 1
            right = self.term()
            left = (lambda a, b: lambda f: a(f) or b(f))(left, right)
        return left

    def term(self):
        left = self.factor()
        while self.peek("word", "and"):
            self.i += 1
            right = self.factor()
            left = (lambda a, b: lambda f: a(f) and b(f))(left, right)
        return left

    def factor(self):
        if self.peek("word", "not"):
            self.i += 1
            inner = self.factor()
            return lambda f: not inner(f)
        if self.peek("op", "("):
            self.i += 1
            e = self.expr()
            self.take("op", ")")
            return e
        return self.clause()

    def clause(self):
        if self.peek("str"):  # 'ID' in parents
            value = self.take("str")
            self.take("word", "in")
            field = self.take("word")
            if field != "parents":
                raise QueryError("Invalid Value")
            return lambda f: value in f["parents"] or (value == "root" and ROOT_ID in f["parents"])
        field = self.take("word")
        if field in ("appProperties", "properties"):
            self.take("word", "has")
            self.take("op", "{")
            self.take("word", "key")
            self.take("op", "=")
            key = self.take("str")
            self.take("word", "and")
            self.take("word", "value")
            self.take("op", "=")
            value = self.take("str")
            self.take("op", "}")
            return lambda f: f.get(field, {}).get(key) == value
        if field == "trashed" or field == "starred":
            op = self.take("op")
            word = self.take("word").lower()
            if word not in ("true", "false") or op not in ("=", "!="):
                raise QueryError("Invalid Value")
            want = word == "true"
            return lambda f: (bool(f.get(field, False)) == want) == (op == "=")
        if field in ("name", "mimeType", "fullText"):
            if self.peek("word", "contains"):
                self.i += 1
                value = self.take("str")
                return lambda f: value in f.get(field, "")
            op = self.take("op")
            value = self.take("str")
            if op == "=":
                return lambda f: f.get(field) == value
            if op == "!=":
                return lambda f: f.get(field) != value
            raise QueryError("Invalid Value")
        raise QueryError("Invalid Value")


# ---------------------------------------------------------------- fields selection

def parse_fields(spec):
    """'files(id,name),nextPageToken' -> {'files': {'id': None, 'name': None}, 'nextPageToken': None}"""
    out = {}
    i = 0
    spec = spec.replace(" ", "")

    def parse_list(i, end_char):
        sel = {}
        name = ""
        while i < len(spec):
            c = spec[i]
            if c == "(":
                sub, i = parse_list(i + 1, ")")
                sel[name] = sub
                name = ""
                continue
            if c == ",":
                if name:
                    sel[name] = None
                name = ""
            elif c == end_char:
                if name:
                    sel[name] = None
                return sel, i + 1
            else:
                name += c
            i += 1
        if name:
            sel[name] = None
        return sel, i

    out, _ = parse_list(i, "\0")
    # "files/id" style paths
    fixed = {}
    for k, v in out.items():
        if "/" in k:
            head, tail = k.split("/", 1)
            fixed.setdefault(head, {})
            if isinstance(fixed[head], dict):
                fixed[head][tail] = None
        else:
            fixed[k] = v
    return fixed


def select(obj, sel):
    if sel is None or "*" in sel:
        return obj
    return {k: (select(obj[k], sub) if isinstance(obj[k], dict) and sub else obj[k])
            for k, sub in sel.items() if k in obj}


# ---------------------------------------------------------------- state

class State:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.dir = args.state_dir
        os.makedirs(os.path.join(self.dir, "files"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "sessions"), exist_ok=True)
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.refresh_token = args.refresh_token
        self.expires_in = args.expires_in
        self.tokens = {}  # access token -> expiry (monotonic)
        self.files = {ROOT_ID: {"kind": "drive#file", "id": ROOT_ID, "name": "My Drive", "mimeType": FOLDER_MIME,
                                "parents": [], "trashed": False, "createdTime": now_rfc3339(), "seq": 0}}
        self.sessions = {}
        self.seq = 0
        self.faults = {}
        self.retry_after_s = 0
        self.only = "any"
        self.drop_after_bytes = 0
        self.partial_keep = "exact"
        self.max_send_rate = 0
        self.reset_stats()

    def reset_stats(self):
        self.stats = {"requests": {}, "token_grants": 0, "token_failures": 0, "unauthorized": 0,
                      "folder_creates": 0, "file_creates": 0, "sessions_created": 0, "faults_fired": {},
                      "bytes_received": 0, "bytes_discarded": 0, "files_deleted": 0, "sessions": {}}

    def count(self, kind):
        with self.lock:
            self.stats["requests"][kind] = self.stats["requests"].get(kind, 0) + 1

    def take_fault(self, name):
        with self.lock:
            n = self.faults.get(name, 0)
            if n > 0:
                self.faults[name] = n - 1
                fired = self.stats["faults_fired"]
                fired[name] = fired.get(name, 0) + 1
                return True
            return False

    def new_id(self, n=28):
        return "1" + secrets.token_urlsafe(n)[:n].replace("-", "A").replace("_", "B")


def now_rfc3339():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def file_hashes(path):
    md5 = hashlib.md5()
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            md5.update(b)
            sha.update(b)
    return md5.hexdigest(), sha.hexdigest()


STATE = None

CONTENT_RANGE_RE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gdrive-fake/1"

    def log_message(self, fmt, *args):  # quiet; errors still go to stderr
        pass

    # ------------------------------------------------------------ helpers

    def send_json(self, code, obj, headers=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(code)
        if obj is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def drive_error(self, code, message, reason, domain="global", headers=None, status=None):
        err = {"error": {"code": code, "message": message,
                         "errors": [{"message": message, "domain": domain, "reason": reason}]}}
        if status:
            err["error"]["status"] = status
        self.send_json(code, err, headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def discard_body(self, session_stats=None):
        """Reads and drops the request body (keeps the connection usable); counted as discarded."""
        n = int(self.headers.get("Content-Length") or 0)
        got = 0
        while n > 0:
            try:
                b = self.rfile.read(min(n, 1 << 20))
            except (ConnectionError, socket.timeout, OSError):
                b = b""
            if not b:
                self.close_connection = True
                break
            n -= len(b)
            got += len(b)
        if got:
            with STATE.lock:
                STATE.stats["bytes_discarded"] += got
                if session_stats is not None:
                    session_stats["bytes_discarded"] += got

    def parsed(self):
        u = urllib.parse.urlsplit(self.path)
        return u.path, urllib.parse.parse_qs(u.query, keep_blank_values=True)

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        ok = False
        if auth.startswith("Bearer "):
            tok = auth[7:].strip()
            with STATE.lock:
                exp = STATE.tokens.get(tok)
                ok = exp is not None and exp > time.monotonic()
        if not ok:
            with STATE.lock:
                STATE.stats["unauthorized"] += 1
            self.discard_body()
            self.send_401()
        return ok

    def send_401(self):
        self.send_json(401, {"error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                       "cookie or other valid authentication credential.",
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                        "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED"}}, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})

    def inject(self, kind, authenticated=True):
        """HTTP-status faults. True when a fault answered the request."""
        with STATE.lock:
            if STATE.only not in ("any", kind):
                return False
        retry = {}
        if STATE.retry_after_s:
            retry = {"Retry-After": str(STATE.retry_after_s)}
        if authenticated and STATE.take_fault("401"):
            auth = self.headers.get("Authorization", "")
            with STATE.lock:
                STATE.tokens.pop(auth[7:].strip(), None)
                STATE.stats["unauthorized"] += 1
            self.discard_body()
            self.send_401()
            return True
        for name, code, reason, domain, msg in (
                ("403_rate", 403, "userRateLimitExceeded", "usageLimits", "User Rate Limit Exceeded"),
                ("429", 429, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded"),
                ("500", 500, "backendError", "global", "Internal Error"),
                ("503", 503, "backendError", "global", "Service Unavailable"),
                ("403_quota", 403, "storageQuotaExceeded", "global",
                 "The user's Drive storage quota has been exceeded.")):
            if STATE.take_fault(name):
                self.discard_body()
                self.drive_error(code, msg, reason, domain, retry if name != "403_quota" else None)
                return True
        return False

    # ------------------------------------------------------------ dispatch

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        path, qs = self.parsed()
        try:
            if path.startswith("/_fake/"):
                return self.control(method, path)
            if path == "/token" and method == "POST":
                return self.token()
            if path == "/upload/drive/v3/files" and method == "POST":
                return self.create_session(qs)
            if path == "/upload/drive/v3/files" and method == "PUT":
                return self.session_put(qs)
            if path == "/drive/v3/files" and method == "GET":
                return self.list_files(qs)
            if path == "/drive/v3/files" and method == "POST":
                return self.create_file(qs)
            m = re.match(r"^/drive/v3/files/([^/]+)$", path)
            if m and method in ("GET", "PATCH", "DELETE"):
                return self.one_file(method, urllib.parse.unquote(m.group(1)), qs)
            self.discard_body()
            self.drive_error(404, "Not Found", "notFound")
        except (ConnectionError, BrokenPipeError, socket.timeout):
            self.close_connection = True

    # ------------------------------------------------------------ OAuth

    def token(self):
        STATE.count("token")
        form = urllib.parse.parse_qs(self.read_body().decode("utf-8", "replace"))
        get = lambda k: (form.get(k) or [""])[0]
        if STATE.take_fault("token_500"):
            return self.send_json(500, {"error": "internal_failure"})
        if get("grant_type") != "refresh_token":
            with STATE.lock:
                STATE.stats["token_failures"] += 1
            return self.send_json(400, {"error": "unsupported_grant_type",
                                        "error_description": "Invalid grant_type: " + get("grant_type")})
        with STATE.lock:
            client_ok = get("client_id") == STATE.client_id and get("client_secret") == STATE.client_secret
            token_ok = get("refresh_token") == STATE.refresh_token and STATE.refresh_token != ""
        if not client_ok:
            with STATE.lock:
                STATE.stats["token_failures"] += 1
            return self.send_json(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if not token_ok:
            with STATE.lock:
                STATE.stats["token_failures"] += 1
            return self.send_json(400, {"error": "invalid_grant",
                                        "error_description": "Token has been expired or revoked."})
        tok = "ya29.fake-" + secrets.token_urlsafe(24)
        with STATE.lock:
            STATE.tokens[tok] = time.monotonic() + STATE.expires_in
            STATE.stats["token_grants"] += 1
            expires = STATE.expires_in
        self.send_json(200, {"access_token": tok, "expires_in": expires,
                             "scope": "https://www.googleapis.com/auth/drive.file", "token_type": "Bearer"})

    # ------------------------------------------------------------ metadata

    def file_view(self, f, sel):
        out = {k: v for k, v in f.items() if k not in ("seq", "path_on_disk")}
        if "size" in out:
            out["size"] = str(out["size"])
        if sel is None:
            return {k: out[k] for k in DEFAULT_FILE_FIELDS if k in out}
        return select(out, sel)

    def fields_of(self, qs, list_mode=False):
        spec = (qs.get("fields") or [""])[0]
        if not spec:
            return None
        sel = parse_fields(spec)
        if list_mode:
            return sel
        return sel

    def list_files(self, qs):
        STATE.count("list")
        if not self.authorized() or self.inject("list"):
            return
        q = (qs.get("q") or [""])[0]
        try:
            pred = Parser(q).parse() if q.strip() else (lambda f: True)
        except QueryError:
            return self.drive_error(400, "Invalid Value", "invalid", headers=None)
        page_size = int((qs.get("pageSize") or ["100"])[0] or 100)
        start = int((qs.get("pageToken") or ["0"])[0] or 0)
        with STATE.lock:
            matches = [f for f in sorted(STATE.files.values(), key=lambda f: f["seq"])
                       if f["id"] != ROOT_ID and pred(f)]
        page = matches[start:start + page_size]
        sel = self.fields_of(qs, True)
        file_sel = None
        if sel is not None:
            file_sel = sel.get("files") if "files" in sel else ({} if "*" not in sel else {"*": None})
        files = [self.file_view(f, file_sel) if file_sel != {} else {} for f in page]
        out = {"kind": "drive#fileList", "incompleteSearch": False, "files": files}
        if start + page_size < len(matches):
            out["nextPageToken"] = str(start + page_size)
        if sel is not None and "*" not in sel:
            out = {k: v for k, v in out.items() if k in sel}
        self.send_json(200, out)

    def check_parents(self, parents):
        with STATE.lock:
            for p in parents:
                if p != "root" and p not in STATE.files:
                    return p
        return None

    def new_file(self, meta, size=None, data_path=None):
        hashes = file_hashes(data_path) if data_path else (hashlib.md5().hexdigest(), hashlib.sha256().hexdigest())
        with STATE.lock:
            STATE.seq += 1
            parents = [ROOT_ID if p == "root" else p for p in (meta.get("parents") or [ROOT_ID])]
            f = {"kind": "drive#file", "id": STATE.new_id(), "name": meta.get("name") or "Untitled",
                 "mimeType": meta.get("mimeType") or "application/octet-stream", "parents": parents,
                 "trashed": False, "createdTime": now_rfc3339(), "seq": STATE.seq}
            f["modifiedTime"] = f["createdTime"]
            if meta.get("appProperties"):
                f["appProperties"] = {str(k): str(v) for k, v in meta["appProperties"].items()}
            if meta.get("properties"):
                f["properties"] = {str(k): str(v) for k, v in meta["properties"].items()}
            if meta.get("description"):
                f["description"] = meta["description"]
            if f["mimeType"] != FOLDER_MIME:
                f["size"] = size or 0
                if data_path is None:
                    data_path = os.path.join(STATE.dir, "files", f["id"])
                    open(data_path, "wb").close()
                else:
                    final = os.path.join(STATE.dir, "files", f["id"])
                    os.replace(data_path, final)
                    data_path = final
                f["md5Checksum"], f["sha256Checksum"] = hashes
                f["path_on_disk"] = data_path
                STATE.stats["file_creates"] += 1
            else:
                STATE.stats["folder_creates"] += 1
            STATE.files[f["id"]] = f
            return f

    def validate_meta(self, raw):
        try:
            meta = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except ValueError:
            self.drive_error(400, "Invalid JSON payload received.", "parseError")
            return None
        if not isinstance(meta, dict):
            self.drive_error(400, "Invalid JSON payload received.", "parseError")
            return None
        props = meta.get("appProperties") or {}
        for k, v in props.items():
            if len(str(k).encode()) + len(str(v).encode()) > 124:
                self.drive_error(400, "The property %s exceeds the maximum size of 124 bytes." % k,
                                 "invalidProperty")
                return None
        missing = self.check_parents(meta.get("parents") or [])
        if missing:
            self.drive_error(404, "File not found: %s." % missing, "notFound")
            return None
        return meta

    def create_file(self, qs):
        STATE.count("create")
        if not self.authorized() or self.inject("create"):
            return
        meta = self.validate_meta(self.read_body())
        if meta is None:
            return
        f = self.new_file(meta)
        self.send_json(200, self.file_view(f, self.fields_of(qs)))

    def one_file(self, method, fid, qs):
        STATE.count(method.lower())
        if not self.authorized() or self.inject("get"):
            return
        body = self.read_body()
        with STATE.lock:
            f = STATE.files.get(ROOT_ID if fid == "root" else fid)
            if f is None:
                return self.drive_error(404, "File not found: %s." % fid, "notFound",
                                        headers=None)
            if method == "DELETE":
                del STATE.files[f["id"]]
                STATE.stats["files_deleted"] += 1
                if f.get("path_on_disk"):
                    try:
                        os.unlink(f["path_on_disk"])
                    except OSError:
                        pass
                return self.send_json(204, None)
            if method == "PATCH":
                try:
                    meta = json.loads(body.decode()) if body.strip() else {}
                except ValueError:
                    return self.drive_error(400, "Invalid JSON payload received.", "parseError")
                for k in ("name", "trashed", "description"):
                    if k in meta:
                        f[k] = meta[k]
                if "appProperties" in meta:
                    props = f.setdefault("appProperties", {})
                    for k, v in meta["appProperties"].items():
                        if v is None:
                            props.pop(k, None)
                        else:
                            props[k] = str(v)
            view = self.file_view(f, self.fields_of(qs))
        self.send_json(200, view)

    # ------------------------------------------------------------ resumable uploads

    def create_session(self, qs):
        STATE.count("session")
        if (qs.get("uploadType") or [""])[0] != "resumable":
            self.discard_body()
            return self.drive_error(400, "Only uploadType=resumable is implemented by this fake", "invalid")
        if not self.authorized() or self.inject("session"):
            return
        meta = self.validate_meta(self.read_body())
        if meta is None:
            return
        total = self.headers.get("X-Upload-Content-Length")
        if "mimeType" not in meta and self.headers.get("X-Upload-Content-Type"):
            meta["mimeType"] = self.headers.get("X-Upload-Content-Type")
        uid = "ADPycd" + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
        part = os.path.join(STATE.dir, "sessions", uid)
        open(part, "wb").close()
        with STATE.lock:
            STATE.sessions[uid] = {"meta": meta, "total": int(total) if total else None, "received": 0,
                                   "part": part, "file_id": None, "fields": (qs.get("fields") or [""])[0],
                                   "lock": threading.Lock()}
            STATE.stats["sessions_created"] += 1
            STATE.stats["sessions"][uid] = {"total": int(total) if total else None, "received": 0,
                                            "bytes_received": 0, "bytes_discarded": 0, "puts": 0, "status_queries": 0, "drops": 0,
                                            "file_id": None,
                                            "job_id": (meta.get("appProperties") or {}).get("job_id")}
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]
        origin = getattr(STATE, "session_origin", "") or "http://%s" % host
        location = "%s/upload/drive/v3/files?uploadType=resumable&upload_id=%s" % (origin, uid)
        self.send_response(200)
        self.send_header("Location", location)
        self.send_header("X-GUploader-UploadID", uid)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def session_done_response(self, s):
        with STATE.lock:
            f = STATE.files.get(s["file_id"])
        if f is None:  # deleted since: the session is gone too
            return self.drive_error(404, "Not Found", "notFound")
        sel = parse_fields(s["fields"]) if s["fields"] else None
        self.send_json(200, self.file_view(f, sel))

    def range_headers(self, s):
        return {"Range": "bytes=0-%d" % (s["received"] - 1)} if s["received"] > 0 else {}

    def session_put(self, qs):
        uid = (qs.get("upload_id") or [""])[0]
        with STATE.lock:
            s = STATE.sessions.get(uid)
            st = STATE.stats["sessions"].get(uid)
        length = int(self.headers.get("Content-Length") or 0)
        cr = (self.headers.get("Content-Range") or "").strip()
        kind = "status" if length == 0 else "chunk"
        STATE.count(kind)
        if s is None:
            self.discard_body()
            return self.drive_error(404, "Not Found", "notFound")
        # The session URI is the credential; a bearer token sent along must still be valid.
        presented = "Authorization" in self.headers
        if presented and not self.authorized():
            return
        if self.inject(kind, authenticated=presented):
            return
        with s["lock"]:
            st["puts" if kind == "chunk" else "status_queries"] += 1
            if s["file_id"] is not None:
                self.discard_body(st)
                return self.session_done_response(s)
            m = CONTENT_RANGE_RE.match(cr) if cr else None
            if cr and not m:
                self.discard_body(st)
                return self.drive_error(400, "Failed to parse Content-Range header.", "badContent")
            total = None
            if m and m.group(3) != "*":
                total = int(m.group(3))
            elif not cr and length == 0:
                total = s["total"]  # a bare empty PUT: the whole file is the empty body so far
                if total is None:
                    total = s["received"]
            if total is not None:
                if s["total"] is not None and s["total"] != total:
                    self.discard_body(st)
                    return self.drive_error(400, "Invalid request. The total size %d does not match the size "
                                                 "declared earlier (%d)." % (total, s["total"]), "badContent")
                s["total"] = total
                st["total"] = total
            if length == 0 or (m and m.group(1) is None):
                # status query
                self.discard_body(st)
                if s["total"] is not None and s["received"] == s["total"]:
                    return self.finish_session(uid, s, st)
                return self.send_308(s)
            start, end = int(m.group(1)), int(m.group(2))
            if end < start or end - start + 1 != length:
                self.discard_body(st)
                return self.drive_error(400, "Content-Range does not match Content-Length.", "badContent")
            if s["total"] is not None and end + 1 > s["total"]:
                self.discard_body(st)
                return self.drive_error(400, "Content-Range exceeds the total size.", "badContent")
            if start != s["received"]:
                self.discard_body(st)
                return self.drive_error(
                    400, "Invalid request. According to the Content-Range header, the upload offset is %d "
                         "byte(s), which does not match the %d byte(s) already uploaded." % (start, s["received"]),
                    "badContent")
            last = s["total"] is not None and end + 1 == s["total"]
            if not last and length % CHUNK_UNIT != 0:
                self.discard_body(st)
                return self.drive_error(400, "Invalid request. The number of bytes uploaded is required to be "
                                             "equal or greater than 262144, except for the final request (it's "
                                             "recommended to be the exact multiple of 262144). The received "
                                             "request contained %d bytes, which does not meet this "
                                             "requirement." % length, "badContent")
            drop = STATE.take_fault("drop_mid_chunk")
            limit = length
            if drop:
                limit = STATE.drop_after_bytes or length // 2
                limit = max(1, min(limit, length - 1)) if length > 1 else 0
            got = self.receive(s, st, start, limit)
            cut = got < length
            if cut:
                if drop:
                    st["drops"] += 1
                keep = STATE.partial_keep
                kept = got
                if keep == "aligned":
                    kept = got - got % CHUNK_UNIT
                elif keep == "none":
                    kept = 0
                s["received"] = start + kept
                st["received"] = s["received"]
                os.truncate(s["part"], s["received"])
                self.abort_connection()
                return
            s["received"] = end + 1
            st["received"] = s["received"]
            if last:
                return self.finish_session(uid, s, st)
            return self.send_308(s)

    def receive(self, s, st, offset, limit):
        """Reads up to `limit` body bytes into the session file at `offset`; returns the count."""
        got = 0
        rate = STATE.max_send_rate
        t0 = time.monotonic()
        with open(s["part"], "r+b") as out:
            out.seek(offset)
            while got < limit:
                want = min(limit - got, 256 * 1024)
                try:
                    b = self.rfile.read1(want) if hasattr(self.rfile, "read1") else self.rfile.read(want)
                except (ConnectionError, socket.timeout, OSError):
                    b = b""
                if not b:
                    break
                out.write(b)
                got += len(b)
                with STATE.lock:
                    st["bytes_received"] += len(b)
                    STATE.stats["bytes_received"] += len(b)
                if rate:
                    ahead = got / rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            out.flush()
        return got

    def abort_connection(self):
        """Closes the connection at once with a TCP reset, answering nothing."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
        # Make finish()/shutdown_request harmless on the closed socket.
        self.wfile = _NullWriter()

    def send_308(self, s):
        self.send_response(308, "Resume Incomplete")
        for k, v in self.range_headers(s).items():
            self.send_header(k, v)
        self.send_header("X-GUploader-UploadID", "x")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def finish_session(self, uid, s, st):
        if STATE.take_fault("corrupt") and s["received"] > 0:  # storage damaged the bytes
            with open(s["part"], "r+b") as f:
                f.seek(s["received"] // 2)
                b = f.read(1)
                f.seek(s["received"] // 2)
                f.write(bytes([b[0] ^ 0xFF]))
        f = self.new_file(s["meta"], size=s["received"], data_path=s["part"])
        s["file_id"] = f["id"]
        st["file_id"] = f["id"]
        return self.session_done_response(s)

    # ------------------------------------------------------------ controls

    def control(self, method, path):
        body = self.read_body()
        if path == "/_fake/faults" and method == "POST":
            try:
                cfg = json.loads(body.decode() or "{}")
            except ValueError:
                return self.send_json(400, {"error": "bad json"})
            with STATE.lock:
                if cfg.get("clear"):
                    STATE.faults = {}
                    STATE.retry_after_s = 0
                    STATE.only = "any"
                    STATE.drop_after_bytes = 0
                    STATE.partial_keep = "exact"
                for k in ("401", "403_rate", "429", "500", "503", "403_quota", "token_500", "drop_mid_chunk",
                          "corrupt"):
                    if k in cfg:
                        STATE.faults[k] = int(cfg[k])
                if "retry_after_s" in cfg:
                    STATE.retry_after_s = int(cfg["retry_after_s"])
                if "only" in cfg:
                    STATE.only = str(cfg["only"])
                if "drop_after_bytes" in cfg:
                    STATE.drop_after_bytes = int(cfg["drop_after_bytes"])
                if "partial_keep" in cfg:
                    STATE.partial_keep = str(cfg["partial_keep"])
                if cfg.get("expire_sessions"):
                    STATE.sessions.clear()
                out = dict(STATE.faults, retry_after_s=STATE.retry_after_s, only=STATE.only,
                           partial_keep=STATE.partial_keep)
            return self.send_json(200, out)
        if path == "/_fake/config" and method == "POST":
            try:
                cfg = json.loads(body.decode() or "{}")
            except ValueError:
                return self.send_json(400, {"error": "bad json"})
            with STATE.lock:
                if "expires_in" in cfg:
                    STATE.expires_in = int(cfg["expires_in"])
                if "refresh_token" in cfg:
                    STATE.refresh_token = str(cfg["refresh_token"])
                if "client_secret" in cfg:
                    STATE.client_secret = str(cfg["client_secret"])
                if cfg.get("revoke_access_tokens"):
                    STATE.tokens.clear()
                if "max_send_rate" in cfg:
                    STATE.max_send_rate = int(cfg["max_send_rate"])
                if "session_origin" in cfg:
                    STATE.session_origin = str(cfg["session_origin"])
            return self.send_json(200, {"ok": True})
        if path == "/_fake/files" and method == "GET":
            with STATE.lock:
                out = []
                for f in sorted(STATE.files.values(), key=lambda f: f["seq"]):
                    if f["id"] == ROOT_ID:
                        continue
                    names = []
                    p = f["parents"][0] if f["parents"] else None
                    while p and p != ROOT_ID and p in STATE.files and len(names) < 64:
                        names.append(STATE.files[p]["name"])
                        pp = STATE.files[p]["parents"]
                        p = pp[0] if pp else None
                    item = {k: v for k, v in f.items() if k not in ("seq", "path_on_disk", "kind")}
                    item["path"] = "/".join(reversed(names))
                    out.append(item)
            for item in out:
                f = STATE.files.get(item["id"])
                if f and f.get("path_on_disk"):  # hash the bytes actually on disk
                    item["disk_md5"], item["disk_sha256"] = file_hashes(f["path_on_disk"])
            return self.send_json(200, {"files": out})
        if path == "/_fake/stats" and method == "GET":
            with STATE.lock:
                out = json.loads(json.dumps(STATE.stats))
                out["open_sessions"] = len(STATE.sessions)
                out["faults_pending"] = dict(STATE.faults)
            return self.send_json(200, out)
        if path == "/_fake/reset_stats" and method == "POST":
            with STATE.lock:
                STATE.reset_stats()
            return self.send_json(200, {"ok": True})
        self.send_json(404, {"error": "unknown control " + path})


class _NullWriter:
    closed = True

    def write(self, b):
        return len(b)

    def flush(self):
        pass

    def close(self):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def main():
    global STATE
    ap = argparse.ArgumentParser(description="Google Drive API v3 fake for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--client-id", default="test-client-id")
    ap.add_argument("--client-secret", default="test-client-secret")
    ap.add_argument("--refresh-token", default="test-refresh-token")
    ap.add_argument("--expires-in", type=int, default=3599)
    args = ap.parse_args()
    STATE = State(args)
    srv = Server(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    print("LISTENING %d" % port, flush=True)
    print("PORT=%d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
