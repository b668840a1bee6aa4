// Focal loss for the pile-up task (see pileup_loss.h).
#include "models/pileup_loss.h"

#include <stdexcept>
#include <vector>

#include "engine/engine.h"

namespace models {

using namespace engine;

Tensor focal_loss(const Tensor& logits, const Tensor& label, const Tensor& mask, double alpha, double gamma) {
  if (logits.dim() != 1 || label.dim() != 1 || mask.dim() != 1 || label.size(0) != logits.size(0) ||
      mask.size(0) != logits.size(0))
    throw std::invalid_argument("focal_loss: logits, label and mask must be [N] vectors of one length");
  const std::vector<int64_t> keep = mask.to(DType::I64).to_vector<int64_t>();
  std::vector<int64_t> rows;
  for (size_t i = 0; i < keep.size(); ++i)
    if (keep[i]) rows.push_back(static_cast<int64_t>(i));
  if (rows.empty()) throw std::invalid_argument("focal_loss: the mask selects no particle");
  const Tensor index = from_vector(rows, {static_cast<int64_t>(rows.size())}).to(logits.device());
  const Tensor z = index_select(logits, 0, index);                                // [M]
  const Tensor y = index_select(label, 0, index).to(logits.dtype());              // [M]
  const Tensor log_p = clamp_min(-softplus(-z), -100.0);                         // log sigmoid(z)
  const Tensor log_1mp = clamp_min(-softplus(z), -100.0);                        // log (1 - sigmoid(z))
  const Tensor bce = -(y * log_p + (1.0 - y) * log_1mp);
  const Tensor p_t = exp(-bce);
  return mean(alpha * pow(1.0 - p_t, gamma) * bce);
}

}  // namespace models
