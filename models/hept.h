// HEPT (hept.md 3.7-3.10, lampa-models.md 1 and 4 item 1): the Transformer backbone with HEPT attention, and the
// loader of HEPT's published checkpoint (Graph-COM/HEPT example/ckpt/tracking-60k-model.pt).
#pragma once
#include <string>

#include "models/model.h"

namespace models {

// Overrides of hept_entry().defaults() that build the checkpoint's model (example semantics: duplicate-point
// padding, bit-packed region codes, no E2LSH beta): D = 24, R = 150; 326,436 trainable, 329,364 state elements.
Config hept_checkpoint_overrides();

// Copies the torch.save zip checkpoint at `path` into `model` name by name (every state-dict entry of the model must
// be in the file with the same shape, and the file must hold nothing else); values are converted to the model's
// dtype. Throws one error listing every missing, unexpected or mis-shaped tensor. Returns the number of values copied.
int64_t load_hept_torch_checkpoint(engine::nn::Module& model, const std::string& path);

}  // namespace models
