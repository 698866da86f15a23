// The MQTT connection of a photorig process (Paho C++ underneath, never in this header).
//
// - Events (connected, connection_lost, message) are pushed onto the caller's queue; no
//   Paho callback ever blocks. Payloads and correlation data are bytes (binary-safe).
// - connect() makes the first attempt; a background thread then keeps the session up:
//   after any loss it reconnects with exponential backoff and jitter (our own loop, not
//   Paho's automatic reconnect): d starts at reconnect_min_ms and doubles per failed
//   attempt up to reconnect_max_ms; each wait is drawn from [d/2, d]; only a connection
//   that lasted 10 s resets d.
// - Subscriptions are (re)made on every connect where the broker has no session for us
//   (and always on the first connect); with a session present only the differences are
//   sent. The `connected` event is pushed after that, so a caller that publishes
//   "online" on it is already subscribed.
// - MQTT v5: subscriptions have no_local off (a client hears its own publishes);
//   response_topic / correlation_data are sent and received as v5 properties.
//   Under MQTT 3.1.1 they are ignored.
// - publish() while disconnected waits for the reconnection (connected + resubscribed)
//   within its timeout, then publishes and waits for PUBACK in what remains; at the
//   deadline it fails with "not_connected" (never got a connection) or "timeout" (no ack
//   in time). publish_nowait() while disconnected drops the message.
// - Bounds (a flooding peer must not grow us): Paho buffers at most max_buffered_messages
//   publishes of ours waiting for an in-flight slot; a publish past that fails (counted in
//   dropped_publishes(), logged). With max_queued_messages set, a received message finds
//   at most that many waiting on `events`; past it the message is queued as an `overflow`
//   Event without its payload (topic and v5 reply properties only, so the owner can still
//   answer it), and past twice the bound it is only counted (dropped_messages()).
//
// - The broker's packets are acknowledged at once (TCP_QUICKACK after every message, PUBACK
//   and SUBACK) and ours leave at once (TCP_NODELAY), on the socket Paho opened: against a
//   broker without `set_tcp_nodelay true` Linux's 40 ms delayed ACK would otherwise meet the
//   broker's Nagle and hold each request ~44 ms (mqtt/broker_socket.h, docs/latency.md).
//
// Error codes: not_connected, timeout, not_authorized (bad credentials, ACL-refused
// subscribe or v5 publish), unreachable (no TCP/TLS connection), connection_refused
// (other CONNACK refusals), subscribe_failed, bad_config, mqtt_error.
// Passwords never reach a log line or an Error.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.h"
#include "core/queue.h"

namespace photorig::mqtt {

struct Tls {
    std::string ca_file, cert_file, key_file;  // TLS when ca_file is non-empty
};

struct Will {
    std::string topic, payload;
    int qos = 1;
    bool retain = true;
};

struct Options {
    std::string host = "127.0.0.1";
    int port = 1883;
    std::string client_id;
    std::string username, password;  // password already read from its file; never logged
    Tls tls;
    std::optional<Will> will;
    bool clean_start = true;        // false + session_expiry_s (v5) = persistent session
    uint32_t session_expiry_s = 0;  // v5 only; v3.1.1 keeps a clean_session=false session forever
    int keepalive_s = 30;
    int reconnect_min_ms = 250;
    int reconnect_max_ms = 30000;
    int mqtt_version = 5;  // 5, or 4 / 311 for MQTT 3.1.1
    int max_inflight = 64;
    int max_buffered_messages = 10000;  // Paho's queue of publishes waiting for max_inflight
    size_t max_queued_messages = 0;     // received messages waiting on `events`; 0 = no bound
    // v5: the largest packet the broker may send us (CONNECT Maximum Packet Size); a bigger
    // message is never delivered to us (the broker drops it for this client). 0 = no limit.
    uint32_t max_packet_size = 0;
    // A topic only this client uses, under its own base (the agent's: <base>/_probe/broker).
    // When set, the first connection measures three publish -> echo round trips on it
    // before the `connected` Event (about 1 ms; about 150 ms on a broker with Nagle on) and
    // logs one warning when the broker holds small packets back, naming
    // `set_tcp_nodelay true`. Non-retained, never delivered as an Event. Empty: no probe.
    std::string broker_probe_topic;
};

struct Message {
    std::string topic, payload;
    int qos = 0;
    bool retained = false;
    std::string response_topic, correlation_data;  // v5 properties; empty = absent
    // Received only: the broker's DUP flag (a QoS 1/2 message it resends after a
    // reconnect because our PUBACK did not reach it). Paho exposes no packet id.
    bool duplicate = false;
};

struct Event {
    enum class Kind { connected, connection_lost, message } kind;
    bool session_present = false;  // connected
    std::string reason;            // connection_lost
    Message message;               // message
    // A message that found max_queued_messages waiting: its payload was not kept.
    bool overflow = false;
};

struct Subscription {
    std::string filter;
    int qos = 1;
};

class Client {
  public:
    // Callbacks only push Events onto `events`, which must outlive the Client.
    Client(Options opts, MessageQueue<Event>& events);
    // Without a prior disconnect(): stops reconnecting and closes the session with a
    // normal DISCONNECT (so the will is not sent either).
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Starts the connection thread and waits up to `first_attempt_timeout` for the first
    // attempt (connect + subscriptions). Returns its error or "timeout"; either way the
    // thread keeps retrying in the background until disconnect() or destruction.
    Status connect(std::chrono::milliseconds first_attempt_timeout);

    // The full wanted set. Applied on the next connect, or right away when connected.
    void set_subscriptions(std::vector<Subscription> subs);

    // Publishes with m.qos and waits for the broker's ack (PUBACK for QoS 1, PUBCOMP for
    // QoS 2; for QoS 0 until it is handed to the socket). See the header comment for how
    // a disconnected client behaves.
    Status publish(const Message& m, bool retain, std::chrono::milliseconds timeout);
    // As publish(), and calls `taken` (on this thread) once Paho has the message, before the
    // wait for its ack: whatever the caller publishes from then on follows it on the wire.
    // Not called when the message never got to Paho (an error is returned then).
    Status publish(const Message& m, bool retain, std::chrono::milliseconds timeout,
                   const std::function<void()>& taken);

    // As publish(), but returns once Paho has taken the message, without waiting for its
    // ack. Messages on one connection are delivered in order, so the ack of a later
    // publish() on this client also vouches for this one (unless the connection dropped).
    Status publish_queued(const Message& m, bool retain, std::chrono::milliseconds timeout);

    // Fire-and-forget (telemetry, availability, state). Dropped (debug log) when not connected.
    void publish_nowait(const Message& m, bool retain);

    // Received messages not queued at all (past twice max_queued_messages), and publishes
    // Paho refused to buffer (or that found us disconnected in publish_nowait).
    uint64_t dropped_messages() const;
    uint64_t dropped_publishes() const;

    // True between the `connected` Event (subscriptions in place) and the next loss.
    bool connected() const;

    // Clean DISCONNECT (the will is NOT sent) after waiting up to `timeout` for in-flight
    // messages; stops reconnecting. connect() may be called again afterwards.
    void disconnect(std::chrono::milliseconds timeout);

  private:
    Status publish_within(const Message& m, bool retain, std::chrono::milliseconds timeout,
                          bool wait_for_ack, const std::function<void()>* taken = nullptr);
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace photorig::mqtt
