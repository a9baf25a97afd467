// Errors raised by the native core. The addon turns each into a JavaScript AtomaError whose `code`
// is the same string, so callers can branch on it without parsing messages.
#pragma once
#include <stdexcept>
#include <string>

namespace atoma {

struct Error : std::runtime_error {
  std::string code;
  Error(std::string c, const std::string& message) : std::runtime_error(message), code(std::move(c)) {}
};

}  // namespace atoma
