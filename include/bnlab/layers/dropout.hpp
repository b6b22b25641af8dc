#pragma once
// WHAT THIS OBJECT REPRESENTS
//   tf.keras.layers.Dropout(rate, seed): in training, each element is zeroed with probability
//   rate and the rest scaled by 1 / (1 - rate) (inverted dropout); in inference, the identity.
// REQUIRES
//   rate in [0, 1); build() with a per-sample shape of rank 1 to 3; forward() with
//   (N, *that shape), N >= 1.
// ENSURES
//   Training forward draws a fresh mask per call from (seed, call count) (kernels/dropout.hpp):
//   the same masks for the same seed whatever the thread count. Without a seed, build() draws
//   one from its rng, so the model's seed decides. Inference forward and rate 0 return x
//   itself (a handle, no copy); backward then returns dy. No parameters.
//   config() of a built layer carries the mask stream's state ("mask_step", and "mask_seed"
//   when the seed was drawn), so a saved and loaded model goes on with the next mask, not the
//   first one again.

#include <cstdint>
#include <optional>
#include <string>

#include "bnlab/layers/detail.hpp"
#include "bnlab/layers/layer.hpp"

namespace bnlab {

class Dropout : public Layer {
public:
  explicit Dropout(float rate, std::optional<std::uint64_t> seed = std::nullopt);

  std::string type_name() const override { return "Dropout"; }
  Shape build(const Shape& input_shape, Rng& rng) override;
  const Tensor& forward(const Tensor& x, bool training) override;
  const Tensor& backward(const Tensor& dy) override;
  LayerConfig config() const override;

  float rate() const { return rate_; }
  std::uint64_t seed() const { return seed_; }
  // Training forwards so far: the position in the mask stream.
  std::uint64_t mask_step() const { return step_; }
  // The next build() resumes the mask stream at (seed, step) instead of starting it afresh
  // (seed: the drawn one; nullopt keeps the configured or a newly drawn seed).
  void resume_mask_stream(std::optional<std::uint64_t> seed, std::uint64_t step);
  // The mask of the last training forward (0 or 1 / (1 - rate) per element).
  const Tensor& mask() const { return mask_.tensor(); }

private:
  float rate_;
  std::optional<std::uint64_t> configured_seed_;
  std::uint64_t seed_ = 0;
  std::uint64_t step_ = 0;  // training forwards so far: the mask stream
  struct MaskStream {
    std::optional<std::uint64_t> seed;
    std::uint64_t step;
  };
  std::optional<MaskStream> resume_;
  bool masked_ = false;     // whether the last forward applied a mask
  detail::BatchBuffer mask_;
  detail::BatchBuffer y_;
  detail::BatchBuffer dx_;
  Tensor forward_passthrough_;
  Tensor backward_passthrough_;
};

}  // namespace bnlab
