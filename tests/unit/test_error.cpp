#include <gtest/gtest.h>

#include "core/error.h"
#include "core/mmap_file.h"

TEST(Error, MessageJoinsParts) {
  try {
    dsv4::throw_error("tensor ", "x", ": expected ", 3, " got ", 4);
    FAIL();
  } catch (const dsv4::Error& e) {
    EXPECT_STREQ(e.what(), "tensor x: expected 3 got 4");
  }
}

TEST(MappedFile, MissingFileNamesPath) {
  try {
    dsv4::MappedFile f("/nonexistent/dsv4-file");
    FAIL();
  } catch (const dsv4::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dsv4-file"), std::string::npos);
  }
}
