// SHA-256 lives with the other digests; this header stays for its many includers.
#pragma once

#include "core/digest.h"
