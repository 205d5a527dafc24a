// common/yaml.h: libyaml read into JSON, as CDI specs and berthctl use it.
#include "common/yaml.h"

#include <gtest/gtest.h>

#include <string>

namespace berth {
namespace {

using nlohmann::json;

json Typed(const std::string& s) {
  if (s == "true") return true;
  if (s.empty() || s == "~") return nullptr;
  if (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0]))) return std::stoll(s);
  return s;
}

TEST(YamlToJsonTest, BlockFlowAndScalarStyles) {
  auto doc = YamlToJson(R"(---
# comment
a: 1
b: "1"
c: [x, 'y', {k: v}]
d:
  - e: true
    f: |
      line 1
      line 2
  - ~
g: >-
  folded
  text
h:
)",
                        {.resolve_plain = Typed});
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(*doc, json::parse(R"({"a":1,"b":"1","c":["x","y",{"k":"v"}],
      "d":[{"e":true,"f":"line 1\nline 2\n"},null],"g":"folded text","h":null})"));
}

TEST(YamlToJsonTest, WithoutResolverEverythingIsAString) {
  auto doc = YamlToJson("a: 1\nb: true\nc:\n");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(*doc, json::parse(R"({"a":"1","b":"true","c":""})"));
}

TEST(YamlToJsonTest, KeysAreTheStringsOfTheirValues) {
  auto doc = YamlToJson("1: a\ntrue: b\n~: c\n", {.resolve_plain = Typed});
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(*doc, json::parse(R"({"1":"a","true":"b","null":"c"})"));
}

TEST(YamlToJsonTest, EmptyDocumentIsNull) {
  auto doc = YamlToJson("");
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE(doc->is_null());
  doc = YamlToJson("# only a comment\n");
  ASSERT_TRUE(doc.ok());
  EXPECT_TRUE(doc->is_null());
}

struct BadCase {
  std::string text;
  std::string message;  // a substring of the error, with line and column
};

class YamlToJsonErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(YamlToJsonErrorTest, InvalidArgumentNamingLineAndColumn) {
  auto doc = YamlToJson(GetParam().text, {.resolve_plain = nullptr, .reject_duplicate_keys = true});
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(doc.status().message().find(GetParam().message), std::string::npos)
      << doc.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, YamlToJsonErrorTest,
    ::testing::Values(BadCase{"a: 1\n  b: 2\n", "YAML line 2, column"},
                      BadCase{"a: [1, 2\n", "YAML line 2, column 1"},
                      BadCase{"a: &x 1\nb: *x\n", "YAML line 1, column 4: YAML anchors"},
                      BadCase{"a: 1\n---\nb: 2\n", "YAML line 2, column 1: more than one"},
                      BadCase{"a: 1\nb: 2\na: 3\n",
                              "YAML line 3, column 1: duplicate mapping "
                              "key \"a\""},
                      BadCase{"? [a]\n: b\n", "a mapping key must be a scalar"},
                      BadCase{"a: \"unterminated\n", "YAML line"}));

TEST(YamlToJsonTest, DuplicateKeysWinLastUnlessRefused) {
  auto doc = YamlToJson("a: 1\na: 2\n");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ((*doc)["a"], "2");
}

// Found by fuzz_ctl_yaml: "0" and "000" are one key once typed, two as
// written. Duplicates are judged as written, so typing scalars never
// changes whether a text parses; typed, the last one wins.
TEST(YamlToJsonTest, DuplicateKeysAreJudgedAsWritten) {
  const YamlReadOptions typed{.resolve_plain = Typed, .reject_duplicate_keys = true};
  const YamlReadOptions strings{.resolve_plain = nullptr, .reject_duplicate_keys = true};
  auto a = YamlToJson("0: x\n000: y\n", typed);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, json::parse(R"({"0":"y"})"));
  EXPECT_TRUE(YamlToJson("0: x\n000: y\n", strings).ok());
  EXPECT_FALSE(YamlToJson("0: x\n0: y\n", typed).ok());
  EXPECT_FALSE(YamlToJson("0: x\n0: y\n", strings).ok());
}

TEST(YamlToJsonTest, DeepNestingIsRefused) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto doc = YamlToJson(deep);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("nested too deeply"), std::string::npos);
  std::string ok(60, '[');
  ok += std::string(60, ']');
  EXPECT_TRUE(YamlToJson(ok).ok());
}

}  // namespace
}  // namespace berth
