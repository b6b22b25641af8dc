// The BatchNorm loops are compiled for AVX-512, AVX2 and baseline x86-64 (CMakeLists.txt) and
// must compute the same bits in every version. BNLAB_MAX_CPU_ISA caps the version a process
// runs, once per process, so each version runs in a child process of this test binary that
// writes every kernel's outputs to a file; the files must be equal byte for byte.

#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "bnlab/kernels/batchnorm.hpp"
#include "bnlab/kernels/group_norm.hpp"
#include "bnlab/system.hpp"

namespace {

using bnlab::Layout;
using bnlab::kernels::BatchNormShape;
using bnlab::kernels::FusedActivation;

// Every BatchNorm kernel, training and inference, with and without the fused ReLU, on shapes that take
// every loop: register blocks, wide rows, tails of fewer than 16 channels, NCHW planes, and
// outputs of 16 MiB (streamed with non-temporal stores, the one place the versions differ).
std::vector<char> all_outputs() {
  const BatchNormShape shapes[] = {{4096, 1024, 1, Layout::NC},  {32, 300, 1, Layout::NC}, {37, 77, 1, Layout::NC},
                                   {9, 1500, 1, Layout::NC},     {8, 70, 5, Layout::NHWC}, {64, 64, 1024, Layout::NHWC},
                                   {64, 64, 1024, Layout::NCHW}, {4, 8, 30, Layout::NCHW}};
  std::vector<char> bytes;
  auto keep = [&bytes](const std::vector<float>& v) {
    const char* p = reinterpret_cast<const char*>(v.data());
    bytes.insert(bytes.end(), p, p + v.size() * sizeof(float));
  };
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(3.0f, 2.0f);
  for (const BatchNormShape& s : shapes) {
    const std::size_t n = static_cast<std::size_t>(s.size()), c = static_cast<std::size_t>(s.channels);
    std::vector<float> x(n), dy(n), y(n), dx(n), gamma(c), beta(c), mean(c), inv_std(c), var(c), dgamma(c), dbeta(c);
    for (float& v : x) v = normal(rng);
    for (float& v : dy) v = normal(rng) - 3.0f;
    for (std::size_t k = 0; k < c; ++k) {
      gamma[k] = 0.5f + 0.01f * static_cast<float>(k);
      beta[k] = 0.1f * static_cast<float>(k % 7);
    }
    for (FusedActivation act : {FusedActivation::none, FusedActivation::relu}) {
      bnlab::kernels::batchnorm_forward_training(s, x.data(), gamma.data(), beta.data(), 1e-3f, y.data(), mean.data(),
                                                 inv_std.data(), var.data(), act);
      keep(y), keep(mean), keep(inv_std), keep(var);
      bnlab::kernels::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), beta.data(), mean.data(), inv_std.data(),
                                         dx.data(), dgamma.data(), dbeta.data(), act);
      keep(dx), keep(dgamma), keep(dbeta);
      bnlab::kernels::batchnorm_forward_inference(s, x.data(), mean.data(), var.data(), gamma.data(), beta.data(),
                                                  1e-3f, y.data(), act);
      keep(y);
      bnlab::kernels::batchnorm_backward_inference(s, x.data(), dy.data(), mean.data(), var.data(), gamma.data(),
                                                   beta.data(), 1e-3f, dx.data(), dgamma.data(), dbeta.data(), act);
      keep(dx), keep(dgamma), keep(dbeta);
    }
  }
  // Group and layer normalization run the same loops (and three of their own across a row's channels).
  const bnlab::kernels::GroupNormShape group_shapes[] = {{4096, 1024, 1, Layout::NC, 1},  // streamed outputs
                                                         {37, 77, 1, Layout::NC, 1},     {32, 300, 1, Layout::NC, 1},
                                                         {9, 96, 1, Layout::NC, 3},      {4, 8, 30, Layout::NCHW, 2},
                                                         {8, 70, 5, Layout::NHWC, 5}};
  for (const bnlab::kernels::GroupNormShape& s : group_shapes) {
    const std::size_t n = static_cast<std::size_t>(s.size()), c = static_cast<std::size_t>(s.channels),
                      stats = static_cast<std::size_t>(s.batch * s.groups);
    std::vector<float> x(n), dy(n), y(n), dx(n), gamma(c), beta(c), mean(stats), inv_std(stats), dgamma(c), dbeta(c);
    for (float& v : x) v = normal(rng);
    for (float& v : dy) v = normal(rng) - 3.0f;
    for (std::size_t k = 0; k < c; ++k) {
      gamma[k] = 0.5f + 0.01f * static_cast<float>(k);
      beta[k] = 0.1f * static_cast<float>(k % 7);
    }
    for (const bool affine : {true, false}) {
      const float* g = affine ? gamma.data() : nullptr;
      bnlab::kernels::group_norm_forward(s, x.data(), g, affine ? beta.data() : nullptr, 1e-3f, y.data(), mean.data(),
                                         inv_std.data());
      keep(y), keep(mean), keep(inv_std);
      bnlab::kernels::group_norm_backward(s, x.data(), dy.data(), g, mean.data(), inv_std.data(), dx.data(),
                                          dgamma.data(), dbeta.data());
      keep(dx), keep(dgamma), keep(dbeta);
    }
  }
  return bytes;
}

// In a child process (BNLAB_ISA_BITS_OUT set): writes the outputs for the parent. In the suite
// itself: the outputs with 1 and 2 threads must agree (the same kernels, the other axis of
// determinism).
TEST(LoopInstructionSets, OutputsDoNotDependOnTheThreadCount) {
  if (const char* out = std::getenv("BNLAB_ISA_BITS_OUT")) {
    const std::vector<char> bytes = all_outputs();
    std::ofstream file(out, std::ios::binary);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::printf("instruction set: %s\n", bnlab::kernel_instruction_set().c_str());
    ASSERT_TRUE(file.good()) << out;
    return;
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<char> one = all_outputs();
  omp_set_num_threads(2);
  const std::vector<char> two = all_outputs();
  omp_set_num_threads(saved);
  EXPECT_TRUE(one == two);
}

TEST(LoopInstructionSets, EveryVersionComputesTheSameBits) {
  __builtin_cpu_init();
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("bnlab_isa_bits_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::vector<std::string> files;
  const bool supported[] = {__builtin_cpu_supports("avx512f") != 0, __builtin_cpu_supports("avx2") != 0, true};
  const char* const isas[] = {"avx512f", "avx2", "x86-64"};
  for (int k = 0; k < 3; ++k) {
    const char* isa = isas[k];
    if (!supported[k]) continue;  // not on this CPU
    const std::string file = (dir / isa).string(), log = (dir / (std::string(isa) + ".log")).string();
    const std::string command =
        "BNLAB_MAX_CPU_ISA=" + std::string(isa) + " BNLAB_ISA_BITS_OUT=" + file + " '" + self.string() +
        "' --gtest_filter=LoopInstructionSets.OutputsDoNotDependOnTheThreadCount > " + log + " 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find(std::string("instruction set: ") + isa), std::string::npos) << text;
    files.push_back(file);
  }
  ASSERT_GE(files.size(), 2u) << "fewer than two instruction sets to compare on this CPU";
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::vector<char> first = read(files[0]);
  ASSERT_GT(first.size(), 0u);
  for (std::size_t i = 1; i < files.size(); ++i) EXPECT_TRUE(read(files[i]) == first) << files[0] << " vs " << files[i];
  std::filesystem::remove_all(dir);
}

}  // namespace
