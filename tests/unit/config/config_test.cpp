#include "config/config.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "support/test_util.h"

using photorig::config::parse;
using Env = std::map<std::string, std::string>;

namespace {
std::string error_of(const std::string& yaml, const Env& env = {}) {
    auto c = parse(yaml, env);
    EXPECT_FALSE(c.has_value()) << "expected an error for:\n" << yaml;
    return c ? "" : c.error().message;
}
}  // namespace

TEST(Config, DefaultsMatchTheInterface) {
    auto c = parse("", {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->rig_id, "rig1");
    EXPECT_EQ(c->topic_prefix, "photorig");
    EXPECT_EQ(c->base_topic(), "photorig/rig1");
    EXPECT_EQ(c->mqtt.host, "127.0.0.1");
    EXPECT_EQ(c->mqtt.port, 1883);
    EXPECT_EQ(c->camera.port, "auto");
    EXPECT_EQ(c->spool.dir, "/var/spool/photorig");
    EXPECT_EQ(c->upload.target, "local");
    EXPECT_EQ(c->upload.local.dir, "/var/lib/photorig/uploads");
    EXPECT_EQ(c->upload.gdrive.folder, "photorig");
    EXPECT_EQ(c->upload.gdrive.token_url, "https://oauth2.googleapis.com/token");
    EXPECT_EQ(c->upload.s3.key_template, "{rig_id}/{batch}/{name}");
    EXPECT_FALSE(c->upload.s3.path_style);
    EXPECT_EQ(c->capture.queue_max, 4096);
    EXPECT_EQ(c->capture.trigger_priority, 10);
}

TEST(Config, TriggerPriorityIsReadOverriddenAndChecked) {
    auto c = parse("capture: {trigger_priority: 0}\n", {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->capture.trigger_priority, 0);
    c = parse("", {{"PHOTORIG_CAPTURE_TRIGGER_PRIORITY", "99"}});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->capture.trigger_priority, 99);
    for (const char* bad : {"-1", "100", "high"}) {
        std::string e = error_of(std::string("capture: {trigger_priority: ") + bad + "}");
        EXPECT_EQ(e.rfind("capture.trigger_priority:", 0), 0u) << e;
    }
}

TEST(Config, TheCaptureQueueBoundIsReadOverriddenAndChecked) {
    auto c = parse("capture: {queue_max: 3}\n", {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->capture.queue_max, 3);
    c = parse("capture: {queue_max: 3}\n", {{"PHOTORIG_CAPTURE_QUEUE_MAX", "100"}});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->capture.queue_max, 100);
    for (const char* bad : {"0", "-1", "65537", "lots"}) {
        std::string e = error_of(std::string("capture: {queue_max: ") + bad + "}");
        EXPECT_EQ(e.rfind("capture.queue_max:", 0), 0u) << e;
    }
    std::string e = error_of("", {{"PHOTORIG_CAPTURE_QUEUE_MAX", "0"}});
    EXPECT_NE(e.find("PHOTORIG_CAPTURE_QUEUE_MAX"), std::string::npos) << e;
    auto keys = photorig::config::all_keys();
    EXPECT_NE(std::find(keys.begin(), keys.end(), "capture.queue_max"), keys.end())
        << "--help lists it";
}

TEST(Config, ReadsEveryInterfaceSection) {
    auto c = parse(R"(
rig_id: turntable-2
topic_prefix: studio/photorig
mqtt:
  host: broker.local
  port: 8883
  username: agent
  password_file: /etc/photorig/mqtt.pw
  tls: {ca_file: /etc/ca.pem, cert_file: "", key_file: ""}
camera:
  port: ptpip:127.0.0.1:15740:15740
  model: "PTP/IP Camera"
spool:
  dir: /data/spool
upload:
  target: s3
  local: {dir: /data/up}
  s3:
    endpoint: http://127.0.0.1:9000
    region: eu-west-1
    bucket: scans
    path_style: true
    access_key_id_file: /etc/photorig/s3.id
    secret_access_key_file: /etc/photorig/s3.secret
    key_template: "{rig_id}/{date}/{batch}/{name}"
groups: [front, all-rigs]
)",
                   {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->rig_id, "turntable-2");
    EXPECT_EQ(c->base_topic(), "studio/photorig/turntable-2");
    EXPECT_EQ(c->mqtt.port, 8883);
    EXPECT_EQ(c->mqtt.tls.ca_file, "/etc/ca.pem");
    EXPECT_EQ(c->camera.port, "ptpip:127.0.0.1:15740:15740");
    EXPECT_EQ(c->camera.model, "PTP/IP Camera");
    EXPECT_EQ(c->upload.s3.bucket, "scans");
    EXPECT_TRUE(c->upload.s3.path_style);
    EXPECT_EQ(c->upload.s3.key_template, "{rig_id}/{date}/{batch}/{name}");
    ASSERT_EQ(c->groups.size(), 2u);
    EXPECT_EQ(c->groups[1], "all-rigs");
}

TEST(Config, EnvironmentOverridesFileValuesIncludingNestedKeys) {
    Env env{{"PHOTORIG_MQTT_PORT", "1884"},
            {"PHOTORIG_UPLOAD_S3_BUCKET", "from-env"},
            {"PHOTORIG_RIG_ID", "envrig"},
            {"PHOTORIG_MQTT_PASSWORD_FILE", "/run/pw"},
            {"PHOTORIG_UNRELATED_THING", "ignored"}};
    auto c = parse("mqtt: {port: 1883}\nupload: {s3: {bucket: file}}\n", env);
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->mqtt.port, 1884);
    EXPECT_EQ(c->upload.s3.bucket, "from-env");
    EXPECT_EQ(c->rig_id, "envrig");
    EXPECT_EQ(c->mqtt.password_file, "/run/pw");
    EXPECT_EQ(photorig::config::env_name_for("upload.s3.bucket"), "PHOTORIG_UPLOAD_S3_BUCKET");
}

TEST(Config, BadValuesNameTheKey) {
    EXPECT_EQ(error_of("mqtt: {port: 70000}").rfind("mqtt.port:", 0), 0u);
    EXPECT_EQ(error_of("mqtt: {port: abc}").rfind("mqtt.port:", 0), 0u);
    EXPECT_EQ(error_of("rig_id: Rig/1").rfind("rig_id:", 0), 0u);
    EXPECT_EQ(error_of("topic_prefix: 'a/#'").rfind("topic_prefix:", 0), 0u);
    EXPECT_EQ(error_of("upload: {target: ftp}").rfind("upload.target:", 0), 0u);
    EXPECT_EQ(error_of("spool: {dir: relative/path}").rfind("spool.dir:", 0), 0u);
    EXPECT_EQ(error_of("upload: {target: s3}").rfind("upload.s3.bucket:", 0), 0u);
    EXPECT_EQ(
        error_of("upload: {delete_after_upload: maybe}").rfind("upload.delete_after_upload:", 0),
        0u);
    EXPECT_EQ(error_of("spool: {keep_uploaded_days: -1}").rfind("spool.keep_uploaded_days:", 0),
              0u);
    EXPECT_EQ(
        error_of("upload: {s3: {part_size_bytes: 1048576}}").rfind("upload.s3.part_size_bytes:", 0),
        0u)
        << "S3 refuses parts under 5 MiB; say so at start-up, not at the first big photo";
    EXPECT_NE(
        error_of("mqtt: {port: 1}", {{"PHOTORIG_MQTT_PORT", "zero"}}).find("PHOTORIG_MQTT_PORT"),
        std::string::npos);
}

TEST(Config, UnknownKeysAreRejectedSoTyposDoNotPassSilently) {
    std::string e = error_of("mqtt:\n  prot: 1884\n");
    EXPECT_EQ(e.rfind("mqtt.prot:", 0), 0u) << e;
    EXPECT_NE(e.find("unknown key"), std::string::npos);
    EXPECT_EQ(error_of("mqtt: 5").rfind("mqtt:", 0), 0u);
}

TEST(Config, YamlSyntaxErrorIsReported) {
    auto c = parse("mqtt: {port: 1883\n", {});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, "bad_config");
    EXPECT_NE(c.error().message.find("YAML"), std::string::npos);
}

TEST(Config, SecretFilesMustNotBeWorldReadable) {
    photorig::test::TempDir dir;
    std::string pw = dir.file("pw");
    photorig::test::write_file(pw, "s3cret-value\n", 0644);
    auto c = parse("mqtt: {password_file: " + pw + "}", {});
    ASSERT_TRUE(c);
    auto st = photorig::config::check_secret_files(*c, false);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message.rfind("mqtt.password_file:", 0), 0u) << st.error().message;
    EXPECT_NE(st.error().message.find("chmod 600"), std::string::npos);
    EXPECT_EQ(st.error().message.find("s3cret-value"), std::string::npos)
        << "secret leaked into an error";
    photorig::test::write_file(pw, "s3cret-value\n", 0600);
    EXPECT_TRUE(photorig::config::check_secret_files(*c, false));
}

TEST(Config, LoadReadsTheFileAndNamesItOnError) {
    photorig::test::TempDir dir;
    std::string path = dir.file("photorig.yaml");
    photorig::test::write_file(path, "mqtt: {port: 0}\n");
    auto c = photorig::config::load(path);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find(path), std::string::npos);
    EXPECT_NE(c.error().message.find("mqtt.port"), std::string::npos);
    auto missing = photorig::config::load(dir.file("nope.yaml"));
    ASSERT_FALSE(missing);
}

TEST(Config, TheChosenTargetsSectionIsValidatedNamingTheKey) {
    const std::string gdrive =
        "upload:\n  target: gdrive\n  gdrive:\n    client_id: cid\n    client_secret_file: /s/c\n"
        "    refresh_token_file: /s/r\n";
    ASSERT_TRUE(parse(gdrive, {})) << parse(gdrive, {}).error().describe();
    EXPECT_EQ(parse(gdrive, {})->upload.gdrive.chunk_size_bytes, 8u * 1024 * 1024);
    EXPECT_EQ(error_of(gdrive + "    chunk_size_bytes: 1000000\n")
                  .rfind("upload.gdrive.chunk_size_bytes:", 0),
              0u);
    EXPECT_EQ(
        error_of(gdrive + "    chunk_size_bytes: 0\n").rfind("upload.gdrive.chunk_size_bytes:", 0),
        0u);
    EXPECT_EQ(parse(gdrive + "    chunk_size_bytes: 524288\n", {})->upload.gdrive.chunk_size_bytes,
              524288u);
    EXPECT_EQ(error_of(gdrive + "    token_url: oauth2.googleapis.com/token\n")
                  .rfind("upload.gdrive.token_url:", 0),
              0u);
    EXPECT_EQ(error_of(gdrive + "    api_url: ftp://x\n").rfind("upload.gdrive.api_url:", 0), 0u);
    EXPECT_EQ(error_of(gdrive + "    folder: a/b\n").rfind("upload.gdrive.folder:", 0), 0u);
    EXPECT_EQ(error_of(gdrive + "    folder: 'id:'\n").rfind("upload.gdrive.folder:", 0), 0u);
    EXPECT_TRUE(parse(gdrive + "    folder: 'id:1AbC'\n", {}));

    const std::string s3 =
        "upload:\n  target: s3\n  s3:\n    bucket: scans\n    access_key_id_file: /s/id\n"
        "    secret_access_key_file: /s/key\n";
    ASSERT_TRUE(parse(s3, {})) << parse(s3, {}).error().describe();
    EXPECT_EQ(error_of(s3 + "    endpoint: 127.0.0.1:9000\n").rfind("upload.s3.endpoint:", 0), 0u);
    EXPECT_EQ(error_of(s3 + "    region: ''\n").rfind("upload.s3.region:", 0), 0u);
    EXPECT_NE(error_of(s3, {{"PHOTORIG_UPLOAD_S3_BUCKET", "Bad_Bucket"}}).find("upload.s3.bucket:"),
              std::string::npos);
    EXPECT_EQ(error_of(s3 + "    path_style: sometimes\n").rfind("upload.s3.path_style:", 0), 0u);

    EXPECT_EQ(error_of("upload: {target: webdav}").rfind("upload.webdav.url:", 0), 0u);
    EXPECT_EQ(error_of("upload: {target: webdav, webdav: {url: 'dav.example.com/x'}}")
                  .rfind("upload.webdav.url:", 0),
              0u);
    EXPECT_EQ(
        error_of("upload: {target: webdav, webdav: {url: 'https://h/x', password_file: /s/pw}}")
            .rfind("upload.webdav.username:", 0),
        0u);
    EXPECT_TRUE(
        parse("upload: {target: webdav, webdav: {url: 'https://h/x', username: me, password_file: "
              "/s/pw}}",
              {}));
    // A URL that may carry user:password@ is not echoed into the message.
    std::string e = error_of("upload: {target: webdav, webdav: {url: 'htps://me:hunter2@h/x'}}");
    EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
}

TEST(Config, TargetSecretFilesAreCheckedForTheChosenTargetOnly) {
    photorig::test::TempDir dir;
    const std::string id = dir.file("id"), key = dir.file("key");
    photorig::test::write_file(id, "AKIDEXAMPLE\n", 0600);
    photorig::test::write_file(key, "wJalrXUtnFEMI-secret\n", 0644);
    auto c = parse("upload:\n  target: s3\n  s3: {bucket: scans, access_key_id_file: " + id +
                       ", secret_access_key_file: " + key + "}\n",
                   {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_TRUE(photorig::config::check_secret_files(*c, false))
        << "the agent does not need upload secrets";
    auto st = photorig::config::check_secret_files(*c, true);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().message.rfind("upload.s3.secret_access_key_file:", 0), 0u)
        << st.error().message;
    EXPECT_EQ(st.error().message.find("wJalrXUtnFEMI"), std::string::npos)
        << "secret leaked into an error";
}

TEST(Config, ParallelBodiesIsOffByDefaultAndABadValueNamesTheKey) {
    auto c = parse("", {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_FALSE(c->upload.parallel_bodies) << "one body on the link at a time by default";
    c = parse("upload: {parallel_bodies: true}", {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_TRUE(c->upload.parallel_bodies);
    c = parse("", {{"PHOTORIG_UPLOAD_PARALLEL_BODIES", "yes"}});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_TRUE(c->upload.parallel_bodies);
    EXPECT_EQ(error_of("upload: {parallel_bodies: sometimes}").rfind("upload.parallel_bodies:", 0),
              0u);
    auto keys = photorig::config::all_keys();
    EXPECT_NE(std::find(keys.begin(), keys.end(), "upload.parallel_bodies"), keys.end())
        << "listed by --help";
}

TEST(Config, UploaderJobQueueBound) {
    auto c = parse("upload: {max_queued_jobs: 50}\n", {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->upload.max_queued_jobs, 50);
    auto d = parse("", {});
    ASSERT_TRUE(d);
    EXPECT_EQ(d->upload.max_queued_jobs, 10000);
    EXPECT_EQ(error_of("upload: {max_queued_jobs: 0}").rfind("upload.max_queued_jobs:", 0), 0u);
    auto keys = photorig::config::all_keys();
    EXPECT_NE(std::find(keys.begin(), keys.end(), "upload.max_queued_jobs"), keys.end());
}

TEST(Config, ResponseTopicAllowListAndJournalKeepDays) {
    auto c = parse(
        "mqtt: {response_topic_allow: ['photorig/+/dash/#', 'app/replies/#']}\n"
        "upload: {journal_keep_days: 7}\n",
        {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->mqtt.response_topic_allow,
              (std::vector<std::string>{"photorig/+/dash/#", "app/replies/#"}));
    EXPECT_EQ(c->upload.journal_keep_days, 7);
    auto d = parse("", {});
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->mqtt.response_topic_allow.empty());
    EXPECT_EQ(d->upload.journal_keep_days, 30);
    EXPECT_EQ(error_of("upload: {journal_keep_days: 0}").rfind("upload.journal_keep_days:", 0), 0u);
    auto keys = photorig::config::all_keys();
    for (const char* k : {"mqtt.response_topic_allow", "upload.journal_keep_days"})
        EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
}

TEST(Config, BridgeKeysAreValidatedAndNamedInErrors) {
    auto c = parse(
        "bridge: {to: 'central.example.org:8883', ca_file: /etc/photorig/fleet/ca.crt, "
        "cert_file: /etc/photorig/fleet/rig1.crt, key_file: /etc/photorig/fleet/rig1.key}\n",
        {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->bridge.to, "central.example.org:8883");
    EXPECT_EQ(c->bridge.key_file, "/etc/photorig/fleet/rig1.key");
    EXPECT_TRUE(parse("bridge: {to: '[::1]:8883', ca_file: /a, cert_file: /b, key_file: /c}", {}));
    EXPECT_TRUE(parse("bridge: {to: ''}", {})) << "no bridge";
    EXPECT_EQ(parse("", {})->bridge.to, "");
    for (const char* to : {"central", "central:0", "central:65536", "a b:1", "host:port"}) {
        std::string yaml =
            std::string("bridge: {to: '") + to + "', ca_file: /a, cert_file: /b, key_file: /c}";
        EXPECT_EQ(error_of(yaml).rfind("bridge.to:", 0), 0u) << to << ": " << error_of(yaml);
    }
    EXPECT_EQ(
        error_of("bridge: {to: 'h:8883', ca_file: /a, cert_file: /b}").rfind("bridge.key_file:", 0),
        0u);
    EXPECT_EQ(error_of("bridge: {to: 'h:8883', ca_file: a.crt, cert_file: /b, key_file: /c}")
                  .rfind("bridge.ca_file:", 0),
              0u);
    EXPECT_EQ(error_of("bridge: {cert_file: /b}").rfind("bridge.to:", 0), 0u);
    EXPECT_EQ(error_of("bridge: {address: 'h:1'}").rfind("bridge.address:", 0), 0u);
    // The environment overrides them as every other key.
    auto env = parse("", {{"PHOTORIG_BRIDGE_TO", "h"}});
    ASSERT_FALSE(env);
    EXPECT_NE(env.error().message.find("bridge.to"), std::string::npos);
    auto keys = photorig::config::all_keys();
    for (const char* k : {"bridge.to", "bridge.ca_file", "bridge.cert_file", "bridge.key_file"})
        EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
}
