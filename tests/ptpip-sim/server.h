// PTP/IP transport of the simulator: one listening port for both the command and the
// event connections of each initiator, an optional plain-text control port, one thread
// per connection, and a scheduler thread for delayed capture events.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "camera.h"
#include "event_log.h"
#include "options.h"

namespace ptpsim {

class Server {
  public:
    Server(const Options& opt, Camera& camera, EventLog& log);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    bool listen(std::string* err);
    int port() const { return port_; }
    int control_port() const { return control_port_; }
    // Serves until `stop_fd` becomes readable, then closes every connection and returns.
    void run(int stop_fd);

  private:
    enum class Kind { Pending, Command, Event, Control };
    struct Session {
        uint32_t conn = 0;
        uint64_t cmd_id = 0;  // connection ids in the registry
        std::mutex mu;        // guards the fields below
        uint64_t evt_id = 0;
        int evt_fd = -1;
        bool closed = false;
        std::vector<std::vector<uint8_t>> pending_events;  // before the event channel exists
    };
    struct Job {
        std::weak_ptr<Session> session;
        uint32_t handle;
        uint32_t raw_handle;
        uint32_t tid;
        bool store_full;     // send StoreFull instead of ObjectAdded + CaptureComplete
        bool flood = false;  // --hostile event-flood: one more copy of `handle`, and again
    };
    struct Worker {
        std::thread thread;
        std::shared_ptr<std::atomic<bool>> done;
    };

    void spawn(std::function<void()> fn);
    void reap(bool all);

    uint64_t register_conn(int fd, Kind kind);
    void set_kind(uint64_t id, Kind kind);
    void close_conn(uint64_t id);
    void shutdown_conn(uint64_t id);
    void shutdown_all(bool include_control);

    void serve_ptpip(int fd);
    void command_loop(const std::shared_ptr<Session>& s, int fd);
    void event_loop(const std::shared_ptr<Session>& s, int fd, uint64_t id);
    void control_loop(int fd);
    std::string control_command(const std::string& line);
    void scheduler_loop();

    bool send_reply(int fd, const OpRequest& req, const OpReply& r);
    bool send_endless_data(int fd, const OpRequest& req, const OpReply& r);
    void schedule_flood(const std::shared_ptr<Session>& s, uint32_t handle, uint32_t tid);
    void queue_event(Session& s, uint16_t code, uint32_t tid, const std::vector<uint32_t>& params);
    void send_capture_events(const std::shared_ptr<Session>& s, uint32_t handle,
                             uint32_t raw_handle, uint32_t tid, bool store_full);
    bool interruptible_sleep(std::chrono::milliseconds d);

    const Options opt_;
    Camera& camera_;
    EventLog& log_;
    int listen_fd_ = -1;
    int control_fd_ = -1;
    int port_ = 0;
    int control_port_ = -1;
    std::atomic<bool> stopping_{false};

    std::mutex reg_mu_;
    std::map<uint64_t, std::pair<int, Kind>> conns_;
    uint64_t next_conn_id_ = 1;

    std::mutex sessions_mu_;
    std::map<uint32_t, std::shared_ptr<Session>> sessions_;
    uint32_t next_session_ = 1;

    std::mutex sched_mu_;
    std::condition_variable sched_cv_;
    std::multimap<std::chrono::steady_clock::time_point, Job> jobs_;

    std::mutex sleep_mu_;
    std::condition_variable sleep_cv_;

    std::list<Worker> workers_;  // touched by the main thread only
};

}  // namespace ptpsim
