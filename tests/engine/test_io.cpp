// safetensors and checkpoints: round trips of every dtype and layout, the byte format, atomic writes, clear errors
// for truncated/corrupt files, and checkpoint save -> load -> identical outputs and identical next training step.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gradcheck.h"

using namespace engine;
using namespace engine::io;
namespace fs = std::filesystem;

namespace {

// A fresh temporary folder per test case, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("engine_io_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A hand-built safetensors file: header JSON + data bytes.
std::string make_file(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  return out + json + data;
}

std::string load_error(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const EngineError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("io: safetensors round trip of every dtype, layout and metadata") {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  Tensor f32 = arange(0, 12, DType::F32).reshape({3, 4}).t();  // non-contiguous view
  Tensor f64 = from_vector<double>({1.5, -2.25}, {2});
  Tensor i32 = from_vector<int32_t>({-7, 8, 9}, {3, 1});
  Tensor i64 = scalar_tensor(1e15, DType::I64);  // rank 0
  Tensor u8 = from_vector<uint8_t>({0, 255}, {2});
  Tensor b = gt(from_vector<float>({1, -1, 2}, {3}), 0.0);
  Tensor empty_t = zeros({0, 5});
  NamedTensors in = {{"w.f32", f32}, {"f64", f64}, {"i32", i32}, {"i64", i64}, {"u8", u8}, {"mask", b}, {"empty", empty_t}};
  save_safetensors(path, in, {{"model", "MLP"}, {"config", "{\"a\": 1}"}});
  SafetensorsContents c = load_safetensors(path);
  REQUIRE(c.tensors.size() == in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    CHECK(c.tensors[k].first == in[k].first);  // file order = save order
    const Tensor& t = c.tensors[k].second;
    CHECK(t.dtype() == in[k].second.dtype());
    CHECK(t.shape() == in[k].second.shape());
    CHECK(t.to_vector<double>() == in[k].second.to_vector<double>());
  }
  CHECK(c.metadata.at("config") == "{\"a\": 1}");
  REQUIRE(c.find("mask") != nullptr);
  CHECK(c.find("nope") == nullptr);
  // Format: header length is a multiple of 8 and the JSON names the standard dtype strings.
  const std::string bytes = read_bytes(path);
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);
  CHECK(hlen % 8 == 0);
  const std::string header = bytes.substr(8, hlen);
  for (const char* s : {"\"F32\"", "\"F64\"", "\"I32\"", "\"I64\"", "\"U8\"", "\"BOOL\"", "__metadata__"})
    CHECK(header.find(s) != std::string::npos);
  // Atomic write left no temporary file behind.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  save_safetensors(dir.file("none.safetensors"), {});
  CHECK(load_safetensors(dir.file("none.safetensors")).tensors.empty());
  // empty tensors between non-empty ones share their offset with the next tensor
  save_safetensors(dir.file("mid.safetensors"), {{"a", ones({3})}, {"gap", zeros({2, 0})}, {"b", ones({2})}});
  const auto mid = load_safetensors(dir.file("mid.safetensors"));
  REQUIRE(mid.find("gap") != nullptr);
  CHECK(mid.find("gap")->shape() == Shape{2, 0});
  CHECK(mid.find("b")->to_vector<float>() == std::vector<float>{1, 1});
}

TEST_CASE("io: reads a hand-built safetensors file (reference byte layout)") {
  TempDir dir;
  const std::string path = dir.file("ref.safetensors");
  float vals[3] = {1.0f, -2.0f, 0.5f};
  int64_t ids[1] = {42};
  std::string data(reinterpret_cast<char*>(ids), 8);
  data += std::string(reinterpret_cast<char*>(vals), 12);
  // Keys out of offset order, as other writers produce (sorted names): file order follows the offsets.
  write_bytes(path, make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},)"
                              R"("b":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]}})",
                              data));
  SafetensorsContents c = load_safetensors(path);
  REQUIRE(c.tensors.size() == 2);
  CHECK(c.tensors[0].first == "b");
  CHECK(c.tensors[0].second.to_vector<int64_t>() == std::vector<int64_t>{42});
  CHECK(c.tensors[1].second.to_vector<float>() == std::vector<float>{1.0f, -2.0f, 0.5f});
}

TEST_CASE("io: truncated and corrupt safetensors files give clear errors naming the file") {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"w", ones({16, 16})}, {"b", zeros({16})}});
  const std::string bytes = read_bytes(good);
  const std::string bad = dir.file("bad.safetensors");
  // Truncations at every interesting point: inside the length, inside the header, inside the data.
  for (size_t keep : {size_t(0), size_t(5), size_t(20), bytes.size() - 1, bytes.size() - 70}) {
    write_bytes(bad, bytes.substr(0, keep));
    const std::string msg = load_error(bad);
    CHECK_MESSAGE(msg.find("load_safetensors: " + bad + ": truncated") == 0, msg);
  }
  write_bytes(bad, bytes + "xx");
  CHECK(load_error(bad).find("2 trailing bytes") != std::string::npos);
  write_bytes(bad, make_file("{not json", ""));
  CHECK(load_error(bad).find(bad + ": bad JSON header") != std::string::npos);
  write_bytes(bad, make_file(R"({"w":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}})", "ab"));
  CHECK(load_error(bad).find("tensor 'w' has unsupported dtype \"F16\"") != std::string::npos);
  write_bytes(bad, make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"));
  CHECK(load_error(bad).find("needs 8 bytes but data_offsets [0, 4] span 4") != std::string::npos);
  write_bytes(bad, make_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", "abcdefgh"));
  CHECK(load_error(bad).find("data starts at 4 but the previous one ends at 0") != std::string::npos);
  write_bytes(bad, make_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"));
  CHECK(load_error(bad).find("invalid shape") != std::string::npos);
  write_bytes(bad, make_file(R"({"__metadata__":{"k":1}})", ""));
  CHECK(load_error(bad).find("metadata 'k' is not a string") != std::string::npos);
  CHECK(load_error(dir.file("missing.safetensors")).find("cannot open file") != std::string::npos);
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("no/such/dir/x.safetensors"), {{"w", ones({1})}}),
                       doctest::Contains("cannot create"), EngineError);
  CHECK_THROWS_WITH_AS(save_safetensors(bad, {{"w", ones({1})}, {"w", ones({1})}}), doctest::Contains("repeated"),
                       EngineError);
}

TEST_CASE("io: checkpoint save -> load gives identical outputs and an identical next step") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  nn::MLPOptions mo{.activation = nn::ActivationKind::GELU, .norm = nn::NormKind::LayerNorm};
  Tensor x = testing::rand_f32({8, 3}, 31), y = testing::rand_f32({8, 2}, 32);
  auto train_step = [&](nn::MLP& m, optim::Optimizer& o, optim::StepwiseScheduler& s) {
    o.zero_grad();
    mean(square(m(x) - y)).backward();
    optim::clip_grad_norm_(m.parameters(), 1.0);
    o.step();
    s.step();
  };
  manual_seed(5);
  nn::MLP a({3, 16, 2}, mo);
  optim::AdamW oa(a.named_parameters(), 1e-2);
  auto inner = std::make_unique<optim::CosineAnnealingLR>(oa, 10);
  optim::LinearWarmup sa(oa, 2, 0.1, std::move(inner));
  for (int i = 0; i < 3; ++i) train_step(a, oa, sa);
  save_checkpoint(path, a, &oa, &sa, {.model_name = "MLP", .config_json = "{\"widths\": [3, 16, 2]}", .epoch = 1,
                                      .step = 3, .extra = {{"note", "test"}}});

  manual_seed(99);  // different initial weights
  nn::MLP b({3, 16, 2}, mo);
  optim::AdamW ob(b.named_parameters(), 1e-2);
  optim::LinearWarmup sb(ob, 2, 0.1, std::make_unique<optim::CosineAnnealingLR>(ob, 10));
  CheckpointInfo info = load_checkpoint(path, b, &ob, &sb, "MLP");
  CHECK(info.model_name == "MLP");
  CHECK(info.config_json == "{\"widths\": [3, 16, 2]}");
  CHECK(info.epoch == 1);
  CHECK(info.step == 3);
  CHECK(info.extra.at("note") == "test");
  CHECK(read_checkpoint_info(path).step == 3);
  CHECK(b(x).to_vector<float>() == a(x).to_vector<float>());
  CHECK(ob.lr() == oa.lr());
  train_step(a, oa, sa);
  train_step(b, ob, sb);
  CHECK(ob.lr() == oa.lr());
  for (size_t k = 0; k < a.parameters().size(); ++k)
    CHECK(b.parameters()[k].to_vector<float>() == a.parameters()[k].to_vector<float>());
}

TEST_CASE("io: loading a checkpoint of another model says exactly what mismatches") {
  TempDir dir;
  const std::string path = dir.file("other.safetensors");
  nn::MLP a({3, 16, 2});
  save_checkpoint(path, a, nullptr, nullptr, {.model_name = "HEPT"});
  nn::MLP b({3, 8, 2});
  const std::string expected =
      "load_checkpoint: " + path + " holds a checkpoint of model 'HEPT' but the model being loaded is 'GatedMLP'";
  CHECK_THROWS_WITH_AS(load_checkpoint(path, b, nullptr, nullptr, "GatedMLP"), doctest::Contains(expected.c_str()),
                       EngineError);
  std::string msg;
  try {
    load_checkpoint(path, b);
  } catch (const EngineError& e) {
    msg = e.what();
  }
  CHECK(msg.find("load_checkpoint: " + path + " (model 'HEPT'): load_state_dict: shape mismatch for net.0.weight: "
                 "given [16, 3], module has [8, 3]") == 0);
  CHECK(msg.find("shape mismatch for net.2.weight: given [2, 16], module has [2, 8]") != std::string::npos);
  Tensor p = zeros({1}).requires_grad_();
  optim::SGD sgd({{"p", p}}, 0.1);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, a, &sgd), doctest::Contains("has no optimizer state"), EngineError);
  save_safetensors(path, {{"w", ones({1})}});
  CHECK_THROWS_WITH_AS(load_checkpoint(path, a), doctest::Contains("not a checkpoint (metadata has no 'format')"),
                       EngineError);
}
