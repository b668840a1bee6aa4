// Public matrix products: shape checks, batch broadcasting, folding of batch dims into rows, autograd rules.
#include "engine/ops/linalg.h"

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/profile.h"

namespace engine {

namespace {

// Collapses the leading (batch) dims of a rank>=2 view into one dim without copying when the strides allow it.
Tensor as_batched3(const Tensor& t) {
  const int64_t r = t.dim();
  Shape s = {1, t.size(-2), t.size(-1)};
  Strides st = {0, t.strides()[r - 2], t.strides()[r - 1]};
  int64_t batch = 1;
  for (int64_t i = 0; i < r - 2; ++i) batch *= t.shape()[i];
  s[0] = batch;
  bool ok = true;
  int64_t stride = -1;
  for (int64_t i = r - 3; i >= 0; --i) {  // innermost batch dim first
    if (t.shape()[i] == 1) continue;
    if (stride < 0) {
      stride = t.strides()[i];
    } else {
      int64_t inner = 1;
      for (int64_t j = i + 1; j < r - 2; ++j) inner *= t.shape()[j];
      if (t.strides()[i] != stride * inner) ok = false;
    }
  }
  if (!ok) return as_batched3(t.contiguous());
  st[0] = stride < 0 ? 0 : stride;
  return make_view(t, s, st, t.offset());
}

Tensor matmul_forward(const Tensor& a, const Tensor& b) {
  const char* op = "matmul";
  ENGINE_CHECK(a.dim() >= 2 && b.dim() >= 2, op, "expects rank >= 2 after promotion, got {} and {}",
               shape_str(a.shape()), shape_str(b.shape()));
  ENGINE_CHECK(a.size(-1) == b.size(-2), op, "a is {} but b is {} (inner dims {} and {} differ)", shape_str(a.shape()),
               shape_str(b.shape()), a.size(-1), b.size(-2));
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ab, bb, op);
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  profile::add_flops(2 * shape_numel(batch) * M * N * K);
  NoGradGuard ng;
  // A 2-D right operand against a dense batched left operand: one GEMM with the batch folded into rows.
  if (b.dim() == 2 && a.dim() > 2 && a.is_contiguous()) {
    Tensor out = empty(out_shape, a.options());
    Tensor a2 = make_view(a, {1, shape_numel(batch) * M, K}, {0, K, 1}, a.offset());
    Tensor o2 = make_view(out, {1, shape_numel(batch) * M, N}, {0, N, 1}, 0);
    ENGINE_DISPATCH(a.device(), matmul, a2, as_batched3(b), o2);
    return out;
  }
  Shape ash = batch, bsh = batch;
  ash.insert(ash.end(), {M, K});
  bsh.insert(bsh.end(), {K, N});
  Tensor out = empty(out_shape, a.options());
  Tensor a3 = as_batched3(a.expand(ash)), b3 = as_batched3(b.expand(bsh));
  Tensor o3 = make_view(out, {shape_numel(batch), M, N}, {M * N, N, 1}, 0);
  ENGINE_DISPATCH(a.device(), matmul, a3, b3, o3);
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  check_defined("matmul", a_in, "a");
  check_defined("matmul", b_in, "b");
  check_same_device("matmul", a_in, b_in);
  check_same_dtype("matmul", a_in, b_in);
  ENGINE_CHECK(is_floating(a_in.dtype()), "matmul", "expects floating tensors, got {}", dtype_name(a_in.dtype()));
  ENGINE_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul", "scalars are not matrices ({} and {})",
               shape_str(a_in.shape()), shape_str(b_in.shape()));
  if (a_in.dim() == 1 && b_in.dim() == 1) return matmul(a_in.unsqueeze(0), b_in.unsqueeze(-1)).reshape({});
  if (a_in.dim() == 1) return matmul(a_in.unsqueeze(0), b_in).squeeze(-2);
  if (b_in.dim() == 1) return matmul(a_in, b_in.unsqueeze(-1)).squeeze(-1);
  Tensor out = matmul_forward(a_in, b_in);
  return record("matmul", {a_in, b_in}, out, [a_in, b_in](const Tensors& g) {
    Tensor a = a_in.detach(), b = b_in.detach();
    Tensor ga = a_in.requires_grad() ? matmul(g[0], b.transpose(-1, -2)) : Tensor();
    Tensor gb;
    if (b_in.requires_grad()) {
      if (b.dim() == 2 && a.dim() > 2) {
        Tensor a2 = a.reshape({-1, a.size(-1)}), g2 = g[0].reshape({-1, g[0].size(-1)});
        gb = matmul(a2.t(), g2);
      } else {
        gb = matmul(a.transpose(-1, -2), g[0]);
      }
    }
    return Tensors{ga, gb};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_defined("linear", x, "x");
  check_defined("linear", weight, "weight");
  ENGINE_CHECK(weight.dim() == 2, "linear", "weight must be [out, in], got {}", shape_str(weight.shape()));
  ENGINE_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear", "x is {} but weight is {} (in features differ)",
               shape_str(x.shape()), shape_str(weight.shape()));
  Tensor y = matmul(x, weight.t());
  if (!bias.defined()) return y;
  ENGINE_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear", "bias is {} but weight is {}",
               shape_str(bias.shape()), shape_str(weight.shape()));
  return add(y, bias);
}

}  // namespace engine
