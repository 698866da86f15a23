#!/usr/bin/env python3
"""The real gphoto2 CLI (libgphoto2 ptp2 + ptpip) against ptpip-sim2 over loopback.

    gphoto2_cli_test.py --sim tests/ptpip-sim2/ptpip_sim2.py        # the checks (CTest)
    gphoto2_cli_test.py --sim build/tests/ptpip-sim/ptpip-sim --bench 20   # per-shot time

Every gphoto2 run gets its own HOME (libgphoto2 keeps its GUID there). The CLI exits 0 even
when a capture failed, so the checks look at the files. Exit 0 = all checks passed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

FAILURES = []


def check(cond, what):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        FAILURES.append(what)
    return cond


class Sim:
    def __init__(self, path, args, python, log_path):
        cmd = ([python, "-S", path] if path.endswith(".py") else [path]) + args + ["--port", "0"]
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"LISTENING (\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("simulator did not start: %r (log %s)" % (line, log_path))
        self.port = int(m.group(1))

    def port_string(self):
        return "ptpip:127.0.0.1:%d:%d" % (self.port, self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def gphoto2(sim, args, workdir, timeout=60):
    home = tempfile.mkdtemp(prefix="home-", dir=workdir)
    env = dict(os.environ, HOME=home, LANG="C", LC_ALL="C")
    t0 = time.monotonic()
    r = subprocess.run(["gphoto2", "--port", sim.port_string(), "--camera", "PTP/IP Camera"] +
                       args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), time.monotonic() - t0


def capture(sim, outdir, workdir):
    return gphoto2(sim, ["--capture-image-and-download", "--filename", outdir + "/%f.%C"], workdir)


def scenario(name, sim_path, sim_args, shots, size, python, workdir, expect_ops=(),
             forbid_ops=()):
    """Starts the simulator, captures `shots` times, checks every file and the ops used."""
    log_path = os.path.join(workdir, name + ".sim.log")
    sim = Sim(sim_path, sim_args + ["--image-size", str(size), "--verbose"], python, log_path)
    outdir = os.path.join(workdir, name)
    os.mkdir(outdir)
    try:
        for i in range(shots):
            before = set(os.listdir(outdir))
            rc, out, secs = capture(sim, outdir, workdir)
            new = sorted(set(os.listdir(outdir)) - before)
            ok = check(rc == 0, "%s shot %d: gphoto2 exit 0 (%.0f ms)" % (name, i + 1, secs * 1000))
            ok &= check(len(new) == 1, "%s shot %d: one new file %s" % (name, i + 1, new))
            if new:
                path = os.path.join(outdir, new[0])
                got = os.path.getsize(path)
                ok &= check(got == size, "%s shot %d: %s is %d bytes (want %d)" %
                            (name, i + 1, new[0], got, size))
                with open(path, "rb") as f:
                    data = f.read()
                ok &= check(data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9",
                            "%s shot %d: JPEG SOI/EOI" % (name, i + 1))
                ok &= check(b"Exif\x00\x00" in data[:64], "%s shot %d: Exif APP1" % (name, i + 1))
            if not ok:
                print(out)
    finally:
        code = sim.stop()
    check(code == 0, "%s: simulator exits 0 on SIGTERM (got %s)" % (name, code))
    with open(log_path, "r", errors="replace") as f:
        ops = set(re.findall(r" op (0x[0-9a-f]{4}) ", f.read()))
    for op in expect_ops:
        check(op in ops, "%s: libgphoto2 used op %s" % (name, op))
    for op in forbid_ops:
        check(op not in ops, "%s: libgphoto2 did not use op %s" % (name, op))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim", required=True, help="ptpip_sim2.py (or another simulator binary)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--bench", type=int, default=0,
                    help="only time N capture-and-download runs and print the per-shot time")
    ap.add_argument("--sim-arg", action="append", default=[], help="extra simulator flag")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if not shutil.which("gphoto2"):
        print("gphoto2 CLI not installed")
        return 1
    workdir = tempfile.mkdtemp(prefix="ptpip-sim2-cli-")
    try:
        if a.bench:
            sim = Sim(a.sim, a.sim_arg, a.python, os.path.join(workdir, "bench.sim.log"))
            outdir = os.path.join(workdir, "bench")
            os.mkdir(outdir)
            times = []
            try:
                for _ in range(a.bench):
                    rc, out, secs = capture(sim, outdir, workdir)
                    times.append(secs * 1000)
            finally:
                sim.stop()
            files = os.listdir(outdir)
            times.sort()
            print("%s %s: %d shots, %d files, per shot median %.0f ms, min %.0f, max %.0f" %
                  (os.path.basename(a.sim), " ".join(a.sim_arg), a.bench, len(files),
                   times[len(times) // 2], times[0], times[-1]))
            return 0 if len(files) == a.bench else 1

        # Defaults: no GetPartialObject advertised, so a file above 1 MiB comes by GetObject.
        scenario("default", a.sim, ["--serial", "CLI-SIM2-7"], 3, 300000, a.python, workdir,
                 expect_ops=["0x1009", "0x100e", "0x100b"], forbid_ops=["0x101b"])
        scenario("no-partial-big", a.sim, ["--no-partial"], 2, 2500000, a.python, workdir,
                 expect_ops=["0x1009"], forbid_ops=["0x101b"])
        # Advertised: libgphoto2 fetches a file above 1 MiB in GetPartialObject pieces.
        scenario("partial-big", a.sim, ["--partial"], 2, 2500000, a.python, workdir,
                 expect_ops=["0x101b"])
        scenario("partial-small", a.sim, ["--partial", "--download-mbps", "0"], 2, 123457,
                 a.python, workdir, expect_ops=["0x1009"])
        # CaptureComplete first, ObjectAdded 15 ms later (libgphoto2 waits about 20 polls).
        scenario("complete-first", a.sim, ["--event-order", "complete-first",
                                           "--event-gap-ms", "15", "--capture-ms", "30"],
                 2, 50000, a.python, workdir)
        scenario("slow-setup", a.sim, ["--setup-delay-ms", "300", "--download-mbps", "50"],
                 1, 400000, a.python, workdir)

        # --summary shows the serial (and the model and manufacturer).
        sim = Sim(a.sim, ["--serial", "SUMMARY-42", "--model", "Bench Body 3"], a.python,
                  os.path.join(workdir, "summary.sim.log"))
        try:
            rc, out, _ = gphoto2(sim, ["--summary"], workdir)
        finally:
            sim.stop()
        check(rc == 0, "summary: exit 0")
        check(re.search(r"Serial Number: SUMMARY-42", out) is not None, "summary: serial shown")
        check("Model: Bench Body 3" in out, "summary: model shown")
        if FAILURES:
            print(out)

        # A size below the minimum is refused with exit 2.
        r = subprocess.run([a.python, "-S", a.sim, "--port", "0", "--image-size", "100"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(r.returncode == 2 and b"minimum" in r.stderr, "--image-size 100: exit 2, says minimum")
    finally:
        if a.keep or FAILURES:
            print("work directory kept: " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("%d failure(s)" % len(FAILURES))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
