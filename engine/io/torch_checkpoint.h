// Reader for PyTorch checkpoints written by torch.save (the zip format, PyTorch >= 1.6): a zip archive with STORED
// (uncompressed) members "<prefix>/data.pkl" (a pickled state dict), "<prefix>/byteorder", "<prefix>/version" and one
// member "<prefix>/data/<key>" per storage. data.pkl is run on a small pickle virtual machine that understands the
// opcodes torch.save emits for a state dict (protocol 2: dicts / OrderedDicts, tuples, lists, ints, floats, strings,
// bools, None, memo, persistent ids for storages) and the globals collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.*Storage. Every tensor is rebuilt from
// its storage, storage offset, size and stride (non-contiguous layouts are copied out element by element) into a
// contiguous CPU tensor. Nested dicts are flattened with dotted names ("a.b.weight").
// Nothing here knows about a particular model; errors name the file and what is wrong.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine::io {

struct TorchTensorInfo {
  std::string name;
  std::string storage_key;  // zip member "<prefix>/data/<storage_key>"
  DType dtype = DType::F32;
  int64_t storage_offset = 0;  // in elements
  Shape shape;
  Strides stride;
};

// The state dict's entries in file order, as contiguous CPU tensors.
std::vector<std::pair<std::string, Tensor>> load_torch_checkpoint(const std::string& path);

// Only the descriptions (names, storages, offsets, shapes, strides), in file order.
std::vector<TorchTensorInfo> inspect_torch_checkpoint(const std::string& path);

}  // namespace engine::io
