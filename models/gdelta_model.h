// The gated-delta model family shared by gatedelta, lshgd (models/gatedelta.cpp) and gdlocal1 (models/gdlocal1.cpp):
// Lampa's GatedDelta / LSHGatedDelta / GatedDelta_local1 (modeling_gated_deltaproduct.py:1241-1792;
// lampa-models.md 1, 4 items 10-11, 8.1 items 3-4, 8.2 a). See models/README-gdelta.md for the differences from
// the reference.
#pragma once
#include <memory>
#include <string>

#include "models/model.h"

namespace models::gdelta {

// The shipped config for one variant: h_dim (48, or 96 for lshgd), n_layers 4, mlp_layers 4, head_size 16, and the
// keys the reference reads but these models never use (num_heads / n_hashes / num_regions / block_size only size
// the fixed `regions` buffer; drop_path, drop_out_in_block, rms_norm, out_dim are inert). New key:
// "reference_last_layer_only" (default false; true reproduces the reference bug of 8.2 a).
Config defaults(int64_t h_dim);

// Builds the model; `local` selects the local1 blocks (LocalAggregation over ModelInput::edge_index).
std::shared_ptr<TrackingModel> make(const std::string& name, const Config& c, bool local);

}  // namespace models::gdelta
