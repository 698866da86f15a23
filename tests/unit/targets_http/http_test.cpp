// targets::http::perform against a real HTTP/1.1 server (tests/support/http_peers.py) and
// through a fault-injecting proxy: methods, streamed file ranges, headers, progress,
// keep-alive, transport failures as "target_unavailable", stalls, cancellation.
#include "targets/http.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/sha256.h"
#include "support/child_process.h"
#include "support/http_peers.h"
#include "support/test_util.h"

using namespace photorig;
using namespace photorig::test;
namespace http = photorig::targets::http;
using json = nlohmann::json;

namespace {

class HttpTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string py = python3_program();
        ASSERT_FALSE(py.empty()) << missing_program_message("python3", "Debian package python3");
        server_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{py, http_peers_script(), "0"}, dir_.file("peer.log"));
        server_->start();
        port_ = wait_port_line(dir_.file("peer.log"), std::chrono::seconds(15));
        ASSERT_GT(port_, 0) << "http_peers.py did not start: " << server_->log();
        ASSERT_TRUE(wait_tcp_port(port_, std::chrono::seconds(10)));
    }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }

    TempDir dir_{"photorig-http"};
    std::unique_ptr<ChildProcess> server_;
    int port_ = 0;
};

}  // namespace

TEST_F(HttpTest, GetReturnsStatusHeadersAndBody) {
    http::Request r;
    r.url = url("/hello?x=1");
    r.headers = {"X-Test: yes"};
    auto resp = http::perform(r);
    ASSERT_TRUE(resp) << resp.error().describe();
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->header("content-type"), "application/json");
    EXPECT_EQ(resp->header("x-multi"), "a, b");
    auto j = json::parse(resp->body);
    EXPECT_EQ(j["method"], "GET");
    EXPECT_EQ(j["path"], "/hello?x=1");
    EXPECT_EQ(j["headers"]["x-test"], "yes");
    EXPECT_EQ(resp->bytes_sent, 0u);
}

TEST_F(HttpTest, StatusIsNotAnError) {
    http::Request r;
    r.url = url("/status/503");
    auto resp = http::perform(r);
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 503);
    EXPECT_TRUE(http::is_retryable_status(503));
    EXPECT_TRUE(http::is_retryable_status(429));
    EXPECT_TRUE(http::is_retryable_status(408));
    EXPECT_FALSE(http::is_retryable_status(404));
    EXPECT_FALSE(http::is_retryable_status(200));
}

TEST_F(HttpTest, MethodsWithAndWithoutBodies) {
    for (std::string m : {"MKCOL", "DELETE", "PROPFIND", "MOVE", "POST", "PUT", "HEAD"}) {
        http::Request r;
        r.method = m;
        r.url = url("/m");
        if (m == "PROPFIND") r.body = "<propfind/>";
        auto resp = http::perform(r);
        ASSERT_TRUE(resp) << m << ": " << resp.error().describe();
        EXPECT_EQ(resp->status, 200) << m;
        if (m == "HEAD") {
            EXPECT_TRUE(resp->body.empty());
            continue;
        }
        auto j = json::parse(resp->body);
        EXPECT_EQ(j["method"], m);
        EXPECT_EQ(j["length"], m == "PROPFIND" ? 11 : 0) << m;
        EXPECT_FALSE(j["headers"].contains("expect")) << m;
        if (m == "PUT" || m == "POST") {
            EXPECT_EQ(j["headers"]["content-length"], "0") << m;
        }
    }
}

TEST_F(HttpTest, StreamsAFileRangeWithProgress) {
    const std::string data = pseudo_random_bytes(3 * 1024 * 1024 + 17);
    write_file(dir_.file("src.bin"), data);
    http::Request r;
    r.method = "PUT";
    r.url = url("/upload");
    r.body_file = dir_.file("src.bin");
    r.body_offset = 1000;
    r.body_length = 2 * 1024 * 1024;
    uint64_t last = 0, total = 0;
    int calls = 0;
    r.progress = [&](uint64_t sent, uint64_t t) {
        EXPECT_GE(sent, last);
        last = sent;
        total = t;
        ++calls;
    };
    auto resp = http::perform(r);
    ASSERT_TRUE(resp) << resp.error().describe();
    auto j = json::parse(resp->body);
    EXPECT_EQ(j["length"], r.body_length);
    EXPECT_EQ(j["sha256"], Sha256::of(data.substr(1000, r.body_length)));
    EXPECT_EQ(resp->bytes_sent, r.body_length);
    EXPECT_EQ(last, r.body_length);
    EXPECT_EQ(total, r.body_length);
    EXPECT_GT(calls, 0);
}

TEST_F(HttpTest, MissingOrShortSourceFile) {
    http::Request r;
    r.method = "PUT";
    r.url = url("/upload");
    r.body_file = dir_.file("nope.bin");
    r.body_length = 10;
    auto resp = http::perform(r);
    ASSERT_FALSE(resp);
    EXPECT_EQ(resp.error().code, "source_missing");
    write_file(dir_.file("short.bin"), "12345");
    r.body_file = dir_.file("short.bin");
    resp = http::perform(r);
    ASSERT_FALSE(resp);
    EXPECT_EQ(resp.error().code, "io_error");
}

TEST_F(HttpTest, KeepAliveReusesTheConnectionPerThread) {
    int first = -1;
    for (int i = 0; i < 5; ++i) {
        http::Request r;
        r.method = i % 2 ? "PUT" : "GET";
        r.url = url("/k");
        r.body = i % 2 ? "abc" : "";
        auto resp = http::perform(r);
        ASSERT_TRUE(resp);
        int conn = json::parse(resp->body)["connection"];
        if (first < 0) first = conn;
        EXPECT_EQ(conn, first) << "request " << i << " opened a new connection";
    }
    // Another thread has its own handle, hence its own connection.
    int other = -1;
    std::thread t([&] {
        http::Request r;
        r.url = url("/k");
        auto resp = http::perform(r);
        if (resp) other = json::parse(resp->body)["connection"];
    });
    t.join();
    EXPECT_NE(other, -1);
    EXPECT_NE(other, first);
}

TEST_F(HttpTest, ResponseBodySinkAndLimit) {
    http::Request r;
    r.url = url("/bytes/500000");
    uint64_t got = 0;
    r.body_sink = [&](const char*, size_t n) {
        got += n;
        return true;
    };
    auto resp = http::perform(r);
    ASSERT_TRUE(resp);
    EXPECT_EQ(got, 500000u);
    EXPECT_TRUE(resp->body.empty());

    http::Request small;
    small.url = url("/bytes/500000");
    small.max_response_body = 1000;
    auto refused = http::perform(small);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "io_error");
}

TEST_F(HttpTest, TransportFailuresAreTargetUnavailable) {
    http::Request r;
    r.url = "http://127.0.0.1:" + std::to_string(free_tcp_port()) + "/x";  // nobody listens
    auto refused = http::perform(r);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, "target_unavailable");

    r.url = url("/close");
    auto closed = http::perform(r);
    ASSERT_FALSE(closed);
    EXPECT_EQ(closed.error().code, "target_unavailable");
}

TEST_F(HttpTest, CutConnectionMidUploadIsTargetUnavailable) {
    write_file(dir_.file("src.bin"), pseudo_random_bytes(4 * 1024 * 1024));
    TcpProxy proxy(port_);
    proxy.set_cut_after(1024 * 1024);
    http::Request r;
    r.method = "PUT";
    r.url = "http://127.0.0.1:" + std::to_string(proxy.port()) + "/upload";
    r.body_file = dir_.file("src.bin");
    r.body_length = 4 * 1024 * 1024;
    auto resp = http::perform(r);
    ASSERT_FALSE(resp);
    EXPECT_EQ(resp.error().code, "target_unavailable") << resp.error().describe();
}

TEST_F(HttpTest, StalledServerTimesOut) {
    http::Request r;
    r.url = url("/stall/5");
    r.low_speed_time_s = 1;
    auto t0 = std::chrono::steady_clock::now();
    auto resp = http::perform(r);
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_FALSE(resp);
    EXPECT_EQ(resp.error().code, "target_unavailable");
    EXPECT_LT(took, std::chrono::seconds(4));
}

// Sets a cancel flag 300 ms into perform(r) and expects a prompt "cancelled".
static void expect_cancelled_promptly(http::Request r) {
    std::atomic<bool> cancel{false};
    r.cancel = &cancel;
    std::thread t([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel.store(true);
    });
    auto t0 = std::chrono::steady_clock::now();
    auto resp = http::perform(r);
    auto took = std::chrono::steady_clock::now() - t0;
    t.join();
    ASSERT_FALSE(resp);
    EXPECT_EQ(resp.error().code, "cancelled");
    EXPECT_LT(took, std::chrono::seconds(3));
}

TEST_F(HttpTest, CancelAbortsPromptly) {
    http::Request r;
    r.url = url("/stall/10");
    expect_cancelled_promptly(r);
}

TEST_F(HttpTest, SendSpeedCap) {
    write_file(dir_.file("src.bin"), pseudo_random_bytes(600 * 1024));
    http::Request r;
    r.method = "PUT";
    r.url = url("/upload");
    r.body_file = dir_.file("src.bin");
    r.body_length = 600 * 1024;
    r.max_send_speed = 400 * 1024;
    auto t0 = std::chrono::steady_clock::now();
    auto resp = http::perform(r);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(resp);
    EXPECT_GT(secs, 1.0);
    EXPECT_LT(secs, 4.0);
}

// upload.bandwidth_limit_bytes_per_s is one budget for the link: a lone transfer gets all
// of it, two at once share it (their sum stays under it).
TEST_F(HttpTest, SharedLimiterGivesALoneTransferTheWholeBudgetAndSplitsItBetweenTwo) {
    const uint64_t size = 800 * 1024;
    write_file(dir_.file("a.bin"), pseudo_random_bytes(size));
    write_file(dir_.file("b.bin"), pseudo_random_bytes(size));
    photorig::BandwidthLimiter limiter(1600 * 1024);  // size / rate = 0.5 s
    auto put = [&](const std::string& name) {
        http::Request r;
        r.method = "PUT";
        r.url = url("/upload/" + name);
        r.body_file = dir_.file(name);
        r.body_length = size;
        r.limiter = &limiter;
        auto resp = http::perform(r);
        EXPECT_TRUE(resp) << resp.error().describe();
        if (resp) {
            EXPECT_EQ(resp->bytes_sent, size);
        }
    };
    auto seconds_since = [](std::chrono::steady_clock::time_point t0) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    auto t0 = std::chrono::steady_clock::now();
    put("a.bin");
    double alone = seconds_since(t0);
    EXPECT_GT(alone, 0.5 * 0.8);
    EXPECT_LT(alone, 0.5 * 1.8) << "a lone transfer must not be held to a share of the budget";

    t0 = std::chrono::steady_clock::now();
    std::thread other([&] { put("b.bin"); });
    put("a.bin");
    other.join();
    double both = seconds_since(t0);
    EXPECT_GT(both, 1.0 * 0.8) << "two transfers together exceeded the shared budget";
    EXPECT_LT(both, 1.0 * 1.8);
    std::printf("800 KiB at 1.6 MiB/s: alone %.3f s; two at once %.3f s\n", alone, both);
}

TEST_F(HttpTest, CancelWhileWaitingForTheSharedLimiter) {
    write_file(dir_.file("slow.bin"), pseudo_random_bytes(400 * 1024));
    photorig::BandwidthLimiter limiter(20 * 1024);  // 20 s for the body
    http::Request r;
    r.method = "PUT";
    r.url = url("/upload");
    r.body_file = dir_.file("slow.bin");
    r.body_length = 400 * 1024;
    r.limiter = &limiter;
    expect_cancelled_promptly(r);
}

// The link's gate: a body request waits for the turn before it starts (cancel-aware), keeps
// it for the caller's next body request of the same file, and gives it back when it fails.
TEST_F(HttpTest, LinkGateTurnIsTakenBeforeTheBodyAndKeptUntilReleased) {
    write_file(dir_.file("g.bin"), pseudo_random_bytes(64 * 1024));
    photorig::LinkGate gate;
    http::Request r;
    r.method = "PUT";
    r.url = url("/upload");
    r.body_file = dir_.file("g.bin");
    r.body_length = 64 * 1024;
    photorig::LinkGate::Turn turn(&gate);
    r.link_turn = &turn;
    auto resp = http::perform(r);
    ASSERT_TRUE(resp) << resp.error().describe();
    EXPECT_TRUE(turn.held()) << "kept for the next part or chunk of the same file";
    resp = http::perform(r);  // a second body request of the same file goes at once
    ASSERT_TRUE(resp);
    turn.release();
    EXPECT_FALSE(gate.busy());

    http::Request failing = r;
    failing.url = url("/status/503");
    resp = http::perform(failing);
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 503);
    EXPECT_FALSE(turn.held()) << "a failed body request gives the link back before any retry wait";

    http::Request small;  // requests without a body never wait for the gate
    small.url = url("/hello");
    photorig::LinkGate::Turn other(&gate);
    ASSERT_TRUE(other.hold(nullptr));
    small.link_turn = &turn;
    ASSERT_TRUE(http::perform(small));
    EXPECT_FALSE(turn.held());
}

TEST_F(HttpTest, CancelWhileWaitingForTheLinkGate) {
    write_file(dir_.file("w.bin"), pseudo_random_bytes(64 * 1024));
    photorig::LinkGate gate;
    photorig::LinkGate::Turn other(&gate);  // another transfer's body is on the link
    ASSERT_TRUE(other.hold(nullptr));
    photorig::LinkGate::Turn turn(&gate);
    http::Request r;
    r.method = "PUT";
    r.url = url("/upload");
    r.body_file = dir_.file("w.bin");
    r.body_length = 64 * 1024;
    r.link_turn = &turn;
    expect_cancelled_promptly(r);
    EXPECT_FALSE(turn.held());
    EXPECT_EQ(gate.waiting(), 0u);
}

TEST_F(HttpTest, BasicAuthAndSigV4HeadersAreSentButNeverInErrors) {
    http::Request r;
    r.url = url("/a");
    r.basic_user = "user";
    r.basic_password = "s3cret-pass";
    auto resp = http::perform(r);
    ASSERT_TRUE(resp);
    EXPECT_EQ(json::parse(resp->body)["headers"]["authorization"],
              "Basic dXNlcjpzM2NyZXQtcGFzcw==");

    http::Request s;
    s.url = url("/bucket/key");
    s.sigv4 = http::SigV4{"us-east-1", "s3", "AKID", "very-secret-key"};
    resp = http::perform(s);
    ASSERT_TRUE(resp);
    auto h = json::parse(resp->body)["headers"];
    EXPECT_EQ(h["x-amz-content-sha256"], Sha256::of(""));
    EXPECT_EQ(std::string(h["authorization"]).rfind("AWS4-HMAC-SHA256 Credential=AKID/", 0), 0u);
    EXPECT_TRUE(h.contains("x-amz-date"));

    s.url =
        "http://user:pw@127.0.0.1:" + std::to_string(free_tcp_port()) + "/b/k?X-Amz-Signature=zzz";
    s.basic_password = "s3cret-pass";
    auto failed = http::perform(s);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().message.find("very-secret-key"), std::string::npos);
    EXPECT_EQ(failed.error().message.find("s3cret-pass"), std::string::npos);
    EXPECT_EQ(failed.error().message.find("zzz"), std::string::npos);
    EXPECT_EQ(failed.error().message.find("pw@"), std::string::npos);
}

TEST(HttpHelpers, UrlEncodeAndRedact) {
    EXPECT_EQ(http::url_encode("a b/c~d"), "a%20b%2Fc~d");
    EXPECT_EQ(http::url_encode("a b/c", true), "a%20b/c");
    EXPECT_EQ(http::redact_url("https://u:p@host:1/x/y?sig=1#f"), "https://host:1/x/y");
}
