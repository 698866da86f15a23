#include <gtest/gtest.h>

#include "core/backoff.h"
#include "core/digest.h"

namespace photorig {
namespace {

TEST(Backoff, DoublesFromTheInitialDelayUpToTheCap) {
    BackoffPolicy p{100, 1000, BackoffPolicy::Jitter::none};
    EXPECT_EQ(backoff_delay_ms(p, 1), 100);
    EXPECT_EQ(backoff_delay_ms(p, 2), 200);
    EXPECT_EQ(backoff_delay_ms(p, 4), 800);
    EXPECT_EQ(backoff_delay_ms(p, 5), 1000);
    EXPECT_EQ(backoff_delay_ms(p, 1000000), 1000);
    EXPECT_EQ(backoff_delay_ms(p, 0), 100);
    // A cap below the start is no cap at all: the start wins.
    EXPECT_EQ(backoff_delay_ms(BackoffPolicy{500, 10, BackoffPolicy::Jitter::none}, 3), 500);
}

TEST(Backoff, HalfJitterDrawsFromTheUpperHalf) {
    BackoffPolicy p{1000, 8000, BackoffPolicy::Jitter::half};
    int64_t lowest = 1 << 30, highest = 0;
    for (int i = 0; i < 2000; ++i) {
        int64_t d = backoff_delay_ms(p, 3);  // 4000 before jitter
        ASSERT_GE(d, 2000);
        ASSERT_LE(d, 4000);
        lowest = std::min(lowest, d);
        highest = std::max(highest, d);
    }
    EXPECT_LT(lowest, 2200);  // the draws spread over the range, not one value
    EXPECT_GT(highest, 3800);
}

TEST(Backoff, CountsFailuresUntilReset) {
    Backoff b(BackoffPolicy{10, 50, BackoffPolicy::Jitter::none});
    EXPECT_EQ(b.current_cap_ms(), 10);
    EXPECT_EQ(b.next_delay_ms(), 10);
    EXPECT_EQ(b.next_delay_ms(), 20);
    EXPECT_EQ(b.next_delay_ms(), 40);
    EXPECT_EQ(b.next_delay_ms(), 50);
    EXPECT_EQ(b.failures(), 4);
    b.reset();
    EXPECT_EQ(b.failures(), 0);
    EXPECT_EQ(b.next_delay_ms(), 10);
}

TEST(Digest, KnownVectorsInHex) {
    EXPECT_EQ(Sha256::of("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(Digest::hex_of(Digest::Algorithm::md5, ""), "d41d8cd98f00b204e9800998ecf8427e");
    Digest d(Digest::Algorithm::sha256);
    d.update("a", 1);
    d.update("bc", 2);
    EXPECT_EQ(hex::encode(d.raw_digest()), Sha256::of("abc"));
}

TEST(Digest, HexRoundTripsAndRefusesMalformedText) {
    const std::string bytes("\x00\x7f\x80\xff", 4);
    EXPECT_EQ(hex::encode(bytes), "007f80ff");
    EXPECT_EQ(hex::decode("007F80ff"), bytes);
    EXPECT_EQ(hex::decode("abc"), "");
    EXPECT_EQ(hex::decode("zz"), "");
}

TEST(Digest, OfAMissingFileIsAnIoError) {
    auto r = Sha256::of_file("/nonexistent/photorig-digest-test");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "io_error");
}

}  // namespace
}  // namespace photorig
