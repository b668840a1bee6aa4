// Autograd engine: node recording, the iterative topological backward pass, un-broadcasting, custom ops.
#include "engine/autograd.h"

#include <algorithm>
#include <unordered_map>

#include "engine/backend/dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace engine {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_grad(const Tensors& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}
bool needs_grad(std::initializer_list<Tensor> inputs) { return needs_grad(Tensors(inputs)); }

// Each node owns its producers through its edges (and through tensors its backward function saved). Freed naively,
// a long chain (a per-step loop over a 60k-hit sequence) recurses once per node and overflows the stack. Here the
// producers this node alone keeps alive are moved onto a local stack and freed one at a time: the saved state goes
// first (so a producer held by the edge and by a saved tensor is down to the edge's reference), then the edges.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> pending;
  auto take_sole_producers = [&pending](Node& n) {
    n.fn_ = nullptr;
    for (Edge& e : n.edges_)
      if (e.node && e.node.use_count() == 1) pending.push_back(std::move(e.node));
  };
  take_sole_producers(*this);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    take_sole_producers(*n);
  }  // n is freed here with no sole-owned producers left, so its destructor does not recurse
}

Tensors Node::apply(const Tensors& grad_outputs) {
  ENGINE_CHECK(fn_ != nullptr, "backward",
               "node '{}' was already back-propagated and its saved tensors freed; pass retain_graph=true to "
               "back-propagate through the same graph twice", name_);
  return fn_(grad_outputs);
}

void record(const char* name, const Tensors& inputs, const std::vector<Tensor*>& outputs, BackwardFn fn) {
  if (!needs_grad(inputs)) return;
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined()) {
      e.meta = {t.shape(), t.dtype(), t.device()};
      if (t.requires_grad()) {
        if (t.grad_fn()) {
          e.node = t.grad_fn();
          e.output_nr = t.impl()->output_nr;
        } else {
          e.leaf = t.impl_ptr();
        }
      }
    }
    edges.push_back(std::move(e));
  }
  std::vector<TensorMeta> metas;
  for (Tensor* o : outputs) metas.push_back({o->shape(), o->dtype(), o->device()});
  auto node = std::make_shared<Node>(name, std::move(edges), std::move(metas), std::move(fn));
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* impl = outputs[i]->impl();
    impl->grad_fn = node;
    impl->output_nr = static_cast<int>(i);
    impl->requires_grad = is_floating(impl->dtype);
  }
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  ENGINE_CHECK(lead >= 0, "sum_to", "gradient {} has fewer dims than its input {}", shape_str(grad.shape()),
               shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < grad.dim(); ++i) {
    if (i < lead) dims.push_back(i);
    else if (shape[i - lead] == 1 && grad.shape()[i] != 1) dims.push_back(i);
    else
      ENGINE_CHECK(shape[i - lead] == grad.shape()[i], "sum_to", "gradient {} does not broadcast to input {}",
                   shape_str(grad.shape()), shape_str(shape));
  }
  Tensor r = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return r.reshape(shape);
}

namespace {

void accumulate_leaf(TensorImpl* leaf, const Tensor& g) {
  if (!leaf->grad) {
    leaf->grad = g.clone().impl_ptr();  // own a fresh dense buffer: never alias a gradient another node holds
    return;
  }
  Tensor acc(leaf->grad);
  ENGINE_DISPATCH(acc.device(), binary, BinaryOp::Add, acc, g, acc);  // in place: same position in and out
}

}  // namespace

void run_backward(const Tensors& roots, const Tensors& grads, bool retain_graph) {
  NoGradGuard no_grad;
  // Seed gradients.
  std::unordered_map<Node*, Tensors> buffers;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep;
  std::vector<Node*> stack;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    check_defined("backward", r, "root");
    ENGINE_CHECK(r.requires_grad(), "backward", "tensor of shape {} does not require grad and has no grad_fn",
                 shape_str(r.shape()));
    Tensor g = i < grads.size() ? grads[i] : Tensor();
    if (!g.defined()) {
      ENGINE_CHECK(r.numel() == 1, "backward", "grad can be implicitly created only for single-element outputs, "
                   "got shape {}", shape_str(r.shape()));
      g = ones_like(r);
    }
    ENGINE_CHECK(g.shape() == r.shape(), "backward", "grad shape {} differs from output shape {}", shape_str(g.shape()),
                 shape_str(r.shape()));
    if (!r.grad_fn()) {
      accumulate_leaf(r.impl(), g);
      continue;
    }
    Node* n = r.grad_fn().get();
    keep[n] = r.grad_fn();
    auto& buf = buffers[n];
    buf.resize(n->outputs().size());
    int k = r.impl()->output_nr;
    buf[k] = buf[k].defined() ? add(buf[k], g) : g;
    stack.push_back(n);
  }
  // Count, for every reachable node, how many edges lead into it (iterative DFS).
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> dfs(stack.begin(), stack.end());
  std::unordered_map<Node*, bool> seen;
  for (Node* n : dfs) seen[n] = true;
  while (!dfs.empty()) {
    Node* n = dfs.back();
    dfs.pop_back();
    for (const Edge& e : n->edges()) {
      if (!e.node) continue;
      Node* m = e.node.get();
      deps[m]++;
      if (!seen[m]) {
        seen[m] = true;
        dfs.push_back(m);
      }
    }
  }
  // Process nodes whose consumers are all done (Kahn's algorithm, LIFO for locality; deterministic).
  std::vector<Node*> ready;
  for (Node* n : stack)
    if (deps[n] == 0 && std::find(ready.begin(), ready.end(), n) == ready.end()) ready.push_back(n);
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    Tensors gout = std::move(buffers[n]);
    buffers.erase(n);
    gout.resize(n->outputs().size());
    for (size_t k = 0; k < gout.size(); ++k)
      if (!gout[k].defined()) {
        const TensorMeta& m = n->outputs()[k];
        gout[k] = zeros(m.shape, TensorOptions(m.dtype, m.device));
      }
    Tensors gin = n->apply(gout);
    gout.clear();
    ENGINE_CHECK(gin.size() == n->edges().size(), "backward", "node '{}' returned {} gradients for {} inputs",
                 n->name(), gin.size(), n->edges().size());
    for (size_t i = 0; i < gin.size(); ++i) {
      const Edge& e = n->edges()[i];
      if (!e.active()) continue;
      if (gin[i].defined()) {
        Tensor g = sum_to(gin[i], e.meta.shape);
        if (e.leaf) {
          accumulate_leaf(e.leaf.get(), g);
        } else {
          auto& buf = buffers[e.node.get()];
          buf.resize(e.node->outputs().size());
          buf[e.output_nr] = buf[e.output_nr].defined() ? add(buf[e.output_nr], g) : g;
        }
      }
      if (e.node) {
        Node* m = e.node.get();
        keep[m] = e.node;
        if (--deps[m] == 0) ready.push_back(m);
      }
    }
    if (!retain_graph) n->release();
  }
}

Tensors apply_custom_op(const std::shared_ptr<CustomOp>& op, const Tensors& inputs) {
  bool grad = needs_grad(inputs);
  Tensors outs;
  {
    NoGradGuard ng;
    outs = op->forward(inputs);
  }
  if (!grad) return outs;
  // Fresh handles for the outputs, so that tensors the op saved from forward carry no history (no cycles).
  Tensors results;
  std::vector<Tensor*> ptrs;
  results.reserve(outs.size());
  for (const Tensor& o : outs) results.push_back(o.detach());
  for (Tensor& r : results) ptrs.push_back(&r);
  record(op->name(), inputs, ptrs, [op](const Tensors& g) { return op->backward(g); });
  return results;
}

}  // namespace engine
