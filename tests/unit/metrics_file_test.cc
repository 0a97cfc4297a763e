// --metrics-file's writer (control/metrics_file.h): the file is replaced whole through a
// temporary file, nothing else is left in its directory, and a failing write is reported once
// per streak, not at every interval.
#include "control/metrics_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/temp_dir.h"

namespace clonefs {
namespace {

using testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(MetricsFile, ReplacedWholeAndNothingLeftBeside) {
  TempDir dir;
  std::string path = dir.file("clone.prom");
  ASSERT_TRUE(write_file_atomically(path, "first\n").is_ok());
  ASSERT_TRUE(write_file_atomically(path, "second\n").is_ok());
  EXPECT_EQ(slurp(path), "second\n");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u) << "readable by a collector running as another user";
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
    EXPECT_EQ(entry.path().string(), path);
  }
  EXPECT_EQ(entries, 1u);
}

TEST(MetricsFile, FailureNamesTheFile) {
  TempDir dir;
  Status written = write_file_atomically(dir.file("missing/clone.prom"), "x\n");
  EXPECT_FALSE(written.is_ok());
  EXPECT_NE(written.message().find(dir.file("missing/clone.prom")), std::string::npos)
      << written.message();
}

TEST(MetricsFile, WriterWritesAtOnceAndReportsAFailureStreakOnce) {
  TempDir dir;
  CloneStatus status;
  status.metadata = "/m";
  status.metadata_mode = "rw";
  {
    int errors = 0;
    MetricsFileWriter writer(
        dir.file("clone.prom"), std::chrono::milliseconds(1), [&] { return status; },
        [&](const Status&) { ++errors; });
    EXPECT_NE(slurp(dir.file("clone.prom")).find("clonefs_regions{"), std::string::npos);
    EXPECT_EQ(errors, 0);
  }
  int errors = 0;
  {
    MetricsFileWriter writer(
        dir.file("missing/clone.prom"), std::chrono::milliseconds(1), [&] { return status; },
        [&](const Status&) { ++errors; });
    EXPECT_EQ(errors, 1) << "the first write happens in the constructor";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // several failing intervals
  }
  EXPECT_EQ(errors, 1);
}

}  // namespace
}  // namespace clonefs
