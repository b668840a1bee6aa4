// Small helpers shared by every layer: input-shape checks with the layer's name in the message.
#pragma once
#include <initializer_list>
#include <string>

#include "engine/tensor.h"

namespace layers {

// Throws engine::EngineError "<where>: <what> must be [d0, d1, ...] (-1 = any) but is [...]" unless `t` is defined
// and has exactly the given dims (entries of -1 match any size).
void check_shape(const std::string& where, const std::string& what, const engine::Tensor& t,
                 std::initializer_list<int64_t> dims);

// Throws unless a and b are on the same device with the same floating dtype.
void check_same_placement(const std::string& where, const engine::Tensor& a, const engine::Tensor& b);

}  // namespace layers
