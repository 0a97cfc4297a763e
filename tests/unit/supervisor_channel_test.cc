// The serving process's messages to its supervisor (fuse/supervisor_channel.h): the connection's
// descriptor and what a successor needs arrive intact; reports keep their errno and text.
#include "fuse/supervisor_channel.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuse/supervisor.h"

namespace clonefs {
namespace {

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_), 0);
  }
  void TearDown() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int server() const { return fds_[1]; }
  int supervisor() const { return fds_[0]; }

 private:
  int fds_[2] = {-1, -1};
};

TEST_F(ChannelTest, ConnectionArrivesWithItsDescriptor) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  HeldConnection sent;
  sent.fuse_fd = pipe_fds[1];
  sent.init_request = std::string("\x38\0\0\0\x1a\0\0\0", 8) + std::string(48, '\x7f');
  sent.attributes.mode = 0640;
  sent.attributes.uid = 1000;
  sent.attributes.gid = 100;
  sent.attributes.mtime = {1700000000, 5};
  sent.created_image = true;
  sent.image_size = (uint64_t{1} << 40) + 4096;
  ASSERT_TRUE(send_connection(server(), sent).is_ok());
  ::close(pipe_fds[1]);

  auto got = receive_message(supervisor());
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  ASSERT_TRUE(got->has_value());
  auto* c = std::get_if<ConnectionMessage>(&**got);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->connection.init_request, sent.init_request);
  EXPECT_TRUE(c->connection.created_image);
  EXPECT_EQ(c->connection.attributes.mode, 0640u);
  EXPECT_EQ(c->connection.attributes.uid, 1000u);
  EXPECT_EQ(c->connection.attributes.gid, 100u);
  EXPECT_EQ(c->connection.attributes.mtime.tv_nsec, 5);
  EXPECT_EQ(c->connection.image_size, sent.image_size);
  // The same open pipe, under the supervisor's own descriptor.
  ASSERT_GE(c->connection.fuse_fd, 0);
  ASSERT_EQ(::write(c->connection.fuse_fd, "x", 1), 1);
  char byte = 0;
  ASSERT_EQ(::read(pipe_fds[0], &byte, 1), 1);
  EXPECT_EQ(byte, 'x');
  ::close(c->connection.fuse_fd);
  ::close(pipe_fds[0]);
}

TEST_F(ChannelTest, ReportsKeepTheirErrnoAndText) {
  ASSERT_TRUE(send_report(server(), Status::ok()).is_ok());
  ASSERT_TRUE(
      send_report(server(), Status::error(EBUSY, "image /x is already a mount point")).is_ok());
  auto ready = receive_message(supervisor());
  ASSERT_TRUE(ready.is_ok() && ready->has_value());
  auto* r = std::get_if<ReportMessage>(&**ready);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->report.is_ok());
  auto failed = receive_message(supervisor());
  ASSERT_TRUE(failed.is_ok() && failed->has_value());
  r = std::get_if<ReportMessage>(&**failed);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->report.code(), EBUSY);
  EXPECT_EQ(r->report.message(), "image /x is already a mount point");
}

// The description of the destination the supervisor holds (engine/surviving_regions.h).
TEST_F(ChannelTest, TheDestinationWitnessArrivesAsTheSameOpenFile) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_TRUE(send_destination_witness(server(), pipe_fds[1]).is_ok());
  ::close(pipe_fds[1]);
  auto got = receive_message(supervisor());
  ASSERT_TRUE(got.is_ok() && got->has_value()) << got.status().message();
  auto* w = std::get_if<WitnessMessage>(&**got);
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(::write(w->fd, "y", 1), 1);
  char byte = 0;
  ASSERT_EQ(::read(pipe_fds[0], &byte, 1), 1);
  EXPECT_EQ(byte, 'y');
  ::close(w->fd);
  ::close(pipe_fds[0]);
}

// A refused write-back past the end (writeback cache): the supervisor has the size put back.
TEST_F(ChannelTest, ARefusedWritePastTheEndArrivesAsSuchAndCarriesNoDescriptor) {
  ASSERT_TRUE(send_size_refused(server()).is_ok());
  auto got = receive_message(supervisor());
  ASSERT_TRUE(got.is_ok() && got->has_value()) << got.status().message();
  EXPECT_TRUE(std::holds_alternative<SizeRefusedMessage>(**got));
}

TEST_F(ChannelTest, NothingQueuedIsNoMessageAndGarbageIsAnError) {
  auto none = receive_message(supervisor());
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_EQ(::send(server(), "?", 1, 0), 1);
  auto bad = receive_message(supervisor());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), EPROTO);
}

TEST(DescribeExit, NamesTheSignalOrTheExitCode) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(describe_exit(status), "signal 9 (Killed)");
  child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(3);
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(describe_exit(status), "exit code 3");
}

}  // namespace
}  // namespace clonefs
