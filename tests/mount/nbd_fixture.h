// Clones of sources served over NBD by real servers (nbdkit, qemu-nbd) on unix sockets in the
// test's own directory.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "mount/mount_fixture.h"
#include "support/nbd_server.h"

namespace clonefs::testing {

inline constexpr uint64_t kMiB = 1 << 20;

class NbdMount : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped()) return;
    CLONEFS_REQUIRE_NBD_ENVIRONMENT();
  }
  std::string socket() const { return dir_.file("nbd.sock"); }
  // nbdkit in the foreground on socket(): `middle` holds filters and their parameters with the
  // plugin and its own ("file", "file=/x"). Read-write unless the test adds -r: clonefs must not
  // write whatever the server allows.
  std::unique_ptr<NbdServer> nbdkit(const std::vector<std::string>& middle) {
    std::vector<std::string> argv = {"nbdkit", "-f", "-U", "{socket}"};
    argv.insert(argv.end(), middle.begin(), middle.end());
    auto server = std::make_unique<NbdServer>(argv, socket());
    EXPECT_TRUE(server->running()) << "nbdkit did not start";
    return server;
  }
  // The file plugin serving `path`; `filters` are --filter=NAME options and their key=value
  // parameters (nbdkit wants those after the plugin).
  std::unique_ptr<NbdServer> serve_file(const std::string& path,
                                        const std::vector<std::string>& filters = {}) {
    std::vector<std::string> middle, parameters;
    for (const std::string& f : filters) (f.rfind("--", 0) == 0 ? middle : parameters).push_back(f);
    middle.push_back("file");
    middle.push_back("file=" + path);
    middle.insert(middle.end(), parameters.begin(), parameters.end());
    return nbdkit(middle);
  }
  CommandResult create_from(const std::string& uri, const std::string& extra = "") {
    return run(clonefs("create --source " + shell_quote(uri) + " --dest " + shell_quote(dest()) +
                       " --metadata " + shell_quote(meta()) + " " + extra));
  }
  void hydrate_wait() {
    CommandResult r = run(clonefs("hydrate --wait " + shell_quote(image())));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  bool same_content(const std::string& a, const std::string& b) {
    return run("cmp " + shell_quote(a) + " " + shell_quote(b)).exit_code == 0;
  }
  static uint64_t allocated_bytes(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
  }
  // Polls the live status until `done` holds or `timeout` passes; the last status seen.
  template <typename Done>
  CloneStatus wait_status(Done done, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    CloneStatus s = status_json(image());
    while (!done(s) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      s = status_json(image());
    }
    return s;
  }
};

}  // namespace clonefs::testing
