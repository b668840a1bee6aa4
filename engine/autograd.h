// Reverse-mode autograd: a dynamic tape of Nodes, an iterative topological backward pass, gradient accumulation
// with un-broadcasting done in exactly one place (the engine reduces every input gradient to its input's shape),
// no_grad scopes, and the custom-op interface that fused layers plug into.
//
// Writing an op: compute the output(s) under any mode, then, if needs_grad(inputs), call record() with a backward
// function mapping output gradients to input gradients. RULE: a backward closure must never capture an output of
// its own op with its autograd history (that is a reference cycle): capture `out.detach()` instead. Inputs may be
// captured as they are. Input gradients may be returned with a broadcast-compatible shape; the engine reduces them.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace engine {

using Tensors = std::vector<Tensor>;
// Maps the gradients of a node's outputs (always defined, zero-filled where no gradient arrived) to gradients of
// its inputs (one per input; an undefined Tensor means "no gradient").
using BackwardFn = std::function<Tensors(const Tensors& grad_outputs)>;

struct TensorMeta {
  Shape shape;
  DType dtype;
  Device device;
};

// Where a gradient goes: into another node's output slot, or into a leaf's .grad.
struct Edge {
  std::shared_ptr<Node> node;        // producer of the input (null for leaves / inputs without grad)
  int output_nr = 0;
  std::shared_ptr<TensorImpl> leaf;  // set when the input is a leaf that requires grad
  TensorMeta meta;                   // the input's shape etc., for un-broadcasting
  bool active() const { return node || leaf; }
};

class Node {
 public:
  Node(std::string name, std::vector<Edge> edges, std::vector<TensorMeta> outputs, BackwardFn fn)
      : name_(std::move(name)), edges_(std::move(edges)), outputs_(std::move(outputs)), fn_(std::move(fn)) {}
  ~Node();  // iterative: a graph of a million chained nodes is freed without deep recursion
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  const std::string& name() const { return name_; }
  const std::vector<Edge>& edges() const { return edges_; }
  const std::vector<TensorMeta>& outputs() const { return outputs_; }
  Tensors apply(const Tensors& grad_outputs);  // throws if the saved state was already released
  void release() { fn_ = nullptr; }

 private:
  std::string name_;
  std::vector<Edge> edges_;
  std::vector<TensorMeta> outputs_;
  BackwardFn fn_;
};

// ---- grad mode ----
bool grad_enabled();
void set_grad_enabled(bool on);
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when grad mode is on and at least one defined input requires grad.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const Tensors& inputs);

// Attaches a backward node producing `outputs` from `inputs` (no-op when !needs_grad(inputs)).
void record(const char* name, const Tensors& inputs, const std::vector<Tensor*>& outputs, BackwardFn fn);
inline Tensor record(const char* name, const Tensors& inputs, Tensor out, BackwardFn fn) {
  record(name, inputs, std::vector<Tensor*>{&out}, std::move(fn));
  return out;
}

// Runs backward from `roots` seeded with `grads` (iterative, topologically ordered, deterministic).
void run_backward(const Tensors& roots, const Tensors& grads, bool retain_graph);

// Reduces a gradient to `shape` by summing over broadcast dims (the single un-broadcasting point).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// ---- custom ops: fused layers as single autograd nodes ----
// forward() runs with grad mode off and may keep whatever it needs for backward in the op object (its "saved
// context"); backward() receives one gradient per output (zero-filled when unused) and returns one per input
// (undefined for inputs without gradient, e.g. indices).
class CustomOp {
 public:
  virtual ~CustomOp() = default;
  virtual const char* name() const = 0;
  virtual Tensors forward(const Tensors& inputs) = 0;
  virtual Tensors backward(const Tensors& grad_outputs) = 0;
};
Tensors apply_custom_op(const std::shared_ptr<CustomOp>& op, const Tensors& inputs);

}  // namespace engine
