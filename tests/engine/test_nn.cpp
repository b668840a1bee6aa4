// Module system and layers: dotted state-dict names, load_state_dict mismatch reports, in-place conversions,
// PyTorch default initialisations, initialisers, gradchecks through Linear/LayerNorm/RMSNorm/MLP, containers.
#include <cmath>

#include "gradcheck.h"

using namespace engine;
using namespace engine::nn;
using testing::gradcheck;
using testing::rand_f64;

namespace {

struct Attention : Module {
  std::shared_ptr<Linear> w_q = register_module("w_q", std::make_shared<Linear>(4, 4, false));
  std::shared_ptr<Linear> w_o = register_module("w_o", std::make_shared<Linear>(4, 4));
};

struct Block : Module {
  std::shared_ptr<Attention> attn = register_module("attn", std::make_shared<Attention>());
  std::shared_ptr<LayerNorm> norm = register_module("norm", std::make_shared<LayerNorm>(4));
  Tensor count = register_buffer("count", zeros({1}, DType::I64));
  Tensor scratch = register_buffer("scratch", zeros({2}), /*persistent=*/false);
};

struct Net : Module {
  Tensor scale = register_parameter("scale", ones({1}));
  std::shared_ptr<ModuleList> layers = register_module("layers", std::make_shared<ModuleList>());
  Net() {
    layers->push_back(std::make_shared<Block>());
    layers->push_back(std::make_shared<Block>());
  }
};

std::vector<std::string> names_of(const NamedTensors& list) {
  std::vector<std::string> out;
  for (const auto& [n, t] : list) out.push_back(n);
  return out;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace

TEST_CASE("nn: state_dict names of nested modules follow PyTorch") {
  Net net;
  const std::vector<std::string> block = {"attn.w_q.weight", "attn.w_o.weight", "attn.w_o.bias", "norm.weight",
                                          "norm.bias"};
  std::vector<std::string> params = {"scale"}, state = {"scale"};
  for (const char* i : {"0", "1"})
    for (const auto& n : block) params.push_back(std::string("layers.") + i + "." + n);
  state = params;
  state.push_back("layers.0.count");  // buffers after parameters; non-persistent ones are not saved
  state.push_back("layers.1.count");
  CHECK(names_of(net.named_parameters()) == params);
  CHECK(names_of(net.state_dict()) == state);
  CHECK(names_of(net.named_buffers()) ==
        std::vector<std::string>{"layers.0.count", "layers.0.scratch", "layers.1.count", "layers.1.scratch"});
  CHECK(net.named_parameters(/*recurse=*/false).size() == 1);
  CHECK(net.num_parameters() == 1 + 2 * (16 + 16 + 4 + 4 + 4));
  CHECK(net.layers->get<Block>(1)->attn->w_q->weight.requires_grad());
  CHECK_FALSE(net.layers->get<Block>(0)->count.requires_grad());
  CHECK_THROWS_WITH_AS(net.layers->get<Linear>(0), doctest::Contains("other type"), EngineError);
  CHECK_THROWS_AS((*net.layers)[2], EngineError);
}

TEST_CASE("nn: load_state_dict copies by name and lists every mismatch") {
  Net a, b;
  b.load_state_dict(a.state_dict());
  CHECK(b.layers->get<Block>(1)->attn->w_o->weight.to_vector<float>() ==
        a.layers->get<Block>(1)->attn->w_o->weight.to_vector<float>());
  // The copy goes into b's own storage.
  CHECK(b.layers->get<Block>(1)->attn->w_o->weight.impl()->storage !=
        a.layers->get<Block>(1)->attn->w_o->weight.impl()->storage);

  NamedTensors bad;
  for (auto& [name, t] : a.state_dict()) {
    if (name == "layers.0.norm.bias" || name == "layers.1.count") continue;                       // missing
    if (name == "layers.0.attn.w_q.weight") t = zeros({4, 5});                                     // shape
    if (name == "scale") t = ones({1}, DType::F64);                                                 // dtype
    bad.emplace_back(name, t);
  }
  bad.emplace_back("layers.2.norm.weight", ones({4}));  // unexpected
  std::string msg;
  try {
    b.load_state_dict(bad);
  } catch (const EngineError& e) {
    msg = e.what();
  }
  CHECK(msg.find("load_state_dict: 2 keys missing: layers.0.norm.bias, layers.1.count") == 0);
  CHECK(msg.find("1 key unexpected: layers.2.norm.weight") != std::string::npos);
  CHECK(msg.find("shape mismatch for layers.0.attn.w_q.weight: given [4, 5], module has [4, 4]") != std::string::npos);
  CHECK(msg.find("dtype mismatch for scale: given float64, module has float32") != std::string::npos);

  // Non-strict: missing/unexpected are reported, not thrown; shapes must still agree.
  NamedTensors partial = {{"scale", full({1}, 3.0)}, {"extra", zeros({1})}};
  LoadResult r = b.load_state_dict(partial, /*strict=*/false);
  CHECK(b.scale.item() == 3.0);
  CHECK(r.unexpected_keys == std::vector<std::string>{"extra"});
  CHECK(r.missing_keys.size() == b.state_dict().size() - 1);
  CHECK_THROWS_WITH_AS(b.load_state_dict({{"scale", zeros({2})}}, false), doctest::Contains("shape mismatch for scale"),
                       EngineError);
}

TEST_CASE("nn: registration errors, modes, zero_grad and in-place dtype conversion") {
  struct Dup : Module {
    Dup() {
      register_parameter("w", zeros({1}));
      CHECK_THROWS_WITH_AS(register_buffer("w", zeros({1})), doctest::Contains("already registered"), EngineError);
      CHECK_THROWS_WITH_AS(register_parameter("a.b", zeros({1})), doctest::Contains("invalid name"), EngineError);
      CHECK_THROWS_AS(register_module("m", std::shared_ptr<Linear>()), EngineError);
    }
  } dup;

  Net net;
  net.eval();
  CHECK_FALSE(net.layers->get<Block>(1)->norm->is_training());
  net.train();
  CHECK(net.layers->get<Block>(1)->attn->w_q->is_training());

  Tensor w = net.layers->get<Block>(0)->attn->w_q->weight;  // a handle held outside the module
  sum(w).backward();
  CHECK(w.grad().defined());
  net.zero_grad();
  CHECK_FALSE(w.grad().defined());

  const auto before = w.to_vector<double>();
  net.to(DType::F64);
  CHECK(w.dtype() == DType::F64);  // same handle, converted storage
  CHECK(w.to_vector<double>() == before);
  CHECK(w.requires_grad());
  CHECK(net.layers->get<Block>(0)->count.dtype() == DType::I64);  // integer buffers untouched
  net.to(Device::cpu());
}

TEST_CASE("nn: Linear and Embedding default initialisation follow PyTorch") {
  manual_seed(7);
  Linear lin(50, 300);
  const double bound = 1.0 / std::sqrt(50.0);
  CHECK(lin.weight.shape() == Shape{300, 50});
  CHECK(max_abs(lin.weight) <= bound);
  CHECK(max_abs(lin.weight) > 0.99 * bound);  // fills the whole interval
  CHECK(max_abs(lin.bias) <= bound);
  CHECK(max_abs(lin.bias) > 0.9 * bound);
  CHECK(std::abs(mean(lin.weight).item()) < 0.01);
  // Variance of U(-b, b) is b^2 / 3.
  CHECK(var(lin.weight).item() == doctest::Approx(bound * bound / 3).epsilon(0.05));
  CHECK_FALSE(Linear(3, 2, false).bias.defined());

  Embedding emb(1000, 16);
  CHECK(std::abs(mean(emb.weight).item()) < 0.03);
  CHECK(var(emb.weight).item() == doctest::Approx(1.0).epsilon(0.05));
  Tensor ids = from_vector<int64_t>({3, 999, 0}, {3});
  Tensor e = emb(ids);
  CHECK(e.shape() == Shape{3, 16});
  CHECK(e.select(0, 1).to_vector<float>() == emb.weight.select(0, 999).to_vector<float>());

  // Same seed, same weights.
  manual_seed(7);
  Linear again(50, 300);
  CHECK(again.weight.to_vector<float>() == lin.weight.to_vector<float>());
  CHECK_THROWS_WITH_AS(Linear(0, 3), doctest::Contains("in_features must be positive"), EngineError);
  CHECK_THROWS_WITH_AS(lin(zeros({2, 49})), doctest::Contains("linear: x is [2, 49] but weight is [300, 50]"),
                       EngineError);
}

TEST_CASE("nn: init functions use PyTorch's bounds and fans") {
  Tensor conv = zeros({8, 4, 3, 3});
  auto [fan_in, fan_out] = init::fans(conv);
  CHECK(fan_in == 36);
  CHECK(fan_out == 72);
  init::xavier_uniform_(conv, 2.0);
  const double xb = 2.0 * std::sqrt(6.0 / (36 + 72));
  CHECK(max_abs(conv) <= xb);
  CHECK(max_abs(conv) > 0.95 * xb);
  Tensor w = zeros({200, 100});
  init::kaiming_uniform_(w, 0.0, init::FanMode::FanOut, "relu");
  const double kb = std::sqrt(2.0) * std::sqrt(3.0 / 200);
  CHECK(max_abs(w) <= kb);
  CHECK(max_abs(w) > 0.99 * kb);
  init::normal_(w, 2.0, 0.5);
  CHECK(mean(w).item() == doctest::Approx(2.0).epsilon(0.01));
  CHECK(std::sqrt(var(w).item()) == doctest::Approx(0.5).epsilon(0.03));
  init::ones_(w);
  CHECK(sum(w).item() == 20000.0);
  init::zeros_(w);
  CHECK(sum(w).item() == 0.0);
  CHECK(init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  Tensor vec = zeros({3});
  CHECK_THROWS_WITH_AS(init::xavier_uniform_(vec), doctest::Contains("rank >= 2"), EngineError);
  Tensor ints = zeros({3, 3}, DType::I32);
  CHECK_THROWS_WITH_AS(init::uniform_(ints, 0, 1), doctest::Contains("floating"), EngineError);
  CHECK_THROWS_AS(init::calculate_gain("swish"), EngineError);
}

TEST_CASE("nn: gradcheck through Linear (non-contiguous input) and RMSNorm") {
  Linear lin(5, 3, true, DType::F64);
  Tensor x = rand_f64({5, 4}, 11);  // used transposed: a non-contiguous [4, 5] input
  gradcheck([&](const Tensors& in) { return lin(in[0].t()); }, {x, lin.weight, lin.bias});
  RMSNorm rn(6, 1e-5, DType::F64);
  init::uniform_(rn.weight, 0.5, 1.5);
  Tensor y = rand_f64({3, 6}, 12);
  gradcheck([&](const Tensors& in) { return rn(in[0]); }, {y, rn.weight});
}

TEST_CASE("nn: gradcheck through LayerNorm and an MLP with norms") {
  LayerNorm ln(6, 1e-5, true, DType::F64);
  init::uniform_(ln.weight, 0.5, 1.5);
  init::uniform_(ln.bias, -0.5, 0.5);
  Tensor x = rand_f64({2, 3, 6}, 13);
  gradcheck([&](const Tensors& in) { return ln(in[0]); }, {x, ln.weight, ln.bias});

  MLPOptions o;
  o.activation = ActivationKind::Tanh;
  o.norm = NormKind::LayerNorm;
  o.tensor_options = DType::F64;
  MLP mlp({3, 5, 4, 2}, o);
  CHECK(names_of(mlp.named_parameters()) ==
        std::vector<std::string>{"net.0.weight", "net.0.bias", "net.1.weight", "net.1.bias", "net.3.weight",
                                 "net.3.bias", "net.4.weight", "net.4.bias", "net.6.weight", "net.6.bias"});
  Tensor z = rand_f64({4, 3}, 14);
  Tensors inputs = {z};
  for (const Tensor& p : mlp.parameters()) inputs.push_back(p);
  gradcheck([&](const Tensors& in) { return mlp(in[0]); }, inputs);
}

TEST_CASE("nn: Dropout, Sequential and activations") {
  manual_seed(3);
  Dropout d(0.5);
  Tensor x = ones({1000});
  Tensor y = d(x);
  const auto v = y.to_vector<float>();
  const auto zeros_n = std::count(v.begin(), v.end(), 0.0f);
  CHECK(zeros_n > 400);
  CHECK(zeros_n < 600);
  CHECK(std::count(v.begin(), v.end(), 2.0f) == 1000 - zeros_n);
  d.eval();
  CHECK(d(x).to_vector<float>() == x.to_vector<float>());
  CHECK_THROWS_AS(Dropout(1.0), EngineError);

  Sequential seq({std::make_shared<Activation>(ActivationKind::ReLU), std::make_shared<Activation>(parse_activation("tanh"))});
  Tensor in = from_vector<float>({-1, 0.5}, {2});
  auto out = seq(in).to_vector<float>();
  CHECK(out[0] == 0.0f);
  CHECK(out[1] == doctest::Approx(std::tanh(0.5)));
  CHECK(seq.size() == 2);
  CHECK_THROWS_WITH_AS(parse_activation("swish"), doctest::Contains("unknown activation 'swish'"), EngineError);

  MLPOptions o;
  o.dropout = 0.2;
  o.activate_last = true;
  MLP mlp({2, 3}, o);  // Linear, ReLU, Dropout
  CHECK(mlp.net->size() == 3);
  CHECK_THROWS_AS(MLP({4}), EngineError);
}
