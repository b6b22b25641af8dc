#include "bnlab/data/batching.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace bnlab::data {
namespace {

bool is_permutation_of_iota(std::span<const std::int64_t> order) {
  std::vector<std::int64_t> sorted(order.begin(), order.end());
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i)
    if (sorted[i] != static_cast<std::int64_t>(i)) return false;
  return true;
}

TEST(Shuffle, IsAPermutation) {
  for (std::int64_t n : {0, 1, 2, 7, 1000, 55000}) {
    const auto order = epoch_permutation(n, 42, 0);
    EXPECT_EQ(static_cast<std::int64_t>(order.size()), n);
    EXPECT_TRUE(is_permutation_of_iota(order)) << "n = " << n;
  }
  EXPECT_THROW(epoch_permutation(-1, 42, 0), std::invalid_argument);
}

TEST(Shuffle, SameSeedSameOrderOtherSeedOrEpochDiffers) {
  const auto a = epoch_permutation(1000, 42, 3);
  EXPECT_EQ(a, epoch_permutation(1000, 42, 3));
  EXPECT_NE(a, epoch_permutation(1000, 43, 3));
  EXPECT_NE(a, epoch_permutation(1000, 42, 4));
  std::vector<std::int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(a, identity);
}

TEST(Shuffle, OrderIsPinnedAcrossPlatformsAndVersions) {
  // The algorithm is the library's own (mt19937_64 + Fisher-Yates + rejection sampling), so
  // these values hold on every platform; a change here breaks resuming old runs bit for bit.
  // tests/reference/shuffle_order.py derives them independently, in pure Python.
  EXPECT_EQ(epoch_permutation(10, 42, 0), (std::vector<std::int64_t>{9, 6, 2, 0, 1, 4, 3, 8, 5, 7}));
}

TEST(Shuffle, AllOrdersOfThreeAreEquallyLikely) {
  // 6,000 seeds: each of the 3! orders expected 1,000 times; a biased shuffle (e.g. swapping
  // with any position instead of [0, i]) gives counts of 1,111 and 889 or worse.
  std::map<std::vector<std::int64_t>, int> counts;
  for (std::uint64_t seed = 0; seed < 6000; ++seed) ++counts[epoch_permutation(3, seed, 0)];
  EXPECT_EQ(counts.size(), 6u);
  for (const auto& [order, count] : counts) EXPECT_NEAR(count, 1000, 100);
}

TEST(BatchIterator, KerasBatchCountsAndCoverage) {
  BatchIterator batches(55000, 32, 7);
  EXPECT_EQ(batches.num_batches(), 1719);
  EXPECT_EQ(batches.batch(0).size(), 32u);
  EXPECT_EQ(batches.batch(1718).size(), 24u);
  std::vector<std::int64_t> seen;
  for (std::int64_t b = 0; b < batches.num_batches(); ++b)
    seen.insert(seen.end(), batches.batch(b).begin(), batches.batch(b).end());
  EXPECT_TRUE(is_permutation_of_iota(seen));
  EXPECT_THROW(batches.batch(1719), std::out_of_range);
  EXPECT_THROW(batches.batch(-1), std::out_of_range);
}

TEST(BatchIterator, EpochOrderDependsOnlyOnSeedAndEpoch) {
  BatchIterator running(100, 10, 99);
  for (std::int64_t e = 0; e < 4; ++e) {
    running.start_epoch(e);
    EXPECT_EQ(running.epoch(), e);
    const auto expected = epoch_permutation(100, 99, e);
    EXPECT_TRUE(std::equal(running.order().begin(), running.order().end(), expected.begin(), expected.end()));
  }
  // A run resumed at epoch 3 sees the same order as one that went through epochs 0..2.
  BatchIterator resumed(100, 10, 99);
  resumed.start_epoch(3);
  EXPECT_TRUE(std::equal(running.order().begin(), running.order().end(), resumed.order().begin()));
  // start_epoch reuses the same buffer.
  const std::int64_t* before = running.order().data();
  running.start_epoch(5);
  EXPECT_EQ(running.order().data(), before);
}

TEST(BatchIterator, SequentialOrderAndArguments) {
  BatchIterator sequential(5, 2, 1, BatchIterator::Order::Sequential);
  sequential.start_epoch(9);
  EXPECT_EQ(std::vector<std::int64_t>(sequential.order().begin(), sequential.order().end()),
            (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(sequential.num_batches(), 3);
  EXPECT_EQ(sequential.batch(2).size(), 1u);
  EXPECT_EQ(BatchIterator(0, 4, 1).num_batches(), 0);
  EXPECT_THROW(BatchIterator(5, 0, 1), std::invalid_argument);
  EXPECT_THROW(BatchIterator(-1, 4, 1), std::invalid_argument);
}

TEST(Gather, CopiesRowsIntoThePreallocatedBuffer) {
  // 5 examples of 2 x 2; example i holds 10 i + {0, 1, 2, 3}.
  Tensor source({5, 2, 2});
  for (std::int64_t i = 0; i < 5; ++i)
    for (std::int64_t k = 0; k < 4; ++k) source[i * 4 + k] = static_cast<float>(10 * i + k);
  Tensor buffer = Tensor::full({3, 2, 2}, -1.0f);
  const float* storage = buffer.data();
  const std::vector<std::int64_t> rows = {4, 0, 4};
  gather_rows(source, rows, buffer);
  EXPECT_EQ(buffer.data(), storage);
  const std::vector<float> expected = {40, 41, 42, 43, 0, 1, 2, 3, 40, 41, 42, 43};
  for (std::int64_t i = 0; i < 12; ++i) EXPECT_EQ(buffer[i], expected[i]) << i;

  // A short last batch goes into a view of the buffer's first rows.
  Tensor first_two = buffer.slice_batch(0, 2);
  const std::vector<std::int64_t> last = {2, 3};
  gather_rows(source, last, first_two);
  EXPECT_EQ(buffer[0], 20.0f);
  EXPECT_EQ(buffer[4], 30.0f);
  EXPECT_EQ(buffer[8], 40.0f);  // third row untouched

  const std::vector<std::int32_t> labels = {5, 6, 7, 8, 9};
  std::vector<std::int32_t> batch_labels(3);
  gather_labels(labels, rows, batch_labels);
  EXPECT_EQ(batch_labels, (std::vector<std::int32_t>{9, 5, 9}));
}

TEST(Gather, RefusesMismatchedShapesAndRows) {
  Tensor source({5, 4});
  Tensor buffer({3, 4});
  const std::vector<std::int64_t> two = {0, 1};
  const std::vector<std::int64_t> bad = {0, 5, 1};
  const std::vector<std::int64_t> negative = {0, -1, 1};
  EXPECT_THROW(gather_rows(source, two, buffer), std::invalid_argument);
  EXPECT_THROW(gather_rows(source, bad, buffer), std::out_of_range);
  EXPECT_THROW(gather_rows(source, negative, buffer), std::out_of_range);
  Tensor wide({3, 5});
  const std::vector<std::int64_t> three = {0, 1, 2};
  EXPECT_THROW(gather_rows(source, three, wide), std::invalid_argument);

  const std::vector<std::int32_t> labels = {1, 2, 3, 4, 5};
  std::vector<std::int32_t> out(3);
  EXPECT_THROW(gather_labels(labels, two, out), std::invalid_argument);
  EXPECT_THROW(gather_labels(labels, bad, out), std::out_of_range);
}

}  // namespace
}  // namespace bnlab::data
