#pragma once
// Every layer, for code that builds models.

#include "bnlab/layers/activation.hpp"
#include "bnlab/layers/batch_normalization.hpp"
#include "bnlab/layers/conv2d.hpp"
#include "bnlab/layers/dense.hpp"
#include "bnlab/layers/dropout.hpp"
#include "bnlab/layers/factory.hpp"
#include "bnlab/layers/flatten.hpp"
#include "bnlab/layers/initializers.hpp"
#include "bnlab/layers/layer.hpp"
#include "bnlab/layers/max_pool2d.hpp"
#include "bnlab/layers/sample_normalization.hpp"
