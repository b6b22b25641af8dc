// Whole-model files ("BNLB", version 1). The layout is documented in docs/formats.md; keep the
// two in step, and bump the version for any change a version-1 reader would misread.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <bit>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string_view>

#include "bnlab/layers/factory.hpp"
#include "bnlab/model.hpp"
#include "io/files.hpp"

namespace bnlab {

namespace {

constexpr char magic[4] = {'B', 'N', 'L', 'B'};
constexpr std::uint32_t format_version = 1;
constexpr std::size_t header_size = 16;  // magic, version u32, payload size u64
constexpr std::size_t trailer_size = 4;  // CRC-32 of header and payload

// ---- writing --------------------------------------------------------------------------------

class Writer {
public:
  void u8(std::uint8_t v) { bytes_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  void string(std::string_view s) {
    u32(checked_u32(s.size(), "string length"));
    bytes_.append(s.data(), s.size());
  }
  void tensor(const Tensor& t) {
    u32(static_cast<std::uint32_t>(t.rank()));
    for (std::int64_t d : t.shape()) i64(d);
    if constexpr (std::endian::native == std::endian::little) {
      bytes_.append(reinterpret_cast<const char*>(t.data()), static_cast<std::size_t>(t.size()) * sizeof(float));
    } else {
      for (std::int64_t i = 0; i < t.size(); ++i) u32(std::bit_cast<std::uint32_t>(t.data()[i]));
    }
  }
  static std::uint32_t checked_u32(std::size_t v, const char* what) {
    if (v > std::numeric_limits<std::uint32_t>::max())
      throw std::invalid_argument(fmt::format("save: {} {} does not fit the format's 32 bits", what, v));
    return static_cast<std::uint32_t>(v);
  }
  std::string& bytes() { return bytes_; }

private:
  std::string bytes_;
};

// ---- reading --------------------------------------------------------------------------------

class Reader {
public:
  Reader(const std::string& path, std::string_view bytes, std::size_t begin, std::size_t end)
      : path_(path), bytes_(bytes), pos_(begin), end_(end) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw std::runtime_error(fmt::format("load '{}': {}", path_, problem));
  }
  void need(std::size_t n, const char* what) const {
    if (n > end_ - pos_) fail(fmt::format("truncated at byte {} while reading {}", end_, what));
  }
  std::uint8_t u8(const char* what) {
    need(1, what);
    return static_cast<std::uint8_t>(bytes_[pos_++]);
  }
  std::uint32_t u32(const char* what) {
    need(4, what);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<std::uint8_t>(bytes_[pos_++])} << (8 * i);
    return v;
  }
  std::uint64_t u64(const char* what) {
    need(8, what);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(bytes_[pos_++])} << (8 * i);
    return v;
  }
  std::int64_t i64(const char* what) { return static_cast<std::int64_t>(u64(what)); }
  double f64(const char* what) { return std::bit_cast<double>(u64(what)); }
  std::string string(const char* what) {
    const std::uint32_t n = u32(what);
    need(n, what);
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  // A count of items each at least min_item_bytes long: a corrupt count fails here instead of
  // asking for a huge allocation.
  std::uint32_t count(const char* what, std::size_t min_item_bytes) {
    const std::uint32_t n = u32(what);
    if (min_item_bytes > 0 && n > (end_ - pos_) / min_item_bytes)
      fail(fmt::format("{} is {}, more than the {} bytes left can hold (at byte {})", what, n, end_ - pos_, pos_));
    return n;
  }
  Tensor tensor(const char* what) {
    const std::uint32_t rank = u32(what);
    if (rank < 1 || rank > static_cast<std::uint32_t>(Tensor::max_rank))
      fail(fmt::format("{} has rank {}, expected 1..{} (at byte {})", what, rank, Tensor::max_rank, pos_));
    std::vector<std::int64_t> shape(rank);
    for (auto& d : shape) {
      d = i64(what);
      if (d < 0) fail(fmt::format("{} has a negative dimension {} (at byte {})", what, d, pos_));
    }
    // Multiplying the dimensions could overflow; bounding each factor by the bytes left cannot.
    const std::uint64_t max_elements = (end_ - pos_) / sizeof(float);
    std::uint64_t elements = 1;
    for (std::int64_t d : shape) {
      const auto u = static_cast<std::uint64_t>(d);
      if (u == 0) {
        elements = 0;
        break;
      }
      if (elements > max_elements / u) fail(fmt::format("truncated at byte {} while reading {}", end_, what));
      elements *= u;
    }
    need(elements * sizeof(float), what);
    Tensor t(shape);
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(t.data(), bytes_.data() + pos_, elements * sizeof(float));
      pos_ += elements * sizeof(float);
    } else {
      for (std::uint64_t i = 0; i < elements; ++i) t.data()[i] = std::bit_cast<float>(u32(what));
    }
    return t;
  }
  std::size_t position() const { return pos_; }

private:
  const std::string& path_;
  std::string_view bytes_;
  std::size_t pos_;
  std::size_t end_;
};

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += (c >= 32 && c < 127) ? fmt::format("{}", static_cast<char>(c)) : fmt::format("\\x{:02x}", c);
  return out;
}

}  // namespace

std::string Sequential::to_bytes() const {
  check_built("save");
  Writer w;
  w.bytes().append(magic, sizeof magic);
  w.u32(format_version);
  w.u64(0);  // payload size, patched below

  w.string(name_);
  w.u32(Writer::checked_u32(input_shape_.size(), "input rank"));
  for (std::int64_t d : input_shape_) w.i64(d);
  w.u32(Writer::checked_u32(layers_.size(), "layer count"));
  for (const auto& layer : layers_) {
    w.string(layer->type_name());
    w.string(layer->name());
    const LayerConfig config = layer->config();
    w.u32(Writer::checked_u32(config.size(), "config size"));
    for (const auto& [key, value] : config) {
      w.string(key);
      w.string(value);
    }
    const std::vector<Parameter*> params = layer->parameters();
    w.u32(Writer::checked_u32(params.size(), "parameter count"));
    for (const Parameter* p : params) {
      w.string(p->name);
      w.u8(p->trainable ? 1 : 0);
      w.tensor(p->value);
    }
  }
  w.u8(optimizer_ ? 1 : 0);
  if (optimizer_) {
    w.u8(compile_options_.from_logits ? 1 : 0);
    const OptimizerState state = optimizer_->state();
    w.string(state.type_name);
    w.u32(Writer::checked_u32(state.hyperparameters.size(), "hyperparameter count"));
    for (const auto& [key, value] : state.hyperparameters) {
      w.string(key);
      w.f64(value);
    }
    w.i64(state.iterations);
    w.u32(Writer::checked_u32(state.slot_names.size(), "slot name count"));
    for (const std::string& s : state.slot_names) w.string(s);
    w.u32(Writer::checked_u32(state.slots.size(), "slot count"));
    for (const Tensor& t : state.slots) w.tensor(t);
  }

  std::string& bytes = w.bytes();
  const std::uint64_t payload = bytes.size() - header_size;
  for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<char>(payload >> (8 * i));
  const std::uint32_t crc = io::crc32(bytes.data(), bytes.size());
  w.u32(crc);
  return std::move(bytes);
}

void Sequential::save(const std::string& path) const { io::write_file_atomically(path, to_bytes(), "save"); }

Sequential Sequential::load(const std::string& path) { return load(path, make_layer); }

Sequential Sequential::load(const std::string& path, const LayerFactory& factory) {
  if (!factory) throw std::invalid_argument(fmt::format("load '{}': no layer factory given", path));
  return load_from_buffer(io::read_regular_file(path, "load"), path, factory);
}

Sequential Sequential::load_from_buffer(std::string_view bytes, const std::string& path) {
  return load_from_buffer(bytes, path, make_layer);
}

// `path` only names the source in messages: a file's path, or a label for bytes from elsewhere.
Sequential Sequential::load_from_buffer(std::string_view bytes, const std::string& path, const LayerFactory& factory) {
  if (!factory) throw std::invalid_argument(fmt::format("load '{}': no layer factory given", path));
  Reader header(path, bytes, 0, bytes.size());
  if (bytes.size() < sizeof magic)
    header.fail(fmt::format("truncated at byte {}: too short for the magic \"BNLB\"", bytes.size()));
  if (std::memcmp(bytes.data(), magic, sizeof magic) != 0)
    header.fail(fmt::format("bad magic \"{}\", expected \"BNLB\" (not a bnlab model file)",
                            printable(std::string_view(bytes.data(), sizeof magic))));
  if (bytes.size() < header_size) header.fail(fmt::format("truncated at byte {} in the 16-byte header", bytes.size()));
  Reader fields(path, bytes, sizeof magic, header_size);
  const std::uint32_t version = fields.u32("version");
  if (version != format_version)
    header.fail(fmt::format("unsupported version {} (this build reads version {})", version, format_version));
  const std::uint64_t payload = fields.u64("payload size");
  const std::uint64_t available = bytes.size() - header_size;
  if (payload > available || available - payload < trailer_size)
    header.fail(fmt::format("truncated at byte {}: the header announces {} bytes", bytes.size(),
                            payload > std::numeric_limits<std::uint64_t>::max() - header_size - trailer_size
                                ? std::string("more than 2^64")
                                : std::to_string(payload + header_size + trailer_size)));
  if (available - payload != trailer_size)
    header.fail(fmt::format("size {} bytes does not match the {} bytes the header announces", bytes.size(),
                            payload + header_size + trailer_size));
  const std::size_t payload_end = header_size + payload;
  Reader trailer(path, bytes, payload_end, bytes.size());
  const std::uint32_t stored_crc = trailer.u32("checksum");
  const std::uint32_t computed_crc = io::crc32(bytes.data(), payload_end);
  if (stored_crc != computed_crc)
    header.fail(fmt::format("checksum mismatch (stored CRC-32 {:08x}, computed {:08x}): the file is corrupt",
                            stored_crc, computed_crc));

  Reader r(path, bytes, header_size, payload_end);
  try {
    Sequential model(r.string("model name"));
    const std::uint32_t input_rank = r.count("input rank", 8);
    Shape input_shape(input_rank);
    for (auto& d : input_shape) d = r.i64("input shape");

    struct SavedParameter {
      std::string name;
      bool trainable;
      Tensor value;
    };
    std::vector<std::vector<SavedParameter>> saved(r.count("layer count", 12));
    for (auto& layer_params : saved) {
      const std::string type_name = r.string("layer type");
      const std::string layer_name = r.string("layer name");
      LayerConfig config;
      const std::uint32_t entries = r.count("config size", 8);
      for (std::uint32_t i = 0; i < entries; ++i) {
        std::string key = r.string("config key");
        config[key] = r.string("config value");
      }
      std::unique_ptr<Layer> layer = factory(type_name, config);
      if (!layer) r.fail(fmt::format("the layer factory has no layer of type '{}'", type_name));
      if (layer->type_name() != type_name)
        r.fail(fmt::format("the layer factory made a {} for type '{}'", layer->type_name(), type_name));
      layer->set_name(layer_name);
      model.add(std::move(layer));
      layer_params.resize(r.count("parameter count", 9));
      for (auto& p : layer_params) {
        p.name = r.string("parameter name");
        p.trainable = r.u8("trainable flag") != 0;
        p.value = r.tensor("parameter values");
      }
    }
    const bool compiled = r.u8("compiled flag") != 0;
    CompileOptions options;
    OptimizerState state;
    if (compiled) {
      options.from_logits = r.u8("from_logits flag") != 0;
      state.type_name = r.string("optimizer type");
      const std::uint32_t hyper = r.count("hyperparameter count", 12);
      for (std::uint32_t i = 0; i < hyper; ++i) {
        std::string key = r.string("hyperparameter name");
        state.hyperparameters.emplace_back(std::move(key), r.f64("hyperparameter value"));
      }
      state.iterations = r.i64("iterations");
      state.slot_names.resize(r.count("slot name count", 4));
      for (auto& s : state.slot_names) s = r.string("slot name");
      state.slots.resize(r.count("slot count", 12));
      for (auto& t : state.slots) t = r.tensor("optimizer slot");
    }
    if (r.position() != payload_end)
      r.fail(fmt::format("{} bytes of the payload are left over after the model", payload_end - r.position()));

    // Building draws throwaway initial weights; every parameter is then overwritten, so the
    // seed does not matter. The rebuilt layers may create no more than the file holds (values,
    // gradients, a little state): an architecture forged to ask for more is refused here,
    // before it allocates, rather than after comparing shapes.
    std::int64_t stored_elements = 0;
    for (const auto& layer_params : saved)
      for (const auto& p : layer_params) stored_elements += p.value.size();
    try {
      const TensorAllocationBudget budget(3 * stored_elements + (std::int64_t{1} << 20));
      model.build(input_shape, 0);
    } catch (const std::length_error& e) {
      r.fail(fmt::format("the architecture needs more parameters than the file holds ({} values): {}",
                         stored_elements, e.what()));
    }
    for (std::size_t l = 0; l < saved.size(); ++l) {
      Layer& layer = model.layer(l);
      const std::vector<Parameter*> params = layer.parameters();
      if (params.size() != saved[l].size())
        r.fail(fmt::format("layer '{}' has {} parameters in the file, {} when rebuilt", layer.name(), saved[l].size(),
                           params.size()));
      for (std::size_t i = 0; i < params.size(); ++i) {
        const SavedParameter& s = saved[l][i];
        Parameter& p = *params[i];
        if (p.name != s.name || p.trainable != s.trainable || p.value.shape() != s.value.shape())
          r.fail(fmt::format("layer '{}' parameter {}: the file has '{}' {} ({}), the rebuilt layer '{}' {} ({})",
                             layer.name(), i, s.name, s.value.shape_string(), s.trainable ? "trainable" : "non-trainable",
                             p.name, p.value.shape_string(), p.trainable ? "trainable" : "non-trainable"));
        std::copy(s.value.data(), s.value.data() + s.value.size(), p.value.data());
      }
    }
    if (compiled) {
      model.compile(make_optimizer(state.type_name, state.hyperparameters), options);
      model.optimizer().set_state(state);
    }
    return model;
  } catch (const std::exception& e) {
    const std::string prefix = fmt::format("load '{}': ", path);
    if (std::string_view(e.what()).starts_with(prefix)) throw;
    throw std::runtime_error(prefix + e.what());
  }
}

}  // namespace bnlab
