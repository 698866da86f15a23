// Helpers shared by tests: temp dirs, free loopback ports, polling with a deadline,
// running a command and capturing its output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace photorig::test {

// A fresh directory under $TMPDIR (or /tmp), removed recursively by the destructor.
class TempDir {
  public:
    explicit TempDir(const std::string& prefix = "photorig-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read, close).
int free_tcp_port();
// Whether something accepts TCP connections on 127.0.0.1:`port` now (connect, close).
bool loopback_port_accepts(int port);

// Polls `pred` every `step` until it is true or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(20));

struct CommandResult {
    int exit_code = -1;  // -1: did not run / killed by a signal
    std::string output;  // stdout and stderr together
};
// Runs argv (no shell) with an optional timeout; kills it when the timeout passes.
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30),
                          const std::vector<std::string>& extra_env = {});

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content, int mode = 0644);
// A file in `dir` that only its owner may read, holding `secret` and a newline (as a user
// writes one with echo); created 0600, never readable by others for a moment. Returns its path.
std::string secret_file(const TempDir& dir, const std::string& name, const std::string& secret);
// `n` incompressible bytes, the same for the same seed (test payloads and files).
std::string pseudo_random_bytes(size_t n, unsigned seed = 1);
std::vector<std::string> list_files(const std::string& dir, bool recursive = true);

// VmRSS of a process in KiB (0 when it is gone).
long rss_kib(pid_t pid);

// ASan keeps up to 256 MiB of freed memory in quarantine and adds its shadow: memory bounds
// in tests are the normal build's, with this much more room under the sanitizer.
#if defined(__SANITIZE_ADDRESS__)
constexpr long kSanitizerRssSlackKib = 320 * 1024;
#else
constexpr long kSanitizerRssSlackKib = 0;
#endif

// A daemon built with ASan handles each message several times slower: a flood sent at the
// normal build's pace leaves a backlog at the broker that it must read first. Time bounds
// that are about speed are the normal build's; the sanitizer build checks what happens
// (nothing lost, memory bounded), with this factor on how long it may take.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kSanitizerTimeFactor = 6;
#else
constexpr int kSanitizerTimeFactor = 1;
#endif

}  // namespace photorig::test
