#include "rig/camera_requests.h"

#include <future>
#include <memory>

#include "protocol/wire.h"

namespace photorig::rig {
namespace {
protocol::SettingNode to_wire(const camera::Setting& s) {
    protocol::SettingNode n{s.name, s.label, s.type, s.value,     s.choices,
                            s.min,  s.max,   s.step, s.read_only, {}};
    for (const auto& c : s.children) n.children.push_back(to_wire(c));
    return n;
}
}  // namespace

Expected<std::optional<std::string>> CameraRequests::handle(const mqtt::Message& message,
                                                            const std::string& verb,
                                                            const std::string& txn) {
    auto req = verb == "config/get"   ? protocol::parse_config_get(message.payload)
               : verb == "config/set" ? protocol::parse_config_set(message.payload)
                                      : protocol::parse_preview(message.payload);
    if (!req) return req.error();
    if (waiting_ >= kMaxWaiting) {
        return make_error(protocol::codes::queue_full,
                          "camera request queue is full: " + std::to_string(int(waiting_)) +
                              " config/get, config/set and preview requests waiting (bound " +
                              std::to_string(kMaxWaiting) + "); try again when some are answered");
    }
    Error choose_error;
    camera::CameraWorker* cam = cameras_.choose_one(req->camera, &choose_error);
    if (!cam) return choose_error;
    std::string serial = cam->info().serial;
    ++waiting_;
    auto reply = [this, verb, txn, topic = message.response_topic,
                  corr = message.correlation_data](const std::string& payload) {
        responder_.respond(verb, topic, corr, payload);
        --waiting_;
    };
    auto failed = [this, reply, txn, serial](const Error& e) {
        ++stats_.request_errors_total;
        reply(protocol::response_error(txn, e.with_context("camera " + serial)));
    };
    if (verb == "config/get") {
        auto fut =
            std::make_shared<std::future<Expected<camera::Setting>>>(cam->settings(req->name));
        executor_.submit([fut, reply, failed, txn, serial] {
            auto tree = fut->get();
            if (!tree) return failed(tree.error());
            reply(protocol::response_ok(txn, protocol::settings_json(serial, to_wire(*tree))));
        });
    } else if (verb == "config/set") {
        auto fut = std::make_shared<std::future<Expected<std::string>>>(
            cam->set_setting(req->name, req->value));
        executor_.submit([fut, reply, failed, txn, serial, name = req->name] {
            auto value = fut->get();
            if (!value) return failed(value.error());
            reply(protocol::response_ok(txn, protocol::setting_set_json(serial, name, *value)));
        });
    } else {
        auto fut = std::make_shared<std::future<Expected<camera::Preview>>>(cam->preview());
        executor_.submit([this, fut, reply, failed, txn, serial] {
            auto preview = fut->get();
            if (!preview) return failed(preview.error());
            // Retained: Home Assistant's image entity shows the last one after a restart too.
            std::string topic = topics_.preview(serial);
            publisher_.send(topic, preview->jpeg, true);
            publisher_.send(topics_.preview(), preview->jpeg, true);
            reply(protocol::response_ok(
                txn, protocol::preview_json(serial, preview->source, preview->jpeg.size(),
                                            preview->taken_at_ms, topic)));
        });
    }
    return std::optional<std::string>();
}

}  // namespace photorig::rig
