// gdlocal1 (Lampa's GatedDelta_local1; lampa-models.md 1, 4 item 11): the gated-delta model of models/gatedelta.cpp
// with GatedDeltaProductBlock_local1 blocks, which add x + RMSN(LocalAggregation(x, edge_index)) before the
// attention (mean over the k = 60 eta-phi kNN graph of ModelInput::edge_index, self loops included). Shipped config:
// h_dim 48, 4 layers, head_size 16, MLP4 head: 539,632 trainable parameters. Layers run in sequence unless
// "reference_last_layer_only" is true (see models/gatedelta.cpp and models/README-gdelta.md).
#include "models/catalog.h"
#include "models/gdelta_model.h"

namespace models {

namespace {

Config gdlocal1_defaults() { return gdelta::defaults(48); }
std::shared_ptr<TrackingModel> make_gdlocal1(const Config& c) { return gdelta::make("gdlocal1", c, true); }

}  // namespace

const ModelEntry& gdlocal1_entry() {
  static const ModelEntry entry{"gdlocal1", &gdlocal1_defaults, &make_gdlocal1};
  return entry;
}

}  // namespace models
