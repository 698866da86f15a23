#!/usr/bin/env python3
"""A SigV4-verifying reverse proxy for S3 tests (Python 3 standard library only).

s3rver accepts any signature. This proxy sits in front of it and does what real S3 does
with a request's authentication, written independently from the C++ signer from the AWS
"Signature Version 4" documentation:
  * recompute the canonical request (method, URI-encoded path, sorted encoded query,
    the signed headers, the payload hash from x-amz-content-sha256), the string to sign
    and the HMAC chain from the known secret; a different signature -> 403
    SignatureDoesNotMatch; an unknown access key -> 403 InvalidAccessKeyId;
  * check that x-amz-content-sha256 equals the body's sha256 (unless UNSIGNED-PAYLOAD)
    -> 400 XAmzContentSHA256Mismatch; that host and x-amz-date are signed; that the date
    is within 15 minutes and matches the credential scope -> 403 RequestTimeTooSkewed;
then forwards the request to the upstream and relays its answer.

  sigv4_proxy.py --listen 0 --upstream 127.0.0.1:PORT --key ACCESS:SECRET [--region R]
      prints "PORT=<n>" when listening; appends one line per request to --log-file.
  sigv4_proxy.py --self-test
      checks this verifier against AWS's published example signatures; exit 0 = all match.
"""
import argparse
import datetime
import hashlib
import hmac
import http.client
import http.server
import re
import sys
import threading
import urllib.parse

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def uri_encode(text, keep_slash):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(text, safe=safe)


def canonical_request(method, raw_path, headers, signed_headers, payload_hash):
    """headers: list of (name, value) as received; signed_headers: list of lower names."""
    path, _, query = raw_path.partition("?")
    canonical_uri = uri_encode(urllib.parse.unquote(path or "/"), True)
    params = []
    if query:
        for item in query.split("&"):
            if not item:
                continue
            k, _, v = item.partition("=")
            params.append((uri_encode(urllib.parse.unquote(k), False), uri_encode(urllib.parse.unquote(v), False)))
    params.sort()
    canonical_query = "&".join("%s=%s" % kv for kv in params)
    values = {}
    for name, value in headers:
        name = name.lower().strip()
        value = re.sub(" +", " ", value.strip())
        values.setdefault(name, []).append(value)
    lines = []
    for name in signed_headers:
        if name not in values:
            raise KeyError(name)
        lines.append("%s:%s\n" % (name, ",".join(values[name])))
    return "\n".join([method, canonical_uri, canonical_query, "".join(lines), ";".join(signed_headers), payload_hash])


def signature(secret, date, region, service, amz_date, creq):
    scope = "%s/%s/%s/aws4_request" % (date, region, service)
    # Header values arrive decoded as latin-1 (http.server): encoding back gives the raw bytes.
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode("latin-1")).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request\s*,\s*"
    r"SignedHeaders=([a-z0-9;_-]+)\s*,\s*Signature=([0-9a-f]{64})\s*$")


def verify(method, raw_path, headers, body, keys, now=None):
    """Returns None when the request is authentic, else (status, code, message)."""
    hmap = {}
    for n, v in headers:
        hmap.setdefault(n.lower(), v.strip())
    auth = hmap.get("authorization")
    if not auth:
        return (403, "AccessDenied", "no Authorization header")
    m = AUTH_RE.match(auth)
    if not m:
        return (400, "AuthorizationHeaderMalformed", "cannot parse the Authorization header")
    access, date, region, service, signed, sig = m.groups()
    if access not in keys:
        return (403, "InvalidAccessKeyId", "unknown access key")
    signed_headers = signed.split(";")
    if signed_headers != sorted(signed_headers):
        return (403, "SignatureDoesNotMatch", "SignedHeaders not sorted")
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in signed_headers:
            return (403, "AccessDenied", "%s is not signed" % required)
    amz_date = hmap.get("x-amz-date", "")
    if not amz_date.startswith(date):
        return (403, "SignatureDoesNotMatch", "credential date differs from x-amz-date")
    if now is not None:
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return (403, "AccessDenied", "bad x-amz-date")
        if abs((now - t).total_seconds()) > 900:
            return (403, "RequestTimeTooSkewed", "x-amz-date is more than 15 minutes away")
    payload_hash = hmap.get("x-amz-content-sha256", "")
    if body is not None and payload_hash != "UNSIGNED-PAYLOAD" and payload_hash != hashlib.sha256(body).hexdigest():
        return (400, "XAmzContentSHA256Mismatch", "the body does not hash to x-amz-content-sha256")
    try:
        creq = canonical_request(method, raw_path, headers, signed_headers, payload_hash)
    except KeyError as e:
        return (403, "SignatureDoesNotMatch", "signed header missing: %s" % e)
    expected = signature(keys[access], date, region, service, amz_date, creq)
    if not hmac.compare_digest(expected, sig):
        return (403, "SignatureDoesNotMatch", "The request signature we calculated does not match; "
                "canonical request: " + repr(creq))
    return None


def self_test():
    """AWS's published examples (S3 API reference, "Signature Calculations for the
    Authorization Header: Transferring Payload in a Single Chunk")."""
    keys = {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
    cred = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
    cases = [
        ("GET object", "GET", "/test.txt",
         [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
          ("x-amz-content-sha256", EMPTY_SHA), ("x-amz-date", "20130524T000000Z")],
         b"", "host;range;x-amz-content-sha256;x-amz-date",
         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
        ("PUT object", "PUT", "/test%24file.text",
         [("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
          ("x-amz-date", "20130524T000000Z"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
          ("x-amz-content-sha256", hashlib.sha256(b"Welcome to Amazon S3.").hexdigest())],
         b"Welcome to Amazon S3.", "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
         "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
        ("GET lifecycle", "GET", "/?lifecycle",
         [("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"),
          ("x-amz-content-sha256", EMPTY_SHA)],
         b"", "host;x-amz-content-sha256;x-amz-date",
         "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ("GET bucket (list objects)", "GET", "/?max-keys=2&prefix=J",
         [("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"),
          ("x-amz-content-sha256", EMPTY_SHA)],
         b"", "host;x-amz-content-sha256;x-amz-date",
         "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ]
    failures = 0
    for name, method, path, headers, body, signed, sig in cases:
        good = headers + [("Authorization", cred + "SignedHeaders=%s,Signature=%s" % (signed, sig))]
        result = verify(method, path, good, body, keys)
        print("%-28s published signature accepted: %s" % (name, "yes" if result is None else result))
        failures += result is not None
        bad_sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        bad = headers + [("Authorization", cred + "SignedHeaders=%s,Signature=%s" % (signed, bad_sig))]
        result = verify(method, path, bad, body, keys)
        ok = result is not None and result[1] == "SignatureDoesNotMatch"
        print("%-28s altered signature refused: %s" % (name, "yes" if ok else result))
        failures += not ok
        wrong_key = {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ"}
        result = verify(method, path, good, body, wrong_key)
        ok = result is not None and result[1] == "SignatureDoesNotMatch"
        print("%-28s wrong secret refused: %s" % (name, "yes" if ok else result))
        failures += not ok
    print("self-test: %d failure(s)" % failures)
    return 0 if failures == 0 else 1


HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def make_handler(upstream, keys, log_file, lock):
    host, _, port = upstream.rpartition(":")
    uploads = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def _record(self, line):
            if log_file:
                with lock, open(log_file, "a") as f:
                    f.write(line + "\n")

        def _answer(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:  # the client went away mid-body (a cut link): no answer
                self._record("TRUNCATED %s %s" % (self.command, self.path))
                self.close_connection = True
                return
            headers = list(self.headers.items())
            result = verify(self.command, self.path, headers, body, keys,
                            now=datetime.datetime.now(datetime.timezone.utc))
            if result is not None:
                status, code, message = result
                self._record("REFUSED %s %s %s %s" % (self.command, self.path, code, message))
                xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                       "<Message>%s</Message></Error>" % (code, message)).encode()
                self._answer(status, xml, [("Content-Type", "application/xml")])
                return
            self._record("OK %s %s" % (self.command, self.path))
            # Multipart upload ids, as S3 keeps them (s3rver accepts parts for any id and
            # has no AbortMultipartUpload): unknown id -> 404 NoSuchUpload; DELETE aborts.
            query = urllib.parse.parse_qs(self.path.partition("?")[2], keep_blank_values=True)
            upload_id = query.get("uploadId", [None])[0]
            if upload_id is not None:
                with lock:
                    known = upload_id in uploads
                    if known and self.command == "DELETE":
                        uploads.discard(upload_id)
                if not known:
                    self._record("NOSUCHUPLOAD %s %s" % (self.command, self.path))
                    xml = (b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchUpload</Code>"
                           b"<Message>The specified upload does not exist.</Message></Error>")
                    self._answer(404, xml, [("Content-Type", "application/xml")])
                    return
                if self.command == "DELETE":
                    self._answer(204, b"")
                    return
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            try:
                fwd = {k: v for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
                conn.request(self.command, self.path, body=body if (body or self.command in ("PUT", "POST")) else None,
                             headers=fwd)
                resp = conn.getresponse()
                data = resp.read()
                if self.command == "POST" and resp.status == 200:
                    if "uploads" in query:
                        m = re.search(rb"<UploadId>([^<]+)</UploadId>", data)
                        if m:
                            with lock:
                                uploads.add(m.group(1).decode())
                    elif upload_id is not None and b"<Error>" not in data:
                        with lock:
                            uploads.discard(upload_id)
                out = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
                self.send_response(resp.status)
                for k, v in out:
                    self.send_header(k, v)
                # A HEAD answer tells the object's length, not this body's.
                if self.command == "HEAD":
                    self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
                else:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except OSError as e:
                self._answer(502, ("upstream: %s" % e).encode())
            finally:
                conn.close()

        def __getattr__(self, name):
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--upstream")
    ap.add_argument("--key", action="append", default=[], help="ACCESS:SECRET (repeatable)")
    ap.add_argument("--log-file")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    keys = dict(k.split(":", 1) for k in args.key)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", args.listen), make_handler(args.upstream, keys, args.log_file, threading.Lock()))
    server.daemon_threads = True
    print("PORT=%d" % server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
