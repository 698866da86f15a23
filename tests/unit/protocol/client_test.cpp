// The client side of the wire reads back exactly what the agent side writes, and refuses
// malformed messages with stable codes instead of guessing.
#include "protocol/client.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "protocol/scan.h"
#include "protocol/wire.h"

using namespace photorig::protocol;
using nlohmann::json;
using namespace photorig::protocol::client;

namespace {
Limits limits;
}  // namespace

TEST(ProtocolClient, RequestBodyCarriesItsFieldsAndTheTransaction) {
    RequestBody body;
    body.set("camera", "SIM0001").set("count", int64_t{3}).set("batch", std::string("b-1"));
    const std::string payload = body.json("rigctl-abc");
    Envelope partial;
    auto envelope = parse_envelope(payload, limits, &partial);
    ASSERT_TRUE(envelope) << envelope.error().describe();
    EXPECT_EQ(envelope->transaction_json, "\"rigctl-abc\"");
    auto capture = parse_capture(payload, limits);
    ASSERT_TRUE(capture) << capture.error().describe();
    EXPECT_EQ(capture->camera, "SIM0001");
    EXPECT_EQ(capture->count, 3);
    EXPECT_EQ(capture->batch, "b-1");
    EXPECT_EQ(capture->interval_ms, 0);  // not set: the agent's default
}

TEST(ProtocolClient, RequestBodyForAScanParsesOnTheAgent) {
    RequestBody body;
    body.set("action", "start").set("positions", int64_t{12}).set("turntable", false);
    EXPECT_TRUE(body.has("positions"));
    EXPECT_FALSE(body.has("count"));
    auto scan = parse_scan(body.json("t"), limits);
    ASSERT_TRUE(scan) << scan.error().describe();
    EXPECT_EQ(scan->action, "start");
    EXPECT_EQ(scan->positions, 12);
    EXPECT_FALSE(scan->turntable);
}

TEST(ProtocolClient, OkResponseRoundTrips) {
    auto r = parse_response(response_ok("\"t-1\"", R"({"a":1})"));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->transaction, std::optional<std::string>("t-1"));
    EXPECT_EQ(r->data_json, R"({"a":1})");
}

TEST(ProtocolClient, ErrorResponseRoundTrips) {
    auto r = parse_response(
        response_error("\"t-2\"", photorig::make_error(codes::camera_busy, "busy now")));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->transaction, std::optional<std::string>("t-2"));
    EXPECT_EQ(r->error.code, codes::camera_busy);
    EXPECT_EQ(r->error.message, "busy now");
}

TEST(ProtocolClient, ResponseWithoutAStringTransactionHasNone) {
    auto r = parse_response(response_ok("null", "{}"));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->transaction);
    r = parse_response(response_ok("17", "{}"));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->transaction);
}

TEST(ProtocolClient, MalformedResponsesGetStableCodes) {
    EXPECT_EQ(parse_response("{").error().code, codes::bad_json);
    EXPECT_EQ(parse_response("[]").error().code, codes::bad_request);
    EXPECT_EQ(parse_response(R"({"transaction":"t"})").error().code, codes::bad_request);
    EXPECT_EQ(parse_response(R"({"status":"error","error":"x"})").error().code, codes::bad_request);
}

TEST(ProtocolClient, AgentStateRoundTrips) {
    AgentState s;
    s.cameras = {{"Canon", "C1", "usb:1", true}, {"Nikon", "N2", "ptpip:x", false}};
    s.busy = true;
    s.spool_files = 4;
    s.disk_free_bytes = 1ull << 40;
    s.version = "1.2.3";
    s.pending_requests = 2;
    s.capture_queue_depth = 2;
    s.capture_queue_max = 4096;
    s.photos_today = 99;
    s.last_error = "oops";
    s.groups = {"studio", "all"};
    auto r = parse_agent_state(agent_state_json(s));
    ASSERT_TRUE(r) << r.error().describe();
    ASSERT_EQ(r->cameras.size(), 2u);
    EXPECT_EQ(r->cameras[0].serial, "C1");
    EXPECT_TRUE(r->cameras[0].connected);
    EXPECT_FALSE(r->cameras[1].connected);
    EXPECT_EQ(r->cameras[1].model, "Nikon");
    EXPECT_TRUE(r->busy);
    EXPECT_EQ(r->spool_files, 4u);
    EXPECT_EQ(r->disk_free_bytes, 1ull << 40);
    EXPECT_EQ(r->version, "1.2.3");
    EXPECT_EQ(r->pending_requests, 2);
    EXPECT_EQ(r->capture_queue_depth, 2);
    EXPECT_EQ(r->capture_queue_max, 4096);
    EXPECT_EQ(r->photos_today, 99u);
    EXPECT_EQ(r->last_error, "oops");
    EXPECT_EQ(r->groups, (std::vector<std::string>{"studio", "all"}));
}

TEST(ProtocolClient, StateFleetFieldsAreOptional) {
    auto none = parse_state_fleet_fields(agent_state_json(AgentState{}));
    ASSERT_TRUE(none) << none.error().describe();
    EXPECT_FALSE(none->clock_synced);
    EXPECT_FALSE(none->clock_est_error_us);
    EXPECT_FALSE(none->bridge_connected);
    auto all = parse_state_fleet_fields(
        R"({"clock":{"synced":true,"est_error_us":250,"max_error_us":900},)"
        R"("bridge":{"connected":false,"since":1700000000000}})");
    ASSERT_TRUE(all) << all.error().describe();
    EXPECT_EQ(all->clock_synced, true);
    EXPECT_EQ(all->clock_est_error_us, 250);
    EXPECT_EQ(all->bridge_connected, false);
    auto null_bridge = parse_state_fleet_fields(R"({"bridge":null})");
    ASSERT_TRUE(null_bridge);
    EXPECT_FALSE(null_bridge->bridge_connected);
    EXPECT_EQ(parse_state_fleet_fields(R"({"clock":{"synced":"yes"}})").error().code,
              codes::bad_request);
    EXPECT_EQ(parse_agent_state(R"({"groups":[1]})").error().code, codes::bad_request);
}

TEST(ProtocolClient, TheCaptureQueueIsAnObjectWithDepthAndMax) {
    AgentState s;
    s.capture_queue_depth = 7;
    s.capture_queue_max = 3;
    json j = json::parse(agent_state_json(s));
    EXPECT_EQ(j["capture_queue"], json({{"depth", 7}, {"max", 3}}));
    EXPECT_EQ(j["pending_requests"], 0) << "the existing field stays";
    auto old = parse_agent_state(R"({"busy":false})");  // an agent from before the queue
    ASSERT_TRUE(old);
    EXPECT_EQ(old->capture_queue_max, 0);
    EXPECT_FALSE(parse_agent_state(R"({"capture_queue":5})"));
}

TEST(ProtocolClient, EmptyStateMeansDefaults) {
    auto r = parse_agent_state("");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->cameras.empty());
    EXPECT_TRUE(r->version.empty());
}

TEST(ProtocolClient, MalformedStatesGetStableCodes) {
    EXPECT_EQ(parse_agent_state("{").error().code, codes::bad_json);
    EXPECT_EQ(parse_agent_state("3").error().code, codes::bad_request);
    EXPECT_EQ(parse_agent_state(R"({"busy":"yes"})").error().code, codes::bad_request);
    EXPECT_EQ(parse_agent_state(R"({"cameras":{}})").error().code, codes::bad_request);
    EXPECT_EQ(parse_agent_state(R"({"cameras":[1]})").error().code, codes::bad_request);
    EXPECT_EQ(parse_agent_state(R"({"spool_files":-1})").error().code, codes::bad_request);
    EXPECT_EQ(parse_uploader_state(R"({"queued":"3"})").error().code, codes::bad_request);
    EXPECT_EQ(parse_uploader_state("nope").error().code, codes::bad_json);
}

TEST(ProtocolClient, UploaderStateRoundTrips) {
    UploaderState s;
    s.queued = 3;
    s.uploading = 1;
    s.done = 10;
    s.failed = 2;
    s.target = "webdav";
    s.last_error = "503";
    s.target_reachable = false;
    s.retry_in_ms = 5000;
    s.version = "1.0";
    auto r = parse_uploader_state(uploader_state_json(s));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->queued, 3u);
    EXPECT_EQ(r->uploading, 1u);
    EXPECT_EQ(r->done, 10u);
    EXPECT_EQ(r->failed, 2u);
    EXPECT_EQ(r->target, "webdav");
    EXPECT_EQ(r->last_error, "503");
    EXPECT_FALSE(r->target_reachable);
    EXPECT_EQ(r->retry_in_ms, 5000);
    EXPECT_EQ(r->version, "1.0");
}

TEST(ProtocolClient, CaptureResultRoundTrips) {
    CaptureMetadata m;
    m.capture_id = "cap-1";
    m.seq = 2;
    m.camera.serial = "SIM0001";
    m.file_name = "a.jpg";
    m.size = 1234;
    m.sha256 = std::string(64, 'a');
    m.captured_at_ms = 1764000000123;
    auto r = parse_capture_result(capture_result_json(
        "batch-1", {m}, {photorig::make_error(codes::camera_disconnected, "gone")}));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->batch, "batch-1");
    EXPECT_EQ(r->count, 1);
    ASSERT_EQ(r->photos.size(), 1u);
    EXPECT_EQ(r->photos[0].capture_id, "cap-1");
    EXPECT_EQ(r->photos[0].seq, 2);
    EXPECT_EQ(r->photos[0].camera, "SIM0001");
    EXPECT_EQ(r->photos[0].file, "a.jpg");
    EXPECT_EQ(r->photos[0].size, 1234u);
    EXPECT_EQ(r->photos[0].sha256, m.sha256);
    EXPECT_EQ(r->photos[0].captured_at, "2025-11-24T16:00:00.123Z");
    ASSERT_EQ(r->errors.size(), 1u);
    EXPECT_EQ(r->errors[0].code, codes::camera_disconnected);
    EXPECT_EQ(r->errors[0].message, "gone");
}

TEST(ProtocolClient, MalformedCaptureResultsGetStableCodes) {
    EXPECT_EQ(parse_capture_result("{").error().code, codes::bad_json);
    EXPECT_EQ(parse_capture_result(R"({"photos":[{"seq":"1"}]})").error().code, codes::bad_request);
    EXPECT_EQ(parse_capture_result(R"({"errors":"none"})").error().code, codes::bad_request);
}

TEST(ProtocolClient, ScanProgressRoundTrips) {
    ScanRecord rec;
    rec.scan_id = "scan-1";
    rec.batch = "b";
    rec.state = "paused";
    rec.request.positions = 8;
    rec.steps_done = 3;
    rec.captures.resize(6);
    rec.waiting_for = "turntable";
    rec.error_code = "turntable_timeout";
    rec.error_message = "no ready";
    auto r = parse_scan_progress(scan_progress_json(rec, "paused", 42));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->event, "paused");
    EXPECT_EQ(r->scan_id, "scan-1");
    EXPECT_EQ(r->batch, "b");
    EXPECT_EQ(r->state, "paused");
    EXPECT_EQ(r->step, 3);
    EXPECT_EQ(r->of, 8);
    EXPECT_EQ(r->photos, 6);
    EXPECT_EQ(r->eta_s, std::optional<int64_t>(42));
    EXPECT_EQ(r->waiting_for, "turntable");
    EXPECT_EQ(r->error_code, "turntable_timeout");
    EXPECT_EQ(r->error_message, "no ready");

    rec.waiting_for.clear();
    r = parse_scan_progress(scan_progress_json(rec, "status", -1));
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->eta_s);  // unknown is null on the wire
    EXPECT_TRUE(r->waiting_for.empty());
}

TEST(ProtocolClient, MalformedScanProgressGetsStableCodes) {
    EXPECT_EQ(parse_scan_progress("{").error().code, codes::bad_json);
    EXPECT_EQ(parse_scan_progress(R"({"step":"2"})").error().code, codes::bad_request);
    EXPECT_EQ(parse_scan_progress(R"({"eta_s":1.5})").error().code, codes::bad_request);
    EXPECT_EQ(parse_scan_progress(R"({"error":"x"})").error().code, codes::bad_request);
}

TEST(ProtocolClient, UploadEventsRoundTripThroughTheSharedParser) {
    UploadEvent e;
    e.type = "failed";
    e.job_id = "j1";
    e.name = "a.jpg";
    e.error_code = "target_unreachable";
    e.error_message = "503";
    e.retrying = true;
    auto r = parse_upload_event(upload_event_json(e));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->type, "failed");
    EXPECT_EQ(r->name, "a.jpg");
    EXPECT_EQ(r->error_code, "target_unreachable");
    EXPECT_TRUE(r->retrying);
}

// Found by the records fuzzer: a rate read back from a record as -1000.5 was converted to an
// unsigned integer (undefined behaviour). A rate is whole bytes per second, never negative.
TEST(ProtocolClient, AnUploadEventsRateIsWrittenAsWholeBytesPerSecondWithinRange) {
    UploadEvent e;
    e.type = "done";
    e.job_id = "j1";
    auto rate_written = [&](double rate) {
        e.rate_bytes_per_s = rate;
        auto r = parse_upload_event(upload_event_json(e));
        EXPECT_TRUE(r) << r.error().describe();
        return r ? r->rate_bytes_per_s : -1.0;
    };
    EXPECT_EQ(rate_written(1234.9), 1234.0);
    EXPECT_EQ(rate_written(-1000.5), 0.0);
    EXPECT_EQ(rate_written(1e300), 1e18);
}

TEST(ProtocolClient, PrettyJsonIndentsByTwo) {
    auto r = pretty_json(R"({"a":[1]})");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, "{\n  \"a\": [\n    1\n  ]\n}");
    EXPECT_EQ(pretty_json("{").error().code, codes::bad_json);
}
