// Hostile text end to end (issue 15, items 1, 2, 3 and the uploader ACL of 8): what a camera
// firmware, a requester or an upload server says must neither stop a daemon nor choose a
// topic the agent publishes on.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/text.h"
#include "harness/rig_harness.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {
json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Every sidecar (<photo>.meta.json) under `dir`, parsed.
std::vector<json> sidecars(const std::string& dir) {
    std::vector<json> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        const std::string p = e.path().string();
        if (e.is_regular_file() && p.size() > 10 && p.compare(p.size() - 10, 10, ".meta.json") == 0)
            out.push_back(parse(read_file(p)));
    }
    return out;
}

bool availability_offline_seen(RigHarness& h) {
    for (const auto& r : h.received(h.base() + "/availability"))
        if (r.payload == "offline") return true;
    return false;
}
}  // namespace

// Item 1: EXIF Make "Canon\xE9" used to make dump() throw on the capture thread: rig-agent
// died (134), the photo had no sidecar, and every later capture crashed again.
TEST(HostileText, ExifMakeThatIsNotUtf8KeepsTheAgentRunningAndWritesTheSidecar) {
    HarnessOptions o;
    o.sim_kind = SimKind::ours;
    o.sim_args = {"--manufacturer", "Canon\xE9"};
    o.upload_yaml = "  delete_after_upload: false\n";  // the sidecars stay to be read
    RigHarness h(o);
    h.start_all();
    for (const char* t : {"m-1", "m-2"}) {
        h.pub_cli(h.base() + "/request/capture", std::string(R"({"transaction":")") + t + "\"}");
        auto resp = h.wait_for(h.base() + "/response/capture", transaction_is(t), 20s);
        ASSERT_FALSE(resp.topic.empty()) << h.agent().log();
        EXPECT_EQ(parse(resp.payload)["status"], "ok") << resp.payload;
    }
    EXPECT_TRUE(h.agent().running()) << h.agent().log();
    auto caps = h.received(h.base() + "/capture");
    ASSERT_EQ(caps.size(), 2u);
    for (const auto& c : caps) {
        ASSERT_TRUE(photorig::text::is_valid_utf8(c.payload));
        json m = parse(c.payload);
        ASSERT_TRUE(m.is_object()) << c.payload;
        EXPECT_EQ(m["exif"]["make"], std::string("Canon") + kReplacement) << c.payload;
    }
    // The sidecars were written (in the spool, or beside the uploaded photos).
    EXPECT_TRUE(wait_until([&] { return sidecars(h.root()).size() >= 2; }, 10s));
    for (const auto& s : sidecars(h.root())) {
        ASSERT_TRUE(s.is_object());
        EXPECT_EQ(s["exif"]["make"], std::string("Canon") + kReplacement);
    }
}

// Item 3: a serial with '#', '+' and '/' went into camera/<serial>/availability: the broker
// dropped the agent at every connect, forever. The serial is now one percent-encoded level.
TEST(HostileText, SerialWithTopicWildcardsIsEncodedAndTheAgentStaysConnected) {
    HarnessOptions o;
    o.sim_kind = SimKind::ours;
    o.sim_args = {"--serial", "ab#c+/d"};
    RigHarness h(o);
    h.start_all();
    const std::string encoded = "ab%23c%2B%2Fd";
    auto avail = h.wait_for(
        h.base() + "/camera/" + encoded + "/availability",
        [](const Received& r) { return r.payload == "online"; }, 15s);
    ASSERT_FALSE(avail.topic.empty()) << h.agent().log();

    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"s-1"})");
    auto resp = h.wait_for(h.base() + "/response/capture", transaction_is("s-1"), 20s);
    ASSERT_FALSE(resp.topic.empty()) << h.agent().log();
    EXPECT_EQ(parse(resp.payload)["status"], "ok") << resp.payload;
    auto cap = h.wait_for(
        h.base() + "/capture", [](const Received&) { return true; }, 5s);
    ASSERT_FALSE(cap.topic.empty());
    EXPECT_EQ(parse(cap.payload)["camera"]["serial"], "ab#c+/d") << "payloads keep the serial";

    h.pub_cli(h.base() + "/request/preview", R"({"transaction":"p-1"})");
    auto prev = h.wait_for(h.base() + "/response/preview", transaction_is("p-1"), 20s);
    ASSERT_FALSE(prev.topic.empty()) << h.agent().log();
    if (parse(prev.payload)["status"] == "ok") {
        EXPECT_TRUE(h.wait_count(
            h.base() + "/preview/" + encoded, 1, [](const Received&) { return true; }, 5s));
    }

    // Connected all along: never offline, and the log shows one connection.
    std::this_thread::sleep_for(1s);
    EXPECT_FALSE(availability_offline_seen(h)) << h.agent().log();
    EXPECT_TRUE(h.agent().running());
    for (const auto& r : h.received(""))
        EXPECT_EQ(r.topic.find_first_of("#+"), std::string::npos) << r.topic;
}

// Item 2: Response Topic "x/#" made the agent publish to a wildcard (the broker dropped it,
// LWT offline); "photorig/rig1/upload/jobs" let a requester write where it may not.
TEST(HostileText, ResponseTopicsOutsideTheRuleAreRefusedOnTheDefaultTopic) {
    HarnessOptions o;
    o.extra_subscriptions = {"x/#"};
    RigHarness h(o);
    h.start_all();
    struct Case {
        std::string response_topic, txn;
    };
    const std::vector<Case> refused = {{"x/#", "r-wild"},
                                       {h.base() + "/upload/jobs", "r-jobs"},
                                       {h.base() + "/scan/move", "r-move"},
                                       {"photorig/rig2/response/status", "r-other-rig"},
                                       {"homeassistant/device/rig1/config", "r-ha"}};
    for (const auto& c : refused) {
        h.pub_v5(h.base() + "/request/status", R"({"transaction":")" + c.txn + "\"}",
                 c.response_topic, "corr-" + c.txn);
        auto resp = h.wait_for(h.base() + "/response/status", transaction_is(c.txn), 10s);
        ASSERT_FALSE(resp.topic.empty()) << c.response_topic << "\n" << h.agent().log();
        json r = parse(resp.payload);
        EXPECT_EQ(r["status"], "error") << resp.payload;
        EXPECT_EQ(r["error"]["code"], "bad_request") << resp.payload;
    }
    // Allowed: the rig's own response tree. (Topics outside photorig/ pass the agent's check
    // too, but photorig's broker ACL lets the agent write only photorig/# and
    // homeassistant/#: response_topic_test covers them.)
    h.pub_v5(h.base() + "/request/status", R"({"transaction":"a-own"})",
             h.base() + "/response/app-1", "c1");
    auto own = h.wait_for(h.base() + "/response/app-1", transaction_is("a-own"), 10s);
    ASSERT_FALSE(own.topic.empty());
    EXPECT_EQ(own.correlation_data, "c1");
    EXPECT_EQ(parse(own.payload)["status"], "ok");

    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(h.received(h.base() + "/upload/jobs").empty()) << "nothing published on jobs";
    EXPECT_TRUE(h.received(h.base() + "/scan/move").empty());
    EXPECT_FALSE(availability_offline_seen(h)) << "the agent stayed connected\n" << h.agent().log();
    EXPECT_TRUE(h.agent().running());
}

namespace {
// A peer that answers every S3 request with a 400 whose <Code> is not UTF-8 (HEAD: 404,
// so the uploader goes on to the PUT). Loopback, one connection at a time.
class BadCodeS3Peer {
  public:
    BadCodeS3Peer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(fd_, 8);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~BadCodeS3Peer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    int port() const { return port_; }
    int answered() const { return answered_; }

  private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) {
                answer(c);
                ::close(c);
            }
        }
    }
    // Reads the head (and a body of Content-Length unless the client waits for 100-continue).
    void answer(int c) {
        std::string req;
        char buf[65536];
        while (req.find("\r\n\r\n") == std::string::npos) {
            pollfd p{c, POLLIN, 0};
            if (::poll(&p, 1, 5000) <= 0) return;
            ssize_t n = ::read(c, buf, sizeof buf);
            if (n <= 0) return;
            req.append(buf, static_cast<size_t>(n));
        }
        std::string lower = req;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const bool head = req.rfind("HEAD ", 0) == 0;
        if (!head && lower.find("expect: 100-continue") == std::string::npos) {
            size_t cl = lower.find("content-length:");
            size_t want = cl == std::string::npos ? 0 : std::stoul(lower.substr(cl + 15));
            size_t have = req.size() - (req.find("\r\n\r\n") + 4);
            while (have < want) {
                pollfd p{c, POLLIN, 0};
                if (::poll(&p, 1, 5000) <= 0) return;
                ssize_t n = ::read(c, buf, sizeof buf);
                if (n <= 0) return;
                have += static_cast<size_t>(n);
            }
        }
        std::string body =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>Bad\xE9"
            "Code</Code>"
            "<Message>caf\xE9</Message></Error>";
        std::string resp = head ? "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                : "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\n"
                                  "Content-Length: " +
                                      std::to_string(body.size()) + "\r\n";
        resp += "Connection: close\r\n\r\n";
        if (!head) resp += body;
        (void)!::write(c, resp.data(), resp.size());
        ++answered_;
    }

    int fd_ = -1, port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> answered_{0};
    std::thread thread_;
};
}  // namespace

// Item 1, uploader side: an S3 error <Code> with byte 0xE9 aborted rig-uploader in the
// event builder, and again at every restart (the job is journaled).
TEST(HostileText, S3ErrorCodeThatIsNotUtf8FailsTheJobWithAValidEvent) {
    BadCodeS3Peer peer;
    TempDir secrets("photorig-it-badcode");
    HarnessOptions o;
    o.upload_target = "s3";
    o.upload_yaml = "  s3:\n    endpoint: http://127.0.0.1:" + std::to_string(peer.port()) +
                    "\n    region: us-east-1\n    bucket: photos\n    path_style: true\n"
                    "    access_key_id_file: " +
                    secret_file(secrets, "id", "AKIDEXAMPLE") +
                    "\n    secret_access_key_file: " + secret_file(secrets, "key", "secret") + "\n";
    RigHarness h(o);
    h.start_all();
    h.pub_cli(h.base() + "/request/capture", R"({"transaction":"u-1"})");
    auto failed = h.wait_for(
        h.base() + "/upload/events",
        [](const Received& r) {
            json j = parse(r.payload);
            return j.is_object() && j.value("type", "") == "failed";
        },
        30s);
    ASSERT_FALSE(failed.topic.empty()) << h.uploader().log();
    EXPECT_GT(peer.answered(), 0);
    for (const auto& r : h.received(h.base() + "/upload/events")) {
        EXPECT_TRUE(photorig::text::is_valid_utf8(r.payload)) << r.payload;
        EXPECT_TRUE(parse(r.payload).is_object()) << r.payload;
    }
    EXPECT_NE(failed.payload.find(std::string("Bad") + kReplacement + "Code"), std::string::npos)
        << failed.payload;
    // Still running; and a restart (the job is journaled) does not abort either.
    std::this_thread::sleep_for(500ms);
    ASSERT_TRUE(h.uploader().running()) << h.uploader().log();
    h.uploader().stop();
    h.clear_received();
    h.start_uploader();
    std::this_thread::sleep_for(2s);
    EXPECT_TRUE(h.uploader().running()) << h.uploader().log();
}

// Item 8: the uploader user handles its own rig's uploads only (run-broker.sh --rig-id).
TEST(HostileText, UploaderUserCannotPublishAnotherRigsUploadEvents) {
    HarnessOptions o;
    o.extra_subscriptions = {"photorig/rig2/#"};
    RigHarness h(o);
    h.start_all();
    photorig::MessageQueue<photorig::mqtt::Event> events;
    auto uploader = h.connect_as("photorig-uploader", "hostile-text-uploader", events);
    const std::string forged = R"({"type":"done","job_id":"forged"})";
    for (const char* rig : {"rig2", "rig1"}) {
        photorig::mqtt::Message m{
            std::string("photorig/") + rig + "/upload/events", forged, 1, false, "", ""};
        (void)uploader->publish(m, false, std::chrono::seconds(5));  // refused: no error needed
    }
    // The allowed one arrives; the other rig's, published first on the same connection, not.
    EXPECT_FALSE(h.wait_for(
                      h.base() + "/upload/events",
                      [&](const Received& r) { return r.payload == forged; }, 10s)
                     .topic.empty());
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(h.received("photorig/rig2/upload/events").empty())
        << "the uploader user published another rig's upload event";
}
