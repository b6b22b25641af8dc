#pragma once
// The random image set of seed 001's worksheet:
//   for i in range(30): test_data[i] = np.random.randn(32, 32) * np.random.randint(5)
//                                      + np.random.randint(60)
// i.e. each image is Gaussian noise with its own integer scale in 0..4 (0 gives a constant
// image) around its own integer offset in 0..59. The draws come from std::mt19937_64 and the
// library's own portable normal and integer draws, in the worksheet's order (the 1,024
// normals, then the scale, then the offset), so a seed gives the same images everywhere;
// they are not NumPy's numbers for seed 678, only the same distribution.

#include <cstdint>

#include "bnlab/tensor.hpp"

namespace bnlab::data {

inline constexpr std::int64_t worksheet_image_size = 32;
inline constexpr std::int64_t worksheet_image_count = 30;

// Returns (count, 32, 32, 1), Layout::NHWC.
// REQUIRES: count >= 1, else std::invalid_argument.
Tensor worksheet_images(std::uint64_t seed, std::int64_t count = worksheet_image_count);

}  // namespace bnlab::data
