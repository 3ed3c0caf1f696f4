// SPDX-License-Identifier: MIT
#include "support/support.hpp"
