// FUSE under a loop device can deadlock under reclaim: the writer's dirty pages must be written
// back through the daemon, which itself needs memory to serve them. ext4 on a loop device on the
// image, the writer and the daemon each in a memory-limited cgroup, gigabytes of writes and
// fsyncs: it must finish (bounded by a timeout), with every byte verified.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

// A memory cgroup with a hard limit, v1 or v2, whichever this machine has; removed at scope end
// (its processes must have exited by then: the test ends only the ones it started).
class MemoryCgroup {
 public:
  MemoryCgroup(const std::string& name, const std::string& limit) {
    struct stat st {};
    if (::stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &st) == 0) {
      path_ = "/sys/fs/cgroup/memory/" + name;
      limit_file_ = "memory.limit_in_bytes";
    } else if (::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) {
      path_ = "/sys/fs/cgroup/" + name;
      limit_file_ = "memory.max";
      run("echo +memory > /sys/fs/cgroup/cgroup.subtree_control");
    } else {
      problem_ = "no memory cgroup controller (neither v1 nor v2) is mounted";
      return;
    }
    if (::mkdir(path_.c_str(), 0755) != 0 && errno != EEXIST) {
      problem_ = "cannot create " + path_ + ": " + std::strerror(errno);
      path_.clear();
      return;
    }
    std::ofstream(path_ + "/" + limit_file_) << limit;
  }
  ~MemoryCgroup() {
    if (path_.empty()) return;
    for (int i = 0; i < 100 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // its last process is exiting
    }
  }
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;
  const std::string& problem() const { return problem_; }
  // A shell prefix that moves the shell running it into this cgroup (writing 0 moves the writer
  // itself: $$ would name the parent shell, not a subshell); what it runs inherits the cgroup.
  std::string join() const { return "echo 0 > " + shell_quote(path_ + "/cgroup.procs") + " && "; }
  bool holds(int pid) const {
    std::ifstream procs(path_ + "/cgroup.procs");
    for (int member; procs >> member;) {
      if (member == pid) return true;
    }
    return false;
  }
  std::string read(const std::string& file) const {
    std::ifstream in(path_ + "/" + file);
    std::string value;
    std::getline(in, value);
    return value;
  }

 private:
  std::string path_, limit_file_, problem_;
};

TEST_F(MountTest, Ext4OnTheImageFinishesUnderMemoryPressure) {
  MemoryCgroup daemon_group("clonefs-test-daemon-" + std::to_string(::getpid()), "192M");
  MemoryCgroup writer_group("clonefs-test-writer-" + std::to_string(::getpid()), "128M");
  if (!daemon_group.problem().empty()) {
    if (running_in_ci()) FAIL() << daemon_group.problem();
    GTEST_SKIP() << daemon_group.problem();
  }
  CommandResult mkfs = run("mkfs.ext4 -q -F " + shell_quote(source()) + " 3G");
  ASSERT_EQ(mkfs.exit_code, 0) << mkfs.output;
  create("--region-size 64K");
  mounted_ = std::make_unique<MountedImage>(meta(), image(), "", daemon_group.join());
  ASSERT_TRUE(mounted_->ok()) << mounted_->result().output;
  const int daemon = mounted_->daemon_pid();
  ASSERT_TRUE(daemon_group.holds(daemon))
      << "the daemon (pid " << daemon << ") is not in its memory cgroup";
  LoopDevice loop(image());
  ASSERT_TRUE(loop.ok());
  const std::string mnt = dir_.file("mnt");
  FilesystemMount fs(loop.device(), mnt);
  ASSERT_TRUE(fs.ok());

  // 4 writers x 512 MiB, an fsync every 32 MiB, then every byte read back and checked.
  auto started = std::chrono::steady_clock::now();
  CommandResult fio = run(
      "timeout 900 sh -c " +
      shell_quote(writer_group.join() + "exec fio --name=pressure --directory=" + shell_quote(mnt) +
                  " --rw=write --bs=1M --size=512M --numjobs=4 --fsync=32 --end_fsync=1"
                  " --verify=crc32c --do_verify=1 --verify_state_save=0 --output-format=terse"));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(fio.exit_code, 0) << (fio.exit_code == 124 ? "hung: fio did not finish in 900 s\n" : "")
                              << fio.output;
  std::printf(
      "memory pressure: 2 GiB written, fsynced and verified in %.1f s; daemon cgroup peak %s bytes "
      "(limit hits %s), writer cgroup peak %s bytes (limit hits %s)\n",
      seconds, daemon_group.read("memory.max_usage_in_bytes").c_str(),
      daemon_group.read("memory.failcnt").c_str(),
      writer_group.read("memory.max_usage_in_bytes").c_str(),
      writer_group.read("memory.failcnt").c_str());
  fs.unmount();
  CommandResult fsck = run("e2fsck -fn " + shell_quote(loop.device()));
  EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
  loop.detach();
  unmount();
}

}  // namespace
}  // namespace clonefs::testing
