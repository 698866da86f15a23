#!/usr/bin/env python3
"""photorig's PTP/IP camera simulator (PTP over TCP, CIPA DC-X005), good enough for the real
libgphoto2 (ptp2 camlib, ptpip port) and the gphoto2 CLI to connect, capture, download and
delete. Model name for libgphoto2: "PTP/IP Camera"; port string ptpip:127.0.0.1:P:P.

On start it prints `LISTENING <port>` then `CONTROL <port>` on stdout. The control port takes
one command per line and answers one line: busy N, error N, noevent N, evstorefull N,
storagefull on|off, delay MS, slow MS, disconnect, stats.
"""
import argparse
import json
import signal
import socket
import struct
import sys
import threading
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument('--port', type=int, default=15740, help='TCP port (0 = pick a free one)')
ap.add_argument('--bind', default='127.0.0.1')
ap.add_argument('--control-port', type=int, default=0, help='plain-text control port (0 = pick)')
ap.add_argument('--serial', default='SIM0001')
ap.add_argument('--model', default='PTP/IP Camera')
ap.add_argument('--manufacturer', default='photorig')
ap.add_argument('--image-size', type=int, default=200000, help='bytes per JPEG, exactly')
ap.add_argument('--capture-delay-ms', type=int, default=0, help='InitiateCapture to ObjectAdded')
ap.add_argument('--fail-busy', type=int, default=0, help='answer DeviceBusy to the next N captures')
ap.add_argument('--fail-error', type=int, default=0, help='answer GeneralError to the next N captures')
ap.add_argument('--no-event', type=int, default=0, help='accept the next N captures but send no event')
ap.add_argument('--storage-full', action='store_true', help='answer StoreFull to InitiateCapture')
ap.add_argument('--slow-ms', type=int, default=0, help='delay every operation response')
ap.add_argument('--event-log', default='', help='append one JSON line per capture event (us timestamps)')
args = ap.parse_args()

STORAGE = 0x00010001
OK, GENERAL_ERROR, DEVICE_BUSY, STORE_FULL, INVALID_HANDLE, NOT_SUPPORTED = 0x2001, 0x2002, 0x2019, 0x200C, 0x2009, 0x2005
EV_OBJECT_ADDED, EV_CAPTURE_COMPLETE, EV_STORE_FULL = 0x4002, 0x400D, 0x400A
ISO, F_NUMBER, EXPOSURE = 400, (80, 10), (1, 125)

state = dict(busy=args.fail_busy, error=args.fail_error, noevent=args.no_event, evstorefull=0,
             storagefull=args.storage_full, delay=args.capture_delay_ms, slow=args.slow_ms)
stats = dict(captures=0, downloads=0, deletes=0, connections=0, last_initiate_us=0)
lock = threading.Lock()
objects = {1: dict(fmt=0x3001, parent=0, name='DCIM', data=b'', assoc=1),
           2: dict(fmt=0x3001, parent=1, name='100PHOTO', data=b'', assoc=1)}
next_handle = [3]
sessions = []  # open sockets, for `disconnect`
evt_sock = [None]
log_lock = threading.Lock()


def log_event(event, handle=0):
    if not args.event_log:
        return
    with log_lock, open(args.event_log, 'a') as f:
        f.write(json.dumps({'t_us': int(time.time() * 1e6), 'event': event, 'handle': handle}) + '\n')


# ---- the photo: SOI, APP1 Exif, a COM segment with a per-capture counter, padding, EOI ----
def exif_app1():
    def ifd(entries, base):
        # entries: (tag, type, count, value bytes); values over 4 bytes go after the IFD.
        head = struct.pack('<H', len(entries))
        data = b''
        data_off = base + 2 + 12 * len(entries) + 4
        body = b''
        for tag, typ, count, val in entries:
            if len(val) <= 4:
                body += struct.pack('<HHI', tag, typ, count) + val.ljust(4, b'\0')
            else:
                body += struct.pack('<HHII', tag, typ, count, data_off + len(data))
                data += val + (b'\0' if len(val) % 2 else b'')
        return head + body + struct.pack('<I', 0) + data

    def ascii(s):
        b = s.encode() + b'\0'
        return (2, len(b), b)

    def rational(n, d):
        return (5, 1, struct.pack('<II', n, d))
    ifd0_entries = 3
    exif_off = 8 + 2 + 12 * ifd0_entries + 4 + 64  # room for make/model strings
    make, model = ascii(args.manufacturer), ascii(args.model)
    ifd0 = ifd([(0x010F,) + make, (0x0110,) + model, (0x8769, 4, 1, struct.pack('<I', exif_off))], 8)
    ifd0 = ifd0.ljust(exif_off - 8, b'\0')
    exif = ifd([(0x829A,) + rational(*EXPOSURE), (0x829D,) + rational(*F_NUMBER),
                (0x8827, 3, 1, struct.pack('<H', ISO)),
                (0x9003,) + ascii(time.strftime('%Y:%m:%d %H:%M:%S')),
                (0x920A,) + rational(35, 1), (0xA431,) + ascii(args.serial)], exif_off)
    tiff = b'II*\0' + struct.pack('<I', 8) + ifd0 + exif
    payload = b'Exif\0\0' + tiff
    return b'\xff\xe1' + struct.pack('>H', len(payload) + 2) + payload


def build_template(size):
    head = b'\xff\xd8' + exif_app1()
    counter_seg = b'\xff\xfe' + struct.pack('>H', 2 + 16) + b'\0' * 16  # patched per capture
    out = bytearray(head + counter_seg)
    counter_at = len(head) + 4
    remaining = size - len(out) - 2
    if remaining < 0:
        sys.exit('--image-size is too small for a JPEG with EXIF (%d bytes needed)' % (len(out) + 2))
    while remaining > 0:
        if remaining < 4:  # too small for a segment: fold into the last one
            out[-remaining:] = out[-remaining:]
            out += b'\0' * remaining
            break
        n = min(remaining - 4, 65533)
        out += b'\xff\xfe' + struct.pack('>H', n + 2) + bytes((i * 7) & 0x7f for i in range(min(n, 256))) * (n // 256) + b'\0' * (n % 256)
        remaining -= n + 4
    out += b'\xff\xd9'
    assert len(out) == size, (len(out), size)
    return out, counter_at


TEMPLATE, COUNTER_AT = build_template(args.image_size)


def new_photo(number):
    photo = bytearray(TEMPLATE)
    tag = ('%016x' % ((number << 32) ^ (int(time.time() * 1e6) & 0xffffffff)))[:16].encode()
    photo[COUNTER_AT:COUNTER_AT + 16] = tag
    return bytes(photo)


# ---- PTP/IP framing ----
def pstr(s):
    if not s:
        return b'\x00'
    return struct.pack('<B', len(s) + 1) + (s + '\x00').encode('utf-16-le')


def arr16(a):
    return struct.pack('<I', len(a)) + b''.join(struct.pack('<H', x) for x in a)


def arr32(a):
    return struct.pack('<I', len(a)) + b''.join(struct.pack('<I', x) for x in a)


def pkt(t, payload):
    return struct.pack('<II', 8 + len(payload), t) + payload


OPS = [0x1001, 0x1002, 0x1003, 0x1004, 0x1005, 0x1006, 0x1007, 0x1008, 0x1009, 0x100B, 0x100E, 0x101B]


def deviceinfo():
    # VendorExtensionID 0 and no vendor in the manufacturer: libgphoto2 stays on generic PTP.
    return (struct.pack('<HIH', 100, 0, 0) + pstr('') + struct.pack('<H', 0) + arr16(OPS) +
            arr16([EV_OBJECT_ADDED, EV_CAPTURE_COMPLETE, EV_STORE_FULL]) + arr16([]) + arr16([0x3801]) +
            arr16([0x3801, 0x3001]) + pstr(args.manufacturer) + pstr(args.model) + pstr('1.0') + pstr(args.serial))


def objinfo(h):
    o = objects[h]
    is_dir = o['fmt'] == 0x3001
    return (struct.pack('<IHHIHIIIIIIIHII', STORAGE, o['fmt'], 0, len(o['data']), 0, 0, 0, 0,
                        0 if is_dir else 640, 0 if is_dir else 480, 0, o['parent'], o.get('assoc', 0), 0, 0) +
            pstr(o['name']) + pstr(o.get('date', '20260101T120000')) + pstr(o.get('date', '20260101T120000')) + pstr(''))


def recvall(s, n):
    b = bytearray()
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return bytes(b)


def readpkt(s):
    length, t = struct.unpack('<II', recvall(s, 8))
    if length < 8 or length > 64 * 1024 * 1024:
        raise EOFError  # malformed: drop the connection, never the process
    return t, recvall(s, length - 8)


def send_event(code, *params):
    s = evt_sock[0]
    if s:
        try:
            s.sendall(pkt(8, struct.pack('<HI', code, 0) + b''.join(struct.pack('<I', p) for p in params)))
        except OSError:
            pass


def do_capture():
    with lock:
        delay = state['delay']
    time.sleep(delay / 1000.0)
    with lock:
        h = next_handle[0]
        next_handle[0] += 1
        stats['captures'] += 1
        objects[h] = dict(fmt=0x3801, parent=2, name='IMG_%04d.JPG' % (h - 2), data=new_photo(h),
                          date=time.strftime('%Y%m%dT%H%M%S'))
        if state['noevent'] > 0:
            state['noevent'] -= 1
            return
        if state['evstorefull'] > 0:
            state['evstorefull'] -= 1
            send_event(EV_STORE_FULL, STORAGE)
            return
    log_event('object_added', h)
    send_event(EV_OBJECT_ADDED, h)
    send_event(EV_CAPTURE_COMPLETE, 0)


def handle_cmd(s):
    while True:
        t, p = readpkt(s)
        if t == 13:  # ping
            s.sendall(pkt(14, b''))
            continue
        if t != 6 or len(p) < 10:
            continue
        _phase, code, tid = struct.unpack('<IHI', p[:10])
        n = (len(p) - 10) // 4
        params = list(struct.unpack('<%dI' % n, p[10:10 + 4 * n])) + [0, 0, 0, 0, 0]
        if code == 0x100C or code == 0x1016:  # operations with a data phase from the initiator
            pass
        data, rc, rparams = None, OK, []
        with lock:
            slow = state['slow']
        if slow:
            time.sleep(slow / 1000.0)
        if code == 0x1001:
            data = deviceinfo()
        elif code in (0x1002, 0x1003):
            log_event('open_session' if code == 0x1002 else 'close_session')
        elif code == 0x1004:
            data = arr32([STORAGE])
        elif code == 0x1005:
            full = state['storagefull']
            data = struct.pack('<HHHQQI', 3, 2, 0, 32 << 30, 0 if full else 16 << 30, 0 if full else 9999) + pstr('SD') + pstr('SIM')
        elif code == 0x1006:
            rparams = [len(objects)]
        elif code == 0x1007:
            parent = params[2]
            with lock:
                if parent == 0xffffffff:
                    hs = [h for h, o in objects.items() if o['parent'] == 0]
                elif parent == 0:
                    hs = list(objects)
                else:
                    hs = [h for h, o in objects.items() if o['parent'] == parent]
            data = arr32(hs)
        elif code == 0x1008:
            with lock:
                if params[0] in objects:
                    data = objinfo(params[0])
                else:
                    rc = INVALID_HANDLE
        elif code in (0x1009, 0x101B):
            with lock:
                o = objects.get(params[0])
                if o:
                    stats['downloads'] += code == 0x1009 or params[1] == 0
            if not o:
                rc = INVALID_HANDLE
            elif code == 0x1009:
                data = o['data']
            else:
                data = o['data'][params[1]:params[1] + params[2]]
                rparams = [len(data)]
            log_event('get_object', params[0])
        elif code == 0x100B:
            with lock:
                if params[0] in objects:
                    del objects[params[0]]
                    stats['deletes'] += 1
                else:
                    rc = INVALID_HANDLE
        elif code == 0x100E:
            log_event('initiate_capture')
            with lock:
                stats['last_initiate_us'] = int(time.time() * 1e6)
                if state['busy'] > 0:
                    state['busy'] -= 1
                    rc = DEVICE_BUSY
                elif state['error'] > 0:
                    state['error'] -= 1
                    rc = GENERAL_ERROR
                elif state['storagefull']:
                    rc = STORE_FULL
            if rc == OK:
                threading.Thread(target=do_capture, daemon=True).start()
        else:
            rc = NOT_SUPPORTED
        if data is not None and rc == OK:
            s.sendall(pkt(9, struct.pack('<IQ', tid, len(data))))
            view = memoryview(data)
            off = 0
            while len(data) - off > 262144:
                s.sendall(pkt(10, struct.pack('<I', tid) + view[off:off + 262144].tobytes()))
                off += 262144
            s.sendall(pkt(12, struct.pack('<I', tid) + view[off:].tobytes()))
        s.sendall(pkt(7, struct.pack('<HI', rc, tid) + b''.join(struct.pack('<I', x) for x in rparams)))


def conn(s):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with lock:
        sessions.append(s)
        stats['connections'] += 1
    try:
        t, _p = readpkt(s)
        if t == 1:  # Init Command Request
            s.sendall(pkt(2, struct.pack('<I', 1) + b'\x11' * 16 + 'ptpip-sim\x00'.encode('utf-16-le') + struct.pack('<I', 0x10000)))
            handle_cmd(s)
        elif t == 3:  # Init Event Request
            s.sendall(pkt(4, b''))
            evt_sock[0] = s
            while s.recv(100):
                pass
    except (EOFError, OSError, struct.error):
        pass
    finally:
        with lock:
            if s in sessions:
                sessions.remove(s)
        if evt_sock[0] is s:
            evt_sock[0] = None
        try:
            s.close()
        except OSError:
            pass


def control_conn(c):
    f = c.makefile('rw')
    try:
        for line in f:
            w = line.split()
            if not w:
                continue
            reply = 'ok'
            with lock:
                try:
                    if w[0] == 'storagefull':
                        state['storagefull'] = w[1] == 'on'
                    elif w[0] == 'stats':
                        reply = json.dumps(stats)
                    elif w[0] == 'disconnect':
                        for s in list(sessions):
                            try:
                                s.shutdown(socket.SHUT_RDWR)
                            except OSError:
                                pass
                    elif w[0] in ('busy', 'error', 'noevent', 'evstorefull', 'delay', 'slow'):
                        state[w[0]] = int(w[1])
                    else:
                        reply = 'error unknown command'
                except (IndexError, ValueError):
                    reply = 'error bad argument'
            f.write(reply + '\n')
            f.flush()
    except OSError:
        pass
    c.close()


def serve_control(srv):
    while True:
        c, _ = srv.accept()
        threading.Thread(target=control_conn, args=(c,), daemon=True).start()


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.bind, args.port))
    srv.listen(16)
    ctl = socket.socket()
    ctl.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ctl.bind(('127.0.0.1', args.control_port))
    ctl.listen(4)
    threading.Thread(target=serve_control, args=(ctl,), daemon=True).start()
    print('LISTENING %d' % srv.getsockname()[1], flush=True)
    print('CONTROL %d' % ctl.getsockname()[1], flush=True)
    try:
        while True:
            c, _ = srv.accept()
            threading.Thread(target=conn, args=(c,), daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
