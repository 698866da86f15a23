// Paho C++ 1.2.0 (over Paho C 1.3.11) wrapper. Threads:
// - Paho's threads run the callbacks below; they only take `mu` briefly and push Events.
// - The connection thread (`run`) owns connecting, subscribing and the backoff.
// - Callers publish from any thread.
// Lock rule: never call into Paho while holding `mu`. Paho calls our callbacks while
// holding its own mutex, so holding `mu` across a Paho call could deadlock.
#include "mqtt/client.h"

#include <mqtt/async_client.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "core/backoff.h"
#include "core/log.h"
#include "mqtt/broker_socket.h"

namespace photorig::mqtt {
namespace paho = ::mqtt;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

const char* const kLog = "mqtt";
// Paho C checks connect timeouts only every few seconds; this is its upper bound per attempt.
constexpr int kConnectTimeoutS = 10;
constexpr milliseconds kSubscribeTimeout(10000);
constexpr milliseconds kWaitSlice(100);
// The start-up probe (see probe_broker): rounds, the wait for one round's two answers, and
// the gap between them above which the broker is holding small packets back.
constexpr int kProbeRounds = 3;
constexpr milliseconds kProbeRoundTimeout(300);
constexpr double kProbeDelayedMs = 10.0;

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b > a ? b - a : a - b).count();
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// A Paho action listener calling a function (on Paho's thread: it must not block).
class CallOnSuccess : public paho::iaction_listener {
  public:
    explicit CallOnSuccess(std::function<void()> f) : f_(std::move(f)) {}
    void on_success(const paho::token&) override { f_(); }
    void on_failure(const paho::token&) override {}

  private:
    std::function<void()> f_;
};

bool is_v5(int version) {
    return version == 5;
}

int paho_version(int version) {
    switch (version) {
        case 5:
            return MQTTVERSION_5;
        case 3:
            return MQTTVERSION_3_1;
        default:
            return MQTTVERSION_3_1_1;  // 4, 311
    }
}

// CONNACK refusals: v3.1.1 4 (bad user name or password), 5 (not authorized);
// v5 134 (bad user name or password), 135 (not authorized). Paho reports the CONNACK
// code as the return code; PUBACK/SUBACK reasons arrive as the reason code.
bool is_auth_code(int code) {
    return code == 4 || code == 5 || code == 134 || code == 135;
}

Error to_error(const paho::exception& e, const std::string& what) {
    int rc = e.get_return_code();
    int reason = e.get_reason_code();
    std::string text = what + ": " + e.what();
    if (rc == MQTTASYNC_DISCONNECTED)
        return make_error("not_connected", what + ": not connected to the broker");
    if (is_auth_code(rc) || reason == 134 || reason == 135)
        return make_error("not_authorized", text);
    return make_error("mqtt_error", text);
}

Error connect_error(const paho::exception& e, const std::string& server) {
    int rc = e.get_return_code();
    int reason = e.get_reason_code();
    std::string text = "connect to " + server + ": " + e.what();
    if (is_auth_code(rc) || reason == 134 || reason == 135) {
        return make_error("not_authorized",
                          "connect to " + server +
                              ": the broker refused the user name or password (or this client)");
    }
    if (rc > 0) return make_error("connection_refused", text);  // other CONNACK codes
    if (rc == MQTTASYNC_FAILURE)
        return make_error("unreachable", text);  // "TCP/TLS connect failure"
    return make_error("mqtt_error", text);
}

std::string server_uri(const Options& o) {
    std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
    return (o.tls.ca_file.empty() ? "tcp://" : "ssl://") + host + ":" + std::to_string(o.port);
}

}  // namespace

struct Client::Impl {
    Options opts;
    MessageQueue<Event>& events;
    std::string uri;

    // The broker's packets are acknowledged at once, never after Linux's 40 ms delayed ACK
    // (see mqtt/broker_socket.h): kick_acks() after every sign that the broker sent us
    // something. `broker_fds`: this connection's socket, found after each CONNACK.
    std::mutex sock_mu;
    std::vector<int> broker_fds;
    std::atomic<bool> probing{false};  // the start-up probe wants delayed ACKs for a moment
    CallOnSuccess ack_kicker{[this] { kick_acks(); }};
    // The probe's current round (probe_mu): which payload, and when its two answers came.
    std::mutex probe_mu;
    std::condition_variable probe_cv;
    std::string probe_payload;
    std::optional<Clock::time_point> probe_puback, probe_echo;
    CallOnSuccess probe_acked{[this] {
        std::lock_guard<std::mutex> lock(probe_mu);
        if (!probe_puback) probe_puback = Clock::now();
        probe_cv.notify_all();
    }};

    std::unique_ptr<paho::async_client> cli;
    paho::connect_options conn_opts;

    mutable std::mutex mu;
    std::condition_variable cv;
    std::thread worker;
    bool worker_running = false;
    bool stop = false;
    bool connected = false;   // CONNACK received, no loss seen since
    bool announced = false;   // the `connected` Event went out for this connection
    bool attempting = false;  // a CONNECT is in flight
    bool lost_during_attempt = false;
    bool ever_connected = false;
    std::string last_lost_reason;
    bool subs_dirty = false;
    std::vector<Subscription> wanted;
    std::map<std::string, int>
        in_session;  // filter -> qos the broker holds for us, as far as we know
    bool first_done = false;
    std::optional<Error> first_error;
    paho::token_ptr pending_connect;

    std::atomic<uint64_t> dropped_messages{0}, dropped_publishes{0};

    // Counts a publish that was not sent; logs the first and then every 1000th, so a flood
    // leaves a trace without becoming a flood of log lines.
    void note_dropped_publish(const std::string& topic, const std::string& why) {
        uint64_t n = ++dropped_publishes;
        if (n == 1 || n % 1000 == 0)
            LOG_WARN(kLog, "dropped a message for " << topic << ": " << why << " (" << n
                                                    << " dropped so far)");
    }

    Impl(Options o, MessageQueue<Event>& ev)
        : opts(std::move(o)), events(ev), uri(server_uri(opts)) {}

    Status init() {
        if (opts.mqtt_version != 3 && opts.mqtt_version != 4 && opts.mqtt_version != 5 &&
            opts.mqtt_version != 311) {
            return make_error("bad_config", "mqtt version " + std::to_string(opts.mqtt_version) +
                                                ": use 5 or 4 (3.1.1)");
        }
        if (opts.client_id.empty() && !opts.clean_start) {
            return make_error("bad_config",
                              "a persistent session (clean_start false) needs a client id");
        }
        try {
            paho::create_options create(paho_version(opts.mqtt_version));
            create.set_max_buffered_messages(std::max(1, opts.max_buffered_messages));
            cli = std::make_unique<paho::async_client>(uri, opts.client_id, create, nullptr);
            cli->set_message_callback([this](paho::const_message_ptr msg) { on_message(msg); });
            cli->set_connection_lost_handler([this](const std::string& cause) {
                on_lost(cause.empty() ? "connection lost" : cause);
            });
            // A v5 broker may send DISCONNECT (shutdown, session taken over...). Paho C 1.3.11
            // then does NOT call connection_lost, only this handler.
            cli->set_disconnected_handler([this](const paho::properties&, paho::ReasonCode rc) {
                on_lost("broker sent DISCONNECT, reason " + std::to_string(int(rc)) + " (" +
                        paho::exception::reason_code_str(int(rc)) + ")");
            });

            // Built in place: Paho C++ 1.2.0's connect_options copy/move leave the C struct's
            // connectProperties pointing at the source object's properties.
            paho::connect_options& co = conn_opts;
            co.set_mqtt_version(paho_version(opts.mqtt_version));
            if (is_v5(opts.mqtt_version)) {
                co.set_clean_start(opts.clean_start);
                paho::properties props;
                if (opts.session_expiry_s > 0) {
                    props.add(paho::property(paho::property::SESSION_EXPIRY_INTERVAL,
                                             int32_t(opts.session_expiry_s)));
                }
                if (opts.max_packet_size > 0) {
                    props.add(paho::property(paho::property::MAXIMUM_PACKET_SIZE,
                                             int32_t(opts.max_packet_size)));
                }
                if (!props.empty()) co.set_properties(props);
            } else {
                co.set_clean_session(opts.clean_start);
            }
            co.set_keep_alive_interval(opts.keepalive_s);
            co.set_connect_timeout(kConnectTimeoutS);
            co.set_automatic_reconnect(false);
            co.set_max_inflight(opts.max_inflight);
            if (!opts.username.empty()) co.set_user_name(opts.username);
            if (!opts.password.empty()) co.set_password(opts.password);
            if (opts.will) {
                co.set_will(paho::will_options(opts.will->topic, opts.will->payload.data(),
                                               opts.will->payload.size(), opts.will->qos,
                                               opts.will->retain));
            }
            if (!opts.tls.ca_file.empty()) {
                paho::ssl_options ssl;
                ssl.set_trust_store(opts.tls.ca_file);
                if (!opts.tls.cert_file.empty()) ssl.set_key_store(opts.tls.cert_file);
                if (!opts.tls.key_file.empty()) ssl.set_private_key(opts.tls.key_file);
                ssl.set_enable_server_cert_auth(true);
                ssl.set_verify(true);  // the certificate must name the host we dialled
                ssl.set_error_handler(
                    [](const std::string& msg) { LOG_WARN(kLog, "TLS: " << msg); });
                co.set_ssl(std::move(ssl));
            }
        } catch (const paho::exception& e) {
            return make_error("bad_config", "mqtt client for " + uri + ": " + e.what());
        } catch (const std::exception& e) {
            return make_error("bad_config", "mqtt client for " + uri + ": " + e.what());
        }
        return ok();
    }

    // ---- Paho callbacks: no blocking, no Paho calls, no exceptions out. -------------------

    void on_message(const paho::const_message_ptr& msg) {
        try {
            kick_acks();  // a QoS 0 message gets no PUBACK from us to carry the ACK
            if (!opts.broker_probe_topic.empty() && msg->get_topic() == opts.broker_probe_topic) {
                std::lock_guard<std::mutex> lock(probe_mu);
                if (!probe_echo && msg->get_payload() == probe_payload) probe_echo = Clock::now();
                probe_cv.notify_all();
                return;  // ours alone: never an Event
            }
            Event ev{Event::Kind::message, false, "", {}};
            ev.message.topic = msg->get_topic();
            const size_t bound = opts.max_queued_messages;
            ev.overflow = bound > 0 && events.size() >= bound;
            if (!ev.overflow) ev.message.payload = msg->get_payload();
            ev.message.qos = msg->get_qos();
            ev.message.retained = msg->is_retained();
            ev.message.duplicate = msg->is_duplicate();
            const auto& props = msg->get_properties();
            if (props.contains(paho::property::RESPONSE_TOPIC)) {
                ev.message.response_topic =
                    paho::get<std::string>(props, paho::property::RESPONSE_TOPIC);
            }
            if (props.contains(paho::property::CORRELATION_DATA)) {
                ev.message.correlation_data =
                    paho::get<std::string>(props, paho::property::CORRELATION_DATA);
            }
            if (bound == 0) {
                events.push(std::move(ev));
            } else if (!events.push_bounded(std::move(ev), 2 * bound)) {
                ++dropped_messages;
            }
        } catch (const std::exception& e) {
            ++dropped_messages;
            LOG_ERROR(kLog, "dropping a received message: " << e.what());
        }
    }

    void on_lost(const std::string& reason) {
        try {
            {
                // Paho closes the socket: its number may soon name another one.
                std::lock_guard<std::mutex> lock(sock_mu);
                broker_fds.clear();
            }
            std::lock_guard<std::mutex> lock(mu);
            if (attempting) lost_during_attempt = true;
            if (!connected) return;  // already known (DISCONNECT then connection_lost)
            connected = false;
            last_lost_reason = reason;
            if (announced) events.push(Event{Event::Kind::connection_lost, false, reason, {}});
            announced = false;
            cv.notify_all();
        } catch (...) {
        }
    }

    // Sends a pending delayed ACK to the broker now (TCP_QUICKACK). From Paho's threads too:
    // one setsockopt per socket, a short lock.
    void kick_acks() {
        if (probing.load(std::memory_order_relaxed)) return;
        std::lock_guard<std::mutex> lock(sock_mu);
        for (int fd : broker_fds) (void)broker_socket::quick_ack(fd);
    }

    // After a CONNACK: which socket is this connection's. Paho gives no handle, so it is the
    // TCP connection to the broker's port that appeared during the attempt (`before`: those
    // that existed already, e.g. other clients of this process). Should another client of
    // this process have connected at the same moment, both are taken: a quick ACK or no
    // Nagle on a sibling connection is harmless.
    void adopt_broker_socket(const std::vector<broker_socket::Tcp>& before) {
        auto opened = broker_socket::opened_between(before, broker_socket::connected_to(opts.port));
        std::vector<int> fds;
        for (const auto& s : opened) {
            broker_socket::set_nodelay(s.fd);  // our own small packets leave at once
            fds.push_back(s.fd);
        }
        if (fds.empty())
            LOG_DEBUG(kLog, "no socket to port " << opts.port << " found: ACKs left to the kernel");
        std::lock_guard<std::mutex> lock(sock_mu);
        broker_fds = std::move(fds);
    }

    // ---- The connection thread. ---------------------------------------------------------

    bool stopping() {
        std::lock_guard<std::mutex> lock(mu);
        return stop;
    }

    // One CONNECT; on success marks the client connected. Returns the session-present flag.
    Expected<bool> attempt_connect() {
        paho::token_ptr tok;
        {
            std::lock_guard<std::mutex> lock(mu);
            attempting = true;
            lost_during_attempt = false;
        }
        auto finish = [&](Expected<bool> r) {
            std::lock_guard<std::mutex> lock(mu);
            attempting = false;
            return r;
        };
        try {
            auto before = broker_socket::connected_to(opts.port);
            tok = cli->connect(conn_opts);
            {
                std::lock_guard<std::mutex> lock(mu);
                pending_connect = tok;
            }
            while (!tok->wait_for(kWaitSlice)) {
                if (stopping())
                    return finish(make_error("not_connected", "stopped while connecting"));
            }
            bool session_present = tok->get_connect_response().is_session_present();
            adopt_broker_socket(before);
            kick_acks();
            std::lock_guard<std::mutex> lock(mu);
            attempting = false;
            pending_connect.reset();
            if (lost_during_attempt)
                return make_error("not_connected", "connection lost right after CONNACK");
            connected = true;
            announced = false;
            cv.notify_all();
            return session_present;
        } catch (const paho::exception& e) {
            {
                std::lock_guard<std::mutex> lock(mu);
                pending_connect.reset();
            }
            return finish(connect_error(e, uri));
        } catch (const std::exception& e) {
            return finish(make_error("mqtt_error", "connect to " + uri + ": " + e.what()));
        }
    }

    // Brings the broker's subscriptions in line with `wanted`. `fresh`: the broker holds none.
    Status apply_subscriptions(bool fresh) {
        std::vector<Subscription> to_sub;
        std::vector<std::string> to_unsub;
        {
            std::lock_guard<std::mutex> lock(mu);
            subs_dirty = false;
            if (fresh) in_session.clear();
            std::map<std::string, int> want;
            for (const auto& s : wanted) want[s.filter] = s.qos;
            for (const auto& [filter, qos] : want) {
                auto it = in_session.find(filter);
                if (it == in_session.end() || it->second != qos) to_sub.push_back({filter, qos});
            }
            for (const auto& [filter, qos] : in_session) {
                if (!want.count(filter)) to_unsub.push_back(filter);
            }
        }
        if (to_sub.empty() && to_unsub.empty()) return ok();

        std::optional<Error> first_err;
        auto note = [&](Error e) {
            LOG_ERROR(kLog, e.describe());
            if (!first_err) first_err = std::move(e);
        };
        std::vector<std::pair<Subscription, paho::token_ptr>> subs;
        std::vector<std::pair<std::string, paho::token_ptr>> unsubs;
        paho::subscribe_options sub_opts;  // no_local off, retain_as_published off, send retained
        for (const auto& s : to_sub) {
            try {
                subs.emplace_back(s, cli->subscribe(s.filter, s.qos, sub_opts));
            } catch (const paho::exception& e) {
                note(to_error(e, "subscribe " + s.filter).with_context("mqtt"));
            }
        }
        for (const auto& f : to_unsub) {
            try {
                unsubs.emplace_back(f, cli->unsubscribe(f));
            } catch (const paho::exception& e) {
                note(to_error(e, "unsubscribe " + f).with_context("mqtt"));
            }
        }
        auto deadline = Clock::now() + kSubscribeTimeout;
        auto wait = [&](const paho::token_ptr& tok) {
            while (!tok->wait_until(std::min(deadline, Clock::now() + kWaitSlice))) {
                if (Clock::now() >= deadline || stopping()) return false;
            }
            return true;
        };
        for (auto& [s, tok] : subs) {
            try {
                if (!wait(tok)) {
                    note(make_error("timeout",
                                    "mqtt: subscribe " + s.filter + ": no SUBACK in time"));
                    continue;
                }
                std::lock_guard<std::mutex> lock(mu);
                in_session[s.filter] = s.qos;
            } catch (const paho::exception& e) {
                Error err = to_error(e, "subscribe " + s.filter + " refused").with_context("mqtt");
                if (err.code == "mqtt_error") err.code = "subscribe_failed";
                note(err);
            }
        }
        for (auto& [f, tok] : unsubs) {
            try {
                if (wait(tok)) {
                    std::lock_guard<std::mutex> lock(mu);
                    in_session.erase(f);
                }
            } catch (const paho::exception& e) {
                LOG_WARN(kLog, "unsubscribe " << f << ": " << e.what());
            }
        }
        kick_acks();  // the SUBACKs/UNSUBACKs we just read
        // Filters that failed are not in `in_session`: the next connect or
        // set_subscriptions() tries them again.
        if (first_err) return *first_err;
        return ok();
    }

    // Connect, subscribe, announce. `reached`: a CONNACK came back (the broker is there).
    Status session_once(bool* reached) {
        *reached = false;
        auto sp = attempt_connect();
        if (!sp) return sp.error();
        *reached = true;
        bool session_present = *sp;
        bool first;
        {
            std::lock_guard<std::mutex> lock(mu);
            first = !ever_connected;
            ever_connected = true;
        }
        LOG_INFO(kLog, "connected to " << uri << " as '" << opts.client_id << "'"
                                       << (session_present ? " (session present)" : ""));
        Status sub_status = apply_subscriptions(first || !session_present);
        if (first && !opts.broker_probe_topic.empty()) probe_broker();
        {
            std::lock_guard<std::mutex> lock(mu);
            if (!connected) return make_error("not_connected", "connection lost while subscribing");
            announced = true;
            events.push(Event{Event::Kind::connected, session_present, "", {}});
            cv.notify_all();
        }
        return sub_status;
    }

    // The start-up probe: does the broker hold small packets back (Nagle, no
    // `set_tcp_nodelay true`)? We publish QoS 1 on a topic only we use, subscribed at QoS 0,
    // so the broker answers with two small packets at once, the PUBACK and the echo, and we
    // send nothing back. With our ACKs delayed on purpose for that moment (TCP_QUICKACK 0, as
    // the kernel does after any answer of ours), a broker with Nagle on holds the second
    // packet until our delayed ACK: a gap of ~40 ms between the two instead of
    // microseconds, whatever the network's round trip. Our own traffic is protected by
    // kick_acks(); the warning is for the broker's other clients (dashboards, Home
    // Assistant, Node-RED), which get those 40 ms. Runs once, before the `connected` Event:
    // ~1 ms on a good broker, ~3 x 45 ms on one with Nagle on.
    void probe_broker() {
        int fd = -1;
        {
            std::lock_guard<std::mutex> lock(sock_mu);
            if (broker_fds.size() != 1) {
                LOG_DEBUG(kLog, "broker probe skipped: this connection's socket is not known");
                return;
            }
            fd = broker_fds.front();
        }
        const std::string& topic = opts.broker_probe_topic;
        auto wait_token = [&](const paho::token_ptr& tok) {
            return tok->wait_for(std::chrono::seconds(2));
        };
        std::vector<double> gaps, round_trips;
        try {
            if (!wait_token(cli->subscribe(topic, 0, paho::subscribe_options{}))) return;
            for (int round = 0; round < kProbeRounds; ++round) {
                auto payload = "probe " + std::to_string(round + 1);
                {
                    std::lock_guard<std::mutex> lock(probe_mu);
                    probe_payload = payload;
                    probe_puback.reset();
                    probe_echo.reset();
                }
                probing = true;
                (void)broker_socket::quick_ack(fd, false);
                const auto t0 = Clock::now();
                (void)cli->publish(
                    paho::message::create(topic, payload.data(), payload.size(), 1, false), nullptr,
                    probe_acked);
                std::unique_lock<std::mutex> lock(probe_mu);
                bool both = probe_cv.wait_until(lock, t0 + kProbeRoundTimeout,
                                                [&] { return probe_puback && probe_echo; });
                probing = false;
                kick_acks();
                if (both) {
                    gaps.push_back(ms_between(*probe_puback, *probe_echo));
                    round_trips.push_back(ms_between(t0, std::min(*probe_puback, *probe_echo)));
                } else {
                    // No echo (an ACL that drops it silently, as mosquitto does under
                    // 3.1.1) or no PUBACK: no evidence either way; do not wait any longer.
                    break;
                }
            }
            (void)wait_token(cli->unsubscribe(topic));
        } catch (const std::exception& e) {
            probing = false;
            LOG_DEBUG(kLog, "broker probe: " << e.what());
        }
        kick_acks();
        if (gaps.empty()) {
            LOG_DEBUG(kLog, "broker probe: no answer on " << topic);
            return;
        }
        const double gap = median(gaps), rtt = median(round_trips);
        if (gap > kProbeDelayedMs) {
            char figures[96];
            std::snprintf(figures, sizeof figures, "%.1f ms (round trip %.1f ms)", gap, rtt);
            LOG_WARN(kLog, "the broker at "
                               << uri << " holds small packets back: its PUBACK and "
                               << "our echo came " << figures << " apart instead of together, "
                               << "the mark of Nagle without `set_tcp_nodelay true` (mosquitto's "
                               << "default). This client acknowledges at once so its own messages "
                               << "are not delayed, but the broker's other clients may see ~40 ms "
                               << "per message: add `set_tcp_nodelay true` to the broker's "
                               << "mosquitto.conf (README: Using an existing broker)");
        } else {
            char figures[96];
            std::snprintf(figures, sizeof figures, "round trip %.2f ms, answers %.2f ms apart", rtt,
                          gap);
            LOG_INFO(kLog, "broker probe: " << figures << " (no Nagle delay)");
        }
    }

    void signal_first(const Status& st) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_done) return;
        first_done = true;
        if (!st) first_error = st.error();
        cv.notify_all();
    }

    void run() {
        const int min_delay = std::max(1, opts.reconnect_min_ms);
        const int max_delay = std::max(min_delay, opts.reconnect_max_ms);
        // Exponential backoff with jitter: wait a uniform draw from [d/2, d], d doubling to
        // max_delay, so clients that lost the same broker do not come back in lock-step.
        Backoff backoff(BackoffPolicy{min_delay, max_delay, BackoffPolicy::Jitter::half});
        std::string last_failure;
        for (;;) {
            if (stopping()) break;
            bool reached = false;
            Status st = session_once(&reached);
            signal_first(st);
            auto up_since = Clock::now();
            std::string lost_reason;
            {
                std::unique_lock<std::mutex> lock(mu);
                while (connected && !stop) {
                    cv.wait(lock, [&] { return stop || !connected || subs_dirty; });
                    if (subs_dirty && connected && !stop) {
                        lock.unlock();
                        (void)apply_subscriptions(false);
                        lock.lock();
                    }
                }
                if (stop) break;
                lost_reason = last_lost_reason;
            }
            if (reached) {
                // Only a connection that lasted resets the backoff: a broker that accepts and
                // then drops us at once (a duplicate client id, say) is not hammered.
                if (Clock::now() - up_since >= std::chrono::seconds(10)) backoff.reset();
                last_failure.clear();
                LOG_WARN(kLog, "lost the connection to " << uri << " ("
                                                         << (st ? lost_reason : st.error().message)
                                                         << "); reconnecting");
            } else if (st.error().message != last_failure) {
                last_failure = st.error().message;
                LOG_WARN(kLog, st.error().describe()
                                   << " (retrying, backoff up to " << max_delay << " ms)");
            } else {
                LOG_DEBUG(kLog, st.error().describe());
            }
            const int64_t wait_ms = backoff.next_delay_ms();
            {
                std::unique_lock<std::mutex> lock(mu);
                if (cv.wait_for(lock, milliseconds(wait_ms), [&] { return stop; })) break;
            }
        }
        std::lock_guard<std::mutex> lock(mu);
        worker_running = false;
        cv.notify_all();
    }

    void stop_worker() {
        {
            std::lock_guard<std::mutex> lock(mu);
            stop = true;
            cv.notify_all();
        }
        if (worker.joinable()) worker.join();
    }
};

Client::Client(Options opts, MessageQueue<Event>& events)
    : impl_(std::make_unique<Impl>(std::move(opts), events)) {
    if (auto st = impl_->init(); !st) {
        // Reported again by connect(); the constructor cannot return it.
        LOG_ERROR(kLog, st.error().describe());
        impl_->first_error = st.error();
    }
}

Client::~Client() {
    try {
        disconnect(milliseconds(1000));
    } catch (...) {
    }
    impl_->cli.reset();  // no Paho callback runs after this
}

Status Client::connect(milliseconds first_attempt_timeout) {
    Impl& d = *impl_;
    if (!d.cli)
        return d.first_error ? *d.first_error : make_error("bad_config", "mqtt client not created");
    std::unique_lock<std::mutex> lock(d.mu);
    if (d.worker_running) {
        // Already started: just wait for the connection.
        if (d.cv.wait_for(lock, first_attempt_timeout, [&] { return d.announced; })) return ok();
        return make_error("timeout", "connect to " + d.uri + ": not connected within " +
                                         std::to_string(first_attempt_timeout.count()) +
                                         " ms (still trying)");
    }
    if (d.worker.joinable()) {  // left over from a disconnect()
        lock.unlock();
        d.worker.join();
        lock.lock();
    }
    d.stop = false;
    d.first_done = false;
    d.first_error.reset();
    d.worker_running = true;
    d.worker = std::thread([&d] { d.run(); });
    if (!d.cv.wait_for(lock, first_attempt_timeout, [&] { return d.first_done; })) {
        return make_error("timeout", "connect to " + d.uri + ": no answer within " +
                                         std::to_string(first_attempt_timeout.count()) +
                                         " ms (still trying)");
    }
    if (d.first_error) return *d.first_error;
    return ok();
}

void Client::set_subscriptions(std::vector<Subscription> subs) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->wanted = std::move(subs);
    impl_->subs_dirty = true;
    impl_->cv.notify_all();
}

namespace {

paho::message_ptr to_paho(const Message& m, bool retain, int version) {
    auto msg = paho::message::create(m.topic, m.payload.data(), m.payload.size(), m.qos, retain);
    if (is_v5(version) && (!m.response_topic.empty() || !m.correlation_data.empty())) {
        paho::properties props;
        if (!m.response_topic.empty())
            props.add(paho::property(paho::property::RESPONSE_TOPIC, m.response_topic));
        if (!m.correlation_data.empty()) {
            props.add(paho::property(paho::property::CORRELATION_DATA, m.correlation_data));
        }
        msg->set_properties(std::move(props));
    }
    return msg;
}

}  // namespace

Status Client::publish(const Message& m, bool retain, milliseconds timeout) {
    return publish_within(m, retain, timeout, true);
}

Status Client::publish(const Message& m, bool retain, milliseconds timeout,
                       const std::function<void()>& taken) {
    return publish_within(m, retain, timeout, true, &taken);
}

Status Client::publish_queued(const Message& m, bool retain, milliseconds timeout) {
    return publish_within(m, retain, timeout, false);
}

Status Client::publish_within(const Message& m, bool retain, milliseconds timeout,
                              bool wait_for_ack, const std::function<void()>* taken) {
    Impl& d = *impl_;
    const std::string what = "publish " + m.topic;
    if (!d.cli) return make_error("not_connected", what + ": no client");
    auto deadline = Clock::now() + timeout;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(d.mu);
            // Wait for `announced`, not just CONNACK: after a reconnect our subscriptions are back
            // before anything we publish (a request's reply cannot slip past us).
            if (!d.cv.wait_until(lock, deadline,
                                 [&] { return d.announced || (d.stop && !d.worker_running); })) {
                return make_error("not_connected", what + ": not connected to " + d.uri +
                                                       " within " +
                                                       std::to_string(timeout.count()) + " ms");
            }
            if (!d.announced)
                return make_error("not_connected", what + ": the client is disconnected");
        }
        try {
            auto tok =
                d.cli->publish(to_paho(m, retain, d.opts.mqtt_version), nullptr, d.ack_kicker);
            if (taken && *taken) (*taken)();
            if (wait_for_ack && !tok->wait_until(deadline)) {
                return make_error("timeout", what + ": no acknowledgement within " +
                                                 std::to_string(timeout.count()) + " ms");
            }
            return ok();
        } catch (const paho::exception& e) {
            Error err = to_error(e, what);
            // The connection dropped under us before our loss callback ran (wait for the next
            // one), or max_inflight publishes are outstanding, or Paho's buffer of
            // max_buffered_messages is full (a burst of responses): wait for acks, retry in time.
            const bool inflight_full = e.get_return_code() == MQTTASYNC_MAX_MESSAGES_INFLIGHT;
            bool retry = err.code == "not_connected" || inflight_full ||
                         e.get_return_code() == MQTTASYNC_MAX_BUFFERED_MESSAGES;
            if (!retry || Clock::now() >= deadline) return err;
            // Acks come back within a broker round trip: look again soon.
            if (inflight_full) {
                std::this_thread::sleep_for(milliseconds(1));
                continue;
            }
        } catch (const std::exception& e) {
            return make_error("mqtt_error", what + ": " + e.what());
        }
        std::this_thread::sleep_for(milliseconds(20));
    }
}

void Client::publish_nowait(const Message& m, bool retain) {
    Impl& d = *impl_;
    if (!d.cli || !connected()) {
        ++d.dropped_publishes;
        LOG_DEBUG(kLog, "not connected: dropped a message for " << m.topic);
        return;
    }
    try {
        (void)d.cli->publish(to_paho(m, retain, d.opts.mqtt_version), nullptr, d.ack_kicker);
    } catch (const std::exception& e) {
        d.note_dropped_publish(m.topic, e.what());
    }
}

uint64_t Client::dropped_messages() const {
    return impl_->dropped_messages;
}

uint64_t Client::dropped_publishes() const {
    return impl_->dropped_publishes;
}

bool Client::connected() const {
    std::lock_guard<std::mutex> lock(impl_->mu);
    return impl_->announced;
}

void Client::disconnect(milliseconds timeout) {
    Impl& d = *impl_;
    if (!d.cli) return;
    auto deadline = Clock::now() + timeout;
    d.stop_worker();
    paho::token_ptr pending;
    {
        std::lock_guard<std::mutex> lock(d.mu);
        pending = d.pending_connect;
    }
    // A CONNECT still in flight may yet succeed: let it finish (within the timeout) so the
    // DISCONNECT below closes it instead of leaving a session nobody serves.
    if (pending) {
        try {
            pending->wait_until(deadline);
        } catch (const std::exception&) {
        }
    }
    try {
        // Our own wait for what is in flight: Paho's disconnect(timeout) was measured to wait
        // the whole timeout even with nothing in flight (2 s of every agent shutdown).
        try {
            for (const auto& pending_publish : d.cli->get_pending_delivery_tokens()) {
                if (!pending_publish->wait_until(deadline)) break;
            }
        } catch (const paho::exception&) {
            // A publish that failed is no longer in flight.
        }
        auto tok = d.cli->disconnect(0);
        tok->wait_until(deadline + milliseconds(500));
    } catch (const paho::exception& e) {
        if (e.get_return_code() != MQTTASYNC_DISCONNECTED)
            LOG_DEBUG(kLog, "disconnect: " << e.what());
    } catch (const std::exception& e) {
        LOG_DEBUG(kLog, "disconnect: " << e.what());
    }
    {
        std::lock_guard<std::mutex> lock(d.sock_mu);
        d.broker_fds.clear();  // closed by Paho: the numbers may soon name other files
    }
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.connected) LOG_INFO(kLog, "disconnected from " << d.uri);
    d.connected = false;
    d.announced = false;
    d.pending_connect.reset();
    d.cv.notify_all();
}

}  // namespace photorig::mqtt
