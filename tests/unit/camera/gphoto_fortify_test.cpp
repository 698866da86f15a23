// rig-agent's own __strcpy_chk / __strcat_chk (agent/camera/gphoto_fortify.cpp): exported,
// so libgphoto2's camera drivers call them; exactly glibc's behaviour for every other
// caller, including an abort on overflow. (A camera driver's over-long copy being cut
// instead is proved end to end by HostileCamera.StaysInTheSpool...name_overlong.)
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "camera/gphoto_session.h"

extern "C" char* __strcpy_chk(char* dest, const char* src, size_t destlen);
extern "C" char* __strcat_chk(char* dest, const char* src, size_t destlen);
extern "C" char* __strncpy_chk(char* dest, const char* src, size_t n, size_t destlen);

namespace photorig::camera::detail {
namespace {

TEST(GphotoFortify, TheExecutableExportsItsDefinitions) {
    EXPECT_EQ(dlsym(RTLD_DEFAULT, "__strcpy_chk"), reinterpret_cast<void*>(&__strcpy_chk));
    EXPECT_EQ(dlsym(RTLD_DEFAULT, "__strcat_chk"), reinterpret_cast<void*>(&__strcat_chk));
    EXPECT_EQ(dlsym(RTLD_DEFAULT, "__strncpy_chk"), reinterpret_cast<void*>(&__strncpy_chk));
    // The plain ones too (the PTP driver builds folder paths with stpcpy).
    using Copy = char* (*)(char*, const char*);
    auto own_stpcpy = reinterpret_cast<Copy>(dlsym(RTLD_DEFAULT, "stpcpy"));
    auto own_strcat = reinterpret_cast<Copy>(dlsym(RTLD_DEFAULT, "strcat"));
    ASSERT_TRUE(own_stpcpy && own_strcat);
    Dl_info info{};
    ASSERT_NE(dladdr(reinterpret_cast<void*>(own_stpcpy), &info), 0);
    EXPECT_EQ(std::string(info.dli_fname).find("libc.so"), std::string::npos) << info.dli_fname;
    char buf[16] = "ab";
    EXPECT_EQ(own_stpcpy(buf + 2, "cd"), buf + 4);
    EXPECT_EQ(own_strcat(buf, "ef"), buf);
    EXPECT_STREQ(buf, "abcdef");
}

TEST(GphotoFortify, CopiesThatFitBehaveLikeGlibcs) {
    char buf[8];
    EXPECT_EQ(__strcpy_chk(buf, "1234567", sizeof buf), buf);
    EXPECT_STREQ(buf, "1234567");
    EXPECT_EQ(__strcpy_chk(buf, "ab", sizeof buf), buf);
    EXPECT_EQ(__strcat_chk(buf, "cde", sizeof buf), buf);
    EXPECT_STREQ(buf, "abcde");
    EXPECT_EQ(__strcat_chk(buf, "fg", sizeof buf), buf);
    EXPECT_STREQ(buf, "abcdefg");
    char padded[8];
    EXPECT_EQ(__strncpy_chk(padded, "xy", sizeof padded, sizeof padded), padded);
    EXPECT_EQ(std::string(padded, sizeof padded), std::string("xy\0\0\0\0\0\0", 8));
    EXPECT_EQ(gphoto_truncated_copies(), 0u);
}

// Only libgphoto2's camera drivers get a cut copy; anyone else overflowing still aborts.
TEST(GphotoFortifyDeathTest, AnOverflowOutsideTheCameraDriversStillAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const std::string long_text(8, 'x');
    EXPECT_DEATH(
        {
            char buf[8];
            __strcpy_chk(buf, long_text.c_str(), sizeof buf);
        },
        "buffer overflow detected");
    EXPECT_DEATH(
        {
            char buf[8] = "abcd";
            __strcat_chk(buf, "efgh", sizeof buf);
        },
        "buffer overflow detected");
    EXPECT_DEATH(
        {
            char buf[8];
            __strncpy_chk(buf, "x", 9, sizeof buf);
        },
        "buffer overflow detected");
    EXPECT_EQ(gphoto_truncated_copies(), 0u);
}

}  // namespace
}  // namespace photorig::camera::detail
