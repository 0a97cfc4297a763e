// I/O buffers: page-aligned, and kept between requests unless they are huge.
#include "util/page_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace clonefs {
namespace {

bool page_aligned(const std::byte* p) {
  return reinterpret_cast<std::uintptr_t>(p) % PageBuffer::kAlignment == 0;
}

TEST(PageBuffer, IsPageAlignedForAnySize) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{65536}, size_t{1} << 20}) {
    PageBuffer buffer(size);
    EXPECT_TRUE(page_aligned(buffer.data())) << size;
    EXPECT_EQ(buffer.size(), size);
    EXPECT_EQ(buffer.span().size(), size);
  }
}

TEST(KeptBuffer, ReusesItsBufferAndGrowsWhenNeeded) {
  KeptBuffer kept;
  std::byte* first = kept.lease(16384).data();
  EXPECT_TRUE(page_aligned(first));
  EXPECT_EQ(kept.lease(4096).data(), first) << "a smaller request reuses the kept buffer";
  KeptBuffer::Lease bigger = kept.lease(1 << 20);
  EXPECT_EQ(bigger.span().size(), size_t{1} << 20);
  EXPECT_TRUE(page_aligned(bigger.data()));
  EXPECT_EQ(kept.lease(16384).data(), bigger.data()) << "the grown buffer is the one kept";
}

TEST(KeptBuffer, HugeRequestsGetTheirOwnBufferAndLeaveTheKeptOneAlone) {
  KeptBuffer kept;
  std::byte* small = kept.lease(65536).data();
  {
    KeptBuffer::Lease huge = kept.lease(KeptBuffer::kKeptBytes + 4096);
    EXPECT_EQ(huge.span().size(), KeptBuffer::kKeptBytes + 4096);
    EXPECT_TRUE(page_aligned(huge.data()));
    EXPECT_NE(huge.data(), small);
  }
  EXPECT_EQ(kept.lease(65536).data(), small);
}

}  // namespace
}  // namespace clonefs
