// Standard base64 (RFC 4648 section 4, Go's base64.StdEncoding), the one
// implementation in Berth, on OpenSSL's block coder: registry credentials
// (docker config.json "auth", Basic authorization), bytes fields of
// berthctl's Go-compatible JSON, WebSocket keys and base64 channel messages.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace berth {

// With padding.
std::string Base64Encode(std::string_view data);
// Accepts missing padding (docker config.json files written by hand lack
// it); nullopt for any character outside the alphabet, padding in the middle
// or a length no encoding has.
std::optional<std::string> Base64Decode(std::string_view text);
// A character of the alphabet ('=' is not one).
bool IsBase64Char(char c);

}  // namespace berth
