// ptpip-sim: a PTP/IP camera simulator for tests. See README.md beside this file.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "camera.h"
#include "event_log.h"
#include "options.h"
#include "server.h"

namespace {

const char kUsage[] =
    "usage: ptpip-sim [options]\n"
    "A PTP/IP camera simulator (ptp2 generic PTP camera, one storage, JPEG captures).\n"
    "Connect with libgphoto2 as model \"PTP/IP Camera\", port ptpip:127.0.0.1:P:P.\n"
    "\n"
    "  --port N               PTP/IP port (default 15740; 0 picks a free one)\n"
    "  --bind ADDR            IPv4 address to listen on (default 127.0.0.1)\n"
    "  --control-port N       plain-text control port (default off; 0 picks a free one)\n"
    "  --serial S             DeviceInfo SerialNumber (default SIM0001)\n"
    "  --model S              DeviceInfo Model (default \"PTP/IP Camera\")\n"
    "  --manufacturer S       DeviceInfo Manufacturer (default photorig)\n"
    "  --capture-delay-ms N   InitiateCapture -> ObjectAdded delay (default 0)\n"
    "  --image-size N         exact bytes of each captured JPEG (default 200000)\n"
    "  --image-width W        picture width (default 640)\n"
    "  --image-height H       picture height (default 480)\n"
    "  --fail-busy N          answer DeviceBusy (0x2019) to the next N InitiateCapture\n"
    "  --fail-error N         answer GeneralError (0x2002) to the next N InitiateCapture\n"
    "  --no-event N           next N captures: OK, image stored, but no "
    "ObjectAdded/CaptureComplete\n"
    "  --disconnect-after N   drop the PTP/IP connections right after the N-th completed\n"
    "                         download (GetObject / last GetPartialObject piece); keeps listening\n"
    "  --slow-ms N            delay every operation response by N ms\n"
    "  --storage-full         answer StoreFull (0x200C) to InitiateCapture\n"
    "  --max-objects N        images the card holds before StoreFull (default 1000)\n"
    "  --raw-pair             every capture also stores IMG_nnnn.DNG (RAW), announced before the "
    "JPEG\n"
    "  --raw-size N           exact size of each RAW file (300000)\n"
    "  --keep-on-card         accepted for clarity: images stay until DeleteObject (the default)\n"
    "  --event-log FILE       append one JSON line per event (CLOCK_REALTIME microseconds)\n"
    "  --hostile MODE         misbehave (issue 15): name-dotdot, name-slash, name-nul,\n"
    "                         name-control, name-latin1, name-utf16, name-long (127 chars),\n"
    "                         name-overlong (250 chars: over libgphoto2's char[128]) (file "
    "names);\n"
    "                         folder-dotdot, folder-slash, folder-nul, folder-control,\n"
    "                         folder-latin1, folder-long (254 chars), folder-deep (3 more\n"
    "                         254-char levels: path over 1024 bytes), folder-cycle (the photo\n"
    "                         folder's parent's parent is itself) (the photo folder);\n"
    "                         size-larger, size-smaller, size-4g (ObjectCompressedSize lies);\n"
    "                         download-stall, download-endless (GetObject never ends);\n"
    "                         event-flood (ObjectAdded every 100 ms, no CaptureComplete);\n"
    "                         duplicate-handles (every ObjectAdded sent twice);\n"
    "                         thumb-huge (an 8 MiB thumbnail)\n"
    "  --verbose              log connections and operations to stderr\n"
    "  --help                 this text\n"
    "\n"
    "On ready prints \"LISTENING <port>\" and then, with --control-port, \"CONTROL <port>\".\n"
    "Control commands (one per line, one line answered): busy N, error N, noevent N,\n"
    "evstorefull N, storagefull on|off, slow MS, delay MS, size BYTES, disconnect,\n"
    "disconnectafter N, stats, reset, clear, ping, help. See README.md.\n";

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "ptpip-sim: %s\n%s", msg.c_str(), kUsage);
    std::exit(2);
}

long long parse_num(const std::string& flag, const std::string& v, long long lo, long long hi) {
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || errno || *end || x < lo || x > hi)
        usage_error(flag + ": expected an integer in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "], got '" + v + "'");
    return x;
}

ptpsim::Options parse_args(int argc, char** argv) {
    ptpsim::Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i], val;
        bool has_inline = false;
        size_t eq = a.find('=');
        if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
            val = a.substr(eq + 1);
            a = a.substr(0, eq);
            has_inline = true;
        }
        auto value = [&]() -> std::string {
            if (has_inline) return val;
            if (i + 1 >= argc) usage_error(a + " needs a value");
            return argv[++i];
        };
        auto flag_only = [&] {
            if (has_inline) usage_error(a + " takes no value");
        };
        const long long kMaxInt = 1000000000LL;
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else if (a == "--port") {
            o.port = static_cast<int>(parse_num(a, value(), 0, 65535));
        } else if (a == "--bind") {
            o.bind = value();
        } else if (a == "--control-port") {
            o.control_port = static_cast<int>(parse_num(a, value(), 0, 65535));
        } else if (a == "--serial") {
            o.serial = value();
        } else if (a == "--model") {
            o.model = value();
        } else if (a == "--manufacturer") {
            o.manufacturer = value();
        } else if (a == "--capture-delay-ms") {
            o.capture_delay_ms = static_cast<int>(parse_num(a, value(), 0, kMaxInt));
        } else if (a == "--image-size") {
            o.image_size = static_cast<uint64_t>(parse_num(a, value(), 1, 0xFFFFFFFELL));
        } else if (a == "--image-width") {
            o.image_width = static_cast<uint32_t>(parse_num(a, value(), 1, 65535));
        } else if (a == "--image-height") {
            o.image_height = static_cast<uint32_t>(parse_num(a, value(), 1, 65535));
        } else if (a == "--fail-busy") {
            o.fail_busy = static_cast<int>(parse_num(a, value(), 0, kMaxInt));
        } else if (a == "--fail-error") {
            o.fail_error = static_cast<int>(parse_num(a, value(), 0, kMaxInt));
        } else if (a == "--no-event") {
            o.no_event = static_cast<int>(parse_num(a, value(), 0, kMaxInt));
        } else if (a == "--disconnect-after") {
            o.disconnect_after = static_cast<int>(parse_num(a, value(), 0, kMaxInt));
        } else if (a == "--slow-ms") {
            o.slow_ms = static_cast<int>(parse_num(a, value(), 0, kMaxInt));
        } else if (a == "--storage-full") {
            flag_only();
            o.storage_full = true;
        } else if (a == "--event-log") {
            o.event_log = value();
        } else if (a == "--keep-on-card") {
            flag_only();
            o.keep_on_card = true;
        } else if (a == "--raw-pair") {
            flag_only();
            o.raw_pair = true;
        } else if (a == "--raw-size") {
            o.raw_size = static_cast<uint64_t>(parse_num(a, value(), 64, 0xFFFFFFFELL));
        } else if (a == "--max-objects") {
            o.max_objects = static_cast<int>(parse_num(a, value(), 0, kMaxInt));
        } else if (a == "--hostile") {
            o.hostile = value();
            static const char* const kModes[] = {
                "name-dotdot",      "name-slash",   "name-nul",          "name-control",
                "name-latin1",      "name-utf16",   "name-long",         "name-overlong",
                "size-larger",      "size-smaller", "size-4g",           "download-stall",
                "download-endless", "event-flood",  "duplicate-handles", "thumb-huge",
                "folder-dotdot",    "folder-slash", "folder-nul",        "folder-control",
                "folder-latin1",    "folder-long",  "folder-deep",       "folder-cycle"};
            bool known = false;
            for (const char* m : kModes) known = known || o.hostile == m;
            if (!known) usage_error("--hostile: unknown mode '" + o.hostile + "'");
        } else if (a == "--verbose") {
            flag_only();
            o.verbose = true;
        } else {
            usage_error("unknown argument '" + a + "'");
        }
    }
    for (const std::string* s : {&o.serial, &o.model, &o.manufacturer})
        if (s->size() > 200) usage_error("strings are limited to 200 characters");
    return o;
}

int g_stop_pipe[2] = {-1, -1};

}  // namespace

int main(int argc, char** argv) {
    ptpsim::Options opt = parse_args(argc, argv);

    ::signal(SIGPIPE, SIG_IGN);
    // SIGINT/SIGTERM are blocked in every thread and taken by sigwait() in one thread,
    // which wakes the main loop through a pipe.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    if (::pipe(g_stop_pipe) != 0) {
        std::perror("ptpip-sim: pipe");
        return 1;
    }
    std::thread([set] {
        int sig = 0;
        sigwait(&set, &sig);
        char c = 1;
        ssize_t w = ::write(g_stop_pipe[1], &c, 1);
        (void)w;
    }).detach();

    ptpsim::EventLog log;
    if (!log.open(opt.event_log)) {
        std::fprintf(stderr, "ptpip-sim: cannot open --event-log %s: %s\n", opt.event_log.c_str(),
                     std::strerror(errno));
        return 1;
    }
    ptpsim::Camera camera(opt, log);
    uint64_t min_size = 0;
    if (!camera.validate(&min_size)) {
        std::fprintf(stderr,
                     "ptpip-sim: --image-size %llu is not possible for %ux%u: it must be at least "
                     "%llu bytes (and below 4 GiB)\n",
                     static_cast<unsigned long long>(opt.image_size), opt.image_width,
                     opt.image_height, static_cast<unsigned long long>(min_size));
        return 2;
    }
    camera.start_warmup();
    ptpsim::Server server(opt, camera, log);
    std::string err;
    if (!server.listen(&err)) {
        std::fprintf(stderr, "ptpip-sim: %s\n", err.c_str());
        return 1;
    }
    std::printf("LISTENING %d\n", server.port());
    if (server.control_port() >= 0) std::printf("CONTROL %d\n", server.control_port());
    std::fflush(stdout);
    if (opt.verbose)
        std::fprintf(stderr, "ptpip-sim: serial %s, port %d, image %llu bytes %ux%u\n",
                     opt.serial.c_str(), server.port(),
                     static_cast<unsigned long long>(opt.image_size), opt.image_width,
                     opt.image_height);

    server.run(g_stop_pipe[0]);
    if (opt.verbose) std::fprintf(stderr, "ptpip-sim: stopped\n");
    return 0;
}
