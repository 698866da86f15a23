#include "server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ptp.h"

namespace ptpsim {
namespace {

constexpr size_t kMaxInitPacket = 4096;
constexpr size_t kMaxCmdPacket = 64u << 20;  // a data packet from the initiator
constexpr size_t kMaxDataPhase = 16u << 20;  // SetDevicePropValue & co. are tiny
constexpr size_t kChunk = 1u << 20;          // data packet payload when sending > kChunk
constexpr int kIovBatch = 512;

// Kernel receive time (SO_TIMESTAMPNS) of the last bytes read_full() read on this thread,
// in epoch microseconds; 0 when the socket does not report one. A real camera has its own
// CPU: the moment a command reaches it is when its bytes arrive, not when this process (one
// of many on a shared test machine) gets scheduled to read them.
thread_local int64_t last_rx_us = 0;

ssize_t recv_stamped(int fd, void* p, size_t n) {
    iovec iov{p, n};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t r = ::recvmsg(fd, &msg, 0);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); r > 0 && c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts;
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            last_rx_us = static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
        }
    }
    return r;
}

bool read_full(int fd, void* buf, size_t n) {
    uint8_t* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
        ssize_t r = recv_stamped(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

bool send_iov(int fd, std::vector<iovec>& iov) {
    size_t idx = 0;
    while (idx < iov.size()) {
        msghdr msg{};
        msg.msg_iov = &iov[idx];
        msg.msg_iovlen = std::min<size_t>(iov.size() - idx, kIovBatch);
        ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        size_t left = static_cast<size_t>(w);
        while (idx < iov.size() && left >= iov[idx].iov_len) {
            left -= iov[idx].iov_len;
            ++idx;
        }
        if (left > 0) {
            iov[idx].iov_base = static_cast<uint8_t*>(iov[idx].iov_base) + left;
            iov[idx].iov_len -= left;
        }
    }
    return true;
}

bool send_bytes(int fd, const std::vector<uint8_t>& b) {
    std::vector<iovec> iov{{const_cast<uint8_t*>(b.data()), b.size()}};
    return send_iov(fd, iov);
}

// Reads one PTP/IP packet: header (length, type) and payload (length - 8 bytes).
bool read_packet(int fd, uint32_t& type, std::vector<uint8_t>& payload, size_t max_len) {
    uint8_t hdr[8];
    if (!read_full(fd, hdr, 8)) return false;
    uint32_t len = rd32(hdr);
    type = rd32(hdr + 4);
    if (len < 8 || len > max_len) return false;
    payload.resize(len - 8);
    return payload.empty() || read_full(fd, payload.data(), payload.size());
}

std::vector<uint8_t> packet(uint32_t type, const std::vector<uint8_t>& payload) {
    Writer w;
    w.u32(static_cast<uint32_t>(8 + payload.size())).u32(type);
    w.raw(payload.data(), payload.size());
    return w.take();
}

std::vector<uint8_t> container(uint32_t type, uint16_t code, uint32_t tid,
                               const std::vector<uint32_t>& params) {
    Writer w;
    w.u32(static_cast<uint32_t>(14 + 4 * params.size())).u32(type).u16(code).u32(tid);
    for (uint32_t p : params) w.u32(p);
    return w.take();
}

int make_listener(const std::string& addr, int port, int* bound_port, std::string* err) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) {
        *err = "bad --bind address: " + addr;
        ::close(fd);
        return -1;
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 || ::listen(fd, 64) < 0) {
        *err = "bind " + addr + ":" + std::to_string(port) + ": " + std::strerror(errno);
        ::close(fd);
        return -1;
    }
    socklen_t sl = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl);
    *bound_port = ntohs(sa.sin_port);
    return fd;
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

bool parse_int(const std::string& s, int* out) {
    if (s.empty()) return false;
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(s.c_str(), &end, 10);
    if (errno || *end || v < 0 || v > 1000000000L) return false;
    *out = static_cast<int>(v);
    return true;
}

}  // namespace

Server::Server(const Options& opt, Camera& camera, EventLog& log)
    : opt_(opt), camera_(camera), log_(log) {}

Server::~Server() {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (control_fd_ >= 0) ::close(control_fd_);
}

bool Server::listen(std::string* err) {
    listen_fd_ = make_listener(opt_.bind, opt_.port, &port_, err);
    if (listen_fd_ < 0) return false;
    if (opt_.control_port >= 0) {
        control_fd_ = make_listener(opt_.bind, opt_.control_port, &control_port_, err);
        if (control_fd_ < 0) return false;
    }
    return true;
}

// --- threads and the connection registry --------------------------------------------

void Server::spawn(std::function<void()> fn) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    Worker w;
    w.done = done;
    w.thread = std::thread([fn = std::move(fn), done] {
        fn();
        done->store(true);
    });
    workers_.push_back(std::move(w));
}

void Server::reap(bool all) {
    for (auto it = workers_.begin(); it != workers_.end();) {
        if (all || it->done->load()) {
            it->thread.join();
            it = workers_.erase(it);
        } else {
            ++it;
        }
    }
}

uint64_t Server::register_conn(int fd, Kind kind) {
    std::lock_guard<std::mutex> lock(reg_mu_);
    uint64_t id = next_conn_id_++;
    conns_[id] = {fd, kind};
    if (stopping_) ::shutdown(fd, SHUT_RDWR);
    return id;
}

void Server::set_kind(uint64_t id, Kind kind) {
    std::lock_guard<std::mutex> lock(reg_mu_);
    auto it = conns_.find(id);
    if (it != conns_.end()) it->second.second = kind;
}

void Server::close_conn(uint64_t id) {
    std::lock_guard<std::mutex> lock(reg_mu_);
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    ::close(it->second.first);
    conns_.erase(it);
}

void Server::shutdown_conn(uint64_t id) {
    std::lock_guard<std::mutex> lock(reg_mu_);
    auto it = conns_.find(id);
    if (it != conns_.end()) ::shutdown(it->second.first, SHUT_RDWR);
}

void Server::shutdown_all(bool include_control) {
    std::lock_guard<std::mutex> lock(reg_mu_);
    for (auto& kv : conns_)
        if (include_control || kv.second.second != Kind::Control)
            ::shutdown(kv.second.first, SHUT_RDWR);
}

bool Server::interruptible_sleep(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(sleep_mu_);
    return !sleep_cv_.wait_for(lock, d, [this] { return stopping_.load(); });
}

// --- main loop ------------------------------------------------------------------------

void Server::run(int stop_fd) {
    spawn([this] { scheduler_loop(); });
    while (true) {
        pollfd pfd[3];
        int n = 0;
        pfd[n++] = {stop_fd, POLLIN, 0};
        pfd[n++] = {listen_fd_, POLLIN, 0};
        if (control_fd_ >= 0) pfd[n++] = {control_fd_, POLLIN, 0};
        int r = ::poll(pfd, static_cast<nfds_t>(n), 500);
        reap(false);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pfd[0].revents) break;
        for (int i = 1; i < n; ++i) {
            if (!(pfd[i].revents & POLLIN)) continue;
            int cfd = ::accept(pfd[i].fd, nullptr, nullptr);
            if (cfd < 0) continue;
            ::fcntl(cfd, F_SETFD, FD_CLOEXEC);
            int one = 1;
            ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (pfd[i].fd == listen_fd_)
                spawn([this, cfd] { serve_ptpip(cfd); });
            else
                spawn([this, cfd] { control_loop(cfd); });
        }
    }
    stopping_ = true;
    {
        std::lock_guard<std::mutex> lock(sched_mu_);
        sched_cv_.notify_all();
    }
    {
        std::lock_guard<std::mutex> lock(sleep_mu_);
        sleep_cv_.notify_all();
    }
    shutdown_all(true);
    reap(true);
}

// --- PTP/IP ---------------------------------------------------------------------------

void Server::serve_ptpip(int fd) {
    uint64_t id = register_conn(fd, Kind::Pending);
    std::vector<uint8_t> payload;
    uint32_t type = 0;
    while (true) {
        if (!read_packet(fd, type, payload, kMaxInitPacket)) break;
        if (type == kPktProbeRequest) {
            if (!send_bytes(fd, packet(kPktProbeResponse, {}))) break;
            continue;
        }
        if (type == kPktInitCommandRequest) {
            // GUID (16), friendly name (UCS-2, NUL-terminated), protocol version (4).
            if (payload.size() < 16 + 2) break;
            std::string name;
            for (size_t i = 16; i + 1 < payload.size(); i += 2) {
                uint16_t c = rd16(&payload[i]);
                if (c == 0) break;
                if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                    name.push_back(static_cast<char>(c));
            }
            auto s = std::make_shared<Session>();
            s->cmd_id = id;
            {
                std::lock_guard<std::mutex> lock(sessions_mu_);
                s->conn = next_session_++;
                sessions_[s->conn] = s;
            }
            set_kind(id, Kind::Command);
            // Init Command Ack: connection number, responder GUID, friendly name, version.
            Writer w;
            w.u32(s->conn);
            uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
            for (unsigned char c : opt_.serial) {
                h1 = (h1 ^ c) * 1099511628211ull;
                h2 = (h2 ^ c) * 0x100000001b3ull + 7;
            }
            for (int i = 0; i < 8; ++i) w.u8(static_cast<uint8_t>(h1 >> (8 * i)));
            for (int i = 0; i < 8; ++i) w.u8(static_cast<uint8_t>(h2 >> (8 * i)));
            for (char c : opt_.model) w.u16(static_cast<uint8_t>(c));
            w.u16(0);
            w.u32(0x00010000);  // version 1.0
            camera_.note_connection(true);
            log_.log("connect", 0, s->conn, ",\"initiator\":\"" + name + "\"");
            if (opt_.verbose)
                std::fprintf(stderr, "ptpip-sim: connection %u from '%s'\n", s->conn, name.c_str());
            if (send_bytes(fd, packet(kPktInitCommandAck, w.take()))) command_loop(s, fd);
            // The command connection ends the session: drop its event connection too.
            uint64_t evt_id = 0;
            {
                std::lock_guard<std::mutex> lock(s->mu);
                s->closed = true;
                evt_id = s->evt_id;
                s->pending_events.clear();
            }
            if (evt_id) shutdown_conn(evt_id);
            {
                std::lock_guard<std::mutex> lock(sessions_mu_);
                sessions_.erase(s->conn);
            }
            camera_.note_connection(false);
            log_.log("disconnect", 0, s->conn);
            if (opt_.verbose) std::fprintf(stderr, "ptpip-sim: connection %u closed\n", s->conn);
            break;
        }
        if (type == kPktInitEventRequest) {
            if (payload.size() < 4) break;
            uint32_t conn = rd32(payload.data());
            std::shared_ptr<Session> s;
            {
                std::lock_guard<std::mutex> lock(sessions_mu_);
                auto it = sessions_.find(conn);
                if (it != sessions_.end()) s = it->second;
            }
            bool ok = false;
            if (s) {
                std::lock_guard<std::mutex> lock(s->mu);
                if (!s->closed && s->evt_id == 0) {
                    ok = send_bytes(fd, packet(kPktInitEventAck, {}));
                    if (ok) {
                        s->evt_id = id;
                        s->evt_fd = fd;
                        for (const auto& ev : s->pending_events)
                            if (!send_bytes(fd, ev)) break;
                        s->pending_events.clear();
                    }
                }
            }
            if (!ok) {
                send_bytes(fd, packet(kPktInitFail, Writer().u32(1).take()));
                break;
            }
            set_kind(id, Kind::Event);
            event_loop(s, fd, id);
            break;
        }
        break;  // anything else first: not PTP/IP
    }
    close_conn(id);
}

void Server::event_loop(const std::shared_ptr<Session>& s, int fd, uint64_t id) {
    (void)id;
    std::vector<uint8_t> payload;
    uint32_t type = 0;
    while (read_packet(fd, type, payload, kMaxInitPacket)) {
        if (type != kPktProbeRequest) break;  // the initiator sends nothing else here
        std::lock_guard<std::mutex> lock(s->mu);
        if (!send_bytes(fd, packet(kPktProbeResponse, {}))) break;
    }
    uint64_t cmd_id = 0;
    {
        std::lock_guard<std::mutex> lock(s->mu);
        s->evt_fd = -1;
        s->evt_id = 0;
        s->closed = true;  // no second event connection for this session
        cmd_id = s->cmd_id;
    }
    shutdown_conn(cmd_id);
}

void Server::command_loop(const std::shared_ptr<Session>& s, int fd) {
    SessionCtx ctx;
    ctx.conn = s->conn;
    std::vector<uint8_t> payload;
    uint32_t type = 0;
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    while (!stopping_) {
        last_rx_us = 0;
        if (!read_packet(fd, type, payload, kMaxCmdPacket)) break;
        const int64_t request_rx_us = last_rx_us;
        if (type == kPktProbeRequest) {
            if (!send_bytes(fd, packet(kPktProbeResponse, {}))) break;
            continue;
        }
        if (type != kPktCmdRequest) break;  // malformed or out of step: drop the connection
        // Operation request: data phase (4), code (2), transaction id (4), up to 5 params.
        if (payload.size() < 10 || (payload.size() - 10) % 4 != 0 || (payload.size() - 10) / 4 > 5)
            break;
        OpRequest req;
        req.arrival_us = request_rx_us;
        uint32_t dataphase = rd32(&payload[0]);
        req.code = rd16(&payload[4]);
        req.tid = rd32(&payload[6]);
        req.nparams = static_cast<int>((payload.size() - 10) / 4);
        for (int i = 0; i < req.nparams; ++i) req.params[i] = rd32(&payload[10 + 4 * i]);
        if (dataphase == 2) {  // initiator -> responder: Start Data, Data..., End Data
            if (!read_packet(fd, type, payload, kMaxInitPacket) || type != kPktStartData ||
                payload.size() < 12)
                break;
            uint64_t total = rd32(&payload[4]) | (static_cast<uint64_t>(rd32(&payload[8])) << 32);
            bool ok = false;
            while (read_packet(fd, type, payload, kMaxCmdPacket)) {
                if ((type != kPktData && type != kPktEndData) || payload.size() < 4) break;
                if (req.data.size() + payload.size() - 4 > kMaxDataPhase) break;
                req.data.insert(req.data.end(), payload.begin() + 4, payload.end());
                if (type == kPktEndData) {
                    ok = total == 0xFFFFFFFFFFFFFFFFull || total == req.data.size();
                    break;
                }
            }
            if (!ok) break;
            req.has_data = true;
        }
        if (opt_.verbose)
            std::fprintf(stderr, "ptpip-sim: [%u] op 0x%04x tid %u p1 0x%x p2 0x%x p3 0x%x\n",
                         s->conn, req.code, req.tid, req.params[0], req.params[1], req.params[2]);
        int slow = camera_.slow_ms();
        if (slow > 0 && !interruptible_sleep(std::chrono::milliseconds(slow))) break;
        OpReply r = camera_.execute(ctx, req);
        if (!send_reply(fd, req, r)) break;
        if (r.capture_handle && (r.capture_events || r.store_full_event)) {
            if (r.delay_ms <= 0) {
                send_capture_events(s, r.capture_handle, r.raw_handle, req.tid, r.store_full_event);
            } else {
                std::lock_guard<std::mutex> lock(sched_mu_);
                jobs_.emplace(
                    std::chrono::steady_clock::now() + std::chrono::milliseconds(r.delay_ms),
                    Job{s, r.capture_handle, r.raw_handle, req.tid, r.store_full_event});
                sched_cv_.notify_all();
            }
        }
        if (r.download_handle) {
            log_.log("get_object", r.download_handle, s->conn,
                     ",\"bytes\":" + std::to_string(r.data ? r.data->size() : 0));
            if (camera_.note_download(r.download_handle, s->conn)) {
                if (opt_.verbose) std::fprintf(stderr, "ptpip-sim: --disconnect-after reached\n");
                break;
            }
        }
    }
}

bool Server::send_reply(int fd, const OpRequest& req, const OpReply& r) {
    std::vector<uint8_t> resp = container(kPktCmdResponse, r.code, req.tid, r.params);
    if (!r.has_data) return send_bytes(fd, resp);
    if ((req.code == kOpGetObject || req.code == kOpGetPartialObject) &&
        opt_.hostile.rfind("download-", 0) == 0) {
        return send_endless_data(fd, req, r);
    }

    const uint8_t* data = r.data ? r.data->data() + r.off : nullptr;
    size_t len = r.len;
    // Start Data: transaction id, total length (64 bit).
    Writer start;
    start.u32(20).u32(kPktStartData).u32(req.tid).u64(len);
    size_t chunks = len <= kChunk ? 1 : (len + kChunk - 1) / kChunk;
    std::vector<std::array<uint8_t, 12>> hdrs(chunks);
    std::vector<iovec> iov;
    iov.reserve(2 * chunks + 2);
    iov.push_back({start.bytes().data(), start.size()});
    for (size_t i = 0; i < chunks; ++i) {
        size_t off = i * kChunk;
        size_t n = std::min(kChunk, len - std::min(len, off));
        bool last = i + 1 == chunks;
        wr32(hdrs[i].data(), static_cast<uint32_t>(12 + n));
        wr32(hdrs[i].data() + 4, last ? kPktEndData : kPktData);
        wr32(hdrs[i].data() + 8, req.tid);
        iov.push_back({hdrs[i].data(), 12});
        if (n) iov.push_back({const_cast<uint8_t*>(data + off), n});
    }
    iov.push_back({resp.data(), resp.size()});
    return send_iov(fd, iov);
}

void Server::queue_event(Session& s, uint16_t code, uint32_t tid,
                         const std::vector<uint32_t>& params) {
    std::vector<uint8_t> ev = container(kPktEvent, code, tid, params);
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.closed) return;
    if (s.evt_fd < 0) {
        s.pending_events.push_back(std::move(ev));
        return;
    }
    if (!send_bytes(s.evt_fd, ev)) ::shutdown(s.evt_fd, SHUT_RDWR);
}

void Server::send_capture_events(const std::shared_ptr<Session>& s, uint32_t handle,
                                 uint32_t raw_handle, uint32_t tid, bool store_full) {
    if (store_full) {
        queue_event(*s, kEvStoreFull, tid, {kStorageId});
        log_.log("store_full", handle, s->conn);
        return;
    }
    if (raw_handle) {
        queue_event(*s, kEvObjectAdded, tid, {raw_handle});
        log_.log("object_added", raw_handle, s->conn);
    }
    queue_event(*s, kEvObjectAdded, tid, {handle});
    log_.log("object_added", handle, s->conn);
    if (opt_.hostile == "duplicate-handles") queue_event(*s, kEvObjectAdded, tid, {handle});
    if (opt_.hostile == "event-flood") {
        schedule_flood(s, handle, tid);  // and never CaptureComplete
        return;
    }
    queue_event(*s, kEvCaptureComplete, tid, {});
}

void Server::schedule_flood(const std::shared_ptr<Session>& s, uint32_t handle, uint32_t tid) {
    std::lock_guard<std::mutex> lock(sched_mu_);
    Job job{s, handle, 0, tid, false};
    job.flood = true;
    jobs_.emplace(std::chrono::steady_clock::now() + std::chrono::milliseconds(100), job);
    sched_cv_.notify_all();
}

// --hostile download-stall / download-endless: the data phase of a GetObject never ends.
// Stall: half the object, then nothing until the initiator hangs up. Endless: announces
// 4 GiB and keeps sending. Returns false (drop the connection) when it is over.
bool Server::send_endless_data(int fd, const OpRequest& req, const OpReply& r) {
    const bool stall = opt_.hostile == "download-stall";
    Writer start;
    start.u32(20).u32(kPktStartData).u32(req.tid).u64(stall ? r.len : 0xFFFFFFFEull);
    if (!send_bytes(fd, start.bytes())) return false;
    const uint8_t* data = r.data ? r.data->data() + r.off : nullptr;
    size_t piece = std::min<size_t>(r.len / 2, 65536);
    for (uint64_t sent = 0; !stopping_; sent += piece) {
        if (stall && sent >= r.len / 2) {
            // Until the initiator closes (the read ends) or the simulator stops.
            char b;
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 200) > 0 && ::recv(fd, &b, 1, MSG_PEEK) <= 0) return false;
            continue;
        }
        Writer hdr;
        hdr.u32(static_cast<uint32_t>(12 + piece)).u32(kPktData).u32(req.tid);
        std::vector<uint8_t> pkt = hdr.take();
        pkt.insert(pkt.end(), data, data + piece);
        if (!send_bytes(fd, pkt)) return false;
    }
    return false;
}

void Server::scheduler_loop() {
    std::unique_lock<std::mutex> lock(sched_mu_);
    while (!stopping_) {
        if (jobs_.empty()) {
            sched_cv_.wait(lock);
            continue;
        }
        auto due = jobs_.begin()->first;
        if (std::chrono::steady_clock::now() < due) {
            sched_cv_.wait_until(lock, due);
            continue;
        }
        Job job = jobs_.begin()->second;
        jobs_.erase(jobs_.begin());
        lock.unlock();
        auto s = job.session.lock();
        bool open = false;
        if (s) {
            std::lock_guard<std::mutex> slock(s->mu);
            open = !s->closed;
        }
        if (open) {
            if (!job.flood) {
                send_capture_events(s, job.handle, job.raw_handle, job.tid, job.store_full);
            } else if (uint32_t copy = camera_.add_copy(job.handle)) {
                queue_event(*s, kEvObjectAdded, job.tid, {copy});
                std::lock_guard<std::mutex> relock(sched_mu_);
                jobs_.emplace(std::chrono::steady_clock::now() + std::chrono::milliseconds(100),
                              job);
            }
        }
        lock.lock();
    }
}

// --- control channel ------------------------------------------------------------------

void Server::control_loop(int fd) {
    uint64_t id = register_conn(fd, Kind::Control);
    std::string buf;
    char tmp[1024];
    bool open = true;
    while (open) {
        ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        buf.append(tmp, static_cast<size_t>(r));
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            std::string line = trim(buf.substr(0, nl));
            buf.erase(0, nl + 1);
            if (line.empty()) continue;
            std::string answer = control_command(line) + "\n";
            if (!send_bytes(fd, std::vector<uint8_t>(answer.begin(), answer.end()))) {
                open = false;
                break;
            }
        }
        if (buf.size() > 65536) break;
    }
    close_conn(id);
}

std::string Server::control_command(const std::string& line) {
    std::string cmd = line, arg;
    size_t sp = line.find_first_of(" \t");
    if (sp != std::string::npos) {
        cmd = line.substr(0, sp);
        arg = trim(line.substr(sp + 1));
    }
    int n = 0;
    if (cmd == "busy" || cmd == "error" || cmd == "noevent" || cmd == "evstorefull" ||
        cmd == "slow" || cmd == "delay" || cmd == "disconnectafter") {
        if (!parse_int(arg, &n)) return "ERR " + cmd + " needs a non-negative integer";
        if (cmd == "busy") camera_.set_fail_busy(n);
        if (cmd == "error") camera_.set_fail_error(n);
        if (cmd == "noevent") camera_.set_no_event(n);
        if (cmd == "evstorefull") camera_.set_store_full_event(n);
        if (cmd == "slow") camera_.set_slow_ms(n);
        if (cmd == "delay") camera_.set_capture_delay_ms(n);
        if (cmd == "disconnectafter") camera_.set_disconnect_after(n);
        return "OK";
    }
    if (cmd == "size") {
        // Images of different sizes from one simulator (upload tests of mixed sizes).
        char* end = nullptr;
        errno = 0;
        unsigned long long v =
            arg.empty() || arg[0] == '-' ? 0 : std::strtoull(arg.c_str(), &end, 10);
        if (arg.empty() || errno != 0 || !end || *end != '\0') return "ERR size needs a byte count";
        uint64_t min_size = 0;
        if (!camera_.set_image_size(v, &min_size))
            return "ERR size must be between " + std::to_string(min_size) + " and 4294967294";
        return "OK";
    }
    if (cmd == "storagefull") {
        if (arg != "on" && arg != "off") return "ERR storagefull needs on|off";
        camera_.set_storage_full(arg == "on");
        return "OK";
    }
    if (cmd == "rawpair") {
        if (arg != "on" && arg != "off") return "ERR rawpair needs on|off";
        camera_.set_raw_pair(arg == "on");
        return "OK";
    }
    if (cmd == "disconnect") {
        shutdown_all(false);
        return "OK";
    }
    if (cmd == "stats") return camera_.stats_json();
    if (cmd == "reset") {
        camera_.reset_faults();
        return "OK";
    }
    if (cmd == "clear") {
        camera_.clear_card();
        return "OK";
    }
    if (cmd == "ping") return "PONG";
    if (cmd == "help")
        return "OK commands: busy N, error N, noevent N, evstorefull N, storagefull on|off, "
               "rawpair on|off, "
               "slow MS, delay MS, size BYTES, disconnect, disconnectafter N, stats, reset, clear, "
               "ping";
    return "ERR unknown command: " + cmd;
}

}  // namespace ptpsim
