// The commit protocol, and the only place that syncs the destination or commits the metadata.
#include <algorithm>
#include <span>
#include <utility>

#include "engine/clone_engine.h"

namespace clonefs {

// (1) Freeze: take the transaction's exact regions and snapshot their bitmap chunks, atomically
//     starting a new transaction (a region made valid after this belongs to the next one).
// (2) fdatasync the destination: every frozen region's data was written before it was marked
//     valid, so after this it is durable.
// (3) Write exactly the frozen chunks to SQLite and commit.
// Committing before (2) is the dm-clone bug this project was founded on: after a power loss the
// metadata would claim regions whose data never reached the disk, and they would read garbage.
// The destination is synced once per commit; a user flush that commits needs no second sync,
// and a flush with nothing to commit still syncs (writes to valid regions need it).
Status CloneEngine::commit() {
  std::lock_guard serial(commit_mu_);
  // Past the freeze, an exception (allocation) would leave regions valid in memory that no
  // transaction holds any more: it must fail the clone, not escape to a caller that retries.
  try {
    return commit_serialized();
  } catch (const std::exception& e) {
    // Which chunks the freeze took is lost with the exception: nothing can be rolled back
    // precisely, so every I/O fails from here on.
    std::lock_guard lock(mu_);
    mode_ = MetadataMode::kFail;
    mode_reason_ = std::string("commit failed: ") + e.what();
    if (surviving_) surviving_->spoil();
    return Status::error(EIO, "commit failed: " + std::string(e.what()));
  }
}

Status CloneEngine::commit_serialized() {
  std::vector<ChunkImage> frozen;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::error(EIO, "clone is closed");
    // Never forgotten: a failed commit rolled back regions whose writes were acknowledged (and
    // a failed fdatasync may have dropped dirty pages that a later one would not report), so
    // no flush may succeed again until the clone is remounted.
    if (mode_ != MetadataMode::kReadWrite) return refusal_locked();
    std::vector<uint64_t> chunks = take_transaction_locked();
    std::sort(chunks.begin(), chunks.end());
    frozen.reserve(chunks.size());
    for (uint64_t chunk : chunks) frozen.push_back({chunk, bitmap_.chunk_image(chunk)});
  }

  Status synced = destination_.sync();
  counters_.destination_syncs.fetch_add(1, std::memory_order_relaxed);
  if (!synced.is_ok()) {
    fail_commit(synced, frozen);
    return synced;
  }
  if (frozen.empty()) return Status::ok();

  Status committed = store_.commit(frozen);
  counters_.metadata_commits.fetch_add(1, std::memory_order_relaxed);
  if (!committed.is_ok()) {
    fail_commit(committed, frozen);
    return committed;
  }
  return Status::ok();
}

Status CloneEngine::refusal_locked() const {
  if (mode_ == MetadataMode::kFail)
    return Status::error(EIO, "clone is in fail mode: " + mode_reason_);
  return Status::error(EIO,
                       "metadata is read-only since " + mode_reason_ +
                           "; writes since the last good commit may be lost (remount the clone)");
}

// Rolls back to the last commit: every chunk of the failed transaction and of the one opened
// after its freeze is reloaded from the store, and no region can become valid until the clone
// is remounted. Only those chunks are read, so a failure at the worst moment (low memory, a full
// disk) does not also have to allocate a second bitmap of the whole image.
void CloneEngine::fail_commit(const Status& cause, std::span<const ChunkImage> frozen) {
  std::unique_lock lock(mu_);
  std::vector<uint64_t> chunks = take_transaction_locked();
  if (mode_ != MetadataMode::kReadWrite) return;  // already rolled back
  // Closes the gate first: no region becomes valid while the committed chunks are read.
  mode_ = MetadataMode::kReadOnly;
  mode_reason_ = "commit failed: " + cause.message();
  // A successor must not adopt regions whose data this failure may have dropped.
  if (surviving_) surviving_->spoil();
  lock.unlock();
  for (const ChunkImage& chunk : frozen) chunks.push_back(chunk.index);
  std::sort(chunks.begin(), chunks.end());
  chunks.erase(std::unique(chunks.begin(), chunks.end()), chunks.end());
  Status reloaded = Status::ok();
  for (uint64_t chunk : chunks) {
    auto committed = store_.load_chunk(chunk);
    if (committed)
      reloaded = bitmap_.assign_chunk(chunk, *committed);
    else
      reloaded = committed.status();
    if (!reloaded.is_ok()) break;
  }
  lock.lock();
  if (!reloaded.is_ok()) {
    mode_ = MetadataMode::kFail;
    mode_reason_ = "commit failed (" + cause.message() + ") and reloading the bitmap failed (" +
                   reloaded.message() + ")";
  }
}

std::vector<uint64_t> CloneEngine::take_transaction_locked() {
  for (uint64_t chunk : transaction_chunks_) chunk_in_transaction_[chunk] = false;
  transaction_regions_ = 0;
  return std::exchange(transaction_chunks_, {});
}

Status CloneEngine::flush() {
  note_user_io();
  return commit();
}

Status CloneEngine::close() {
  {
    std::lock_guard lock(committer_mu_);
    committer_stop_ = true;
  }
  committer_wake_.notify_all();
  if (committer_.joinable()) committer_.join();
  // In read-only or fail mode commit() refuses with the reason: the caller (unmount) must say it.
  Status result = commit();
  std::lock_guard lock(mu_);
  if (closed_) return Status::ok();
  closed_ = true;
  return result;
}

void CloneEngine::committer_loop() {
  std::unique_lock wake(committer_mu_);
  while (!committer_stop_) {
    committer_wake_.wait_for(wake, options_.commit_period, [&] { return committer_stop_; });
    if (committer_stop_) break;
    bool pending;
    {
      std::lock_guard lock(mu_);
      pending = transaction_regions_ != 0 && mode_ == MetadataMode::kReadWrite;
    }
    if (!pending) continue;
    wake.unlock();
    // A failure switches the mode, which every later flush, status and unmount report.
    Status committed = commit();
    if (!committed.is_ok() && options_.on_commit_failure) options_.on_commit_failure(committed);
    wake.lock();
  }
}

}  // namespace clonefs
