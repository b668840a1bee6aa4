// Umbrella header: everything a layer, model or outside program needs from the engine.
#pragma once
#include "engine/autograd.h"
#include "engine/allocator.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape_ops.h"
#include "engine/ops/sort.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "engine/tensor.h"
