// safetensors read/write (https://github.com/huggingface/safetensors format: 8-byte little-endian header length,
// JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}, then raw little-endian data).
// Writes are atomic: a temp file in the same folder, fsync, then rename; a failed write leaves no partial file.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine::io {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;  // safetensors metadata is string -> string

// Tensors may live on any device and have any layout; they are written dense, in the given order.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

struct SafetensorsContents {
  NamedTensors tensors;  // CPU tensors, in file order
  Metadata metadata;
  const Tensor* find(const std::string& name) const;  // nullptr when absent
};
// Throws EngineError naming the file and what is wrong (truncated, bad header, offsets out of range, bad dtype).
SafetensorsContents load_safetensors(const std::string& path);

}  // namespace engine::io
