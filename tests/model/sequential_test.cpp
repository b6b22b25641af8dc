#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnlab/model.hpp"
#include "model/test_layers.hpp"

namespace bnlab {
namespace {

using testing::TestBatchNorm;
using testing::TestDense;
using testing::TestFlatten;
using testing::TestLeakyReLU;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Seed 003's baseline, with stand-in layers of the same types and parameter counts.
Sequential seed_baseline_stand_in(std::uint64_t seed = 42) {
  Sequential model;
  model.add(std::make_unique<TestFlatten>());
  model.add(std::make_unique<TestDense>(300));
  model.add(std::make_unique<TestLeakyReLU>());
  model.add(std::make_unique<TestDense>(100));
  model.add(std::make_unique<TestLeakyReLU>());
  model.add(std::make_unique<TestDense>(10, "softmax"));
  model.build({28, 28}, seed);
  return model;
}

Sequential seed_approach_one_stand_in() {
  Sequential model;
  model.add(std::make_unique<TestFlatten>());
  model.add(std::make_unique<TestBatchNorm>());
  model.add(std::make_unique<TestDense>(300, "relu"));
  model.add(std::make_unique<TestBatchNorm>());
  model.add(std::make_unique<TestDense>(100, "relu"));
  model.add(std::make_unique<TestBatchNorm>());
  model.add(std::make_unique<TestDense>(10, "softmax"));
  model.build({28, 28}, 42);
  return model;
}

TEST(Sequential, SnakeCaseFollowsKeras) {
  EXPECT_EQ(to_snake_case("Dense"), "dense");
  EXPECT_EQ(to_snake_case("Flatten"), "flatten");
  EXPECT_EQ(to_snake_case("LeakyReLU"), "leaky_re_lu");
  EXPECT_EQ(to_snake_case("BatchNormalization"), "batch_normalization");
  EXPECT_EQ(to_snake_case("Activation"), "activation");
  EXPECT_EQ(to_snake_case("Dropout"), "dropout");
  EXPECT_EQ(to_snake_case("Conv2D"), "conv2d");
  EXPECT_EQ(to_snake_case("MaxPooling2D"), "max_pooling2d");
  EXPECT_EQ(to_snake_case("_Private"), "private__private");  // Python gives the same
}

TEST(Sequential, AutomaticNamesCountPerModelAndType) {
  Sequential first = seed_approach_one_stand_in();
  const std::vector<std::string> expected = {"flatten", "batch_normalization", "dense", "batch_normalization_1",
                                             "dense_1", "batch_normalization_2", "dense_2"};
  ASSERT_EQ(first.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(first.layer(i).name(), expected[i]);
  // A second model starts its own count, unlike Keras's per-session counter.
  Sequential second = seed_baseline_stand_in();
  EXPECT_EQ(second.layer(1).name(), "dense");
  EXPECT_EQ(second.layer(2).name(), "leaky_re_lu");
  EXPECT_EQ(second.layer(4).name(), "leaky_re_lu_1");
  EXPECT_EQ(second.layer(5).name(), "dense_2");
}

TEST(Sequential, GivenNamesAreKeptAndMustBeUnique) {
  Sequential model("mine");
  auto named = std::make_unique<TestDense>(4);
  named->set_name("dense");
  model.add(std::move(named));
  model.add(std::make_unique<TestDense>(4));  // the automatic name skips the taken one
  EXPECT_EQ(model.layer(1).name(), "dense_1");
  auto clash = std::make_unique<TestDense>(4);
  clash->set_name("dense_1");
  EXPECT_THROW(model.add(std::move(clash)), std::invalid_argument);
  EXPECT_THROW(model.add(nullptr), std::invalid_argument);
  EXPECT_EQ(model.name(), "mine");
}

// A parameterless first layer whose backward must not run: nothing reads its gradient.
class NoBackwardFlatten : public TestFlatten {
public:
  const Tensor& backward(const Tensor&) override {
    throw std::logic_error("the backward of a layer before the first trained one ran");
  }
};

TEST(Sequential, BackwardStopsAtTheFirstTrainedLayerWhichSkipsItsInputGradient) {
  Sequential model;
  model.add(std::make_unique<NoBackwardFlatten>());
  model.add(std::make_unique<TestDense>(4));
  model.add(std::make_unique<TestLeakyReLU>());
  model.add(std::make_unique<TestDense>(3, "softmax"));
  model.build({2, 3}, 5);
  EXPECT_FALSE(model.layer(0).input_gradient_needed());
  EXPECT_FALSE(model.layer(1).input_gradient_needed());
  EXPECT_TRUE(model.layer(2).input_gradient_needed());
  EXPECT_TRUE(model.layer(3).input_gradient_needed());
  model.compile(std::make_unique<SGD>(0.1));
  Tensor x({4, 2, 3});
  for (std::int64_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 5) - 2.0f;
  const std::vector<std::int32_t> y = {0, 1, 2, 1};
  EXPECT_NO_THROW(model.compute_gradients(x, y));
  FitOptions options;
  options.epochs = 1;
  options.batch_size = 2;
  options.verbose = Verbosity::silent;
  EXPECT_NO_THROW(model.fit(x, y, options));
}

TEST(Sequential, BuildOrderIsEnforced) {
  Sequential empty;
  EXPECT_THROW(empty.build({3}, 0), std::logic_error);
  Sequential model;
  model.add(std::make_unique<TestDense>(2, "softmax"));
  EXPECT_THROW(model.summary(), std::logic_error);
  EXPECT_THROW(model.compile(std::make_unique<SGD>(0.1)), std::logic_error);
  EXPECT_THROW(model.build({0}, 0), std::invalid_argument);
  model.build({3}, 0);
  EXPECT_THROW(model.build({3}, 0), std::logic_error);
  EXPECT_THROW(model.add(std::make_unique<TestDense>(2)), std::logic_error);
  EXPECT_EQ(model.output_shape(), Shape{2});
}

TEST(Sequential, BaselineSummaryIsKeras2Format) {
  const std::string expected =
      "Model: \"sequential\"\n"
      "_________________________________________________________________\n"
      "Layer (type)                 Output Shape              Param #   \n"
      "=================================================================\n"
      "flatten (Flatten)            (None, 784)               0         \n"
      "_________________________________________________________________\n"
      "dense (Dense)                (None, 300)               235500    \n"
      "_________________________________________________________________\n"
      "leaky_re_lu (LeakyReLU)      (None, 300)               0         \n"
      "_________________________________________________________________\n"
      "dense_1 (Dense)              (None, 100)               30100     \n"
      "_________________________________________________________________\n"
      "leaky_re_lu_1 (LeakyReLU)    (None, 100)               0         \n"
      "_________________________________________________________________\n"
      "dense_2 (Dense)              (None, 10)                1010      \n"
      "=================================================================\n"
      "Total params: 266,610\n"
      "Trainable params: 266,610\n"
      "Non-trainable params: 0\n"
      "_________________________________________________________________\n";
  Sequential model = seed_baseline_stand_in();
  EXPECT_EQ(model.summary(), expected);
  std::ostringstream out;
  model.summary(out);
  EXPECT_EQ(out.str(), expected);
  EXPECT_EQ(model.count_params(), 266610);
  EXPECT_EQ(model.count_non_trainable_params(), 0);
}

TEST(Sequential, ApproachOneSummaryMatchesSeed003) {
  Sequential model = seed_approach_one_stand_in();
  EXPECT_EQ(model.count_params(), 271346);
  EXPECT_EQ(model.count_trainable_params(), 268978);
  EXPECT_EQ(model.count_non_trainable_params(), 2368);
  const std::vector<std::string> lines = lines_of(model.summary());
  // The seed's rows (its notebook printed layer names with its session's counter and lost the
  // '=' rules); each must appear verbatim, padding included, in order.
  const std::vector<std::string> seed_rows = {
      "Layer (type)                 Output Shape              Param #   ",
      "flatten (Flatten)            (None, 784)               0         ",
      "batch_normalization (BatchNo (None, 784)               3136      ",
      "dense (Dense)                (None, 300)               235500    ",
      "batch_normalization_1 (Batch (None, 300)               1200      ",
      "dense_1 (Dense)              (None, 100)               30100     ",
      "batch_normalization_2 (Batch (None, 100)               400       ",
      "dense_2 (Dense)              (None, 10)                1010      ",
      "Total params: 271,346",
      "Trainable params: 268,978",
      "Non-trainable params: 2,368",
  };
  std::size_t at = 0;
  for (const std::string& row : seed_rows) {
    while (at < lines.size() && lines[at] != row) ++at;
    ASSERT_LT(at, lines.size()) << "missing or out of order: '" << row << "'\n" << model.summary();
  }
  for (const std::string& line : lines) {
    if (line.rfind("Model:", 0) != 0 && line.rfind("Total", 0) != 0 && line.rfind("Trainable", 0) != 0 &&
        line.rfind("Non-trainable", 0) != 0) {
      EXPECT_EQ(line.size(), 65u) << line;
    }
  }
}

TEST(Sequential, ParameterListsSplitTrainable) {
  Sequential model = seed_approach_one_stand_in();
  EXPECT_EQ(model.parameters().size(), 3u * 4u + 3u * 2u);
  const auto trainable = model.trainable_parameters();
  EXPECT_EQ(trainable.size(), 3u * 2u + 3u * 2u);
  for (const Parameter* p : trainable) EXPECT_TRUE(p->trainable) << p->name;
}

TEST(Sequential, LossNeedsSoftmaxOrFromLogits) {
  Sequential no_softmax;
  no_softmax.add(std::make_unique<TestDense>(3));
  no_softmax.build({2}, 0);
  try {
    no_softmax.compile(std::make_unique<SGD>(0.1));
    FAIL() << "compile accepted a model without softmax";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("from_logits"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(no_softmax.compile(std::make_unique<SGD>(0.1), {.from_logits = true}));

  Sequential with_softmax;
  with_softmax.add(std::make_unique<TestDense>(3, "softmax"));
  with_softmax.build({2}, 0);
  EXPECT_THROW(with_softmax.compile(std::make_unique<SGD>(0.1), {.from_logits = true}), std::invalid_argument);
  EXPECT_THROW(with_softmax.compile(nullptr), std::invalid_argument);
  with_softmax.compile(std::make_unique<Adam>());
  EXPECT_EQ(with_softmax.optimizer().type_name(), "Adam");
}

TEST(Sequential, WeightsDependOnlyOnTheSeed) {
  Sequential a = seed_baseline_stand_in(), b = seed_baseline_stand_in();
  const auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    for (std::int64_t j = 0; j < pa[i]->value.size(); ++j) ASSERT_EQ(pa[i]->value[j], pb[i]->value[j]);
  // And on the seed: another one draws other kernels (biases start at zero either way).
  Sequential c = seed_baseline_stand_in(43);
  const auto pc = c.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    if (pa[i]->name != "kernel") continue;
    std::int64_t same = 0;
    for (std::int64_t j = 0; j < pa[i]->value.size(); ++j) same += pa[i]->value[j] == pc[i]->value[j];
    EXPECT_LT(same, pa[i]->value.size() / 100) << "parameter " << i;
  }
}

}  // namespace
}  // namespace bnlab
