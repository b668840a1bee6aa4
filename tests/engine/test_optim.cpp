// Optimizers and LR schedules: SGD/Adam/AdamW against hand-computed steps and an independent scalar reference,
// fused kernels on awkward shapes, gradient clipping, schedule sequences with PyTorch's values, state round trips,
// and an end-to-end MLP fit of sin(3x).
#include <algorithm>
#include <chrono>
#include <cmath>

#include "gradcheck.h"

using namespace engine;
using namespace engine::optim;

namespace {

// Independent scalar implementation of PyTorch's update rules (torch/optim/{sgd,adam,adamw}.py, for-loop path).
struct RefState {
  double buf = 0, m = 0, v = 0;
  int64_t step = 0;
};

double ref_sgd(double p, double g, RefState& s, double lr, SGDOptions o) {
  double d = g + o.weight_decay * p;
  if (o.momentum != 0) {
    s.buf = s.step == 0 ? d : o.momentum * s.buf + (1 - o.dampening) * d;
    d = o.nesterov ? d + o.momentum * s.buf : s.buf;
  }
  ++s.step;
  return p - lr * d;
}

double ref_adam(double p, double g, RefState& s, double lr, AdamOptions o, bool adamw) {
  ++s.step;
  if (adamw) p *= 1 - lr * o.weight_decay;
  else g += o.weight_decay * p;
  s.m = o.beta1 * s.m + (1 - o.beta1) * g;
  s.v = o.beta2 * s.v + (1 - o.beta2) * g * g;
  const double mhat = s.m / (1 - std::pow(o.beta1, s.step));
  const double vhat = s.v / (1 - std::pow(o.beta2, s.step));
  return p - lr * mhat / (std::sqrt(vhat) + o.eps);
}

// loss = sum(p^4 / 4 - c p): gradient p^3 - c, a gradient that changes with p.
void backward_quartic(const Tensor& p, const std::vector<double>& c) {
  Tensor ct = from_vector(c, {static_cast<int64_t>(c.size())}).to(p.dtype());
  sum(sub(div(pow(p, 4.0), 4.0), mul(ct, p))).backward();
}

// Runs `steps` optimizer steps on the quartic loss and the scalar reference from the same start; returns the worst
// absolute difference.
template <class MakeOpt, class RefStep>
double compare_with_reference(MakeOpt make_opt, RefStep ref_step, int steps = 3) {
  const std::vector<double> p0 = {0.5, -1.2, 2.0, 0.0}, c = {1.0, -0.5, 0.3, 2.0};
  Tensor p = from_vector(p0, {4}).requires_grad_();
  auto opt = make_opt(NamedTensors{{"p", p}});
  std::vector<double> ref = p0;
  std::vector<RefState> st(4);
  for (int s = 0; s < steps; ++s) {
    opt->zero_grad();
    backward_quartic(p, c);
    opt->step();
    for (size_t i = 0; i < 4; ++i) ref[i] = ref_step(ref[i], ref[i] * ref[i] * ref[i] - c[i], st[i]);
  }
  double worst = 0;
  auto got = p.to_vector<double>();
  for (size_t i = 0; i < 4; ++i) worst = std::max(worst, std::abs(got[i] - ref[i]));
  return worst;
}

std::vector<double> run_constant_grad(Optimizer& opt, Tensor p, double g, int steps) {
  std::vector<double> out;
  for (int s = 0; s < steps; ++s) {
    p.set_grad(full(p.shape(), g, p.options()));
    opt.step();
    out.push_back(p.item());
  }
  return out;
}

void check_seq(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(std::abs(got[i] - want[i]) <= tol, "step " << i << ": " << got[i] << " vs " << want[i]);
}

}  // namespace

TEST_CASE("optim: SGD hand-computed steps (plain, momentum, nesterov)") {
  Tensor p = full({1}, 1.0, DType::F64).requires_grad_();
  SGD plain({{"p", p}}, 0.1);
  std::vector<double> seq;
  for (int s = 0; s < 3; ++s) {  // loss = p^2 / 2: p <- 0.9 p
    plain.zero_grad();
    mul(square(p), 0.5).backward();
    plain.step();
    seq.push_back(p.item());
  }
  check_seq(seq, {0.9, 0.81, 0.729});

  Tensor q = zeros({1}, DType::F64).requires_grad_();
  SGD mom({{"q", q}}, 0.1, {.momentum = 0.9});
  check_seq(run_constant_grad(mom, q, 1.0, 3), {-0.1, -0.29, -0.561});
  Tensor r = zeros({1}, DType::F64).requires_grad_();
  SGD nes({{"r", r}}, 0.1, {.momentum = 0.9, .nesterov = true});
  check_seq(run_constant_grad(nes, r, 1.0, 3), {-0.19, -0.461, -0.8049});
  CHECK_THROWS_WITH_AS(SGD({{"r", r}}, 0.1, {.nesterov = true}), doctest::Contains("nesterov needs momentum"),
                       EngineError);
}

TEST_CASE("optim: Adam and AdamW hand-computed steps") {
  // Constant gradient g: bias-corrected moments are exactly g and g^2, so each step moves lr * g / (|g| + eps).
  Tensor p = zeros({1}, DType::F64).requires_grad_();
  Adam adam({{"p", p}}, 0.1);
  const double s = 0.1 * 2.0 / (2.0 + 1e-8);
  check_seq(run_constant_grad(adam, p, 2.0, 3), {-s, -2 * s, -3 * s}, 1e-15);
  // AdamW: decay p by (1 - lr wd) first: 1 -> 0.99 - s -> ..., i.e. 0.89, 0.7811, 0.673289 up to eps terms.
  Tensor w = ones({1}, DType::F64).requires_grad_();
  AdamW adamw({{"w", w}}, 0.1, {.weight_decay = 0.1});
  const double p1 = 0.99 - s, p2 = p1 * 0.99 - s, p3 = p2 * 0.99 - s;
  check_seq(run_constant_grad(adamw, w, 2.0, 3), {p1, p2, p3}, 1e-15);
  CHECK(p3 == doctest::Approx(0.673289).epsilon(1e-8));
  CHECK(adamw.kind() == "AdamW");
  CHECK(adam.step_count(0) == 3);
}

TEST_CASE("optim: SGD/Adam/AdamW match the scalar reference on a nonlinear loss") {
  for (SGDOptions o : {SGDOptions{}, SGDOptions{.momentum = 0.9, .dampening = 0.3, .weight_decay = 0.01},
                       SGDOptions{.momentum = 0.8, .weight_decay = 0.1, .nesterov = true}}) {
    double err = compare_with_reference([&](NamedTensors ps) { return std::make_unique<SGD>(ps, 0.05, o); },
                                        [&](double x, double g, RefState& st) { return ref_sgd(x, g, st, 0.05, o); });
    CHECK(err < 1e-14);
  }
  for (bool adamw : {false, true}) {
    AdamOptions o{.beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.05};
    auto make = [&](NamedTensors ps) -> std::unique_ptr<Optimizer> {
      if (adamw) return std::make_unique<AdamW>(ps, 0.02, o);
      return std::make_unique<Adam>(ps, 0.02, o);
    };
    double err = compare_with_reference(
        make, [&](double x, double g, RefState& st) { return ref_adam(x, g, st, 0.02, o, adamw); }, 5);
    CHECK(err < 1e-14);
  }
}

TEST_CASE("optim: fused float32 kernels on awkward shapes and layouts") {
  AdamOptions ao{.weight_decay = 0.01};
  for (Shape shape : {Shape{1}, Shape{0}, Shape{}, Shape{7, 3}, Shape{100003}}) {
    for (bool transposed : {false, true}) {
      if (transposed && shape.size() != 2) continue;
      Tensor base = testing::rand_f32(shape, 21);
      Tensor p = transposed ? base.t() : base;  // a non-contiguous leaf
      p.requires_grad_();
      Tensor g = testing::rand_f32(transposed ? Shape{shape[1], shape[0]} : shape, 22);
      Tensor g_view = transposed ? testing::rand_f32(shape, 22).t() : g;  // grad with its own layout
      auto p0 = p.to_vector<double>();
      auto gv = g_view.to_vector<double>();
      AdamW opt({{"p", p}}, 0.01, ao);
      SGD sgd({{"p", p}}, 0.1, {.momentum = 0.9, .nesterov = true});
      std::vector<double> ref = p0;
      std::vector<RefState> st(ref.size()), st2(ref.size());
      for (int s = 0; s < 2; ++s) {
        p.set_grad(g_view);
        opt.step();
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = ref_adam(ref[i], gv[i], st[i], 0.01, ao, true);
        sgd.step();
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = ref_sgd(ref[i], gv[i], st2[i], 0.1, {.momentum = 0.9, .nesterov = true});
      }
      CHECK_CLOSE(p, from_vector(ref, p.shape()).to(DType::F32), 1e-5, 1e-5);
    }
  }
}

TEST_CASE("optim: parameters without gradient are skipped; bad gradients are rejected") {
  Tensor a = ones({2}, DType::F64).requires_grad_(), b = ones({2}, DType::F64).requires_grad_();
  Adam opt({{"a", a}, {"b", b}}, 0.1);
  a.set_grad(ones({2}, DType::F64));
  opt.step();
  CHECK(opt.step_count(0) == 1);
  CHECK(opt.step_count(1) == 0);
  CHECK(b.to_vector<double>() == std::vector<double>{1, 1});
  CHECK(opt.state_dict().tensors.size() == 3);  // a.step, a.exp_avg, a.exp_avg_sq
  b.set_grad(ones({3}, DType::F64));
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("gradient of 'b' is [3] float64 on cpu but the parameter is [2]"),
                       EngineError);
  CHECK_THROWS_WITH_AS(Adam({{"a", a}, {"a", b}}), doctest::Contains("appears twice"), EngineError);
  CHECK_THROWS_AS(Adam(NamedTensors{}), EngineError);
  CHECK_THROWS_WITH_AS(Adam({{"a", a}}, 0.1, {.beta1 = 1.0}), doctest::Contains("betas (1, 0.999)"), EngineError);
}

TEST_CASE("optim: clip_grad_norm_ scales to the global L2 norm") {
  Tensor a = zeros({1}, DType::F64).requires_grad_(), b = zeros({1}, DType::F32).requires_grad_();
  Tensor c = zeros({2}).requires_grad_();  // no gradient: ignored
  a.set_grad(full({1}, 3.0, DType::F64));
  b.set_grad(full({1}, 4.0, DType::F32));
  CHECK(clip_grad_norm_({a, b, c}, 10.0) == doctest::Approx(5.0));
  CHECK(a.grad().item() == 3.0);  // under the limit: untouched
  CHECK(clip_grad_norm_({a, b, c}, 1.0) == doctest::Approx(5.0));
  CHECK(a.grad().item() == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(b.grad().item() == doctest::Approx(0.8).epsilon(1e-6));
  CHECK(clip_grad_norm_({c}, 1.0) == 0.0);
}

TEST_CASE("optim: StepLR and CosineAnnealingLR sequences (PyTorch values)") {
  Tensor p = zeros({1}).requires_grad_();
  SGD opt({{"p", p}}, 1.0);
  StepLR step(opt, 3, 0.1);
  std::vector<double> got = {opt.lr()};
  for (int i = 0; i < 7; ++i) {
    step.step();
    got.push_back(opt.lr());
  }
  check_seq(got, {1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01}, 1e-15);

  SGD opt2({{"p", p}}, 0.1);
  CosineAnnealingLR cos(opt2, 10, 0.0);
  got = {opt2.lr()};
  for (int i = 0; i < 10; ++i) {
    cos.step();
    got.push_back(opt2.lr());
  }
  // torch.optim.lr_scheduler.CosineAnnealingLR(SGD(lr=0.1), T_max=10) printed lrs.
  CHECK(got[1] == doctest::Approx(0.09755282581475769).epsilon(1e-12));
  CHECK(got[2] == doctest::Approx(0.09045084971874737).epsilon(1e-12));
  CHECK(got[5] == doctest::Approx(0.05).epsilon(1e-12));
  CHECK(got[9] == doctest::Approx(0.0024471741852423235).epsilon(1e-10));
  CHECK(std::abs(got[10]) < 1e-15);
  for (int t = 0; t <= 10; ++t) CHECK(got[t] == doctest::Approx(0.05 * (1 + std::cos(M_PI * t / 10))));
  CHECK_THROWS_AS(CosineAnnealingLR(opt2, 0), EngineError);
}

TEST_CASE("optim: LinearWarmup wraps another schedule") {
  Tensor p = zeros({1}).requires_grad_();
  SGD opt({{"p", p}}, 2.0);
  auto after = std::make_unique<CosineAnnealingLR>(opt, 4, 0.5);
  LinearWarmup warm(opt, 4, 0.25, std::move(after));
  CHECK(warm.kind() == "LinearWarmup+CosineAnnealingLR");
  std::vector<double> got = {opt.lr()};
  for (int i = 0; i < 9; ++i) {
    warm.step();
    got.push_back(opt.lr());
  }
  auto cosv = [](int t) { return 0.5 + 1.5 * (1 + std::cos(M_PI * t / 4)) / 2; };
  check_seq(got, {0.5, 0.875, 1.25, 1.625, cosv(0), cosv(1), cosv(2), cosv(3), cosv(4), cosv(5)}, 1e-14);
  SGD opt2({{"p", p}}, 1.0);
  LinearWarmup plain(opt2, 2, 0.0);
  CHECK(opt2.lr() == 0.0);
  plain.step();
  CHECK(opt2.lr() == 0.5);
  plain.step();
  plain.step();
  CHECK(opt2.lr() == 1.0);
}

TEST_CASE("optim: ReduceLROnPlateau (patience, cooldown, min_lr, modes)") {
  Tensor p = zeros({1}).requires_grad_();
  SGD opt({{"p", p}}, 1.0);
  ReduceLROnPlateau sched(opt, {.factor = 0.5, .patience = 2, .threshold = 0.0, .cooldown = 1});
  std::vector<double> got;
  for (double m : {10, 10, 10, 10, 10, 10, 10, 10, 5}) {
    sched.step(m);
    got.push_back(opt.lr());
  }
  check_seq(got, {1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25});
  CHECK(sched.best() == 5.0);

  SGD opt2({{"p", p}}, 1.0);
  ReduceLROnPlateau maxm(opt2, {.mode = PlateauOptions::Mode::Max, .factor = 0.5, .patience = 0, .threshold = 0.1,
                                .min_lr = 0.3});
  got.clear();
  for (double m : {10.0, 10.5, 11.5, 12.0, 12.0}) {  // 10.5 < 10 * 1.1: bad; 11.5 > 11: good; 12 < 12.65: bad
    maxm.step(m);
    got.push_back(opt2.lr());
  }
  check_seq(got, {1, 0.5, 0.5, 0.3, 0.3});

  // Absolute threshold in min mode: improvements below 1 count as bad epochs.
  SGD opt3({{"p", p}}, 1.0);
  ReduceLROnPlateau absm(opt3, {.factor = 0.1, .patience = 1, .threshold = 1.0, .relative_threshold = false});
  for (double m : {5.0, 4.5, 4.2}) absm.step(m);
  CHECK(opt3.lr() == doctest::Approx(0.1));
  CHECK_THROWS_AS(ReduceLROnPlateau(opt3, {.factor = 1.5}), EngineError);
}

TEST_CASE("optim: optimizer and scheduler state round trips") {
  const std::vector<double> c = {0.3, -0.7};
  auto make_param = [] { return from_vector<double>({0.2, 0.9}, {2}).requires_grad_(); };
  Tensor p = make_param();
  AdamW opt({{"p", p}}, 0.05);
  CosineAnnealingLR sched(opt, 20);
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    backward_quartic(p, c);
    opt.step();
    sched.step();
  }
  StateDict sd = opt.state_dict();
  io::Metadata ss = sched.state_dict();

  Tensor q = make_param();
  AdamW opt2({{"p", q}}, 0.05);
  CosineAnnealingLR sched2(opt2, 20);
  q.detach().copy_(p);  // same weights, as a model load would give
  opt2.load_state_dict(sd);
  sched2.load_state_dict(ss);
  CHECK(opt2.lr() == opt.lr());
  CHECK(sched2.last_step() == 3);
  for (auto* o : {static_cast<Optimizer*>(&opt), static_cast<Optimizer*>(&opt2)}) {
    const Tensor& x = o->params()[0].second;
    o->zero_grad();
    backward_quartic(x, c);
    o->step();
  }
  sched.step();
  sched2.step();
  CHECK(q.to_vector<double>() == p.to_vector<double>());
  CHECK(opt2.lr() == opt.lr());

  SGD sgd({{"p", q}}, 0.1);
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(sd), doctest::Contains("state is from optimizer 'AdamW', not 'SGD'"),
                       EngineError);
  StateDict bad = sd;
  bad.tensors.emplace_back("p.momentum", zeros({2}, DType::F64));
  for (auto& [name, t] : bad.tensors)
    if (name == "p.exp_avg") t = zeros({3}, DType::F64);
  CHECK_THROWS_WITH_AS(opt2.load_state_dict(bad),
                       doctest::Contains("p.exp_avg is [3] float64 but the parameter is [2] float64; unexpected entry "
                                         "p.momentum"),
                       EngineError);
  StepLR other(opt2, 5);
  CHECK_THROWS_WITH_AS(other.load_state_dict(ss), doctest::Contains("'CosineAnnealingLR', not 'StepLR'"), EngineError);
}

TEST_CASE("optim: a small MLP fits sin(3x) with Adam") {
  manual_seed(1);
  const int threads = get_num_threads();
  set_num_threads(1);  // tiny matrices: threads only add synchronisation (and CI cores are shared)
  const int64_t n = 256;
  std::vector<float> xs(n), ys(n);
  for (int64_t i = 0; i < n; ++i) {
    xs[i] = -1.0f + 2.0f * static_cast<float>(i) / (n - 1);
    ys[i] = std::sin(3.0f * xs[i]);
  }
  Tensor x = from_vector(xs, {n, 1}), y = from_vector(ys, {n, 1});  // [n, 1]
  nn::MLP mlp({1, 64, 64, 1}, {.activation = nn::ActivationKind::Tanh});
  Adam opt(mlp.named_parameters(), 1e-2);
  CosineAnnealingLR sched(opt, 600, 1e-4);
  const auto t0 = std::chrono::steady_clock::now();
  double loss_v = 0;
  for (int it = 0; it < 600; ++it) {
    opt.zero_grad();
    Tensor loss = mean(square(mlp(x) - y));
    loss.backward();
    opt.step();
    sched.step();
    loss_v = loss.item();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  set_num_threads(threads);
  MESSAGE("sin(3x) fit: final MSE " << loss_v << " in " << secs << " s");
  CHECK(loss_v < 1e-3);
  CHECK(secs < 10.0);
}
