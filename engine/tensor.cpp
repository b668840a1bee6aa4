// Tensor handle: layout queries, factories, views with their autograd rules, copies and conversions.
#include "engine/tensor.h"

#include <algorithm>
#include <numeric>

#include "engine/autograd.h"
#include "engine/backend/dispatch.h"
#include "engine/ops/reduce.h"

namespace engine {

// ---------------------------------------------------------------- basics
TensorImpl* Tensor::checked() const {
  if (!impl_) throw EngineError("tensor: operation on an undefined tensor");
  return impl_.get();
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  const auto& s = shape();
  int64_t expected = 1;
  for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
    if (s[i] != 1 && impl_->strides[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(checked()->storage->data()) + impl_->offset * dtype_size(impl_->dtype);
}

template <class T>
T* Tensor::data() const {
  DType want = dtype_of<T>();
  DType have = dtype();
  bool ok = have == want || (want == DType::U8 && have == DType::Bool);
  ENGINE_CHECK(ok, "data", "tensor holds {} but {} was requested", dtype_name(have), dtype_name(want));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;

void check_defined(const char* op, const Tensor& t, const char* arg) {
  ENGINE_CHECK(t.defined(), op, "argument {} is an undefined tensor", arg);
}
void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  ENGINE_CHECK(a.device() == b.device(), op, "tensors are on different devices ({} and {})", a.device().str(),
               b.device().str());
}
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  ENGINE_CHECK(a.dtype() == b.dtype(), op, "dtypes differ ({} and {})", dtype_name(a.dtype()), dtype_name(b.dtype()));
}

// ---------------------------------------------------------------- factories
Tensor empty(const Shape& shape, TensorOptions opt) {
  for (int64_t d : shape) ENGINE_CHECK(d >= 0, "empty", "negative size in shape {}", shape_str(shape));
  ENGINE_CHECK(shape.size() <= 16, "empty", "rank {} exceeds the engine's limit of 16", shape.size());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape) * dtype_size(opt.dtype)), opt.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opt.dtype;
  return Tensor(impl);
}

Tensor full(const Shape& shape, double value, TensorOptions opt) {
  Tensor t = empty(shape, opt);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions opt) { return full(shape, 0.0, opt); }
Tensor ones(const Shape& shape, TensorOptions opt) { return full(shape, 1.0, opt); }
Tensor scalar_tensor(double value, TensorOptions opt) { return full({}, value, opt); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.options()); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.options()); }

Tensor arange(int64_t start, int64_t end, TensorOptions opt) {
  ENGINE_CHECK(end >= start, "arange", "end {} < start {}", end, start);
  std::vector<int64_t> v(static_cast<size_t>(end - start));
  std::iota(v.begin(), v.end(), start);
  return from_vector(v, {end - start}, opt);
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opt) {
  ENGINE_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector",
               "{} values do not fill shape {}", values.size(), shape_str(shape));
  Tensor host = empty(shape, TensorOptions(dtype_of<T>()));
  std::copy(values.begin(), values.end(), host.data<T>());
  if (opt.dtype == host.dtype() && opt.device.is_cpu()) return host;
  Tensor out = empty(shape, opt);
  out.copy_(host);
  return out;
}
template Tensor from_vector(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<int32_t>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<int64_t>&, const Shape&, TensorOptions);
template Tensor from_vector(const std::vector<uint8_t>&, const Shape&, TensorOptions);

Tensor make_view(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset) {
  ENGINE_CHECK(shape.size() == strides.size(), "make_view", "shape {} and strides {} differ in rank",
               shape_str(shape), shape_str(strides));
  int64_t lo = offset, hi = offset;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) { lo = hi = offset; break; }
    int64_t span = (shape[i] - 1) * strides[i];
    (span < 0 ? lo : hi) += span;
  }
  int64_t capacity = static_cast<int64_t>(base.impl()->storage->nbytes()) / base.element_size();
  ENGINE_CHECK(lo >= 0 && (shape_numel(shape) == 0 || hi < capacity), "make_view",
               "view {} strides {} offset {} exceeds storage of {} elements", shape_str(shape), shape_str(strides),
               offset, capacity);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

// ---------------------------------------------------------------- autograd entry points
Tensor& Tensor::requires_grad_(bool on) {
  ENGINE_CHECK(is_leaf(), "requires_grad_", "only leaf tensors can change requires_grad");
  ENGINE_CHECK(!on || is_floating(dtype()), "requires_grad_", "only floating tensors can require grad, got {}",
               dtype_name(dtype()));
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  Tensor v = make_view(*this, shape(), strides(), offset());
  return v;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  run_backward({*this}, {grad}, retain_graph);
}

// ---------------------------------------------------------------- copies
Tensor& Tensor::fill_(double value) {
  ENGINE_DISPATCH(device(), fill, *this, value);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_", src, "src");
  Tensor s = src.shape() == shape() ? src : src.expand(shape());
  if (s.device() == device()) {
    ENGINE_DISPATCH(device(), copy, s, *this);
    return *this;
  }
  // Cross-device: move a dense copy of the source in its own dtype, then convert/scatter on the destination.
  Tensor dense = s.contiguous();
  if (is_contiguous() && dense.dtype() == dtype()) {
    copy_bytes(raw_data(), device(), dense.raw_data(), dense.device(), static_cast<size_t>(numel() * element_size()));
    return *this;
  }
  Tensor staged = empty(shape(), TensorOptions(dense.dtype(), device()));
  copy_bytes(staged.raw_data(), device(), dense.raw_data(), dense.device(),
             static_cast<size_t>(numel() * dense.element_size()));
  ENGINE_DISPATCH(device(), copy, staged, *this);
  return *this;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out = empty(shape(), options());
  {
    NoGradGuard ng;
    out.copy_(*this);
  }
  return record("contiguous", {*this}, out, [](const Tensors& g) { return Tensors{g[0]}; });
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), options());
  out.copy_(*this);
  return record("clone", {*this}, out, [](const Tensors& g) { return Tensors{g[0]}; });
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor out = empty(shape(), TensorOptions(dtype(), dev));
  out.copy_(*this);
  Device src_dev = device();
  return record("to_device", {*this}, out, [src_dev](const Tensors& g) { return Tensors{g[0].to(src_dev)}; });
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = empty(shape(), TensorOptions(t, device()));
  out.copy_(*this);
  if (!is_floating(t) || !is_floating(dtype())) return out;
  DType src_t = dtype();
  return record("to_dtype", {*this}, out, [src_t](const Tensors& g) { return Tensors{g[0].to(src_t)}; });
}

double Tensor::item() const {
  ENGINE_CHECK(numel() == 1, "item", "tensor of shape {} has {} elements, not 1", shape_str(shape()), numel());
  return to_vector<double>()[0];
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = empty(shape(), TensorOptions(dtype_of<T>()));
  host.copy_(detach());
  return std::vector<T>(host.data<T>(), host.data<T>() + host.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

std::string Tensor::str(int64_t max_elements) const {
  if (!defined()) return "Tensor(undefined)";
  std::vector<double> v = numel() <= max_elements ? to_vector<double>() : std::vector<double>{};
  return fmt::format("Tensor(shape={}, dtype={}, device={}{}{})", shape_str(shape()), dtype_name(dtype()),
                     device().str(), v.empty() ? "" : ", values=", v.empty() ? "" : fmt::format("[{}]", fmt::join(v, ", ")));
}

// ---------------------------------------------------------------- views
Tensor Tensor::view(const Shape& new_shape_in) const {
  Shape ns = new_shape_in;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < ns.size(); ++i) {
    if (ns[i] == -1) {
      ENGINE_CHECK(infer < 0, "reshape", "only one dim may be -1 in {}", shape_str(new_shape_in));
      infer = static_cast<int64_t>(i);
    } else {
      ENGINE_CHECK(ns[i] >= 0, "reshape", "invalid size in {}", shape_str(new_shape_in));
      known *= ns[i];
    }
  }
  if (infer >= 0) {
    ENGINE_CHECK(known != 0 && numel() % known == 0, "reshape", "cannot reshape {} into {}", shape_str(shape()),
                 shape_str(new_shape_in));
    ns[infer] = numel() / known;
  }
  ENGINE_CHECK(shape_numel(ns) == numel(), "reshape", "cannot reshape {} ({} elements) into {}", shape_str(shape()),
               numel(), shape_str(new_shape_in));
  ENGINE_CHECK(is_contiguous(), "view", "tensor of shape {} with strides {} is not contiguous; use reshape",
               shape_str(shape()), shape_str(strides()));
  Tensor out = make_view(*this, ns, contiguous_strides(ns), offset());
  Shape old = shape();
  return record("reshape", {*this}, out, [old](const Tensors& g) { return Tensors{g[0].reshape(old)}; });
}

Tensor Tensor::reshape(const Shape& new_shape) const { return contiguous().view(new_shape); }

Tensor Tensor::permute(const std::vector<int64_t>& order) const {
  ENGINE_CHECK(static_cast<int64_t>(order.size()) == dim(), "permute", "order has {} dims, tensor {} has {}",
               order.size(), shape_str(shape()), dim());
  Shape ns(order.size());
  Strides st(order.size());
  std::vector<int64_t> inverse(order.size(), -1);
  for (size_t i = 0; i < order.size(); ++i) {
    int64_t d = wrap_dim(order[i], dim(), "permute");
    ENGINE_CHECK(inverse[d] < 0, "permute", "dim {} repeated in order", d);
    inverse[d] = static_cast<int64_t>(i);
    ns[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, ns, st, offset());
  return record("permute", {*this}, out, [inverse](const Tensors& g) { return Tensors{g[0].permute(inverse)}; });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[wrap_dim(d0, dim(), "transpose")], order[wrap_dim(d1, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  ENGINE_CHECK(step > 0, "slice", "step must be positive, got {}", step);
  int64_t n = shape()[d];
  auto clampi = [n](int64_t i) { return std::clamp(i < 0 ? i + n : i, int64_t(0), n); };
  start = clampi(start);
  end = std::max(clampi(end), start);
  Shape ns = shape();
  Strides st = strides();
  ns[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, ns, st, offset() + start * strides()[d]);
  Shape in_shape = shape();
  return record("slice", {*this}, out, [in_shape, d, start, end, step](const Tensors& g) {
    Tensor gi = zeros(in_shape, g[0].options());
    gi.slice(d, start, end, step).copy_(g[0]);
    return Tensors{gi};
  });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  ENGINE_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow",
               "range [{}, {}) out of bounds for dim {} of size {} (shape {})", start, start + length, d, shape()[d],
               shape_str(shape()));
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  int64_t n = shape()[d];
  ENGINE_CHECK(index >= -n && index < n, "select", "index {} out of range for dim {} of size {}", index, d, n);
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& target) const {
  ENGINE_CHECK(target.size() >= shape().size(), "expand", "cannot expand {} to fewer dims {}", shape_str(shape()),
               shape_str(target));
  size_t lead = target.size() - shape().size();
  Shape ns(target.size());
  Strides st(target.size(), 0);
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) {
      ENGINE_CHECK(target[i] >= 0, "expand", "invalid target {}", shape_str(target));
      ns[i] = target[i];
      continue;
    }
    int64_t have = shape()[i - lead];
    int64_t want = target[i] == -1 ? have : target[i];
    ENGINE_CHECK(have == want || have == 1, "expand", "cannot expand {} to {}", shape_str(shape()), shape_str(target));
    ns[i] = want;
    st[i] = have == want ? strides()[i - lead] : 0;
  }
  if (ns == shape()) return *this;
  Tensor out = make_view(*this, ns, st, offset());
  return record("expand", {*this}, out, [](const Tensors& g) { return Tensors{g[0]}; });  // engine sums to shape
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape ns = shape();
  Strides st = strides();
  ns.erase(ns.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, ns, st, offset());
  Shape old = shape();
  return record("squeeze", {*this}, out, [old](const Tensors& g) { return Tensors{g[0].reshape(old)}; });
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape ns = shape();
  Strides st = strides();
  int64_t stride = d < dim() ? strides()[d] * shape()[d] : 1;
  ns.insert(ns.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  Tensor out = make_view(*this, ns, st, offset());
  Shape old = shape();
  return record("unsqueeze", {*this}, out, [old](const Tensors& g) { return Tensors{g[0].reshape(old)}; });
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  ENGINE_CHECK(start <= end, "flatten", "start dim {} after end dim {}", start, end);
  Shape ns(shape().begin(), shape().begin() + start);
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= shape()[i];
  ns.push_back(m);
  ns.insert(ns.end(), shape().begin() + end + 1, shape().end());
  return reshape(ns);
}

}  // namespace engine
