// The tracking loss (lampa-models.md 7.2, hept.md 5.1): InfoNCE over candidate pairs with the RBF similarity of
// the L2 distance, s_ij = exp(-|e_i - e_j| / 1.125), temperature tau (0.05 in every config).
// A hit is valid when reconstructable and pT > 0.9 GeV. Positive pair: same particle, both valid (self pairs of valid
// hits included). Negative pair: every other pair. Per positive (i, j):
//   l_ij = -log( exp(s_ij/tau) / (exp(s_ij/tau) + sum over negatives (i, k) of exp(s_ik/tau)) ),
// and the loss is their mean: over all positive pairs (Lampa), or per particle of the anchor and then over particles
// (HEPT, hept.md 5.1 step 7); 0, with a graph, when a sample has no positive pair. Never N^2: the CPU op keeps two
// float64 values per pair, other devices O(E * d).
// The distance's gradient at 0 is 0, as PyTorch's norm backward (self pairs stay finite).
#pragma once
#include "engine/tensor.h"

namespace models {

enum class InfoNCEAverage { PerPair, PerParticle };

// emb [N, d] float; pairs [2, E] int64 (Lampa: the k = 60 kNN edges; HEPT: the radius-graph point pairs);
// particle_id [N] int64 (0 = noise); pt [N] float; reconstructable [N] int64. Returns a scalar.
engine::Tensor infonce_loss(const engine::Tensor& emb, const engine::Tensor& pairs, const engine::Tensor& particle_id,
                            const engine::Tensor& pt, const engine::Tensor& reconstructable, double tau = 0.05,
                            double pt_min = 0.9, InfoNCEAverage average = InfoNCEAverage::PerPair);

}  // namespace models
