// CPU elementwise kernels: unary and binary maps, where, strided copy with dtype conversion, fill.
#pragma once
#include "engine/ops/elementwise_math.h"
#include "engine/tensor.h"

namespace engine::cpu {

void unary(UnaryOp op, const Tensor& x, const Tensor& out, double a, double b);  // out: contiguous, x's shape
void binary(BinaryOp op, const Tensor& x, const Tensor& y, const Tensor& out);   // x, y: views at out's shape
void where(const Tensor& cond, const Tensor& x, const Tensor& y, const Tensor& out);  // views at out's shape
void copy(const Tensor& src, const Tensor& dst);  // same shape, any strides; converts dtype
void fill(const Tensor& dst, double value);       // any strides

}  // namespace engine::cpu
