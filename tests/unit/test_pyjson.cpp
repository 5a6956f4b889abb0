#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "text/pyjson.h"

namespace {

using dsv4::text::py_dumps;
using dsv4::text::py_float_repr;
using dsv4::text::py_loads;

double from_bits(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}

// Expected strings produced by CPython 3.11 json.dumps(float).
TEST(PyJson, FloatReprMatchesPython) {
  struct Case {
    uint64_t bits;
    const char* repr;
  };
  static const Case cases[] = {
      {0ull, "0.0"},
      {9223372036854775808ull, "-0.0"},
      {4607182418800017408ull, "1.0"},
      {4609434218613702656ull, "1.5"},
      {4591870180066957722ull, "0.1"},
      {4502148214488346440ull, "1e-07"},
      {4846369599423283200ull, "1e+16"},
      {4831355200913801216ull, "1000000000000000.0"},
      {4817745636528479846ull, "123456789012345.6"},
      {4832797072101665539ull, "1234567890123456.8"},
      {4547007122018943789ull, "0.0001"},
      {4532020583610935537ull, "1e-05"},
      {4537999922764202797ull, "2.5e-05"},
      {4936209963552724370ull, "1e+22"},
      {9218868437227405311ull, "1.7976931348623157e+308"},
      {1ull, "5e-324"},
      {4503599627370496ull, "2.2250738585072014e-308"},
      {13837628687431468654ull, "-3.14159"},
      {4636737291354636288ull, "100.0"},
      {6103021453049119613ull, "1e+100"},
      {4599075939470750515ull, "0.3"},
      {4604180019048437077ull, "0.6666666666666666"},
      {4846369599423283199ull, "9999999999999998.0"},
      {4712889646492470477ull, "12345678.9"},
      {9110180938284831491ull, "1e+301"},
      {4638355772470722560ull, "123.0"},
      {13765875559246349101ull, "-5e-05"},
      {17485029721327973432ull, "-1.989032661366619e+244"},
      {7283207964119141687ull, "7.761117632285041e+178"},
      {890727360438182992ull, "3.980498358697587e-249"},
      {15149836622520594227ull, "-1.5432835417340557e+88"},
      {1736392818365009963ull, "1.3647584518757569e-192"},
      {10750541312280087032ull, "-1.3701135617873088e-206"},
      {16781078052021535861ull, "-1.7160537630466207e+197"},
      {3960482443532127989ull, "6.294675241195386e-44"},
      {1585446675937841368ull, "1.0613447212142254e-202"},
      {7713914763314685786ull, "4.708325160387546e+207"},
      {4439448776366754703ull, "6.387016158513563e-12"},
      {10165027665383847897ull, "-9.973130378568733e-246"},
      {1090396360377453094ull, "8.779753225680271e-236"},
      {10430779633273967791ull, "-5.795503248498993e-228"},
      {17477362246067780643ull, "-5.988180159386011e+243"},
      {11632994891556335705ull, "-1.306052388527796e-147"},
      {10754394637803157173ull, "-2.436117699484841e-206"},
      {1141153371300629929ull, "2.233386999150174e-232"},
      {10801332806156616911ull, "-3.51527970626667e-203"},
      {914761360679426580ull, "1.5987381841032883e-247"},
      {4078239883182463692ull, "4.6678633181812096e-36"},
      {10268654918125279152ull, "-8.441872792105456e-239"},
      {2456641775679608523ull, "1.9015657400796622e-144"},
      {7731750658069747094ull, "7.370437700706684e+208"},
      {9973894190648387236ull, "-1.7163996725272777e-258"},
      {10531498782278263232ull, "-3.2367190832119987e-221"},
      {10334922596725336632ull, "-2.2818334634712625e-234"},
      {12580729232405932079ull, "-3.0536383926309363e-84"},
      {1901042282212365707ull, "1.3449551894627777e-181"},
      {10536861175493410705ull, "-7.317495976062606e-221"},
  };
  for (const Case& c : cases) EXPECT_EQ(py_float_repr(from_bits(c.bits)), c.repr) << c.repr;
  EXPECT_EQ(py_float_repr(NAN), "NaN");
  EXPECT_EQ(py_float_repr(INFINITY), "Infinity");
  EXPECT_EQ(py_float_repr(-INFINITY), "-Infinity");
}

// Every float repr parses back to the same double (shortest round trip).
TEST(PyJson, FloatReprRoundTrips) {
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const double d = from_bits(x);
    if (!std::isfinite(d)) continue;
    const std::string r = py_float_repr(d);
    auto v = py_loads(r);
    ASSERT_TRUE(v.has_value()) << r;
    ASSERT_EQ(v->type, dsv4::text::PyJson::Type::Float) << r;
    ASSERT_EQ(std::memcmp(&v->number, &d, sizeof d), 0) << r;
  }
}

// Input text -> json.dumps(json.loads(text), ensure_ascii=False), produced by CPython 3.11.
TEST(PyJson, LoadsThenDumpsMatchesPython) {
  static const std::pair<const char*, const char*> cases[] = {
      {"{\"a\": 1.50, \"b\": 1e2, \"c\": null}", "{\"a\": 1.5, \"b\": 100.0, \"c\": null}"},
      {" [1,2 , {\"x\":[]}, {}] ", "[1, 2, {\"x\": []}, {}]"},
      {"\"\\u00e9\\n\\t\\u0001\\/\\ud83d\\ude00\"", "\"é\\n\\t\\u0001/😀\""},
      {"{\"k\":1,\"j\":2,\"k\":3}", "{\"k\": 3, \"j\": 2}"},
      {"-0", "0"},
      {"-0.0", "-0.0"},
      {"12345678901234567890123456789", "12345678901234567890123456789"},
      {"[NaN, Infinity, -Infinity]", "[NaN, Infinity, -Infinity]"},
      {"1E400", "Infinity"},
      {"-1e400", "-Infinity"},
      {"1e-400", "0.0"},
      {"0.000001e-320", "0.0"},
      {"[true,false,null]", "[true, false, null]"},
      {"\"\\u0000\\u001f\\b\\f\\r\"", "\"\\u0000\\u001f\\b\\f\\r\""},
      {"\"café 你好 \x7f\"", "\"café 你好 \x7f\""},
      {"3.0e+2", "300.0"},
      {"{\"a\" : { \"b\" : [ 1 , 2.25 ] } }", "{\"a\": {\"b\": [1, 2.25]}}"},
      {"\"a\\\\b\\\"c\"", "\"a\\\\b\\\"c\""},
      {"\n\t{\"x\": \"y\"}\r\n", "{\"x\": \"y\"}"},
      {"\"</｜DSML｜parameter>\"", "\"</｜DSML｜parameter>\""},
  };
  for (const auto& [in, out] : cases) {
    auto v = py_loads(in);
    ASSERT_TRUE(v.has_value()) << in;
    EXPECT_EQ(py_dumps(*v), out) << in;
  }
  // Overflow through a long mantissa with a negative exponent: 1e390 -> Infinity.
  auto big = py_loads("1" + std::string(400, '0') + "e-10");
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(py_dumps(*big), "Infinity");
}

// Texts CPython's json.loads rejects.
TEST(PyJson, LoadsRejectsWhatPythonRejects) {
  static const char* bad[] = {
      "",
      "{",
      "[1,]",
      "{\"a\":1,}",
      "{'a':1}",
      "01",
      "1.",
      ".5",
      "1e",
      "\"a\tb\"",
      "[1] x",
      "nan",
      "tru",
      "\"\\x\"",
      "{\"a\" 1}",
      "\xef\xbb\xbf[]",
      "\"\\u12\"",
      "+1",
      "--1",
      "[",
      "{\"a\":}",
      "\"abc",
      "[1 2]",
      "-",
      "0x10",
  };
  for (const char* b : bad) EXPECT_FALSE(py_loads(b).has_value()) << b;
  EXPECT_FALSE(py_loads(std::string(600, '[') + std::string(600, ']')).has_value());  // too deep
  EXPECT_TRUE(py_loads(std::string(100, '[') + std::string(100, ']')).has_value());
}

TEST(PyJson, DumpsOrderedJsonKeepsInsertionOrderAndPythonSpacing) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(
      R"({"z": 1, "a": [1.5, 0.1, 1e-7, 1e16, 2.0, -0.0, 18446744073709551615, -9223372036854775808],
          "s": "q\"\\/\u0007\u007f\u00e9\n", "t": true, "n": null, "o": {}})");
  EXPECT_EQ(py_dumps(j),
            "{\"z\": 1, \"a\": [1.5, 0.1, 1e-07, 1e+16, 2.0, -0.0, 18446744073709551615, "
            "-9223372036854775808], \"s\": \"q\\\"\\\\/\\u0007\x7f\xc3\xa9\\n\", \"t\": true, "
            "\"n\": null, \"o\": {}}");
}

TEST(PyJson, StringBodyEscapingComposes) {
  std::string whole, parts;
  const std::string s = "a\"b\\c\nd\x01\xe4\xbd\xa0";
  dsv4::text::py_append_string_body(whole, s);
  for (char c : s) dsv4::text::py_append_string_body(parts, std::string_view(&c, 1));
  EXPECT_EQ(whole, parts);
  EXPECT_EQ(whole, "a\\\"b\\\\c\\nd\\u0001\xe4\xbd\xa0");
}

}  // namespace
