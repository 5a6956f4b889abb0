// Errors: every failure the user can cause (bad file, bad config, bad argument) is reported by
// throwing dsv4::Error with one line that names the problem (file, tensor, field, expected vs got).
// Front ends catch it and print the message; nothing in the library calls exit() or abort().
#pragma once
#include <stdexcept>
#include <string>
#include <utility>

namespace dsv4 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Builds a message from streamable parts: throw_error("tensor ", name, ": expected ", a, " got ", b).
template <typename... Parts>
[[noreturn]] void throw_error(Parts&&... parts);

}  // namespace dsv4

#include <sstream>
namespace dsv4 {
template <typename... Parts>
[[noreturn]] void throw_error(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  throw Error(os.str());
}
}  // namespace dsv4
