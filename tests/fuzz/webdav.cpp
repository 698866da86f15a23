// A WebDAV server's PROPFIND answer (207 Multi-Status) as WebdavTarget::stat reads it:
// resource type, getcontentlength and the ownCloud/Nextcloud checksums. Input: the body.
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "targets/webdav_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace photorig;
    fuzz::Input in(data, size);
    auto remote = targets::WebdavTarget::remote_from_propfind(in.rest());
    PHOTORIG_FUZZ_CHECK(remote.exists);
    PHOTORIG_FUZZ_CHECK(remote.sha256.empty() ||
                        (remote.sha256.size() == 64 &&
                         remote.sha256.find_first_not_of("0123456789abcdef") == std::string::npos));
    PHOTORIG_FUZZ_CHECK(remote.has_size || remote.size == 0);
    return 0;
}
