// Every CPU kernel, grouped by op family (one header each). Kernels assume their public op validated the inputs.
// The CUDA backend mirrors these signatures in engine/backend/cuda/kernels.h.
#pragma once
#include "engine/backend/cpu/conv.h"
#include "engine/backend/cpu/elementwise.h"
#include "engine/backend/cpu/index.h"
#include "engine/backend/cpu/linalg.h"
#include "engine/backend/cpu/norm.h"
#include "engine/backend/cpu/optim.h"
#include "engine/backend/cpu/random.h"
#include "engine/backend/cpu/reduce.h"
#include "engine/backend/cpu/sort.h"
