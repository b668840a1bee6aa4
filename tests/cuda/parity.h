// CPU-vs-CUDA parity harness. parity::check(name, inputs, f) runs f on CPU copies of the inputs and on CUDA copies,
// then compares every output and, through a scalar loss sum_k sum(out_k * R_k) with fixed random R_k, every input
// gradient. Errors are normalised (relative RMS = ||got - ref|| / ||ref||, plus the max abs error), NaN and +-Inf
// positions must agree exactly, integer and bool outputs must match exactly. CUDA inputs live in the middle of
// sentinel-filled buffers, checked untouched afterwards; the CUDA run is repeated with rank >= 2 inputs stored
// transposed (non-contiguous views). Every comparison is logged; with ENGINE_PARITY_REPORT=<path> the log is written
// as a markdown table at exit (scripts/gpu-check.sh puts it in the GPU report).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "gradcheck.h"

namespace parity {

using engine::DType;
using engine::Device;
using engine::Shape;
using engine::Strides;
using engine::Tensor;
using engine::Tensors;

// True when CUDA tests can run; otherwise prints "SKIPPED: no CUDA device" once and logs a doctest message.
inline bool cuda_ready() {
  if (engine::cuda_available()) return true;
  static const bool printed = [] {
    std::printf("SKIPPED: no CUDA device (%s); CUDA tests return early\n",
                engine::cuda_compiled() ? "CUDA backend compiled, no usable GPU/driver" : "built without CUDA");
    return true;
  }();
  (void)printed;
  MESSAGE("SKIPPED: no CUDA device");
  return false;
}
#define REQUIRE_CUDA() \
  if (!::parity::cuda_ready()) return

// ---------------------------------------------------------------- result log
struct Record {
  std::string name;
  double rel_rms;
  double max_abs;
  bool ok;
};

class Log {
 public:
  static Log& get() {
    static Log log;
    return log;
  }
  void add(Record r) {
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(std::move(r));
  }
  ~Log() {
    const char* path = std::getenv("ENGINE_PARITY_REPORT");
    if (!path || records_.empty()) return;
    std::ofstream f(path);
    f << "| check | rel. RMS error | max abs error | status |\n|---|---|---|---|\n";
    for (const Record& r : records_)
      f << "| " << r.name << " | " << fmt::format("{:.2e}", r.rel_rms) << " | " << fmt::format("{:.2e}", r.max_abs)
        << " | " << (r.ok ? "ok" : "**FAIL**") << " |\n";
  }

 private:
  std::mutex mu_;
  std::vector<Record> records_;
};

// ---------------------------------------------------------------- comparison
struct Diff {
  double rel_rms = 0, max_abs = 0;
  int64_t nan_mismatch = 0, inf_mismatch = 0, exact_mismatch = 0;
};

inline Diff diff(const Tensor& got, const Tensor& ref) {
  const auto g = got.to_vector<double>(), r = ref.to_vector<double>();
  const bool exact = !engine::is_floating(ref.dtype());
  Diff d;
  double num = 0, den = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    if (std::isnan(g[i]) || std::isnan(r[i])) {
      d.nan_mismatch += std::isnan(g[i]) != std::isnan(r[i]);
      continue;
    }
    if (std::isinf(g[i]) || std::isinf(r[i])) {
      d.inf_mismatch += g[i] != r[i];
      continue;
    }
    const double e = std::abs(g[i] - r[i]);
    if (exact && e != 0) d.exact_mismatch++;
    num += e * e;
    den += r[i] * r[i];
    d.max_abs = std::max(d.max_abs, e);
  }
  d.rel_rms = num == 0 ? 0 : std::sqrt(num / std::max(den, 1e-300));
  return d;
}

// Default tolerance on the relative RMS error: float32 allows reordered sums and fused multiply-adds.
inline double default_tol(DType t) { return t == DType::F64 ? 1e-11 : 3e-5; }

// Compares a tensor on `device` with its CPU reference; CHECKs, and logs comparisons of CUDA results. tol 0 = default
// for the dtype.
inline bool expect_match(const std::string& name, const Tensor& got, const Tensor& ref, double tol = 0,
                         Device device = Device::cuda()) {
  if (!ref.defined() || !got.defined()) {
    CHECK_MESSAGE(ref.defined() == got.defined(), name << ": defined on one device only");
    return ref.defined() == got.defined();
  }
  bool ok = got.shape() == ref.shape() && got.dtype() == ref.dtype() && got.device() == device;
  CHECK_MESSAGE(ok, name << ": got " << engine::shape_str(got.shape()) << " " << engine::dtype_name(got.dtype())
                         << " on " << got.device().str() << " vs CPU " << engine::shape_str(ref.shape()) << " "
                         << engine::dtype_name(ref.dtype()));
  if (!ok) {
    if (device.is_cuda()) Log::get().add({name, INFINITY, INFINITY, false});
    return false;
  }
  const Diff d = diff(got, ref);
  if (tol == 0) tol = default_tol(ref.dtype());
  ok = d.nan_mismatch == 0 && d.inf_mismatch == 0 && d.exact_mismatch == 0 && d.rel_rms <= tol;
  CHECK_MESSAGE(ok, name << ": rel RMS " << d.rel_rms << " (tol " << tol << "), max abs " << d.max_abs << ", NaN "
                         << d.nan_mismatch << ", Inf " << d.inf_mismatch << ", exact " << d.exact_mismatch
                         << " mismatches");
  if (device.is_cuda()) Log::get().add({name, d.rel_rms, d.max_abs, ok});
  return ok;
}

// ---------------------------------------------------------------- guarded device buffers
// Same storage reinterpreted as another dtype of the same element size (a Bool view over a U8 buffer).
inline Tensor reinterpret(const Tensor& t, DType d) {
  auto impl = std::make_shared<engine::TensorImpl>();
  impl->storage = t.impl()->storage;
  impl->shape = t.shape();
  impl->strides = t.strides();
  impl->offset = t.offset();
  impl->dtype = d;
  return Tensor(impl);
}

inline double sentinel(DType t) { return t == DType::U8 || t == DType::Bool ? 165.0 : -12345.5; }

// A view placed in the middle of a 1-D buffer filled with a sentinel; `snapshot` is the buffer's content after set-up.
struct Guarded {
  Tensor buffer;  // [pad + span + pad] (U8 for Bool views)
  Tensor view;
  std::vector<double> snapshot;
};

// Dense row-major layout when !transposed; otherwise stored with the dims reversed (a permuted, non-contiguous view).
inline Guarded guarded(const Shape& shape, DType dtype, Device dev, bool transposed = false, int64_t pad = 67) {
  const int64_t n = engine::shape_numel(shape), rank = static_cast<int64_t>(shape.size());
  Strides st(shape.size(), 1);
  int64_t acc = 1;
  for (int64_t k = 0; k < rank; ++k) {
    const int64_t d = transposed ? k : rank - 1 - k;  // innermost storage dim first
    st[d] = acc;
    acc *= std::max<int64_t>(shape[d], 1);
  }
  const DType store = dtype == DType::Bool ? DType::U8 : dtype;
  Guarded g;
  g.buffer = engine::full({n + 2 * pad}, sentinel(store), engine::TensorOptions(store, dev));
  Tensor v = engine::make_view(g.buffer, shape, st, pad);
  g.view = dtype == DType::Bool ? reinterpret(v, DType::Bool) : v;
  return g;
}

inline void take_snapshot(Guarded& g) { g.snapshot = g.buffer.to_vector<double>(); }

// Storage positions (relative to the buffer) covered by a view.
inline std::vector<bool> covered(const Guarded& g) {
  std::vector<bool> mask(static_cast<size_t>(g.buffer.numel()), false);
  const Shape& s = g.view.shape();
  const int64_t n = g.view.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = g.view.offset();
    for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
      off += (rem % s[d]) * g.view.strides()[d];
      rem /= s[d];
    }
    mask[static_cast<size_t>(off)] = true;
  }
  return mask;
}

// Number of buffer elements outside the view (everywhere when whole) that differ from the snapshot.
inline int64_t overwritten(const Guarded& g, bool whole = false) {
  const auto now = g.buffer.to_vector<double>();
  const auto mask = covered(g);
  int64_t bad = 0;
  for (size_t i = 0; i < now.size(); ++i) {
    if (!whole && mask[i]) continue;
    const bool same = now[i] == g.snapshot[i] || (std::isnan(now[i]) && std::isnan(g.snapshot[i]));
    bad += !same;
  }
  return bad;
}

// CHECKs that no element outside the view changed (and, when whole, that nothing changed at all).
inline bool guards_intact(const std::string& name, const Guarded& g, bool whole = false) {
  const int64_t bad = overwritten(g, whole);
  CHECK_MESSAGE(bad == 0, name << ": " << bad << (whole ? " input elements or guard elements" : " guard elements")
                               << " were overwritten");
  return bad == 0;
}

// A guarded device copy of a CPU tensor (optionally stored transposed), a fresh leaf.
inline Guarded guarded_copy(const Tensor& cpu, Device dev, bool transposed) {
  Guarded g = guarded(cpu.shape(), cpu.dtype(), dev, transposed);
  {
    engine::NoGradGuard ng;
    g.view.copy_(cpu.detach());
  }
  take_snapshot(g);
  return g;
}

// ---------------------------------------------------------------- the harness
using Body = std::function<Tensors(const Tensors&)>;

struct Options {
  double tol = 0;       // relative RMS tolerance for outputs (0: dtype default)
  double grad_tol = 0;  // for gradients (0: same as tol)
  bool grads = true;    // also compare input gradients of floating inputs
  Device device = Device::cuda();  // the device compared with the CPU (the CPU itself in the harness self-test)
};

struct Run {
  Tensors outputs;
  Tensors grads;
};

// Upstream weights for output k: fixed random values in the output's dtype (none for non-floating outputs).
inline Tensor upstream(const Tensor& out, size_t k, Device dev) {
  return testing::rand_f64(out.shape(), 9000 + k, -1.0, 1.0, false).to(out.dtype()).to(dev);
}

inline Run run_on(const Body& f, const Tensors& leaves, bool grads, Device dev) {
  Run r;
  r.outputs = f(leaves);
  if (!grads) return r;
  Tensor loss;
  for (size_t k = 0; k < r.outputs.size(); ++k) {
    const Tensor& o = r.outputs[k];
    if (!o.defined() || !o.requires_grad()) continue;
    Tensor term = engine::sum(engine::mul(o, upstream(o, k, dev))).to(DType::F64);
    loss = loss.defined() ? engine::add(loss, term) : term;
  }
  if (loss.defined()) loss.backward();
  for (const Tensor& x : leaves) r.grads.push_back(x.requires_grad() ? x.grad() : Tensor());
  return r;
}

inline Tensors cpu_leaves(const Tensors& inputs, bool grads) {
  Tensors leaves;
  for (const Tensor& x : inputs) {
    Tensor l = x.detach().clone();
    if (grads && engine::is_floating(l.dtype())) l.requires_grad_();
    leaves.push_back(l);
  }
  return leaves;
}

// Runs `f` on the CPU and on opt.device and compares outputs and input gradients. Inputs are CPU tensors.
inline void check(const std::string& name, const Tensors& inputs, const Body& f, Options opt = {}) {
  const Run ref = run_on(f, cpu_leaves(inputs, opt.grads), opt.grads, Device::cpu());
  bool any_rank2 = false;
  for (const Tensor& x : inputs) any_rank2 = any_rank2 || x.dim() >= 2;
  for (bool transposed : {false, true}) {
    if (transposed && !any_rank2) break;
    const std::string tag = name + (transposed ? " [transposed inputs]" : "");
    std::vector<Guarded> gs;
    Tensors leaves;
    for (const Tensor& x : inputs) {
      gs.push_back(guarded_copy(x, opt.device, transposed));
      Tensor l = gs.back().view;
      if (opt.grads && engine::is_floating(l.dtype())) l.requires_grad_();
      leaves.push_back(l);
    }
    Run got;
    try {
      got = run_on(f, leaves, opt.grads, opt.device);
    } catch (const std::exception& e) {
      FAIL_CHECK(tag << ": threw on " << opt.device.str() << ": " << e.what());
      if (opt.device.is_cuda()) Log::get().add({tag + " (threw)", INFINITY, INFINITY, false});
      continue;
    }
    REQUIRE_MESSAGE(got.outputs.size() == ref.outputs.size(), tag << ": output counts differ");
    for (size_t k = 0; k < ref.outputs.size(); ++k)
      expect_match(fmt::format("{} out{}", tag, k), got.outputs[k], ref.outputs[k], opt.tol, opt.device);
    for (size_t k = 0; k < ref.grads.size(); ++k)
      if (ref.grads[k].defined() || got.grads[k].defined())
        expect_match(fmt::format("{} grad{}", tag, k), got.grads[k], ref.grads[k],
                     opt.grad_tol ? opt.grad_tol : opt.tol, opt.device);
    for (size_t k = 0; k < gs.size(); ++k) guards_intact(fmt::format("{} input{}", tag, k), gs[k], /*whole=*/true);
  }
}

// Module output and gradients (input, then every parameter) on the CPU and on CUDA.
inline void module_parity(const std::string& name, engine::nn::Module& m, const std::function<Tensor(const Tensor&)>& f,
                          const Tensor& u_cpu, double tol) {
  Tensor R = testing::rand_f64(f(u_cpu).shape(), 77, -1, 1, false).to(u_cpu.dtype());
  m.zero_grad();
  Tensor u1 = u_cpu.detach().clone().requires_grad_();
  Tensor out_cpu = f(u1);
  engine::sum(out_cpu * R).backward();
  std::vector<Tensor> gcpu;
  for (const Tensor& p : m.parameters()) gcpu.push_back(p.grad().defined() ? p.grad().clone() : Tensor());
  m.zero_grad();
  m.to(Device::cuda());
  Tensor u2 = u_cpu.detach().to(Device::cuda()).requires_grad_();
  Tensor out_gpu = f(u2);
  engine::sum(out_gpu * R.to(Device::cuda())).backward();
  expect_match(name + " out", out_gpu, out_cpu.detach(), tol);
  expect_match(name + " grad u", u2.grad(), u1.grad(), tol);
  auto params = m.named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& g = params[i].second.grad();
    CHECK_MESSAGE(g.defined() == gcpu[i].defined(), name << " grad " << params[i].first << ": defined on one device only");
    if (g.defined() && gcpu[i].defined()) expect_match(name + " grad " + params[i].first, g, gcpu[i], tol);
  }
  m.to(Device::cpu());
}

}  // namespace parity
