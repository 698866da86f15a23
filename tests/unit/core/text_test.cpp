// text::valid_utf8, utf8_truncate and printable: the gate every string from outside passes
// before it reaches JSON (nlohmann's dump() throws on invalid UTF-8).
#include "core/text.h"

#include <gtest/gtest.h>

using namespace photorig::text;

TEST(Utf8, ValidTextPassesUnchanged) {
    for (const char* s : {"", "plain", "Caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x93\xB7"})
        EXPECT_EQ(valid_utf8(s), s);
}

TEST(Utf8, InvalidBytesBecomeReplacementCharacters) {
    EXPECT_EQ(valid_utf8("Canon\xE9"), "Canon\xEF\xBF\xBD");
    EXPECT_EQ(valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
    EXPECT_EQ(valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
    EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80").size(), 12u);            // above U+10FFFF
    EXPECT_EQ(valid_utf8("a\xE2\x82"), "a\xEF\xBF\xBD\xEF\xBF\xBD");  // cut sequence
    EXPECT_TRUE(is_valid_utf8(valid_utf8(std::string("\xFF\x00\xFE", 3))));
}

TEST(Utf8, TruncateNeverSplitsACharacter) {
    const std::string s = "ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x93\xB7";  // a b é € 📷
    EXPECT_EQ(utf8_truncate(s, 100), s);
    EXPECT_EQ(utf8_truncate(s, 2), "ab");
    EXPECT_EQ(utf8_truncate(s, 3), "ab");  // é is 2 bytes
    EXPECT_EQ(utf8_truncate(s, 4), "ab\xC3\xA9");
    EXPECT_EQ(utf8_truncate(s, 6), "ab\xC3\xA9");
    EXPECT_EQ(utf8_truncate(s, 7), "ab\xC3\xA9\xE2\x82\xAC");
    EXPECT_EQ(utf8_truncate(s, 10), "ab\xC3\xA9\xE2\x82\xAC");
    EXPECT_EQ(utf8_truncate(s, 0), "");
    for (size_t n = 0; n <= s.size(); ++n) EXPECT_TRUE(is_valid_utf8(utf8_truncate(s, n))) << n;
}

TEST(Utf8, PrintableIsValidBoundedAndWithoutControls) {
    std::string server(300, 'x');
    server[10] = '\n';
    server[198] = '\xC3';  // é across the 200-byte cut
    server[199] = '\xA9';
    server[200] = '\xE9';  // invalid byte
    std::string p = printable(server, 199);
    EXPECT_TRUE(is_valid_utf8(p));
    EXPECT_EQ(p.substr(p.size() - 3), "...");
    EXPECT_EQ(p.size(), 198u + 3);
    EXPECT_EQ(p[10], ' ');
    EXPECT_EQ(printable("short", 200), "short");
}
