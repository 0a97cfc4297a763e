// Prometheus figures of a real mount: `clonefs status --prometheus` (live and offline) and
// `clonefs mount --metrics-file`, every line checked against the exposition format
// (support/prometheus_exposition.h), the file kept current while mounted and left holding the
// committed state after the unmount.
#include <chrono>
#include <filesystem>
#include <thread>

#include "mount/mount_fixture.h"
#include "support/prometheus_exposition.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kRegion = 16 << 10;

class MetricsTest : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped()) return;
    write_file(source(), random_bytes(4 << 20, 21));
    create();
  }
  std::vector<Sample> exposition(const std::string& command) {
    CommandResult r = run(command);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return parse_exposition(r.output);
  }
  std::string metrics() const { return dir_.file("metrics/clone.prom"); }
  std::vector<Sample> metrics_file() { return exposition("cat " + shell_quote(metrics())); }
};

TEST_F(MetricsTest, StatusPrometheusMatchesStatusJson) {
  mount("--no-hydration");
  auto live = exposition(clonefs("status --prometheus " + shell_quote(image())));
  CloneStatus json = status_json(image());
  EXPECT_EQ(value_of(live, "clonefs_regions"), json.regions_total);
  EXPECT_EQ(value_of(live, "clonefs_image_size_bytes"), 4 << 20);
  EXPECT_EQ(value_of(live, "clonefs_mounted"), 1);
  EXPECT_EQ(value_of(live, "clonefs_hydration_state", "state", "paused"), 1);
  ASSERT_TRUE(value_of(live, "clonefs_metadata_commits_total"));
  for (const Sample& s : live) EXPECT_EQ(s.labels.at("image"), image()) << s.family;
  unmount();
  auto offline = exposition(clonefs("status --prometheus " + shell_quote(meta())));
  EXPECT_EQ(value_of(offline, "clonefs_mounted"), 0);
  EXPECT_EQ(value_of(offline, "clonefs_metadata_mode", "mode", "unmounted"), 1);
  EXPECT_FALSE(value_of(offline, "clonefs_metadata_commits_total"));
}

// A second, independent reader: Prometheus's own Python client (Debian's python3 and package)
// parses what status --prometheus prints, families typed as declared.
TEST_F(MetricsTest, PrometheusClientParsesIt) {
  if (run("/usr/bin/python3 -c 'import prometheus_client.parser'").exit_code != 0) {
    if (running_in_ci()) FAIL() << "python3-prometheus-client is missing";
    GTEST_SKIP() << "needs python3-prometheus-client";
  }
  mount("--no-hydration");
  const char* script =
      "import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "for f in text_string_to_metric_families(sys.stdin.read()):\n"
      "    for s in f.samples:\n"
      "        print(f.type, s.name, s.labels['image'], s.value)\n";
  CommandResult r = run(clonefs("status --prometheus " + shell_quote(image())) +
                        " | /usr/bin/python3 -c " + shell_quote(script));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("gauge clonefs_regions " + image() + " 256.0\n"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("counter clonefs_metadata_commits_total " + image()), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("gauge clonefs_mounted " + image() + " 1.0\n"), std::string::npos)
      << r.output;
}

TEST_F(MetricsTest, JsonAndPrometheusTogetherIsAUsageError) {
  CommandResult r = run(clonefs("status --json --prometheus " + shell_quote(meta())));
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST_F(MetricsTest, MetricsFileIsKeptCurrentAndLeftCommitted) {
  run("mkdir " + shell_quote(dir_.file("metrics")));
  mount("--no-hydration --metrics-file " + shell_quote(metrics()));
  // Written before the mount command returned.
  auto first = metrics_file();
  EXPECT_EQ(value_of(first, "clonefs_mounted"), 1);
  EXPECT_EQ(value_of(first, "clonefs_regions_valid"), 0);
  CommandResult w = run("dd if=/dev/zero bs=" + std::to_string(kRegion) +
                        " count=3 conv=notrunc,fsync status=none of=" + shell_quote(image()));
  ASSERT_EQ(w.exit_code, 0) << w.output;
  // Rewritten every 5 s: the writes show within a few intervals.
  std::optional<double> valid;
  for (int i = 0; i < 150 && valid != 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    valid = value_of(metrics_file(), "clonefs_regions_valid");
  }
  EXPECT_EQ(valid, 3) << "the metrics file was not rewritten";
  unmount();
  auto last = metrics_file();
  EXPECT_EQ(value_of(last, "clonefs_mounted"), 0);
  EXPECT_EQ(value_of(last, "clonefs_regions_valid"), 3);
  EXPECT_EQ(value_of(last, "clonefs_metadata_mode", "mode", "unmounted"), 1);
  // Only the file: every temporary file was renamed over it.
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.file("metrics"))) {
    ++files;
    EXPECT_EQ(entry.path().string(), metrics());
  }
  EXPECT_EQ(files, 1u);
}

TEST_F(MetricsTest, MetricsFileInAMissingDirectoryIsRefusedBeforeMounting) {
  MountedImage m(meta(), image(), "--metrics-file " + shell_quote(dir_.file("nowhere/x.prom")));
  EXPECT_FALSE(m.ok());
  EXPECT_NE(m.result().output.find("nowhere"), std::string::npos) << m.result().output;
  EXPECT_FALSE(std::filesystem::exists(image()));
}

}  // namespace
}  // namespace clonefs::testing
