// Hostile request payloads at the wire-format level (issue 15): nesting, cancel requests,
// and the token bucket that rate-limits requests.
#include <gtest/gtest.h>

#include <string>

#include "core/rate_limit.h"
#include "protocol/json_depth.h"
#include "protocol/scan.h"
#include "protocol/wire.h"

using namespace photorig;
using namespace photorig::protocol;

TEST(JsonDepth, CountsBracketsOutsideStrings) {
    EXPECT_EQ(json_depth("{}"), 1);
    EXPECT_EQ(json_depth(R"({"a":[1,{"b":[]}]})"), 4);
    EXPECT_EQ(json_depth(R"({"a":"[[[[\"[[[["})"), 1);
    EXPECT_EQ(json_depth("plain"), 0);
    EXPECT_EQ(json_depth("]]]]}}}"), 0);
}

TEST(JsonDepth, StopsCountingPastTheLimit) {
    std::string deep(1000000, '[');
    EXPECT_EQ(json_depth(deep), kMaxJsonDepth + 1);
}

TEST(HostileRequests, DeepNestingIsRefusedBeforeParsing) {
    Limits limits;
    limits.max_payload_bytes = 1 << 21;
    for (std::string open : {"[", "{\"a\":"}) {
        std::string payload;
        for (int i = 0; i < 100000; ++i) payload += open;
        auto env = parse_envelope("{\"x\":" + payload + "}", limits, nullptr);
        ASSERT_FALSE(env);
        EXPECT_EQ(env.error().code, "bad_request") << env.error().message;
    }
    // 64 levels are still read.
    std::string ok = std::string(63, '[') + std::string(63, ']');
    EXPECT_TRUE(parse_envelope("{\"x\":" + ok + "}", limits, nullptr));
}

TEST(HostileRequests, LongTransactionIsNotEchoed) {
    Limits limits;
    limits.max_payload_bytes = 1 << 21;
    Envelope partial;
    auto env =
        parse_envelope("{\"transaction\":\"" + std::string(1000000, 'x') + "\"}", limits, &partial);
    ASSERT_FALSE(env);
    EXPECT_EQ(env.error().code, "out_of_range");
    EXPECT_EQ(partial.transaction_json, "null");
}

TEST(CaptureCancel, NamesTheCaptureByTransactionOrBatch) {
    auto by_txn = parse_capture_cancel(R"({"capture_transaction":"t-1"})");
    ASSERT_TRUE(by_txn);
    EXPECT_EQ(by_txn->capture_transaction_json, "\"t-1\"");
    auto by_number = parse_capture_cancel(R"({"capture_transaction":7,"batch":"b1"})");
    ASSERT_TRUE(by_number);
    EXPECT_EQ(by_number->capture_transaction_json, "7");
    EXPECT_EQ(by_number->batch, "b1");
    for (const char* bad : {"{}", R"({"capture_transaction":{}})", R"({"batch":"../x"})",
                            R"({"capture_transaction":"a","other":1})"}) {
        auto r = parse_capture_cancel(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(std::string(r.error().code), "") << bad;
    }
    EXPECT_EQ(capture_cancel_json(2), R"({"cancelled":2})");
}

TEST(TokenBucket, ServesTheBurstThenTheRate) {
    TokenBucket bucket(10, 5);  // 10 a second, bursts of 5
    int served = 0;
    for (int i = 0; i < 100; ++i) served += bucket.take(1000);
    EXPECT_EQ(served, 5);
    EXPECT_FALSE(bucket.take(1050));  // half a token
    EXPECT_TRUE(bucket.take(1100));   // one token after 100 ms
    served = 0;
    for (int i = 0; i < 100; ++i) served += bucket.take(100000);
    EXPECT_EQ(served, 5) << "never more than the burst saved up";
}

// Records read back from disk or the broker (sidecar, scan record, upload event): every
// conversion is checked. nlohmann's get<int>() of 1e300 was undefined behaviour, a negative
// size wrapped; now each is an Error naming the field.
namespace {
std::string error_of(const Status& st) {
    return st ? "" : st.error().code + ": " + st.error().message;
}
const char* kSidecar =
    R"({"capture_id":"c1","seq":1,"camera":{"serial":"S1"},"captured_at":"2026-11-25T04:10:15.123Z",)"
    R"("file":{"name":"a.jpg","size":10,"sha256":"x"},"exif":{"iso":200,"f_number":5.6}})";
std::string with(std::string text, const std::string& from, const std::string& to) {
    return text.replace(text.find(from), from.size(), to);
}
Status sidecar_status(const std::string& text) {
    auto m = parse_capture_metadata(text);
    return m ? ok() : Status(m.error());
}
}  // namespace

TEST(CheckedRecords, SidecarFieldsAreTypeAndRangeChecked) {
    auto good = parse_capture_metadata(kSidecar);
    ASSERT_TRUE(good) << good.error().describe();
    EXPECT_EQ(good->exif.iso, 200);
    EXPECT_EQ(good->size, 10u);
    EXPECT_EQ(error_of(sidecar_status(with(kSidecar, R"("seq":1)", R"("seq":1e300)"))),
              "bad_request: capture metadata: seq: must be a whole number between 0 and "
              "2147483647");
    EXPECT_EQ(error_of(sidecar_status(with(kSidecar, R"("size":10)", R"("size":-1)"))),
              "bad_request: capture metadata: file.size: must be between 0 and "
              "4611686018427387903");
    EXPECT_EQ(error_of(sidecar_status(with(kSidecar, R"("iso":200)", R"("iso":"fast")"))),
              "bad_request: capture metadata: exif.iso: must be a number, got string");
    EXPECT_EQ(error_of(sidecar_status(with(kSidecar, R"({"serial":"S1"})", "7"))),
              "bad_request: capture metadata: camera: must be an object, got number");
    EXPECT_EQ(error_of(sidecar_status(with(kSidecar, R"("name":"a.jpg",)", ""))),
              "bad_request: capture metadata: file.name: is missing");
    EXPECT_EQ(error_of(sidecar_status("[1]")),
              "bad_request: capture metadata: must be an object, got array");
}

TEST(CheckedRecords, ScanRecordAndUploadEventFieldsAreChecked) {
    auto scan = parse_scan_record(
        R"({"scan_id":"s","batch":"b","state":"running","steps_done":1,"captures":[],)"
        R"("request":{"positions":1e19}})");
    ASSERT_FALSE(scan);
    EXPECT_EQ(scan.error().message,
              "scan record: request.positions: must be a whole number between 0 and 2147483647");
    auto captures = parse_scan_record(
        R"({"scan_id":"s","batch":"b","state":"running","steps_done":1,"captures":{},)"
        R"("request":{"positions":4}})");
    ASSERT_FALSE(captures);
    EXPECT_EQ(captures.error().message, "scan record: captures: must be an array");
    auto event = parse_upload_event(R"({"type":"failed","job_id":"j","attempt":-1e300})");
    ASSERT_FALSE(event);
    EXPECT_EQ(event.error().message,
              "upload event: attempt: must be a whole number between 0 and 2147483647");
    auto retrying = parse_upload_event(R"({"type":"failed","job_id":"j","retrying":"yes"})");
    ASSERT_FALSE(retrying);
    EXPECT_EQ(retrying.error().code, "bad_request");
    auto fine = parse_upload_event(
        R"({"type":"done","job_id":"j","bytes_done":5,"rate_bytes_per_s":2.5,"error":null})");
    ASSERT_TRUE(fine) << fine.error().describe();
    EXPECT_EQ(fine->bytes_done, 5u);
    EXPECT_DOUBLE_EQ(fine->rate_bytes_per_s, 2.5);
}
