#include "bnlab/data/synthetic.hpp"

#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "data/random.hpp"

namespace bnlab::data {

Tensor worksheet_images(std::uint64_t seed, std::int64_t count) {
  if (count < 1) throw std::invalid_argument(fmt::format("worksheet_images: count is {}, must be at least 1", count));
  constexpr std::int64_t pixels = worksheet_image_size * worksheet_image_size;
  Tensor images({count, worksheet_image_size, worksheet_image_size, 1}, Layout::NHWC);
  std::mt19937_64 gen(detail::mix64(seed));
  detail::NormalSource normal;
  std::vector<double> noise(pixels);
  for (std::int64_t i = 0; i < count; ++i) {
    for (double& v : noise) v = normal(gen);
    const auto scale = static_cast<double>(detail::uniform_below(gen, 5));
    const auto offset = static_cast<double>(detail::uniform_below(gen, 60));
    float* image = images.data() + i * pixels;
    for (std::int64_t p = 0; p < pixels; ++p) image[p] = static_cast<float>(noise[p] * scale + offset);
  }
  return images;
}

}  // namespace bnlab::data
