// Training checkpoints ("BNCK", version 1; layout in docs/formats.md). The model travels as an
// embedded model file, so its format and checks stay in one place (src/model/serialization.cpp).
#include "bnlab/experiments/checkpoint.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "bnlab/experiments/output_files.hpp"
#include "bnlab/experiments/training.hpp"
#include "bnlab/models.hpp"
#include "io/files.hpp"

namespace bnlab::experiments {
namespace {

constexpr char magic[4] = {'B', 'N', 'C', 'K'};
// Version 2 added the training data's CRC-32; version-1 files still load (data_crc 0).
constexpr std::uint32_t format_version = 2;
constexpr std::size_t header_size = 16;  // magic, version u32, payload size u64
constexpr std::size_t trailer_size = 4;  // CRC-32 of header and payload

class Writer {
 public:
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  void bytes(std::string_view s) {
    u64(s.size());
    out_.append(s);
  }
  void doubles(const std::vector<double>& values) {
    u32(static_cast<std::uint32_t>(values.size()));
    for (double v : values) f64(v);
  }
  std::string& out() { return out_; }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  std::string out_;
};

class Reader {
 public:
  Reader(const std::string& name, std::string_view bytes) : name_(name), bytes_(bytes) {}
  [[noreturn]] void fail(const std::string& problem) const {
    throw std::runtime_error(fmt::format("checkpoint '{}': {}", name_, problem));
  }
  void need(std::uint64_t n, const char* what) const {
    if (n > bytes_.size() - pos_)
      fail(fmt::format("truncated at byte {} while reading {} ({} bytes needed, {} left)", bytes_.size(), what, n,
                       bytes_.size() - pos_));
  }
  std::uint64_t get(int n, const char* what) {
    need(static_cast<std::uint64_t>(n), what);
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(bytes_[pos_++])} << (8 * i);
    return v;
  }
  void skip(std::uint64_t n, const char* what) {
    need(n, what);
    pos_ += n;
  }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(get(4, what)); }
  std::int64_t i64(const char* what) { return static_cast<std::int64_t>(get(8, what)); }
  double f64(const char* what) { return std::bit_cast<double>(get(8, what)); }
  std::string_view bytes(const char* what) {
    const std::uint64_t n = get(8, what);
    need(n, what);
    const std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::vector<double> doubles(const char* what) {
    const std::uint32_t n = u32(what);
    need(std::uint64_t{n} * 8, what);  // before allocating for a count nobody checked
    std::vector<double> values(n);
    for (double& v : values) v = f64(what);
    return values;
  }
  std::size_t position() const { return pos_; }

 private:
  const std::string& name_;
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

// Each layer's type and configuration, less the state some configurations carry (a PyTorch
// normalization's batch count, Dropout's mask stream position), which training moves on.
std::vector<std::pair<std::string, LayerConfig>> architecture(const Sequential& model) {
  std::vector<std::pair<std::string, LayerConfig>> layers;
  for (std::size_t i = 0; i < model.size(); ++i) {
    LayerConfig config = model.layer(i).config();
    for (const char* state : {"num_batches_tracked", "mask_step", "mask_seed"}) config.erase(state);
    layers.emplace_back(model.layer(i).type_name(), std::move(config));
  }
  return layers;
}

}  // namespace

std::uint32_t training_data_crc(const data::Dataset& train) {
  const std::uint32_t images =
      io::crc32(train.images.data(), static_cast<std::size_t>(train.images.size()) * sizeof(float));
  const std::uint32_t crc = io::crc32(train.labels.data(), train.labels.size() * sizeof(std::int32_t), images);
  return crc == 0 ? 1 : crc;
}

std::filesystem::path checkpoint_path(const std::filesystem::path& directory) {
  return directory / checkpoint_file_name;
}

std::string checkpoint_to_bytes(const CheckpointSettings& settings, int completed_epochs, const History& history,
                                const Sequential& model) {
  if (!model.compiled()) throw std::invalid_argument("checkpoint: the model is not compiled");
  const auto n = static_cast<std::size_t>(completed_epochs);
  const bool validated = !history.val_loss.empty();
  // The reader's rule, so that no checkpoint is written that could not be read back.
  if (completed_epochs < 0 || history.loss.size() != n || history.accuracy.size() != n || history.seconds.size() != n ||
      history.val_loss.size() != (validated ? n : 0) || history.val_accuracy.size() != history.val_loss.size())
    throw std::invalid_argument(
        fmt::format("checkpoint: {} completed epochs with a history of {} (every column needs one entry an epoch)",
                    completed_epochs, history.epochs()));
  Writer w;
  w.out().append(magic, sizeof magic);
  w.u32(format_version);
  w.u64(0);  // payload size, patched below
  w.bytes(settings.model);
  const TrainingOptions& t = settings.training;
  w.i64(t.epochs);
  w.f64(t.learning_rate);
  w.i64(t.batch_size);
  w.bytes(t.optimizer);
  w.f64(t.momentum);
  w.u64(t.seed);
  w.i64(settings.validation);
  w.i64(settings.train_limit);
  w.u32(settings.data_crc);
  w.i64(completed_epochs);
  w.doubles(history.loss);
  w.doubles(history.accuracy);
  w.doubles(history.val_loss);
  w.doubles(history.val_accuracy);
  w.doubles(history.seconds);
  w.bytes(model.to_bytes());
  std::string& bytes = w.out();
  const std::uint64_t payload = bytes.size() - header_size;
  for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<char>(payload >> (8 * i));
  w.u32(io::crc32(bytes.data(), bytes.size()));
  return std::move(w.out());
}

void save_checkpoint(const std::filesystem::path& directory, const CheckpointSettings& settings, int completed_epochs,
                     const History& history, const Sequential& model) {
  write_file_atomically(checkpoint_path(directory), checkpoint_to_bytes(settings, completed_epochs, history, model));
}

Checkpoint checkpoint_from_bytes(std::string_view bytes, const std::string& name) {
  Reader r(name, bytes);
  if (bytes.size() < header_size) r.fail(fmt::format("truncated at byte {} in the 16-byte header", bytes.size()));
  if (std::memcmp(bytes.data(), magic, sizeof magic) != 0)
    r.fail("bad magic, expected \"BNCK\" (not a bnlab checkpoint)");
  r.skip(sizeof magic, "magic");
  const std::uint32_t version = r.u32("version");
  if (version != 1 && version != format_version)
    r.fail(fmt::format("unsupported version {} (this build reads versions 1 and {})", version, format_version));
  const std::uint64_t payload = r.get(8, "payload size");
  const std::uint64_t available = bytes.size() - header_size;
  if (payload > available || available - payload != trailer_size)
    r.fail(fmt::format("size {} bytes does not match the payload size {} the header announces", bytes.size(), payload));
  const std::size_t payload_end = header_size + payload;
  std::uint32_t stored_crc = 0;
  for (int i = 0; i < 4; ++i) stored_crc |= std::uint32_t{static_cast<std::uint8_t>(bytes[payload_end + i])} << (8 * i);
  if (stored_crc != io::crc32(bytes.data(), payload_end)) r.fail("checksum mismatch: the file is corrupt");

  Reader p(name, bytes.substr(0, payload_end));
  p.skip(header_size, "header");
  Checkpoint c;
  c.settings.model = std::string(p.bytes("model name"));
  TrainingOptions& t = c.settings.training;
  const std::int64_t epochs = p.i64("epochs");
  t.learning_rate = p.f64("learning rate");
  t.batch_size = p.i64("batch size");
  t.optimizer = std::string(p.bytes("optimizer"));
  t.momentum = p.f64("momentum");
  t.seed = static_cast<std::uint64_t>(p.i64("seed"));
  c.settings.validation = p.i64("validation size");
  c.settings.train_limit = p.i64("train limit");
  if (version >= 2) c.settings.data_crc = p.u32("training data CRC-32");
  const std::int64_t completed = p.i64("completed epochs");
  if (epochs < 1 || epochs > std::numeric_limits<int>::max() || completed < 0 || completed > epochs)
    p.fail(fmt::format("{} completed epochs of {} is not possible", completed, epochs));
  t.epochs = static_cast<int>(epochs);
  c.completed_epochs = static_cast<int>(completed);
  c.history.loss = p.doubles("loss history");
  c.history.accuracy = p.doubles("accuracy history");
  c.history.val_loss = p.doubles("val_loss history");
  c.history.val_accuracy = p.doubles("val_accuracy history");
  c.history.seconds = p.doubles("seconds history");
  const auto n = static_cast<std::size_t>(completed);
  const bool validated = !c.history.val_loss.empty();
  if (c.history.loss.size() != n || c.history.accuracy.size() != n || c.history.seconds.size() != n ||
      c.history.val_loss.size() != (validated ? n : 0) || c.history.val_accuracy.size() != c.history.val_loss.size())
    p.fail(fmt::format("the history does not have one entry per completed epoch ({})", completed));
  const std::string_view model_bytes = p.bytes("model");
  if (p.position() != payload_end)
    p.fail(fmt::format("{} bytes of the payload are left over after the model", payload_end - p.position()));
  try {
    c.model = Sequential::load_from_buffer(model_bytes, name + " (embedded model)");
  } catch (const std::exception& e) {
    p.fail(e.what());
  }
  if (!c.model.compiled()) p.fail("the embedded model is not compiled (it has no optimizer state)");
  return c;
}

Checkpoint load_checkpoint(const std::filesystem::path& directory) {
  const std::string path = checkpoint_path(directory).string();
  return checkpoint_from_bytes(io::read_regular_file(path, "checkpoint"), path);
}

int remove_stale_checkpoint_temporaries(const std::filesystem::path& directory) {
  // The atomic write puts its temporary beside the file it replaces, which for a symbolic link
  // is the link's target, so that directory is looked in too.
  std::vector<std::filesystem::path> writes_to{checkpoint_path(directory)};
  std::string problem;
  const std::filesystem::path target = io::write_target(writes_to.front(), problem);
  if (!target.empty() && target != writes_to.front()) writes_to.push_back(target);
  int removed = 0;
  for (const std::filesystem::path& file : writes_to) {
    const std::string prefix = file.filename().string() + ".tmp.";
    std::error_code ec;
    for (std::filesystem::directory_iterator it(io::parent_or_current(file), ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.rfind(prefix, 0) == 0 && name.size() == prefix.size() + 6 && it->is_regular_file(ec)) {
        std::error_code remove_error;
        if (std::filesystem::remove(it->path(), remove_error)) ++removed;
      }
    }
  }
  return removed;
}

void check_resume_settings(const Checkpoint& checkpoint, const CheckpointSettings& wanted,
                           const std::filesystem::path& directory) {
  const CheckpointSettings& saved = checkpoint.settings;
  auto refuse = [&](const char* flag, const std::string& was, const std::string& now) {
    throw std::invalid_argument(fmt::format(
        "--resume: the checkpoint in '{}' was trained with {} {}, this run asks for {} {}; resume with the same "
        "settings, or start a new run in another --checkpoint-dir",
        directory.string(), flag, was, flag, now));
  };
  const TrainingOptions& a = saved.training;
  const TrainingOptions& b = wanted.training;
  if (saved.model != wanted.model) refuse("--model", saved.model, wanted.model);
  if (a.optimizer != b.optimizer) refuse("--optimizer", a.optimizer, b.optimizer);
  // Bit comparison: the same flag text gives the same double, and only the same double gives
  // the same updates.
  if (std::bit_cast<std::uint64_t>(a.learning_rate) != std::bit_cast<std::uint64_t>(b.learning_rate))
    refuse("--lr", fmt::format("{}", a.learning_rate), fmt::format("{}", b.learning_rate));
  if (std::bit_cast<std::uint64_t>(a.momentum) != std::bit_cast<std::uint64_t>(b.momentum))
    refuse("--momentum", fmt::format("{}", a.momentum), fmt::format("{}", b.momentum));
  if (a.batch_size != b.batch_size) refuse("--batch-size", std::to_string(a.batch_size), std::to_string(b.batch_size));
  if (a.seed != b.seed) refuse("--seed", std::to_string(a.seed), std::to_string(b.seed));
  if (saved.validation != wanted.validation)
    refuse("--validation", std::to_string(saved.validation), std::to_string(wanted.validation));
  if (saved.train_limit != wanted.train_limit)
    refuse("--train-limit", std::to_string(saved.train_limit), std::to_string(wanted.train_limit));
  // Checked only where both are known: version-1 files, and callers that do not say, have 0.
  if (saved.data_crc != 0 && wanted.data_crc != 0 && saved.data_crc != wanted.data_crc)
    throw std::invalid_argument(fmt::format(
        "--resume: the checkpoint in '{}' was trained on other data (training images and labels CRC-32 {:08x}, "
        "this run's {:08x}); resume with the same --data-dir",
        directory.string(), saved.data_crc, wanted.data_crc));
  // The settings agree; the model trained on must be the one they describe, or the run would
  // continue another model (or rate) under this run's banner. (Only seed models can be made
  // from a name; a checkpoint of another model is the caller's to check.)
  const auto seed_models = seed_model_names();
  if (std::find(seed_models.begin(), seed_models.end(), wanted.model) != seed_models.end() &&
      architecture(make_seed_model(wanted.model, wanted.training.seed)) != architecture(checkpoint.model))
    throw std::invalid_argument(fmt::format(
        "--resume: the model in the checkpoint in '{}' is not the '{}' model its settings name (its layers or their "
        "settings differ)",
        directory.string(), wanted.model));
  const auto expected = make_named_optimizer(wanted.training);
  const Optimizer& embedded = checkpoint.model.optimizer();
  if (embedded.type_name() != expected->type_name() || embedded.hyperparameters() != expected->hyperparameters())
    throw std::invalid_argument(
        fmt::format("--resume: the optimizer in the checkpoint in '{}' is {} {}, its settings say {} {}",
                    directory.string(), embedded.type_name(), fmt::join(embedded.hyperparameters(), ", "),
                    expected->type_name(), fmt::join(expected->hyperparameters(), ", ")));
  // --epochs may grow (train on further), not shrink: a resume that forgot the flag would
  // otherwise stop early at the default without a word.
  if (b.epochs < a.epochs)
    throw std::invalid_argument(fmt::format(
        "--resume: the checkpoint in '{}' belongs to a run of --epochs {} ({} completed), this run asks for "
        "--epochs {}; --epochs may grow on resume, not shrink",
        directory.string(), a.epochs, checkpoint.completed_epochs, b.epochs));
}

}  // namespace bnlab::experiments
