// README "A developer cloning a VM disk", run command by command from README.md itself, so the
// section cannot drift from what clonefs does. QEMU is not run: a stand-in does to the drive's
// file what the guest would (write and fsync, read back), and `nobody` stands in for the user
// libvirt runs QEMU as.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/control_client.h"
#include "mount/mount_fixture.h"

namespace clonefs::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGuestOffset = 4 * kMiB;  // where the stand-in guest writes

// The section's ```sh blocks, each a list of command lines (comments and blank lines dropped).
std::vector<std::vector<std::string>> vm_section_blocks() {
  std::ifstream in(std::string(CLONEFS_SOURCE_DIR) + "/README.md");
  std::vector<std::vector<std::string>> blocks;
  bool in_section = false, in_block = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("### ")) in_section = line == "### A developer cloning a VM disk";
    if (!in_section) continue;
    if (line.starts_with("```")) {
      in_block = !in_block && line == "```sh";
      if (in_block) blocks.emplace_back();
      continue;
    }
    if (in_block && !line.empty() && !line.starts_with("#")) blocks.back().push_back(line);
  }
  return blocks;
}

// Unmounts whatever the README's commands left mounted at `image`, even when the test failed:
// clonefs unmount, else SIGKILL of the daemon by its PID and a lazy fusermount3.
class MountGuard {
 public:
  explicit MountGuard(std::string image) : image_(std::move(image)) {}
  ~MountGuard() {
    auto status = clonefs::live_status_of(image_);
    if (status &&
        run(shell_quote(clonefs_binary()) + " unmount " + shell_quote(image_)).exit_code == 0)
      return;
    if (status && status->supervisor) ::kill(status->supervisor->pid, SIGKILL);
    if (status && status->pid) ::kill(*status->pid, SIGKILL);
    run("fusermount3 -u -z " + shell_quote(image_) + " 2>/dev/null");
  }
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;

 private:
  std::string image_;
};

class ReadmeVm : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (IsSkipped()) return;
    std::filesystem::create_directory(dir_.file("vms"));
    write_file(source(), random_bytes(64 * kMiB, 81));
    blocks_ = vm_section_blocks();
    ASSERT_EQ(blocks_.size(), 3u) << "the README's VM section changed shape: update this test";
  }
  std::string vms(const std::string& name) const { return dir_.file("vms/" + name); }

  // Runs one README line as the user would, with ~ at the test's directory.
  void run_line(std::string line) {
    SCOPED_TRACE(line);
    if (line.starts_with("qemu-system-x86_64 ")) return guest(line);
    const std::pair<std::string, std::string> stand_ins[] = {
        {"/dev/vg0/golden-vm", source()}, {"-o libvirt-qemu -g kvm", "-o nobody -g nogroup"}};
    for (const auto& [from, to] : stand_ins) {
      if (auto at = line.find(from); at != std::string::npos) line.replace(at, from.size(), to);
    }
    std::string bin = std::filesystem::path(clonefs_binary()).parent_path().string();
    CommandResult r = run("export HOME=" + shell_quote(dir_.path()) + " PATH=" + shell_quote(bin) +
                          ":\"$PATH\"; " + line + "\n");  // a line may end in a comment
    ASSERT_EQ(r.exit_code, 0) << r.output;
    outputs_ += r.output;
  }
  void run_block(size_t index) {
    for (const std::string& line : blocks_[index]) {
      ASSERT_NO_FATAL_FAILURE(run_line(line));
    }
  }

  // What the guest does with its drive: the first boot writes and fsyncs a block (cache=none is
  // O_DIRECT); every later boot finds it, and the source's data around it.
  void guest(const std::string& line) {
    std::string file = line.substr(line.find("file=") + 5);
    file = file.substr(0, file.find(','));
    ASSERT_TRUE(file.starts_with("$HOME/")) << line;
    file = dir_.path() + file.substr(5);
    if (!guest_wrote_) {
      write_file(dir_.file("guest.bin"), random_bytes(kMiB, 82));
      CommandResult w =
          run("dd if=" + shell_quote(dir_.file("guest.bin")) + " of=" + shell_quote(file) +
              " bs=1M seek=4 count=1 oflag=direct conv=notrunc,fsync status=none");
      ASSERT_EQ(w.exit_code, 0) << w.output;
      guest_wrote_ = true;
    }
    CommandResult mine = run("cmp -n 1048576 -i 0:" + std::to_string(kGuestOffset) + " " +
                             shell_quote(dir_.file("guest.bin")) + " " + shell_quote(file));
    EXPECT_EQ(mine.exit_code, 0) << "the guest's fsynced write is not in " << file << ": "
                                 << mine.output;
    CommandResult golden = run("cmp -n 4194304 " + shell_quote(source()) + " " + shell_quote(file));
    EXPECT_EQ(golden.exit_code, 0) << file << " does not start with the source: " << golden.output;
  }

  std::vector<std::vector<std::string>> blocks_;
  bool guest_wrote_ = false;
  std::string outputs_;
};

TEST_F(ReadmeVm, TheRecipeRunsAndTheVmBootsFromDestAfterFinalize) {
  MountGuard guard(vms("dev.img"));
  run_block(0);
  EXPECT_FALSE(std::filesystem::exists(vms("dev.img"))) << outputs_;
  EXPECT_FALSE(std::filesystem::exists(vms("dev.clonefs"))) << outputs_;
  EXPECT_FALSE(std::filesystem::exists(vms("dev.clonefs.log"))) << outputs_;
  EXPECT_TRUE(std::filesystem::exists(vms("dev.raw")));
}

TEST_F(ReadmeVm, QemuAsAnotherUserReadsAndWritesThroughAllowOther) {
  MountGuard guard(vms("dev.img"));
  // The test's directory is private (0700); QEMU's user must reach the image.
  std::filesystem::permissions(dir_.path(), std::filesystem::perms(0755));
  std::filesystem::permissions(vms(""), std::filesystem::perms(0755));
  run_line(blocks_[0][0]);  // create
  run_block(1);
  const std::string as_qemu = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
  CommandResult read = run(as_qemu + "dd if=" + shell_quote(vms("dev.img")) +
                           " of=/dev/null bs=64K count=16 status=none");
  EXPECT_EQ(read.exit_code, 0) << read.output;
  CommandResult write = run(as_qemu + "dd if=/dev/zero of=" + shell_quote(vms("dev.img")) +
                            " bs=64K count=1 conv=notrunc,fsync status=none");
  EXPECT_EQ(write.exit_code, 0) << write.output;
  CommandResult other = run(
      "setpriv --reuid=65533 --regid=65533 --clear-groups dd if=" + shell_quote(vms("dev.img")) +
      " of=/dev/null bs=4K count=1 status=none");
  EXPECT_NE(other.exit_code, 0) << "mode 0660 let a third user read the image";
  run_line("clonefs unmount ~/vms/dev.img");
  EXPECT_TRUE(std::filesystem::exists(vms("dev.img")))
      << "the file the user made for QEMU was removed";
}

TEST_F(ReadmeVm, AfterTheDaemonDiesTheRecoveryStepsBringBackWhatWasFsynced) {
  MountGuard guard(vms("dev.img"));
  run_line(blocks_[0][0]);  // create
  run_line(blocks_[0][1]);  // mount
  run_line(blocks_[0][2]);  // the guest writes and fsyncs
  // The daemon: the supervisor, whose PID `clonefs mount` printed; its serving process stops too.
  auto status = clonefs::live_status_of(vms("dev.img"));
  ASSERT_TRUE(status.is_ok()) << status.status().message();
  ASSERT_TRUE(status->supervisor && status->pid);
  ASSERT_EQ(::kill(status->supervisor->pid, SIGKILL), 0);
  for (int pid : {status->supervisor->pid, *status->pid}) {
    for (int i = 0; i < 1000 && ::kill(pid, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CommandResult dead =
      run("dd if=" + shell_quote(vms("dev.img")) + " of=/dev/null bs=4K count=1 status=none");
  EXPECT_NE(dead.exit_code, 0) << "I/O on a dead mount succeeded";
  run_block(2);  // unmount, mount, restart the guest: its write is there
}

}  // namespace
}  // namespace clonefs::testing
