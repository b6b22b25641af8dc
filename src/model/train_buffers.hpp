#pragma once
// Private to src/model: what fit() keeps between steps so that a step allocates nothing.

#include <cstdint>
#include <vector>

#include "bnlab/layers/layer.hpp"
#include "bnlab/model.hpp"
#include "bnlab/tensor.hpp"
#include "model/thread_chooser.hpp"

namespace bnlab {

struct Sequential::TrainBuffers {
  std::int64_t capacity = 0;          // batch size the buffers hold
  Tensor batch_x;                     // (capacity, input_shape...), the gathered batch
  std::vector<std::int32_t> batch_y;  // capacity labels
  Tensor probabilities;               // (capacity, classes)
  Tensor dlogits;                     // (capacity, classes)
  Tensor sample_losses;               // (capacity)
  detail::ThreadChooser thread_chooser{1, 0};  // kept from one fit call to the next
};

namespace model_detail {
// Whether a layer's output is a softmax: it hands out its logits, or its config says so
// (before the first forward a layer may not have logits to hand out yet).
inline bool ends_in_softmax(const Layer& layer) {
  if (layer.softmax_logits() != nullptr) return true;
  const LayerConfig config = layer.config();
  const auto it = config.find("activation");
  return it != config.end() && it->second == "softmax";
}
}  // namespace model_detail

}  // namespace bnlab
