#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "protocol/wire.h"

using namespace photorig::protocol;
using nlohmann::json;

namespace {
Limits limits;

std::string capture_error(const std::string& payload) {
    auto r = parse_capture(payload, limits);
    EXPECT_FALSE(r.has_value()) << payload;
    return r ? "" : r.error().code;
}
}  // namespace

TEST(Protocol, EmptyPayloadMeansDefaults) {
    auto r = parse_capture("", limits);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->camera, "all");
    EXPECT_EQ(r->count, 1);
    EXPECT_EQ(r->interval_ms, 0);
    EXPECT_TRUE(r->batch.empty());
}

TEST(Protocol, CaptureFieldsAreRead) {
    auto r = parse_capture(
        R"({"camera":"SIM0001","count":5,"interval_ms":250,"batch":"scan-7","transaction":"t1"})",
        limits);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->camera, "SIM0001");
    EXPECT_EQ(r->count, 5);
    EXPECT_EQ(r->interval_ms, 250);
    EXPECT_EQ(r->batch, "scan-7");
}

// capture_at becomes microseconds (* 1000): a value that would overflow is refused.
TEST(Protocol, CaptureAtBeyondYear9999IsRefusedAndAValidOneIsKept) {
    EXPECT_EQ(capture_error(R"({"capture_at":4611686018427387903})"), "out_of_range");
    EXPECT_EQ(capture_error(R"({"capture_at":9223372036854775807})"), "out_of_range");
    EXPECT_EQ(capture_error(R"({"capture_at":253402300800000})"), "out_of_range");
    EXPECT_EQ(capture_error(R"({"capture_at":1e300})"), "out_of_range");
    EXPECT_EQ(capture_error(R"({"capture_at":-5})"), "out_of_range");
    auto r = parse_capture(R"({"capture_at":1764043815123})", limits);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(*r->capture_at_ms, 1764043815123);
}

// Text from a camera that is not UTF-8 (EXIF Make 0xE9) must not make dump() throw: the
// sidecar and the capture message replace it with U+FFFD.
TEST(Protocol, MetadataWithInvalidUtf8SerialisesWithReplacementCharacters) {
    CaptureMetadata m;
    m.capture_id = "c1";
    m.camera.serial = "SN\xE9";
    m.exif.make = std::string("Canon\xE9");
    std::string out;
    ASSERT_NO_THROW(out = capture_metadata_json(m));
    EXPECT_NE(out.find("Canon\xEF\xBF\xBD"), std::string::npos) << out;
    EXPECT_FALSE(nlohmann::json::parse(out, nullptr, false).is_discarded());
}

TEST(Protocol, MalformedCapturesGetStableCodes) {
    EXPECT_EQ(capture_error("{"), codes::bad_json);
    EXPECT_EQ(capture_error("[1,2]"), codes::bad_request);
    EXPECT_EQ(capture_error("\"capture\""), codes::bad_request);
    EXPECT_EQ(capture_error(R"({"count":"3"})"), codes::bad_request);
    EXPECT_EQ(capture_error(R"({"count":1.5})"), codes::bad_request);
    EXPECT_EQ(capture_error(R"({"count":0})"), codes::out_of_range);
    EXPECT_EQ(capture_error(R"({"count":-1})"), codes::out_of_range);
    EXPECT_EQ(capture_error(R"({"count":100000000000000000000})"), codes::out_of_range);
    EXPECT_EQ(capture_error(R"({"interval_ms":-5})"), codes::out_of_range);
    EXPECT_EQ(capture_error(R"({"camera":5})"), codes::bad_request);
    EXPECT_EQ(capture_error(R"({"camera":""})"), codes::bad_request);
    EXPECT_EQ(capture_error(R"({"batch":"../etc"})"), codes::invalid_name);
    EXPECT_EQ(capture_error(R"({"batch":"a/b"})"), codes::invalid_name);
    EXPECT_EQ(capture_error(R"({"batch":".hidden"})"), codes::invalid_name);
    EXPECT_EQ(capture_error(R"({"batch":"ok..no"})"), codes::invalid_name);
    EXPECT_EQ(capture_error(R"({"cout":5})"), codes::bad_request);
    EXPECT_EQ(capture_error(R"({"count":null})"), codes::bad_request);
}

TEST(Protocol, EnvelopeLimitsSizeAndEchoesTransaction) {
    Envelope partial;
    auto big = parse_envelope(std::string(limits.max_payload_bytes + 1, ' '), limits, &partial);
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error().code, codes::payload_too_large);

    auto e = parse_envelope(R"({"transaction":42})", limits, &partial);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->transaction_json, "42");
    auto bad = parse_envelope(R"({"transaction":{"a":1}})", limits, &partial);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, codes::bad_request);
}

TEST(Protocol, ResponsesHaveTheDocumentedShape) {
    json ok = json::parse(response_ok("\"abc\"", R"({"x":1})"));
    EXPECT_EQ(ok["status"], "ok");
    EXPECT_EQ(ok["transaction"], "abc");
    EXPECT_EQ(ok["data"]["x"], 1);
    json err = json::parse(response_error("null", photorig::make_error("camera_busy", "busy")));
    EXPECT_EQ(err["status"], "error");
    EXPECT_TRUE(err["transaction"].is_null());
    EXPECT_EQ(err["error"]["code"], "camera_busy");
    EXPECT_EQ(err["error"]["message"], "busy");
}

TEST(Protocol, UploadJobRoundTripsAndRejectsUnsafeValues) {
    UploadJob job;
    job.job_id = "0193abc";
    job.capture_id = "0193abc";
    job.rig_id = "rig1";
    job.batch = "b1";
    job.path = "/var/spool/photorig/b1/SIM_0001_IMG.JPG";
    job.remote_name = "SIM_0001_IMG.JPG";
    job.mime = "image/jpeg";
    job.sha256 = std::string(64, 'a');
    job.size = 123;
    job.captured_at_ms = 1764043815123;
    auto back = parse_upload_job(upload_job_json(job));
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(back->path, job.path);
    EXPECT_EQ(back->size, 123u);
    EXPECT_EQ(back->captured_at_ms, job.captured_at_ms);
    json j = json::parse(upload_job_json(job));
    for (const char* key : {"job_id", "capture_id", "path", "size", "sha256", "remote_name"}) {
        EXPECT_TRUE(j.contains(key)) << key;
    }
    j["remote_name"] = "../x";
    EXPECT_FALSE(parse_upload_job(j.dump()));
    j["remote_name"] = "ok.jpg";
    j["path"] = "relative/x";
    EXPECT_FALSE(parse_upload_job(j.dump()));
    j["path"] = "/a/b";
    j["sha256"] = "xyz";
    EXPECT_FALSE(parse_upload_job(j.dump()));
}

TEST(Protocol, CaptureMetadataHasEveryInterfaceField) {
    CaptureMetadata m;
    m.capture_id = "c1";
    m.rig_id = "rig1";
    m.batch = "b";
    m.seq = 3;
    m.camera = {"PTP/IP Camera", "SIM0001", "ptpip:127.0.0.1:1:1", true};
    m.captured_at_ms = 1764043815123;
    m.file_name = "x.jpg";
    m.file_path = "/s/b/x.jpg";
    m.size = 10;
    m.sha256 = std::string(64, 'b');
    m.mime = "image/jpeg";
    m.exif.iso = 200;
    m.exif.f_number = 8.0;
    m.trigger_ms = 5;
    m.download_ms = 7;
    json j = json::parse(capture_metadata_json(m));
    EXPECT_EQ(j["captured_at"], "2025-11-25T04:10:15.123Z");
    EXPECT_EQ(j["camera"]["serial"], "SIM0001");
    EXPECT_EQ(j["file"]["sha256"], m.sha256);
    EXPECT_EQ(j["exif"]["iso"], 200);
    EXPECT_EQ(j["timings_ms"]["download"], 7);
    EXPECT_FALSE(j["exif"].contains("exposure_time"));
    auto back = parse_capture_metadata(j.dump());
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(back->captured_at_ms, m.captured_at_ms);
    EXPECT_EQ(back->exif.iso, 200);
    EXPECT_EQ(back->seq, 3);
}

TEST(Protocol, SafeNames) {
    EXPECT_TRUE(is_safe_name("scan-2026.11_a"));
    EXPECT_FALSE(is_safe_name(""));
    EXPECT_FALSE(is_safe_name(".."));
    EXPECT_FALSE(is_safe_name("a b"));
    EXPECT_FALSE(is_safe_name(std::string(65, 'a')));
}

#include "protocol/scan.h"

TEST(ProtocolScan, StartDefaultsAndOtherActionsTakeNoFields) {
    auto r = parse_scan(R"({"action":"start","positions":36})", limits);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->positions, 36);
    EXPECT_EQ(r->camera, "all");
    EXPECT_TRUE(r->turntable);
    EXPECT_EQ(r->move_timeout_ms, 30000);
    auto p = parse_scan(R"({"action":"pause","transaction":1})", limits);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->action, "pause");
    auto bad = parse_scan(R"({"action":"pause","positions":3})", limits);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, "bad_request");
}

TEST(ProtocolScan, ReadyMustMatchTheStepAndScanWhenItNamesThem) {
    ScanRecord r;
    r.scan_id = "scan-1";
    r.request.positions = 4;
    EXPECT_TRUE(scan_ready_matches("ready", r, 2));
    EXPECT_TRUE(scan_ready_matches(R"({"step":2})", r, 2));
    EXPECT_TRUE(scan_ready_matches(R"({"scan_id":"scan-1","step":2})", r, 2));
    EXPECT_FALSE(scan_ready_matches(R"({"step":1})", r, 2));
    EXPECT_FALSE(scan_ready_matches(R"({"scan_id":"scan-0","step":2})", r, 2));
    json move = json::parse(scan_move_json(r, 3));
    EXPECT_EQ(move["position_deg"], 180.0);
    EXPECT_EQ(move["degrees"], 90.0);
}

TEST(ProtocolScan, RecordRoundTripsWithItsCaptures) {
    ScanRecord r;
    r.scan_id = "scan-7";
    r.batch = "vase";
    r.state = "paused";
    r.request.positions = 12;
    r.request.settle_ms = 300;
    r.request.turntable = false;
    r.steps_done = 1;
    r.error_code = "timeout";
    CaptureMetadata m;
    m.capture_id = m.job_id = "c1";
    m.batch = "vase";
    m.seq = 1;
    m.file_name = "a.jpg";
    m.size = 10;
    m.sha256 = std::string(64, 'a');
    r.captures.push_back(m);
    auto back = parse_scan_record(scan_record_json(r));
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(back->scan_id, "scan-7");
    EXPECT_EQ(back->state, "paused");
    EXPECT_EQ(back->request.positions, 12);
    EXPECT_EQ(back->request.settle_ms, 300);
    EXPECT_FALSE(back->request.turntable);
    EXPECT_EQ(back->error_code, "timeout");
    ASSERT_EQ(back->captures.size(), 1u);
    EXPECT_EQ(back->captures[0].file_name, "a.jpg");
    EXPECT_FALSE(parse_scan_record("{}"));
}
