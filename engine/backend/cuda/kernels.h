// Every CUDA kernel launcher, grouped by op family; signatures mirror engine/backend/cpu/kernels.h exactly.
#pragma once
#include "engine/backend/cuda/conv.h"
#include "engine/backend/cuda/elementwise.h"
#include "engine/backend/cuda/index.h"
#include "engine/backend/cuda/linalg.h"
#include "engine/backend/cuda/norm.h"
#include "engine/backend/cuda/optim.h"
#include "engine/backend/cuda/random.h"
#include "engine/backend/cuda/reduce.h"
#include "engine/backend/cuda/sort.h"
