// Hostile request payloads at the wire-format level (issue 15): nesting, cancel requests,
// and the token bucket that rate-limits requests.
#include <gtest/gtest.h>

#include <string>

#include "core/rate_limit.h"
#include "protocol/json_depth.h"
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
