#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "bnlab/model.hpp"
#include "model/test_layers.hpp"

namespace bnlab {
namespace {

namespace fs = std::filesystem;
using testing::make_test_layer;
using testing::TestBatchNorm;
using testing::TestDense;
using testing::TestFlatten;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "bnlab_model_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::permissions(path, fs::perms::owner_all, ignored);
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct Data {
  Tensor x;
  std::vector<std::int32_t> y;
};

Data make_data(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Data d{Tensor({n, 2, 3}), std::vector<std::int32_t>(static_cast<std::size_t>(n))};
  for (std::int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(i % 3);
    d.y[static_cast<std::size_t>(i)] = c;
    for (int f = 0; f < 6; ++f) d.x[i * 6 + f] = normal(rng) + (f == c ? 2.0f : 0.0f);
  }
  return d;
}

Sequential make_model(std::unique_ptr<Optimizer> optimizer) {
  Sequential model("round_trip");
  model.add(std::make_unique<TestFlatten>());
  model.add(std::make_unique<TestBatchNorm>());
  model.add(std::make_unique<TestDense>(8, "relu"));
  model.add(std::make_unique<TestBatchNorm>());
  model.add(std::make_unique<TestDense>(3, "softmax", false));
  model.build({2, 3}, 21);
  if (optimizer) model.compile(std::move(optimizer));
  return model;
}

FitOptions quiet(int epochs, int initial_epoch = 0) {
  FitOptions o;
  o.epochs = epochs;
  o.initial_epoch = initial_epoch;
  o.batch_size = 8;
  o.seed = 99;
  o.verbose = Verbosity::silent;
  return o;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

std::string load_error(const std::string& path) {
  try {
    Sequential::load(path, make_test_layer);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(loaded without error)";
}

void expect_round_trip(std::unique_ptr<Optimizer> first, std::unique_ptr<Optimizer> second) {
  TempDir dir;
  const Data train = make_data(60, 1), test = make_data(12, 2);
  Sequential original = make_model(std::move(first));
  original.fit(train.x, train.y, quiet(2));
  const std::string path = dir.file("model.bnlb");
  original.save(path);
  Sequential loaded = Sequential::load(path, make_test_layer);

  EXPECT_EQ(loaded.name(), "round_trip");
  EXPECT_EQ(loaded.summary(), original.summary());
  EXPECT_TRUE(same_bits(loaded.predict(test.x), original.predict(test.x)));
  const auto po = original.parameters(), pl = loaded.parameters();
  ASSERT_EQ(po.size(), pl.size());
  for (std::size_t i = 0; i < po.size(); ++i) EXPECT_TRUE(same_bits(po[i]->value, pl[i]->value)) << po[i]->name;
  ASSERT_TRUE(loaded.compiled());
  const OptimizerState so = original.optimizer().state(), sl = loaded.optimizer().state();
  EXPECT_EQ(sl.type_name, so.type_name);
  EXPECT_EQ(sl.hyperparameters, so.hyperparameters);
  EXPECT_EQ(sl.iterations, so.iterations);
  EXPECT_EQ(sl.iterations, 16);  // 2 epochs of ceil(60 / 8) steps
  ASSERT_EQ(sl.slots.size(), so.slots.size());
  for (std::size_t i = 0; i < so.slots.size(); ++i) EXPECT_TRUE(same_bits(sl.slots[i], so.slots[i]));

  // Training on from the file is training on without it, bit for bit.
  Sequential reference = make_model(std::move(second));
  reference.fit(train.x, train.y, quiet(2));
  const History continued = reference.fit(train.x, train.y, quiet(3, 2));
  const History resumed = loaded.fit(train.x, train.y, quiet(3, 2));
  EXPECT_EQ(resumed.loss, continued.loss);
  const auto pr = reference.parameters(), pz = loaded.parameters();
  for (std::size_t i = 0; i < pr.size(); ++i) EXPECT_TRUE(same_bits(pr[i]->value, pz[i]->value)) << pr[i]->name;
}

// What model.save(path) throws (its message; "" when it saved) with the soft limit of `resource`
// lowered to `limit` for the call.
template <class Resource>
std::string save_error_with_limit(const Sequential& model, const std::string& path, Resource resource, rlim_t limit) {
  rlimit saved{};
  if (::getrlimit(resource, &saved) != 0) return "(getrlimit failed)";
  rlimit lowered = saved;
  lowered.rlim_cur = limit;
  if (::setrlimit(resource, &lowered) != 0) return "(setrlimit failed)";
  std::string message;
  try {
    model.save(path);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  ::setrlimit(resource, &saved);
  return message;
}

TEST(SaveLoad, RoundTripWithSgdMomentumIsBitIdentical) {
  expect_round_trip(std::make_unique<SGD>(0.05, 0.9, true), std::make_unique<SGD>(0.05, 0.9, true));
}

TEST(SaveLoad, RoundTripWithAdamIsBitIdentical) {
  expect_round_trip(std::make_unique<Adam>(0.01), std::make_unique<Adam>(0.01));
}

TEST(SaveLoad, UncompiledModelAndFromLogits) {
  TempDir dir;
  Sequential plain = make_model(nullptr);
  plain.save(dir.file("plain.bnlb"));
  Sequential loaded = Sequential::load(dir.file("plain.bnlb"), make_test_layer);
  EXPECT_FALSE(loaded.compiled());
  EXPECT_EQ(loaded.count_params(), plain.count_params());

  Sequential logits("logits");
  logits.add(std::make_unique<TestDense>(3));
  logits.build({4}, 1);
  logits.compile(std::make_unique<SGD>(0.1), {.from_logits = true});
  logits.save(dir.file("logits.bnlb"));
  EXPECT_TRUE(Sequential::load(dir.file("logits.bnlb"), make_test_layer).compile_options().from_logits);
}

class CorruptFile : public ::testing::Test {
protected:
  void SetUp() override {
    Sequential model = make_model(std::make_unique<SGD>(0.1, 0.5));
    good_ = dir_.file("good.bnlb");
    model.save(good_);
    bytes_ = read_bytes(good_);
    bad_ = dir_.file("bad.bnlb");
  }
  std::string with(const std::string& bytes) {
    write_bytes(bad_, bytes);
    return load_error(bad_);
  }
  TempDir dir_;
  std::string good_, bad_, bytes_;
};

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "'" << (haystack) << "' lacks '" << (needle) << "'"

TEST_F(CorruptFile, FlippedPayloadByteFailsTheChecksum) {
  for (std::size_t at : {std::size_t{20}, bytes_.size() / 2, bytes_.size() - 5}) {
    std::string bytes = bytes_;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
    const std::string message = with(bytes);
    EXPECT_CONTAINS(message, "checksum mismatch");
    EXPECT_CONTAINS(message, bad_);
  }
  std::string bytes = bytes_;
  bytes.back() = static_cast<char>(bytes.back() ^ 1);  // the stored CRC itself
  EXPECT_CONTAINS(with(bytes), "checksum mismatch");
}

TEST_F(CorruptFile, TruncationNamesTheByte) {
  for (std::size_t size : {std::size_t{0}, std::size_t{3}, std::size_t{10}, std::size_t{100}, bytes_.size() - 1}) {
    const std::string message = with(bytes_.substr(0, size));
    EXPECT_CONTAINS(message, "truncated at byte " + std::to_string(size));
    EXPECT_CONTAINS(message, bad_);
  }
}

TEST_F(CorruptFile, BadMagicUnsupportedVersionAndWrongSize) {
  std::string bytes = bytes_;
  bytes.replace(0, 4, "PK\x03\x04");
  EXPECT_CONTAINS(with(bytes), "bad magic \"PK\\x03\\x04\"");
  bytes = bytes_;
  bytes[4] = 2;
  EXPECT_CONTAINS(with(bytes), "unsupported version 2");
  EXPECT_CONTAINS(with(bytes_ + "extra"), "does not match");
  EXPECT_CONTAINS(load_error(dir_.file("missing.bnlb")), "cannot open");
  EXPECT_CONTAINS(load_error(dir_.file("missing.bnlb")), dir_.file("missing.bnlb"));
}

TEST_F(CorruptFile, UnknownLayerTypeIsNamed) {
  auto no_dense = [](const std::string& type, const LayerConfig& config) -> std::unique_ptr<Layer> {
    return type == "Dense" ? nullptr : make_test_layer(type, config);
  };
  try {
    Sequential::load(good_, no_dense);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_CONTAINS(e.what(), "'Dense'");
    EXPECT_CONTAINS(e.what(), good_);
  }
}

TEST_F(CorruptFile, ArchitectureThatDoesNotMatchItsWeightsIsRefused) {
  // A factory that builds a wider Dense than the file's weights were saved for.
  auto wider = [](const std::string& type, const LayerConfig& config) -> std::unique_ptr<Layer> {
    if (type == "Dense" && config.at("units") == "8") return std::make_unique<TestDense>(9, "relu");
    return make_test_layer(type, config);
  };
  try {
    Sequential::load(good_, wider);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_CONTAINS(e.what(), "parameter");
    EXPECT_CONTAINS(e.what(), good_);
  }
}

std::vector<std::string> leftovers(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) names.push_back(entry.path().string());
  return names;
}

TEST(SaveLoad, FailedWriteLeavesTheOldFileIntact) {
  // RLIMIT_FSIZE makes write() fail with EFBIG even for root, for whom permissions do not.
  TempDir dir;
  const std::string path = dir.file("model.bnlb");
  Sequential small("small");
  small.add(std::make_unique<TestDense>(2, "softmax"));
  small.build({2}, 1);
  small.save(path);
  const std::string old_bytes = read_bytes(path);
  ASSERT_LT(old_bytes.size(), 4096u);

  Sequential big("big");
  big.add(std::make_unique<TestDense>(2000, "softmax"));  // 24 kB of weights
  big.build({2}, 1);

  auto* old_handler = ::signal(SIGXFSZ, SIG_IGN);  // else exceeding the limit kills the process
  const std::string message = save_error_with_limit(big, path, RLIMIT_FSIZE, 8192);
  ::signal(SIGXFSZ, old_handler);

  EXPECT_CONTAINS(message, path);
  EXPECT_CONTAINS(message, "unchanged");
  EXPECT_EQ(read_bytes(path), old_bytes);
  EXPECT_TRUE(leftovers(dir.path).empty());
  EXPECT_EQ(Sequential::load(path, make_test_layer).name(), "small");
  // With the limit lifted the same save replaces the file.
  big.save(path);
  EXPECT_EQ(Sequential::load(path, make_test_layer).name(), "big");
  EXPECT_TRUE(leftovers(dir.path).empty());
}

TEST(SaveLoad, UnwritableOrMissingDirectoryIsReported) {
  TempDir dir;
  Sequential model = make_model(nullptr);
  const std::string missing = dir.file("no/such/dir/model.bnlb");
  try {
    model.save(missing);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_CONTAINS(e.what(), missing);
  }
  const std::string path = dir.file("model.bnlb");
  model.save(path);
  const std::string old_bytes = read_bytes(path);
  // No temporary can be created: with no file descriptor left (RLIMIT_NOFILE), which holds for
  // root too, and in a read-only directory, which root writes into anyway.
  const int lowest_free_fd = ::open(dir.path.c_str(), O_RDONLY);
  ASSERT_GE(lowest_free_fd, 0);
  ::close(lowest_free_fd);
  const std::string error = save_error_with_limit(model, path, RLIMIT_NOFILE, static_cast<rlim_t>(lowest_free_fd));
  EXPECT_CONTAINS(error, path);
  EXPECT_CONTAINS(error, "cannot create a temporary file");
  EXPECT_EQ(read_bytes(path), old_bytes);
  EXPECT_TRUE(leftovers(dir.path).empty());
  if (::geteuid() == 0) return;
  fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(model.save(path), std::runtime_error);
  fs::permissions(dir.path, fs::perms::owner_all);
  EXPECT_EQ(read_bytes(path), old_bytes);
  EXPECT_TRUE(leftovers(dir.path).empty());
}

TEST(SaveLoad, SavedFileKeepsTheModeOfTheFileItReplaces) {
  TempDir dir;
  const std::string path = dir.file("model.bnlb");
  Sequential model = make_model(nullptr);
  model.save(path);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  model.save(path);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

}  // namespace
}  // namespace bnlab
