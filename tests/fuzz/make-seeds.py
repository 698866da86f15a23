#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from the payloads the
tests and docs use: request payloads from tests/unit/protocol, the example config, EXIF built
as tests/unit/media/exif_test.cpp builds it, S3/Drive/WebDAV answers as the test peers give
them. Run it again after changing a harness's input layout; the files are committed."""
import json, os, re, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))

def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# --- request: byte 0 picks the topic (2*verb index: the rig's, +1: the group's), byte 1 flags.
verbs = ["capture", "cameras", "status", "config/get", "config/set", "preview", "scan"]
protocol_test = open(os.path.join(repo, "tests/unit/protocol/protocol_test.cpp")).read()
payloads = sorted(set(re.findall(r'R"\((\{.*?\})\)"', protocol_test)))
extra = {
    "capture": ['{"count":3,"interval_ms":500,"batch":"shoot-1","transaction":"t1"}',
                '{"camera":"SIM0001","capture_at_ms":1764000000000}', ""],
    "cameras": ["", '{"transaction":7}'],
    "status": ["", "{}"],
    "config/get": ['{"camera":"SIM0001","name":"iso"}', "{}"],
    "config/set": ['{"name":"iso","value":"400"}', '{"camera":"SIM0001","name":"f-number","value":5.6}'],
    "preview": ['{"camera":"SIM0001"}', ""],
    "scan": ['{"action":"start","positions":24,"settle_ms":200,"turntable":true,"degrees":15}',
             '{"action":"status"}', '{"action":"abort","transaction":"x"}'],
}
n = 0
for i, verb in enumerate(verbs):
    for p in extra[verb]:
        put("request", f"{n:03d}-{verb.replace('/', '_')}", bytes([2 * i, 0]) + p.encode()); n += 1
for p in payloads:
    put("request", f"{n:03d}-capture", bytes([0, 0]) + p.encode()); n += 1
    put("request", f"{n:03d}-scan-group", bytes([13, 0]) + p.encode()); n += 1
put("request", "scan-ready-json", bytes([14, 0]) + b'{"scan_id":"scan-1","step":3}')
put("request", "scan-ready-text", bytes([14, 0]) + b"ready")
put("request", "retained-capture", bytes([0, 1]) + b'{"count":1}')
put("request", "free-topic", bytes([200, 0]) + b"capture/now\n{}")

# --- upload_job
job = {"job_id": "rig1-20261125-041015-0001", "capture_id": "c-0001", "rig_id": "rig1",
       "batch": "shoot-1", "path": "/var/spool/photorig/shoot-1/IMG_0001.JPG",
       "remote_name": "IMG_0001.JPG", "mime": "image/jpeg",
       "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "size": 1234567, "captured_at_ms": 1764043815000}
put("upload_job", "job", json.dumps(job))
put("upload_job", "job-outside-spool", json.dumps(dict(job, path="/etc/passwd")))
put("upload_job", "job-dotdot", json.dumps(dict(job, path="/var/spool/photorig/../x", batch="..")))
put("upload_job", "job-minimal", json.dumps({k: job[k] for k in ("job_id", "path", "size", "sha256")}))

# --- records: byte 0 picks the parser (0 sidecar, 1 scan record, 2 upload event), rest: JSON
sidecar = {"capture_id": "c-0001", "rig_id": "rig1", "batch": "shoot-1", "seq": 1,
           "camera": {"model": "PTP/IP Camera", "serial": "SIM0001", "port": "ptpip:127.0.0.1"},
           "captured_at": "2026-11-25T04:10:15.123Z",
           "file": {"name": "SIM0001_0001.JPG", "path": job["path"], "size": 1234567,
                    "sha256": job["sha256"], "mime": "image/jpeg"},
           "exif": {"iso": 200, "exposure_time": 0.008, "exposure_time_text": "1/125",
                    "f_number": 5.6, "make": "photorig", "width": 640, "height": 480},
           "timings_ms": {"trigger": 12, "download": 80}, "job_id": job["job_id"]}
put("records", "sidecar", b"\x00" + json.dumps(sidecar).encode())
# nlohmann's get<int>() of these was undefined behaviour (float beyond int) or a wrapped size.
put("records", "sidecar-huge-float", b"\x00" + json.dumps(dict(sidecar, seq=1e300)).encode())
put("records", "sidecar-negative-size", b"\x00" + json.dumps(
    dict(sidecar, file=dict(sidecar["file"], size=-1))).encode())
scan = {"scan_id": "scan-1", "batch": "shoot-1", "state": "running",
        "request": {"action": "start", "positions": 24, "camera": "all", "count": 1,
                    "settle_ms": 200, "interval_ms": 0, "turntable": True,
                    "move_timeout_ms": 30000, "degrees": 15.0, "batch": "shoot-1"},
        "steps_done": 1, "captures": [sidecar], "started_at_ms": 1764043815000,
        "finished_at_ms": 0, "busy_ms": 900, "error_code": "", "error_message": ""}
put("records", "scan", b"\x01" + json.dumps(scan).encode())
put("records", "scan-huge-positions", b"\x01" + json.dumps(
    dict(scan, request=dict(scan["request"], positions=1e19))).encode())
event = {"type": "failed", "job_id": job["job_id"], "capture_id": "c-0001", "batch": "shoot-1",
         "name": "IMG_0001.JPG", "ts": "2026-11-25T04:10:16.000Z", "attempt": 2,
         "error": {"code": "target_unavailable", "message": "HTTP 503"}, "retrying": True,
         "next_attempt_in_ms": 5000}
put("records", "event-failed", b"\x02" + json.dumps(event).encode())
put("records", "event-done", b"\x02" + json.dumps(
    {"type": "done", "job_id": "j1", "bytes_done": 10, "bytes_total": 10, "bytes_sent": 10,
     "rate_bytes_per_s": 1000.5, "remote": "s3://b/k"}).encode())
put("records", "event-huge-attempt", b"\x02" + json.dumps(dict(event, attempt=-1e300)).encode())

# --- config: YAML, NUL, NAME=value lines
example = open(os.path.join(repo, "config/photorig.example.yaml")).read()
put("config", "example", example + "\0")
put("config", "example-env", example + "\0PHOTORIG_MQTT_PORT=1884\nUPLOAD_TARGET=s3\nPHOTORIG_RIG_ID=rig2\n")
put("config", "minimal", "rig_id: rig1\nspool:\n  dir: /tmp/spool\n\0")
put("config", "cameras-list", "rig_id: rig1\ncameras:\n  - port: auto\n    serial: A1\n  - port: ptpip:10.0.0.2\n\0PHOTORIG_CAMERA_CAPTURE_TIMEOUT_MS=5000\n")
put("config", "groups", "rig_id: rig1\ngroups: [studio, left]\nupload:\n  target: webdav\n  webdav:\n    url: https://dav.example/photos\n\0")

# --- exif: JPEG/TIFF as tests/unit/media/exif_test.cpp builds them
def tiff(little, ifd0, exif):
    e = "<" if little else ">"
    def u16(v): return struct.pack(e + "H", v)
    def u32(v): return struct.pack(e + "I", v)
    def tag_ascii(t, s): b = s.encode() + b"\0"; return (t, 2, len(b), b)
    def tag_short(t, v): return (t, 3, 1, u16(v))
    def tag_long(t, v): return (t, 4, 1, u32(v))
    def tag_rat(t, a, b): return (t, 5, 1, u32(a) + u32(b))
    mk = {"a": tag_ascii, "s": tag_short, "l": tag_long, "r": tag_rat}
    ifd0 = [mk[k](*a) for k, *a in ifd0]
    exif = [mk[k](*a) for k, *a in exif]
    def data_size(tags): return sum((len(v) + 1) & ~1 for *_, v in tags if len(v) > 4)
    ifd0.append((0x8769, 4, 1, u32(0)))
    ifd0_size = 2 + 12 * len(ifd0) + 4 + data_size(ifd0)
    ifd0[-1] = (0x8769, 4, 1, u32(8 + ifd0_size))
    out = bytearray(b"II*\0" if little else b"MM\0*") + u32(8)
    def write_ifd(tags):
        tags = sorted(tags)
        at = len(out)
        data_at = at + 2 + 12 * len(tags) + 4
        data = bytearray()
        out.extend(u16(len(tags)))
        for t, ty, cnt, v in tags:
            out.extend(u16(t) + u16(ty) + u32(cnt))
            if len(v) <= 4:
                out.extend(v.ljust(4, b"\0"))
            else:
                out.extend(u32(data_at + len(data))); data.extend(v)
                if len(data) % 2: data.append(0)
        out.extend(u32(0)); out.extend(data)
    write_ifd(ifd0); write_ifd(exif)
    return bytes(out)

def jpeg(t, w, h):
    def seg(m, p): return b"\xff" + bytes([m]) + struct.pack(">H", len(p) + 2) + p
    j = b"\xff\xd8" + seg(0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    if t is not None: j += seg(0xE1, b"Exif\0\0" + t)
    j += seg(0xDB, b"\0" + b"\x01" * 64)
    j += seg(0xC0, bytes([8, h >> 8, h & 255, w >> 8, w & 255, 1, 1, 0x11, 0]))
    j += seg(0xC4, b"\0" * 17) + seg(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x55" * 200 + b"\xff\xd9"
    return j

camera = ([("a", 0x010f, "Canon"), ("a", 0x0110, "Canon EOS R6"), ("s", 0x0112, 6)],
          [("r", 0x829a, 1, 125), ("r", 0x829d, 28, 10), ("s", 0x8827, 400),
           ("a", 0x9003, "2026:11:25 04:10:15"), ("r", 0x920a, 50, 1), ("l", 0xa002, 6000),
           ("l", 0xa003, 4000), ("a", 0xa431, "012345678901")])
for little in (True, False):
    t = tiff(little, *camera)
    put("exif", "jpeg-" + ("ii" if little else "mm"), jpeg(t, 640, 480))
    put("exif", "tiff-raw-" + ("ii" if little else "mm"), t)
put("exif", "jpeg-no-exif", jpeg(None, 32, 16))
put("exif", "jpeg-cut", jpeg(tiff(True, *camera), 640, 480)[:300])

# --- s3: status byte index, content-length, etag, x-amz-meta-sha256 lines, body
S3 = [200, 204, 206, 301, 307, 400, 403, 404, 409, 412, 500, 501, 503, 507, 401, 408, 429, 0, 999, 100]
def s3(name, status, body, cl="1234", etag='"5d41402abc4b2a76b9719d911017c592"', sha="ab" * 32):
    put("s3", name, bytes([S3.index(status)]) + f"{cl}\n{etag}\n{sha}\n".encode() + body.encode())
s3("head", 200, "")
s3("error-signature", 403, '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><RequestId>1</RequestId></Error>')
s3("error-nosuchupload", 404, "<Error><Code>NoSuchUpload</Code></Error>")
s3("error-slowdown", 503, "<Error><Code>SlowDown</Code></Error>")
s3("create-multipart", 200, '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>rig1/b/IMG.JPG</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>')
s3("list-parts", 200, '<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag><Size>8388608</Size></Part><Part><PartNumber>2</PartNumber><ETag>"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"</ETag></Part></ListPartsResult>')
s3("complete-error-in-200", 200, "<Error><Code>InternalError</Code></Error>")
s3("multipart-etag", 200, "", etag='W/"d41d8cd98f00b204e9800998ecf8427e-3"')
s3("resume-state", 200, json.dumps({"v": 1, "kind": "s3-multipart", "key": "rig1/b/IMG.JPG", "upload_id": "u1", "size": 20 << 20, "sha256": "ab", "part_size": 8 << 20, "parts": [[1, "7778aef83f66abc1fa1e8477f296d394"]]}))

# --- drive: status byte index, Range, Retry-After, Location lines, body
DR = [200, 201, 308, 404, 410, 401, 403, 429, 500, 503, 400, 302, 0, 999, 204, 408, 502, 307]
def drive(name, status, body, rng="", ra="", loc=""):
    put("drive", name, bytes([DR.index(status)]) + f"{rng}\n{ra}\n{loc}\n".encode() + body.encode())
drive("file", 200, json.dumps({"id": "1x", "name": "IMG_0001.JPG", "size": "1234", "md5Checksum": "5D41402ABC4B2A76B9719D911017C592", "sha256Checksum": "ab" * 32}))
drive("session-308", 308, "", rng="bytes=0-262143")
drive("session-308-none", 308, "")
drive("rate-limited", 403, json.dumps({"error": {"code": 403, "message": "User Rate Limit Exceeded", "errors": [{"reason": "userRateLimitExceeded"}]}}), ra="17")
drive("retry-date", 503, "", ra="Wed, 21 Oct 2026 07:28:00 GMT")
drive("quota", 403, json.dumps({"error": {"code": 403, "message": "The user's Drive storage quota has been exceeded.", "errors": [{"reason": "storageQuotaExceeded"}]}}))
drive("oauth-invalid-grant", 400, json.dumps({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}))
drive("start-session", 200, "{}", loc="https://www.googleapis.com/upload/drive/v3/files?uploadType=resumable&upload_id=xa298sd_sdlkj2")
drive("start-session-elsewhere", 200, "{}", loc="https://evil.example/upload?upload_id=1")
drive("files-list", 200, json.dumps({"files": [{"id": "f1", "name": "rig1", "size": 5}, {"id": "f2"}]}))
drive("expired", 410, "")
drive("resume-state", 200, json.dumps({"v": 1, "session": "https://www.googleapis.com/upload/drive/v3/files?upload_id=x", "size": 1234, "sha256": "ab"}))

# --- webdav: the PROPFIND body
put("webdav", "file", '<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:response><d:href>/dav/rig1/IMG.JPG</d:href><d:propstat><d:prop><d:resourcetype/><d:getcontentlength>1234</d:getcontentlength><oc:checksums><oc:checksum>SHA1:aa MD5:bb SHA256:' + "ab" * 32 + '</oc:checksum></oc:checksums></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>')
put("webdav", "collection", '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/dav/rig1/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop></D:propstat></D:response></D:multistatus>')
put("webdav", "apache", '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:" xmlns:ns0="DAV:"><D:response xmlns:lp1="DAV:"><D:href>/x.jpg</D:href><D:propstat><D:prop><lp1:resourcetype/><lp1:getcontentlength>99</lp1:getcontentlength></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>')

# --- journal: per column (19) a type byte (0 int, 1 real, 2 text, 3 blob, 4 NULL) and a line
def row(values):
    out = b""
    for t, v in values:
        out += bytes([t]) + v.encode() + b"\n"
    return out
cols = [(2, job["job_id"]), (2, job["capture_id"]), (2, "rig1"), (2, "shoot-1"), (2, job["path"]),
        (2, "IMG_0001.JPG"), (2, "image/jpeg"), (2, job["sha256"]), (0, "1234567"), (0, "1764043815000"),
        (2, "queued"), (0, "1"), (2, ""), (0, "0"), (2, ""), (2, ""), (0, "1764043815000"), (0, "1764043815000"), (0, "0")]
put("journal", "queued", row(cols))
s3resume = json.dumps({"v": 1, "kind": "s3-multipart", "key": "k", "upload_id": "u", "size": 1234567, "sha256": job["sha256"], "part_size": 8 << 20, "parts": [[1, "e"]]})
put("journal", "uploading-s3-resume", row(cols[:10] + [(2, "uploading"), (0, "3"), (2, "HTTP 503"), (0, "0"), (2, ""), (2, s3resume)] + cols[16:]))
put("journal", "blob-and-real", row([(3, "j\xff1")] + cols[1:8] + [(1, "1e300"), (1, "-1.5")] + [(3, "queued")] + cols[11:]))
put("journal", "done", row(cols[:10] + [(2, "done"), (0, "1"), (2, ""), (0, "0"), (2, "https://dav/x"), (2, "")] + cols[16:]))
print("seeds written under", os.path.join(here, "corpus"))
