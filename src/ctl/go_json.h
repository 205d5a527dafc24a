// JSON text exactly as crictl prints it. crictl is written in Go and renders
// CRI messages with golang/protobuf's jsonpb (EmitDefaults, two-space indent)
// and re-indents composite documents with encoding/json.Indent; users diff
// and script against that output, so berthctl reproduces it byte for byte.
//
// All functions are pure and thread-safe.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace berth::ctl {

// Renders `msg` like Go's jsonpb.Marshaler{EmitDefaults: true, Indent: "  "}:
// fields in .proto declaration order under their lowerCamelCase JSON names,
// unset singular messages as null, empty repeated fields as "[\n<indent>]",
// 64-bit integers as quoted decimals, enums by name, bytes as base64, map
// entries sorted by key. No trailing newline.
std::string MarshalProtoJson(const google::protobuf::Message& msg);

// Go's json.Marshal of a string: quoted, with <, >, &, U+2028 and U+2029
// escaped as \u sequences and invalid UTF-8 replaced by \ufffd.
std::string GoJsonQuote(std::string_view s);

// Go's strconv.FormatFloat(v, fmt, -1, bits) for fmt 'e', 'f' or 'g'.
std::string GoFormatFloat(double v, char fmt, int bits);

// Go's json.Marshal of a float64 (bits 64) or float32 (bits 32).
std::string GoJsonFloat(double v, int bits);

// Go's json.Indent(dst, src, "", "  "): whitespace between tokens is
// dropped and replaced by newlines and two-space indentation, empty objects
// and arrays stay "{}" and "[]", string contents and numbers are copied
// verbatim. Fails (InvalidArgument) when `json` is not one valid JSON value.
StatusOr<std::string> IndentJson(std::string_view json);

// True when `text` is one valid JSON value (what Go's json.Unmarshal into an
// interface{} accepts, surrounding whitespace allowed).
bool IsValidJson(std::string_view text);

// The document crictl builds for `info` and `inspecti`:
//   {"status": <status_json>, "<key>": <value>, ...}
// with keys in byte order; a value that parses as JSON is embedded as JSON,
// any other value as a JSON string. Not indented; pass it to IndentJson or
// JsonToYaml.
std::string StatusInfoJson(std::string_view status_json,
                           const std::map<std::string, std::string>& info);

// Decodes one UTF-8 sequence at s[i] like Go's utf8.DecodeRuneInString:
// returns {rune, size}; an invalid, overlong or surrogate sequence yields
// {0xFFFD, 1}. Requires i < s.size().
std::pair<char32_t, size_t> DecodeUtf8(std::string_view s, size_t i);

// Number of runes in `s` as Go counts them (invalid bytes count one each).
size_t RuneCount(std::string_view s);

}  // namespace berth::ctl
