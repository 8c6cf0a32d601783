// Error: what a method throws to fail its call with a given error object.
#include "polyglot/error.hpp"

namespace polyglot {

Error::Error(std::string code_, std::string message_, Value data_)
    : std::runtime_error(code_ + ": " + message_),
      code(std::move(code_)),
      message(std::move(message_)),
      data(std::move(data_)) {}

Error Error::invalid_params(std::string message) {
    return Error(polyglot::code::INVALID_PARAMS, std::move(message));
}

}  // namespace polyglot
