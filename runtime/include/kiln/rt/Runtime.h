// Umbrella header: everything an ahead-of-time compiled model's driver needs.
#pragma once

#include "kiln/rt/Args.h"
#include "kiln/rt/Batcher.h"
#include "kiln/rt/Checkpoint.h"
#include "kiln/rt/Error.h"
#include "kiln/rt/Idx.h"
#include "kiln/rt/Init.h"
#include "kiln/rt/Memory.h"
#include "kiln/rt/Metrics.h"
#include "kiln/rt/Mnist.h"
#include "kiln/rt/Progress.h"
#include "kiln/rt/Random.h"
#include "kiln/rt/Utf8.h"
