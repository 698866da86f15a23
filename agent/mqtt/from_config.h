// Moved: options_from_config() lives in the broker_link library (photorig_broker_link), so
// that the mqtt module does not depend on config. This header only forwards, for callers
// not yet including "broker_link/from_config.h"; they must link photorig_broker_link.
#pragma once

#include "broker_link/from_config.h"
