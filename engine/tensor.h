// Tensor: a refcounted handle over shared storage with a layout (shape, strides, offset), a dtype, a device and an
// optional autograd edge. Views (reshape, permute, slice, narrow, expand, ...) share storage and change only the
// layout; contiguous() copies only when the layout is not already row-major dense.
#pragma once
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/shape.h"
#include "engine/storage.h"

namespace engine {

class Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;
  // autograd
  bool requires_grad = false;       // set on leaves by the user, on outputs by record()
  std::shared_ptr<Node> grad_fn;    // producer node (null for leaves and for tensors made under no_grad)
  int output_nr = 0;                // which output of grad_fn this is
  std::shared_ptr<TensorImpl> grad; // accumulated gradient (leaves only)
};

struct TensorOptions {
  DType dtype = DType::F32;
  Device device = Device::cpu();
  TensorOptions() = default;
  TensorOptions(DType t) : dtype(t) {}                       // NOLINT: implicit on purpose
  TensorOptions(DType t, Device d) : dtype(t), device(d) {}
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return static_cast<bool>(impl_); }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // ---- layout ----
  const Shape& shape() const { return checked()->shape; }
  const Strides& strides() const { return impl_->strides; }
  int64_t offset() const { return impl_->offset; }
  int64_t dim() const { return static_cast<int64_t>(checked()->shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(checked()->shape); }
  DType dtype() const { return checked()->dtype; }
  Device device() const { return checked()->storage->device(); }
  TensorOptions options() const { return {dtype(), device()}; }
  bool is_contiguous() const;
  int64_t element_size() const { return dtype_size(dtype()); }

  // Typed pointer to the first element (offset applied). Checks the dtype; CPU or device pointer alike.
  template <class T> T* data() const;
  void* raw_data() const;

  // ---- conversions and copies ----
  Tensor contiguous() const;          // self when already contiguous
  Tensor clone() const;               // always a fresh contiguous copy (differentiable)
  Tensor to(Device device) const;     // differentiable
  Tensor to(DType dtype) const;       // differentiable between float types
  double item() const;                // single-element tensors only
  template <class T> std::vector<T> to_vector() const;  // contiguous copy on the host, converted to T
  std::string str(int64_t max_elements = 64) const;

  // ---- views (share storage; differentiable) ----
  Tensor reshape(const Shape& shape) const;  // one dim may be -1; copies when the layout forbids a view
  Tensor view(const Shape& shape) const;     // like reshape but never copies (throws instead)
  Tensor permute(const std::vector<int64_t>& order) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // python-like clamped bounds
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;              // exact bounds, checked
  Tensor select(int64_t dim, int64_t index) const;                              // removes dim
  Tensor expand(const Shape& shape) const;                                      // -1 keeps a size
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;

  // ---- autograd ----
  bool requires_grad() const { return checked()->requires_grad; }
  Tensor& requires_grad_(bool on = true);  // leaves only
  bool is_leaf() const { return !checked()->grad_fn; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  Tensor grad() const { return Tensor(checked()->grad); }
  void set_grad(const Tensor& g) { checked()->grad = g.impl_; }
  void zero_grad() { checked()->grad.reset(); }
  // Back-propagates from this tensor. grad defaults to ones for a single-element tensor.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // same storage and layout, no autograd history

  // ---- in-place (not recorded by autograd; for initialisation, optimizers and buffers) ----
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);  // broadcasts src to self's shape; converts dtype; any devices

 private:
  TensorImpl* checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

// ---- factories ----
Tensor empty(const Shape& shape, TensorOptions opt = {});
Tensor zeros(const Shape& shape, TensorOptions opt = {});
Tensor ones(const Shape& shape, TensorOptions opt = {});
Tensor full(const Shape& shape, double value, TensorOptions opt = {});
Tensor scalar_tensor(double value, TensorOptions opt = {});  // rank-0
Tensor arange(int64_t start, int64_t end, TensorOptions opt = {DType::I64});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);
// From host data (copied). The dtype follows T unless opt overrides it; values are converted.
template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opt);
template <class T> Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  return from_vector(values, shape, TensorOptions(dtype_of<T>()));
}
// A view over existing storage with an explicit layout (used by kernels and loaders; no checks beyond bounds).
Tensor make_view(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset);

// Every tensor in the list is on `device` and of a floating dtype etc.: shared argument checks.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_defined(const char* op, const Tensor& t, const char* arg);

}  // namespace engine
