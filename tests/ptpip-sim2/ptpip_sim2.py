#!/usr/bin/env python3
"""ptpip-sim2: a second, independently written PTP/IP camera simulator.

Python 3.11 standard library only (threads + blocking sockets). It answers the PTP
operations libgphoto2's generic ptp2 driver uses over the ptpip port, on one TCP port that
takes both the command and the event connection. See README.md next to this file for the
flags and for how it differs from tests/ptpip-sim.
"""

import json
import os
import signal
import socket
import struct
import sys
import threading
import time

# --- PTP / PTP/IP constants (ISO 15740, CIPA DC-X005) ---------------------------------

PKT_INIT_CMD_REQ = 1
PKT_INIT_CMD_ACK = 2
PKT_INIT_EVT_REQ = 3
PKT_INIT_EVT_ACK = 4
PKT_INIT_FAIL = 5
PKT_OP_REQ = 6
PKT_OP_RESP = 7
PKT_EVENT = 8
PKT_START_DATA = 9
PKT_DATA = 10
PKT_CANCEL = 11
PKT_END_DATA = 12
PKT_PROBE_REQ = 13
PKT_PROBE_RESP = 14

OC_GetDeviceInfo = 0x1001
OC_OpenSession = 0x1002
OC_CloseSession = 0x1003
OC_GetStorageIDs = 0x1004
OC_GetStorageInfo = 0x1005
OC_GetNumObjects = 0x1006
OC_GetObjectHandles = 0x1007
OC_GetObjectInfo = 0x1008
OC_GetObject = 0x1009
OC_GetThumb = 0x100A
OC_DeleteObject = 0x100B
OC_InitiateCapture = 0x100E
OC_GetDevicePropDesc = 0x1014
OC_GetDevicePropValue = 0x1015
OC_SetDevicePropValue = 0x1016
OC_GetPartialObject = 0x101B

RC_OK = 0x2001
RC_GeneralError = 0x2002
RC_SessionNotOpen = 0x2003
RC_OperationNotSupported = 0x2005
RC_ParameterNotSupported = 0x2006
RC_InvalidStorageID = 0x2008
RC_InvalidObjectHandle = 0x2009
RC_DevicePropNotSupported = 0x200A
RC_InvalidObjectFormatCode = 0x200B
RC_StoreFull = 0x200C
RC_AccessDenied = 0x200F
RC_DeviceBusy = 0x2019
RC_InvalidParentObject = 0x201A
RC_InvalidDevicePropValue = 0x201C
RC_InvalidParameter = 0x201D
RC_SessionAlreadyOpen = 0x201E

EC_ObjectAdded = 0x4002
EC_StoreFull = 0x400A
EC_CaptureComplete = 0x400D

FMT_UNDEFINED = 0x3000
FMT_ASSOCIATION = 0x3001
FMT_EXIF_JPEG = 0x3801

DT_UINT8 = 0x0002
DT_UINT16 = 0x0004
DT_UINT32 = 0x0006

STORAGE_ID = 0x00020001
ALL = 0xFFFFFFFF

USAGE = """usage: ptpip_sim2.py [flags]   (--flag=value works too; the last value of a flag wins)
  --port N              PTP/IP port, command and event connection (default 15740; 0 = free)
  --bind ADDR           listening address (default 127.0.0.1)
  --control-port N      plain-text control port (default off; 0 = free)
  --serial S            SerialNumber (default S2-000001)
  --model S             Model (default "Sim2 Camera")
  --manufacturer S      Manufacturer (default "Sim2 Optics"; no real vendor names)
  --setup-delay-ms N    sleep before InitCommandAck, OpenSession and a session's first
                        GetDeviceInfo (default 25)
  --capture-ms N        InitiateCapture answer -> ObjectAdded (default 60)
  --capture-delay-ms N  same as --capture-ms (tests/ptpip-sim's name)
  --event-order O       added-first (default) | complete-first
  --event-gap-ms N      time between ObjectAdded and CaptureComplete (default 8)
  --event-log FILE      append one JSON line per InitiateCapture's arrival
                        ({"t_us":...,"event":"initiate_capture"}, as tests/ptpip-sim)
  --no-capture-complete send ObjectAdded only
  --partial             advertise and serve GetPartialObject
  --no-partial          do not (default): libgphoto2 then fetches with GetObject
  --download-mbps X     throttle data phases to X megabit/s (default 400; 0 = unlimited)
  --packet-size N       payload bytes per Data packet (default 32768)
  --image-size N        exact size of every captured JPEG (default 300000)
  --image-width W --image-height H   picture size (default 480 x 320, multiples of 8)
  --verbose             connections and operations on stderr
"""


def die(msg, code=2):
    sys.stderr.write("ptpip_sim2: %s\n" % msg)
    sys.exit(code)


_EVENT_LOG_LOCK = threading.Lock()


def log_event(entry):
    path = OPTS.get("event_log") if OPTS else None
    if not path:
        return
    with _EVENT_LOG_LOCK, open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def parse_args(argv):
    opts = {
        "port": 15740, "bind": "127.0.0.1", "control_port": None,
        "serial": "S2-000001", "model": "Sim2 Camera", "manufacturer": "Sim2 Optics",
        "setup_delay_ms": 25, "capture_ms": 60, "event_order": "added-first",
        "event_gap_ms": 8, "capture_complete": True, "partial": False,
        "download_mbps": 400.0, "packet_size": 32768, "image_size": 300000,
        "image_width": 480, "image_height": 320, "verbose": False, "event_log": None,
    }
    ints = {"--port": "port", "--control-port": "control_port",
            "--setup-delay-ms": "setup_delay_ms", "--capture-ms": "capture_ms",
            "--capture-delay-ms": "capture_ms", "--event-gap-ms": "event_gap_ms",
            "--packet-size": "packet_size", "--image-size": "image_size",
            "--image-width": "image_width", "--image-height": "image_height"}
    strs = {"--bind": "bind", "--serial": "serial", "--model": "model",
            "--manufacturer": "manufacturer", "--event-order": "event_order",
            "--event-log": "event_log"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = None
        if arg.startswith("--") and "=" in arg:
            arg, value = arg.split("=", 1)
        if arg in ("-h", "--help"):
            sys.stdout.write(USAGE)
            sys.exit(0)
        if arg in ("--partial", "--no-partial", "--no-capture-complete", "--verbose"):
            if value is not None:
                die("%s takes no value" % arg)
            if arg == "--partial":
                opts["partial"] = True
            elif arg == "--no-partial":
                opts["partial"] = False
            elif arg == "--no-capture-complete":
                opts["capture_complete"] = False
            else:
                opts["verbose"] = True
            i += 1
            continue
        if arg not in ints and arg not in strs and arg != "--download-mbps":
            die("unknown flag %s\n%s" % (arg, USAGE))
        if value is None:
            if i + 1 >= len(argv):
                die("%s needs a value" % arg)
            value = argv[i + 1]
            i += 1
        i += 1
        try:
            if arg in ints:
                opts[ints[arg]] = int(value, 10)
                if opts[ints[arg]] < 0:
                    raise ValueError
            elif arg == "--download-mbps":
                opts["download_mbps"] = float(value)
                if opts["download_mbps"] < 0:
                    raise ValueError
            else:
                opts[strs[arg]] = value
        except ValueError:
            die("bad value for %s: %r" % (arg, value))
    if opts["event_order"] not in ("added-first", "complete-first"):
        die("--event-order must be added-first or complete-first")
    if opts["port"] > 65535 or (opts["control_port"] or 0) > 65535:
        die("port out of range")
    if opts["packet_size"] < 512:
        die("--packet-size must be at least 512")
    w, h = opts["image_width"], opts["image_height"]
    if w < 8 or h < 8 or w % 8 or h % 8 or w > 8192 or h > 8192:
        die("--image-width/--image-height must be multiples of 8 from 8 to 8192")
    for key in ("setup_delay_ms", "capture_ms", "event_gap_ms"):
        if opts[key] > 60000:
            die("--%s too large" % key.replace("_", "-"))
    return opts


OPTS = None
LOG_LOCK = threading.Lock()


def log(msg):
    if OPTS["verbose"]:
        with LOG_LOCK:
            sys.stderr.write("ptpip_sim2 %.3f %s\n" % (time.time(), msg))
            sys.stderr.flush()


# --- PTP dataset packing -------------------------------------------------------------

def ptp_str(s):
    if not s:
        return b"\x00"
    enc = (s + "\x00").encode("utf-16-le")
    return struct.pack("<B", len(s) + 1) + enc


def u16_array(values):
    return struct.pack("<I%dH" % len(values), len(values), *values)


def u32_array(values):
    return struct.pack("<I%dI" % len(values), len(values), *values)


def ptp_date(t):
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(t))


# --- JPEG + Exif -----------------------------------------------------------------------
# A baseline JPEG whose 8x8 blocks carry only a DC value (every AC coefficient zero), so the
# entropy coder needs the standard DC table and a one-symbol AC table (EOB).

DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
DC_VALS = list(range(12))


def huffman_codes(bits, vals):
    codes = {}
    code = 0
    k = 0
    for length in range(1, 17):
        for _ in range(bits[length - 1]):
            codes[vals[k]] = (code, length)
            k += 1
            code += 1
        code <<= 1
    return codes


DC_CODES = huffman_codes(DC_BITS, DC_VALS)
AC_BITS = [1] + [0] * 15  # one code of length 1: "0" = EOB
AC_VALS = [0x00]
EOB = (0, 1)


def segment(marker, payload):
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_scan(width, height, variant):
    """Entropy-coded data (byte-stuffed) for a YCbCr 4:4:4 picture made of flat blocks."""
    bw, bh = width // 8, height // 8
    acc = 0      # bit accumulator
    nbits = 0
    out = bytearray()
    pred = [0, 0, 0]
    band = (variant * 7) % max(bw, 1)
    dark = (variant * 3) % max(bh, 1)
    for by in range(bh):
        for bx in range(bw):
            y = 30 + (170 * bx) // max(bw - 1, 1) + (30 * by) // max(bh - 1, 1)
            if abs(bx - band) <= 1:
                y = 240
            if by == dark:
                y = 20
            cb = 128 + (40 if bx < bw // 2 else -30)
            cr = 128 + (35 if by < bh // 2 else -25)
            for c, level in enumerate((y, cb, cr)):
                dc = level - 128  # 8 * mean / Q0 with Q0 = 8
                diff = dc - pred[c]
                pred[c] = dc
                mag = -diff if diff < 0 else diff
                cat = mag.bit_length()
                code, length = DC_CODES[cat]
                acc = (acc << length) | code
                nbits += length
                if cat:
                    extra = diff if diff > 0 else diff + (1 << cat) - 1
                    acc = (acc << cat) | extra
                    nbits += cat
                acc = (acc << 1)  # EOB, code "0"
                nbits += 1
                while nbits >= 8:
                    nbits -= 8
                    byte = (acc >> nbits) & 0xFF
                    out.append(byte)
                    if byte == 0xFF:
                        out.append(0)
                acc &= (1 << nbits) - 1
    if nbits:
        byte = ((acc << (8 - nbits)) | ((1 << (8 - nbits)) - 1)) & 0xFF
        out.append(byte)
        if byte == 0xFF:
            out.append(0)
    return bytes(out)


def jpeg_tables(width, height):
    qt = bytes([8] + [16] * 63)
    dqt = segment(0xDB, b"\x00" + qt)
    sof = segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) +
                  bytes([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]))
    dht = segment(0xC4, b"\x00" + bytes(DC_BITS) + bytes(DC_VALS) +
                  b"\x10" + bytes(AC_BITS) + bytes(AC_VALS))
    sos = segment(0xDA, bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]))
    return dqt + sof + dht + sos


def tiff_ifd(entries, start, next_ifd=0):
    """entries: (tag, type, count, raw bytes); start: offset of the IFD in the TIFF.
    Returns the IFD and its out-of-line data, laid out from `start`."""
    entries = sorted(entries)
    ifd_len = 2 + 12 * len(entries) + 4
    data = bytearray()
    body = bytearray(struct.pack("<H", len(entries)))
    for tag, typ, count, raw in entries:
        if len(raw) <= 4:
            body += struct.pack("<HHI", tag, typ, count) + raw.ljust(4, b"\x00")
        else:
            off = start + ifd_len + len(data)
            body += struct.pack("<HHII", tag, typ, count, off)
            data += raw
            if len(data) % 2:
                data += b"\x00"
    body += struct.pack("<I", next_ifd)
    return bytes(body) + bytes(data)


def ascii_entry(tag, text):
    raw = text.encode("ascii", "replace") + b"\x00"
    return (tag, 2, len(raw), raw)


def exif_app1(cam, shot, width, height, when):
    dt = time.strftime("%Y:%m:%d %H:%M:%S", time.localtime(when))
    exposure = cam.props[0x500D]["value"]  # 1/10000 s
    fnum = cam.props[0x5007]["value"]      # x100
    iso = cam.props[0x500F]["value"]
    if exposure >= 10000:
        exp_num, exp_den = exposure // 10000, 1
    else:
        exp_num, exp_den = 1, max(1, round(10000 / exposure))
    unique = "%08x%08x%016x" % (shot, os.getpid() & 0xFFFFFFFF, time.time_ns() & (2**64 - 1))
    exif_entries = [
        (0x829A, 5, 1, struct.pack("<II", exp_num, exp_den)),
        (0x829D, 5, 1, struct.pack("<II", fnum, 100)),
        (0x8827, 3, 1, struct.pack("<H", iso)),
        (0x9000, 7, 4, b"0230"),
        ascii_entry(0x9003, dt),
        (0xA002, 4, 1, struct.pack("<I", width)),
        (0xA003, 4, 1, struct.pack("<I", height)),
        ascii_entry(0xA420, unique),
        ascii_entry(0xA431, OPTS["serial"]),
    ]
    ifd0_entries = [
        ascii_entry(0x010F, OPTS["manufacturer"]),
        ascii_entry(0x0110, OPTS["model"]),
        (0x0112, 3, 1, struct.pack("<H", 1)),
        ascii_entry(0x0131, "ptpip-sim2"),
        ascii_entry(0x0132, dt),
        (0x8769, 4, 1, b"\x00\x00\x00\x00"),  # patched below
    ]
    ifd0 = tiff_ifd(ifd0_entries, 8)
    exif_start = 8 + len(ifd0)
    ifd0_entries[-1] = (0x8769, 4, 1, struct.pack("<I", exif_start))
    ifd0 = tiff_ifd(ifd0_entries, 8)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + tiff_ifd(exif_entries, exif_start)
    return segment(0xE1, b"Exif\x00\x00" + tiff)


class Pictures:
    """Caches the scan data of the 16 picture variants (a capture picks one)."""

    def __init__(self, width, height):
        self.width, self.height = width, height
        self.tables = jpeg_tables(width, height)
        self.scans = {}
        self.lock = threading.Lock()

    def scan(self, variant):
        with self.lock:
            if variant not in self.scans:
                self.scans[variant] = jpeg_scan(self.width, self.height, variant)
            return self.scans[variant]

    def min_size(self, cam):
        return len(self.build(cam, 0, 0, time.time(), pad=False))

    def build(self, cam, shot, size, when, pad=True):
        head = b"\xFF\xD8" + exif_app1(cam, shot, self.width, self.height, when)
        note = ("ptpip-sim2 shot %d serial %s t %d " % (shot, OPTS["serial"], time.time_ns())).encode()
        tail = self.tables + self.scan(shot % 16) + b"\xFF\xD9"
        base = len(head) + 4 + len(note) + len(tail)
        if not pad:
            return head + segment(0xFE, note) + tail
        need = size - base
        if need < 0:
            raise ValueError("image size %d below the minimum %d" % (size, base))
        # The first COM segment takes up to 65533 bytes of text; more COM segments after it.
        first = min(need, 65533 - len(note))
        rest = need - first
        if 0 < rest < 4:  # too little for a segment of its own: move 4 bytes over
            first -= 4
            rest += 4
        parts = [segment(0xFE, note + b"." * first)]
        while rest > 0:
            take = min(rest, 65537)  # a whole segment: 4 header bytes + payload
            if rest - take and rest - take < 4:
                take -= 4  # leave room for one more segment of at least 4 bytes
            if take < 4:  # cannot happen: the branch above keeps the rest >= 4
                raise ValueError("padding arithmetic")
            parts.append(segment(0xFE, b"#" * (take - 4)))
            rest -= take
        data = head + b"".join(parts) + tail
        assert len(data) == size, (len(data), size)
        return data


# --- The camera ------------------------------------------------------------------------

class Obj:
    def __init__(self, handle, parent, name, fmt, data=b"", when=None, thumb=b""):
        self.handle, self.parent, self.name, self.fmt = handle, parent, name, fmt
        self.data = data
        self.thumb = thumb
        self.when = when or time.time()


class Camera:
    def __init__(self):
        self.lock = threading.RLock()
        self.pictures = Pictures(OPTS["image_width"], OPTS["image_height"])
        self.thumbs = Pictures(160, 104)
        self.props = {
            0x5001: {"type": DT_UINT8, "rw": 0, "value": 87, "default": 100,
                     "range": (0, 100, 1)},
            0x5005: {"type": DT_UINT16, "rw": 1, "value": 2, "default": 2,
                     "enum": [2, 4, 5, 6, 7]},
            0x5007: {"type": DT_UINT16, "rw": 1, "value": 400, "default": 400,
                     "enum": [180, 280, 400, 560, 800, 1100, 1600]},
            0x500D: {"type": DT_UINT32, "rw": 1, "value": 100, "default": 100,
                     "enum": [2, 5, 10, 20, 40, 80, 100, 167, 333, 667, 1000, 5000, 10000,
                              20000]},
            0x500F: {"type": DT_UINT16, "rw": 1, "value": 200, "default": 100,
                     "enum": [100, 200, 400, 800, 1600, 3200, 6400]},
        }
        self.image_size = OPTS["image_size"]
        self.capture_ms = OPTS["capture_ms"]
        self.busy = 0
        self.error = 0
        self.noevent = 0
        self.stats = {"captures": 0, "downloads": 0, "deletes": 0, "connections": 0,
                      "active_connections": 0}
        self.reset_card()

    def reset_card(self):
        with self.lock:
            self.objects = {}
            self.add(Obj(0x20000001, 0, "DCIM", FMT_ASSOCIATION))
            self.add(Obj(0x20000002, 0x20000001, "100SIM2_", FMT_ASSOCIATION))
            self.next_handle = 0x30000001
            self.shots = 0

    def add(self, obj):
        self.objects[obj.handle] = obj

    def capture(self):
        """Stores a new picture; returns its handle."""
        with self.lock:
            self.shots += 1
            shot = self.shots
            handle = self.next_handle
            self.next_handle += 1
            size = self.image_size
        when = time.time()
        data = self.pictures.build(self, shot, size, when)
        thumb = self.thumbs.build(self, shot, 0, when, pad=False)
        with self.lock:
            self.add(Obj(handle, 0x20000002, "S2_%05d.JPG" % shot, FMT_EXIF_JPEG, data,
                         when, thumb))
            self.stats["captures"] += 1
        return handle

    def object_info(self, o):
        if o.fmt == FMT_ASSOCIATION:
            assoc, thumb_fmt, tsize, tw, th, w, h, depth = 1, 0, 0, 0, 0, 0, 0, 0
        else:
            assoc, thumb_fmt, tsize = 0, FMT_EXIF_JPEG, len(o.thumb)
            tw, th = self.thumbs.width, self.thumbs.height
            w, h, depth = self.pictures.width, self.pictures.height, 24
        protection = 0x0001 if o.fmt == FMT_ASSOCIATION else 0x0000
        return (struct.pack("<IHHIHIIIIIIIHII", STORAGE_ID, o.fmt, protection, len(o.data),
                            thumb_fmt, tsize, tw, th, w, h, depth, o.parent, assoc, 0, 0) +
                ptp_str(o.name) + ptp_str(ptp_date(o.when)) + ptp_str(ptp_date(o.when)) +
                ptp_str(""))

    def device_info(self):
        ops = [OC_GetDeviceInfo, OC_OpenSession, OC_CloseSession, OC_GetStorageIDs,
               OC_GetStorageInfo, OC_GetNumObjects, OC_GetObjectHandles, OC_GetObjectInfo,
               OC_GetObject, OC_GetThumb, OC_DeleteObject, OC_InitiateCapture,
               OC_GetDevicePropDesc, OC_GetDevicePropValue, OC_SetDevicePropValue]
        if OPTS["partial"]:
            ops.append(OC_GetPartialObject)
        events = [EC_ObjectAdded, EC_StoreFull, EC_CaptureComplete]
        return (struct.pack("<HIH", 100, 0, 0) + ptp_str("") + struct.pack("<H", 0) +
                u16_array(ops) + u16_array(events) + u16_array(sorted(self.props)) +
                u16_array([FMT_EXIF_JPEG]) + u16_array([FMT_ASSOCIATION, FMT_EXIF_JPEG]) +
                ptp_str(OPTS["manufacturer"]) + ptp_str(OPTS["model"]) + ptp_str("2.0.7") +
                ptp_str(OPTS["serial"]))

    def storage_info(self):
        with self.lock:
            used = sum(len(o.data) for o in self.objects.values())
        capacity = 64 * 1024 ** 3
        free = capacity - used
        return (struct.pack("<HHHQQI", 4, 3, 0, capacity, free, free // max(self.image_size, 1)) +
                ptp_str("SD card") + ptp_str("SIM2"))

    @staticmethod
    def pack_value(ptype, value):
        return struct.pack({DT_UINT8: "<B", DT_UINT16: "<H", DT_UINT32: "<I"}[ptype], value)

    def prop_desc(self, code):
        p = self.props[code]
        pv = lambda v: self.pack_value(p["type"], v)  # noqa: E731
        out = struct.pack("<HHB", code, p["type"], p["rw"]) + pv(p["default"]) + pv(p["value"])
        if "range" in p:
            lo, hi, step = p["range"]
            out += b"\x01" + pv(lo) + pv(hi) + pv(step)
        else:
            out += b"\x02" + struct.pack("<H", len(p["enum"])) + b"".join(pv(v) for v in p["enum"])
        return out


# --- PTP/IP connections -----------------------------------------------------------------

class Closed(Exception):
    pass


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise Closed()
        buf += chunk
    return bytes(buf)


def read_packet(sock):
    length, ptype = struct.unpack("<II", recv_exact(sock, 8))
    if length < 8 or length > 64 * 1024 * 1024:
        raise Closed()
    return ptype, recv_exact(sock, length - 8)


def packet(ptype, payload=b""):
    return struct.pack("<II", len(payload) + 8, ptype) + payload


class Session:
    """One initiator: its command connection, event connection and PTP session."""

    def __init__(self, number, sock, guid, name):
        self.number = number
        self.cmd = sock
        self.evt = None
        self.evt_lock = threading.Lock()
        self.guid, self.name = guid, name
        self.session_id = 0
        self.device_info_sent = False
        self.alive = True

    def send_event(self, code, transid, *params):
        with self.evt_lock:
            if not self.evt or not self.alive:
                return
            try:
                self.evt.sendall(packet(PKT_EVENT, struct.pack("<HI%dI" % len(params),
                                                               code, transid, *params)))
                log("conn %d event 0x%04x %s" % (self.number, code,
                                                 " ".join("0x%x" % p for p in params)))
            except OSError:
                pass

    def close(self):
        self.alive = False
        for s in (self.cmd, self.evt):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


class Server:
    def __init__(self, camera):
        self.camera = camera
        self.lock = threading.Lock()
        self.sessions = {}
        self.next_number = 1
        self.guid = os.urandom(16)

    # -- accepting

    def serve(self, listener):
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.first_packet, args=(sock,), daemon=True).start()

    def first_packet(self, sock):
        try:
            ptype, body = read_packet(sock)
            if ptype == PKT_INIT_CMD_REQ:
                self.command_connection(sock, body)
            elif ptype == PKT_INIT_EVT_REQ:
                self.event_connection(sock, body)
            elif ptype == PKT_PROBE_REQ:
                sock.sendall(packet(PKT_PROBE_RESP))
                sock.close()
            else:
                sock.close()
        except (Closed, OSError, struct.error):
            try:
                sock.close()
            except OSError:
                pass

    def event_connection(self, sock, body):
        (number,) = struct.unpack_from("<I", body)
        with self.lock:
            sess = self.sessions.get(number)
        if sess is None or sess.evt is not None:
            sock.sendall(packet(PKT_INIT_FAIL, struct.pack("<I", 1)))
            sock.close()
            return
        sess.evt = sock
        sock.sendall(packet(PKT_INIT_EVT_ACK))
        log("conn %d event channel up" % number)
        # The initiator never sends on the event channel except probes; wait for close.
        try:
            while sess.alive:
                ptype, _ = read_packet(sock)
                if ptype == PKT_PROBE_REQ:
                    with sess.evt_lock:
                        sock.sendall(packet(PKT_PROBE_RESP))
        except (Closed, OSError, struct.error):
            pass
        self.end(sess)

    def command_connection(self, sock, body):
        guid = body[:16]
        raw = body[16:]
        end = 0
        while end + 1 < len(raw) and raw[end:end + 2] != b"\x00\x00":
            end += 2
        name = raw[:end].decode("utf-16-le", "replace")
        time.sleep(OPTS["setup_delay_ms"] / 1000.0)
        with self.lock:
            number = self.next_number
            self.next_number += 1
            sess = Session(number, sock, guid, name)
            self.sessions[number] = sess
        with self.camera.lock:
            self.camera.stats["connections"] += 1
            self.camera.stats["active_connections"] += 1
        sock.sendall(packet(PKT_INIT_CMD_ACK, struct.pack("<I", number) + self.guid +
                            (OPTS["model"] + "\x00").encode("utf-16-le") +
                            struct.pack("<I", 0x00010000)))
        log("conn %d from %r" % (number, name))
        try:
            while sess.alive:
                ptype, body = read_packet(sock)
                if ptype == PKT_OP_REQ:
                    self.operation(sess, body)
                elif ptype == PKT_PROBE_REQ:
                    sock.sendall(packet(PKT_PROBE_RESP))
                else:
                    log("conn %d unexpected packet type %d" % (number, ptype))
                    break
        except (Closed, OSError, struct.error) as e:
            log("conn %d closed (%s)" % (number, type(e).__name__))
        self.end(sess)

    def end(self, sess):
        with self.lock:
            if self.sessions.get(sess.number) is not sess:
                return
            del self.sessions[sess.number]
        sess.close()
        with self.camera.lock:
            self.camera.stats["active_connections"] -= 1
        log("conn %d ended" % sess.number)

    def disconnect_all(self):
        with self.lock:
            sessions = list(self.sessions.values())
        for s in sessions:
            self.end(s)

    # -- operations

    def read_data_out(self, sess):
        """Host -> camera data phase: StartData, Data..., EndData."""
        ptype, body = read_packet(sess.cmd)
        if ptype != PKT_START_DATA:
            raise Closed()
        total = struct.unpack_from("<Q", body, 4)[0]
        data = bytearray()
        while True:
            ptype, body = read_packet(sess.cmd)
            if ptype not in (PKT_DATA, PKT_END_DATA):
                raise Closed()
            data += body[4:]
            if ptype == PKT_END_DATA:
                break
        if len(data) != total:
            log("conn %d data-out %d bytes, announced %d" % (sess.number, len(data), total))
        return bytes(data)

    def operation(self, sess, body):
        dataphase, code, transid = struct.unpack_from("<IHI", body)
        nparams = (len(body) - 10) // 4
        params = list(struct.unpack_from("<%dI" % nparams, body, 10)) + [0] * (5 - nparams)
        data_out = self.read_data_out(sess) if dataphase == 2 else None
        log("conn %d op 0x%04x tid %d %s" % (sess.number, code, transid,
                                             " ".join("0x%x" % p for p in params[:nparams])))
        rc, data, rparams = self.handle(sess, code, transid, params, data_out)
        self.reply(sess, transid, rc, data, rparams)
        if code == OC_CloseSession and rc == RC_OK:
            pass

    def reply(self, sess, transid, rc, data, rparams=()):
        resp = packet(PKT_OP_RESP, struct.pack("<HI%dI" % len(rparams), rc, transid, *rparams))
        if data is None:
            sess.cmd.sendall(resp)
            return
        total = len(data)
        start = packet(PKT_START_DATA, struct.pack("<IQ", transid, total))
        step = OPTS["packet_size"]
        rate = OPTS["download_mbps"] * 1e6 / 8.0
        if rate <= 0:
            # Unthrottled: the whole phase in one write.
            parts = [start]
            off = 0
            while total - off > step:
                parts.append(packet(PKT_DATA, struct.pack("<I", transid) + data[off:off + step]))
                off += step
            parts.append(packet(PKT_END_DATA, struct.pack("<I", transid) + data[off:]))
            parts.append(resp)
            sess.cmd.sendall(b"".join(parts))
            return
        sess.cmd.sendall(start)
        t0 = time.monotonic()
        off = 0
        mv = memoryview(data)
        while True:
            last = total - off <= step
            chunk = mv[off:] if last else mv[off:off + step]
            pkt = packet(PKT_END_DATA if last else PKT_DATA, struct.pack("<I", transid) + chunk)
            if last:
                pkt += resp
            sess.cmd.sendall(pkt)
            off += len(chunk)
            if last:
                return
            wait = t0 + off / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def handle(self, sess, code, transid, p, data_out):
        cam = self.camera
        if code == OC_GetDeviceInfo:
            if sess.session_id and not sess.device_info_sent:
                time.sleep(OPTS["setup_delay_ms"] / 1000.0)
            sess.device_info_sent = bool(sess.session_id)
            return RC_OK, cam.device_info(), ()
        if code == OC_OpenSession:
            if sess.session_id:
                return RC_SessionAlreadyOpen, None, (sess.session_id,)
            if p[0] == 0:
                return RC_InvalidParameter, None, ()
            time.sleep(OPTS["setup_delay_ms"] / 1000.0)
            sess.session_id = p[0]
            sess.device_info_sent = False
            return RC_OK, None, ()
        if not sess.session_id:
            return RC_SessionNotOpen, None, ()
        if code == OC_CloseSession:
            sess.session_id = 0
            return RC_OK, None, ()
        if code == OC_GetStorageIDs:
            return RC_OK, u32_array([STORAGE_ID]), ()
        if code == OC_GetStorageInfo:
            if p[0] != STORAGE_ID:
                return RC_InvalidStorageID, None, ()
            return RC_OK, cam.storage_info(), ()
        if code in (OC_GetObjectHandles, OC_GetNumObjects):
            storage, fmt, parent = p[0], p[1], p[2]
            if storage not in (ALL, STORAGE_ID):
                return RC_InvalidStorageID, None, ()
            with cam.lock:
                if parent not in (0, ALL):
                    po = cam.objects.get(parent)
                    if po is None:
                        return RC_InvalidObjectHandle, None, ()
                    if po.fmt != FMT_ASSOCIATION:
                        return RC_InvalidParentObject, None, ()
                handles = []
                for h in sorted(cam.objects):
                    o = cam.objects[h]
                    if fmt not in (0, ALL) and o.fmt != fmt:
                        continue
                    if parent == ALL and o.parent != 0:
                        continue
                    if parent not in (0, ALL) and o.parent != parent:
                        continue
                    handles.append(h)
            if code == OC_GetNumObjects:
                return RC_OK, None, (len(handles),)
            return RC_OK, u32_array(handles), ()
        if code in (OC_GetObjectInfo, OC_GetObject, OC_GetThumb, OC_GetPartialObject):
            if code == OC_GetPartialObject and not OPTS["partial"]:
                return RC_OperationNotSupported, None, ()
            with cam.lock:
                o = cam.objects.get(p[0])
            if o is None:
                return RC_InvalidObjectHandle, None, ()
            if code == OC_GetObjectInfo:
                return RC_OK, cam.object_info(o), ()
            if o.fmt == FMT_ASSOCIATION:
                return RC_InvalidObjectHandle, None, ()
            if code == OC_GetThumb:
                return RC_OK, o.thumb, ()
            if code == OC_GetObject:
                with cam.lock:
                    cam.stats["downloads"] += 1
                return RC_OK, o.data, ()
            offset, count = p[1], p[2]
            if offset > len(o.data):
                return RC_InvalidParameter, None, ()
            piece = o.data[offset:offset + count]
            if offset + len(piece) >= len(o.data):
                with cam.lock:
                    cam.stats["downloads"] += 1
            return RC_OK, piece, (len(piece),)
        if code == OC_DeleteObject:
            with cam.lock:
                if p[0] == ALL:
                    gone = [h for h, o in cam.objects.items() if o.fmt != FMT_ASSOCIATION]
                else:
                    o = cam.objects.get(p[0])
                    if o is None:
                        return RC_InvalidObjectHandle, None, ()
                    if o.fmt == FMT_ASSOCIATION:
                        return RC_AccessDenied, None, ()
                    gone = [p[0]]
                for h in gone:
                    del cam.objects[h]
                    cam.stats["deletes"] += 1
            return RC_OK, None, ()
        if code == OC_InitiateCapture:
            # The arrival time, in the JSON-lines form tests/ptpip-sim's --event-log writes,
            # so a benchmark reads when the request reached the camera from either simulator.
            log_event({"t_us": time.time_ns() // 1000, "event": "initiate_capture"})
            return self.initiate_capture(sess, transid, p)
        if code in (OC_GetDevicePropDesc, OC_GetDevicePropValue, OC_SetDevicePropValue):
            prop = cam.props.get(p[0])
            if prop is None:
                return RC_DevicePropNotSupported, None, ()
            if code == OC_GetDevicePropDesc:
                return RC_OK, cam.prop_desc(p[0]), ()
            if code == OC_GetDevicePropValue:
                return RC_OK, cam.pack_value(prop["type"], prop["value"]), ()
            if not prop["rw"]:
                return RC_AccessDenied, None, ()
            fmt = {DT_UINT8: "<B", DT_UINT16: "<H", DT_UINT32: "<I"}[prop["type"]]
            if data_out is None or len(data_out) != struct.calcsize(fmt):
                return RC_InvalidDevicePropValue, None, ()
            (value,) = struct.unpack(fmt, data_out)
            if value not in prop.get("enum", [value]):
                return RC_InvalidDevicePropValue, None, ()
            prop["value"] = value
            return RC_OK, None, ()
        return RC_OperationNotSupported, None, ()

    def initiate_capture(self, sess, transid, p):
        cam = self.camera
        if p[0] not in (0, STORAGE_ID):
            return RC_InvalidStorageID, None, ()
        with cam.lock:
            if cam.busy:
                cam.busy -= 1
                return RC_DeviceBusy, None, ()
            if cam.error:
                cam.error -= 1
                return RC_GeneralError, None, ()
            silent = cam.noevent > 0
            if silent:
                cam.noevent -= 1
            delay = cam.capture_ms / 1000.0
        threading.Thread(target=self.expose, args=(sess, transid, delay, silent),
                         daemon=True).start()
        return RC_OK, None, ()

    def expose(self, sess, transid, delay, silent):
        """The camera's side of a capture: exposure, writing the card, then the events."""
        t0 = time.monotonic()
        gap = OPTS["event_gap_ms"] / 1000.0
        complete_first = OPTS["event_order"] == "complete-first"
        if complete_first and OPTS["capture_complete"] and not silent:
            # The shutter closes: CaptureComplete, then the card write takes `gap`.
            wait = t0 + max(delay - gap, 0) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            sess.send_event(EC_CaptureComplete, transid, transid)
        handle = self.camera.capture()  # building the picture is part of the delay
        wait = t0 + delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if silent:
            return
        sess.send_event(EC_ObjectAdded, transid, handle)
        if OPTS["capture_complete"] and not complete_first:
            if gap > 0:
                time.sleep(gap)
            sess.send_event(EC_CaptureComplete, transid, transid)


# --- control port ---------------------------------------------------------------------

def control_loop(listener, server):
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=control_client, args=(sock, server), daemon=True).start()


def control_command(line, server):
    cam = server.camera
    words = line.split()
    if not words:
        return "ERR empty"
    cmd, args = words[0].lower(), words[1:]

    def number():
        if len(args) != 1 or not args[0].isdigit():
            raise ValueError
        return int(args[0])

    try:
        if cmd == "ping":
            return "PONG"
        if cmd == "stats":
            with cam.lock:
                s = dict(cam.stats)
                s["objects"] = sum(1 for o in cam.objects.values() if o.fmt != FMT_ASSOCIATION)
            return "{" + ",".join('"%s":%d' % kv for kv in s.items()) + "}"
        if cmd in ("busy", "error", "noevent"):
            with cam.lock:
                setattr(cam, cmd, number())
            return "OK"
        if cmd == "delay":
            with cam.lock:
                cam.capture_ms = number()
            return "OK"
        if cmd == "size":
            n = number()
            if n < cam.pictures.min_size(cam) + 64:
                return "ERR minimum %d" % (cam.pictures.min_size(cam) + 64)
            with cam.lock:
                cam.image_size = n
            return "OK"
        if cmd == "reset":
            with cam.lock:
                cam.busy = cam.error = cam.noevent = 0
            return "OK"
        if cmd == "clear":
            cam.reset_card()
            return "OK"
        if cmd == "disconnect":
            server.disconnect_all()
            return "OK"
    except ValueError:
        return "ERR bad argument"
    return "ERR unknown command"


def control_client(sock, server):
    buf = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                answer = control_command(line.decode("utf-8", "replace").strip(), server)
                sock.sendall((answer + "\n").encode())
    except OSError:
        pass
    finally:
        sock.close()


# --- main ---------------------------------------------------------------------------------

def listen(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    return s


def main(argv):
    global OPTS
    OPTS = parse_args(argv)
    # Handlers first: a SIGTERM right after LISTENING must still mean a clean exit 0.
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    camera = Camera()
    minimum = camera.pictures.min_size(camera) + 64  # room for a longer shot number/time
    if OPTS["image_size"] < minimum:
        die("--image-size %d is below the minimum %d for %dx%d" %
            (OPTS["image_size"], minimum, OPTS["image_width"], OPTS["image_height"]))
    try:
        listener = listen(OPTS["bind"], OPTS["port"])
        control = None
        if OPTS["control_port"] is not None:
            control = listen(OPTS["bind"], OPTS["control_port"])
    except OSError as e:
        die("cannot listen: %s" % e, 1)
    server = Server(camera)
    lines = "LISTENING %d\n" % listener.getsockname()[1]
    if control is not None:
        lines += "CONTROL %d\n" % control.getsockname()[1]
        threading.Thread(target=control_loop, args=(control, server), daemon=True).start()
    threading.Thread(target=server.serve, args=(listener,), daemon=True).start()
    sys.stdout.write(lines)
    sys.stdout.flush()
    while not stop.wait(3600):
        pass
    for s in (listener, control):
        if s is not None:
            s.close()
    server.disconnect_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
