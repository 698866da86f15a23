// Secrets never leak (issue 15). For each remote target (Drive fake, s3rver, rclone webdav),
// the whole rig runs with every secret set: the three broker passwords and the target's
// credentials (Drive client secret + refresh token, and the access tokens and session URIs
// the fake hands out; S3 secret key; WebDAV password, also as its basic-auth base64). After
// a capture is uploaded and the dashboard asked for status and config, each secret (and its
// base64) is searched for in every log line of the broker and both daemons, every MQTT
// message under photorig/# and homeassistant/# (all a dashboard can read), and the command
// line and environment of both daemons and every process they started.
// Also: a daemon killed by a core-dumping signal writes no core file (PR_SET_DUMPABLE 0).
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness/rig_harness.h"
#include "support/storage_peers.h"

using namespace photorig::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const char* kClientSecret = "GOCSPX-leak-test-client-secret-7f3a";
const char* kRefreshToken = "1//leak-test-refresh-token-9c2e";
const char* kS3Secret = "leak-test-s3-secret-key-41d8";
const char* kDavPassword = "leak-test-dav-password-e5b1";

json parse(const std::string& s) {
    return json::parse(s, nullptr, false);
}

std::string base64(const std::string& in) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out += abc[(v >> s) & 63];
    }
    if (i + 1 == in.size()) {
        uint32_t v = uint8_t(in[i]) << 16;
        out += std::string{abc[(v >> 18) & 63], abc[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
        out += std::string{abc[(v >> 18) & 63], abc[(v >> 12) & 63], abc[(v >> 6) & 63], '='};
    }
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// `pid` and every process below it (children, grandchildren) that is running now.
std::vector<pid_t> process_tree(pid_t pid) {
    std::vector<pid_t> tree{pid};
    for (size_t i = 0; i < tree.size(); ++i) {
        DIR* d = ::opendir("/proc");
        if (!d) break;
        while (dirent* e = ::readdir(d)) {
            pid_t p = static_cast<pid_t>(std::atoi(e->d_name));
            if (p <= 0) continue;
            std::string stat = slurp("/proc/" + std::to_string(p) + "/stat");
            auto close = stat.rfind(')');  // "pid (comm) state ppid ..."
            if (close == std::string::npos) continue;
            std::istringstream rest(stat.substr(close + 2));
            std::string state;
            pid_t ppid = 0;
            rest >> state >> ppid;
            if (ppid == tree[i]) tree.push_back(p);
        }
        ::closedir(d);
    }
    return tree;
}

// A named text that must hold no secret.
struct Haystack {
    std::string where, text;
};

// Each secret with its base64 forms (alone and as "user:secret" for basic auth).
std::vector<std::pair<std::string, std::string>> needles(
    const std::vector<std::pair<std::string, std::string>>& secrets) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [name, value] : secrets) {
        out.emplace_back(name, value);
        out.emplace_back(name + " (base64)", base64(value));
    }
    return out;
}

class SecretsNeverLeak : public ::testing::Test {
  protected:
    // Runs a capture through the rig and its uploader, asks for status and config as the
    // dashboard, then searches everything for every secret.
    void run_scenario(HarnessOptions o, std::vector<std::pair<std::string, std::string>> secrets,
                      const std::function<std::vector<std::string>()>& issued = nullptr) {
        o.extra_subscriptions = {"homeassistant/#"};
        RigHarness h(o);
        h.start_all();
        for (const char* user : {"photorig-agent", "photorig-uploader", "photorig-dashboard"})
            secrets.emplace_back(std::string("broker password of ") + user, h.password(user));

        h.pub_cli(h.base() + "/request/capture", R"({"transaction":"leak-1","batch":"leak"})");
        auto cap = h.wait_for(
            h.base() + "/capture", [](const Received&) { return true; }, 30s);
        ASSERT_FALSE(cap.topic.empty()) << h.agent().log();
        auto done = h.wait_for(
            h.base() + "/upload/events",
            [](const Received& r) { return parse(r.payload).value("type", "") == "done"; }, 60s);
        ASSERT_FALSE(done.topic.empty()) << h.uploader().log();
        for (const char* verb : {"status", "config/get", "cameras"})
            h.pub_cli(h.base() + "/request/" + verb,
                      std::string(R"({"transaction":"leak-)") + verb + "\"}");
        for (const char* verb : {"status", "config/get", "cameras"})
            EXPECT_FALSE(
                h.wait_for(
                     h.base() + "/response/" + verb, [](const Received&) { return true; }, 10s)
                    .topic.empty())
                << verb;
        // The tokens and session URIs the server issued are secrets too.
        if (issued)
            for (const auto& t : issued()) secrets.emplace_back("issued credential", t);

        std::vector<Haystack> hay;
        for (pid_t daemon : {h.agent().pid(), h.uploader().pid()})
            for (pid_t p : process_tree(daemon)) {
                const std::string dir = "/proc/" + std::to_string(p);
                hay.push_back({dir + "/cmdline", slurp(dir + "/cmdline")});
                hay.push_back({dir + "/environ", slurp(dir + "/environ")});
                // Root reads it; other users cannot (a non-dumpable process's /proc files
                // belong to root).
                if (::geteuid() == 0) {
                    EXPECT_FALSE(hay.back().text.empty()) << dir << "/environ unreadable";
                }
            }
        // Stopped first, so their last log lines are written.
        EXPECT_EQ(h.uploader().stop(), 0);
        EXPECT_EQ(h.agent().stop(), 0);
        hay.push_back({"rig-agent log", h.agent().log()});
        hay.push_back({"rig-uploader log", h.uploader().log()});
        hay.push_back({"broker log", slurp(h.root() + "/broker.log")});
        size_t messages = 0;
        for (const auto& m : h.received("")) {
            hay.push_back(
                {"MQTT " + m.topic, m.topic + "\n" + m.payload + "\n" + m.correlation_data});
            ++messages;
        }
        EXPECT_GT(messages, 10u);
        EXPECT_NE(hay[0].text.find("rig-agent"), std::string::npos);  // the search sees /proc

        for (const auto& [name, needle] : needles(secrets)) {
            ASSERT_GE(needle.size(), 8u) << name;
            for (const auto& stack : hay)
                EXPECT_EQ(stack.text.find(needle), std::string::npos)
                    << name << " found in " << stack.where;
        }
    }
};

}  // namespace

TEST_F(SecretsNeverLeak, Gdrive) {
    TempDir dir("photorig-leak-gdrive");
    GdriveFakePeer fake(dir.file("drive"), dir.file("fake.log"), "leak-client.apps", kClientSecret,
                        kRefreshToken);
    ASSERT_EQ(fake.start(), "");
    HarnessOptions o;
    o.upload_target = "gdrive";
    o.upload_yaml = fake.upload_yaml(dir, 256 * 1024);
    run_scenario(o,
                 {{"Drive client secret", kClientSecret},
                  {"Drive refresh token", kRefreshToken},
                  {"Drive access token", "ya29.fake-"}},  // every token the fake issues
                 [&] {
                     // The upload session ids the fake handed out (its URIs are credentials).
                     std::vector<std::string> out;
                     json stats = fake.stats();
                     if (stats.contains("sessions"))
                         for (const auto& [id, s] : stats["sessions"].items()) out.push_back(id);
                     EXPECT_FALSE(out.empty()) << "no upload session seen: " << stats.dump();
                     return out;
                 });
    fake.stop();
}

TEST_F(SecretsNeverLeak, S3) {
    TempDir dir("photorig-leak-s3");
    S3rverPeer s3(dir.file("s3"), dir.file("s3rver.log"));
    ASSERT_EQ(s3.start(), "");
    HarnessOptions o;
    o.upload_target = "s3";
    o.upload_yaml = "  s3:\n    endpoint: " + s3.endpoint() +
                    "\n    region: us-east-1\n    bucket: photos\n    path_style: true\n"
                    "    access_key_id_file: " +
                    secret_file(dir, "s3-key-id", S3rverPeer::kAccessKeyId) +
                    "\n    secret_access_key_file: " + secret_file(dir, "s3-secret", kS3Secret) +
                    "\n";
    run_scenario(o, {{"S3 secret key", kS3Secret}});
}

TEST_F(SecretsNeverLeak, Webdav) {
    TempDir dir("photorig-leak-webdav");
    RcloneWebdavPeer dav(dir.file("dav"), dir.file("rclone.log"), "rig", kDavPassword);
    ASSERT_EQ(dav.start(), "");
    HarnessOptions o;
    o.upload_target = "webdav";
    o.upload_yaml = "  webdav:\n    url: " + dav.url() +
                    "\n    username: rig\n    password_file: " +
                    secret_file(dir, "dav-password", kDavPassword) + "\n";
    run_scenario(o, {{"WebDAV password", kDavPassword},
                     {"WebDAV basic auth", std::string("rig:") + kDavPassword}});
}

namespace {

// Starts `argv` in `cwd` with an unlimited core size, kills it with SIGQUIT (whose default
// action dumps core) once `ready_after` has passed; returns the wait status.
int quit_with_core_allowed(const std::vector<std::string>& argv, const std::string& cwd,
                           std::chrono::milliseconds ready_after) {
    pid_t pid = ::fork();
    if (pid == 0) {
        struct rlimit unlimited {
            RLIM_INFINITY, RLIM_INFINITY
        };
        ::setrlimit(RLIMIT_CORE, &unlimited);
        if (::chdir(cwd.c_str()) != 0) ::_exit(126);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    std::this_thread::sleep_for(ready_after);
    ::kill(pid, SIGQUIT);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

}  // namespace

TEST(DaemonCoreDumps, NeitherDaemonWritesACoreFile) {
    if (slurp("/proc/sys/kernel/core_pattern").rfind("core", 0) != 0)
        FAIL() << "this test needs kernel.core_pattern = core (cores in the working directory), "
                  "not '"
               << slurp("/proc/sys/kernel/core_pattern") << "'";
    TempDir dir("photorig-core");
    // The control: a process that did not opt out dumps core here.
    ::mkdir(dir.file("control").c_str(), 0755);
    int control = quit_with_core_allowed({"/bin/sleep", "30"}, dir.file("control"), 300ms);
    ASSERT_TRUE(WIFSIGNALED(control) && WCOREDUMP(control)) << "no core from the control process";
    ASSERT_FALSE(list_files(dir.file("control")).empty());

    // Both daemons with a valid config (the broker is absent: they keep retrying).
    write_file(
        dir.file("config.yaml"),
        "rig_id: core\nmqtt:\n  host: 127.0.0.1\n  port: " + std::to_string(free_tcp_port()) +
            "\n  username: photorig-agent\n  password_file: " +
            secret_file(dir, "pw", "core-test-password") +
            "\ncamera:\n  port: \"ptpip:127.0.0.1:1:1\"\n  model: \"PTP/IP Camera\"\n"
            "spool:\n  dir: " +
            dir.file("spool") + "\nupload:\n  target: local\n  journal: " +
            dir.file("journal.sqlite") + "\n  local:\n    dir: " + dir.file("uploads") + "\n");
    for (const char* daemon : {"rig-agent", "rig-uploader"}) {
        const std::string cwd = dir.file(std::string("cwd-") + daemon);
        ::mkdir(cwd.c_str(), 0755);
        int status =
            quit_with_core_allowed({std::string(PHOTORIG_BINARY_DIR) + "/agent/apps/" + daemon,
                                    "--config", dir.file("config.yaml")},
                                   cwd, 1500ms);
        ASSERT_TRUE(WIFSIGNALED(status)) << daemon << " exited before the signal: " << status;
        EXPECT_EQ(WTERMSIG(status), SIGQUIT) << daemon;
        EXPECT_FALSE(WCOREDUMP(status)) << daemon << " dumped core";
        EXPECT_TRUE(list_files(cwd).empty()) << daemon << " left a core file";
    }
}
