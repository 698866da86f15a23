#include "targets/remote_path.h"

namespace photorig::targets {

std::string join_remote(const std::string& base, const std::string& segment) {
    return base + "/" + segment;
}

}  // namespace photorig::targets
