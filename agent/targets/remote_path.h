// Remote paths and URLs built from '/'-separated parts: S3 object URLs, WebDAV collection and
// file URLs. One place decides how a part is appended, so the targets cannot drift apart.
#pragma once

#include <string>

namespace photorig::targets {

// "<base>/<segment>". `base` carries no trailing '/' (the targets strip it once from the
// configured endpoint or URL); `segment` goes in as given, so percent-encode it first when
// the result is a URL: join_remote("https://h/dav", http::url_encode("b 1")) ->
// "https://h/dav/b%201".
std::string join_remote(const std::string& base, const std::string& segment);

}  // namespace photorig::targets
