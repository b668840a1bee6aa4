// The engine's exception type and the checking macros every public entry point uses.
// Messages name the op, the argument and the shapes: "matmul: a is [3, 4] but b is [5, 6] (inner dims differ)".
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdexcept>
#include <string>

namespace engine {

class EngineError : public std::runtime_error {
 public:
  explicit EngineError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace engine

// ENGINE_CHECK(cond, "op", "format {}", args...): throws EngineError("op: formatted message") when cond is false.
#define ENGINE_CHECK(cond, op, ...)                                                   \
  do {                                                                                \
    if (!(cond)) throw ::engine::EngineError(std::string(op) + ": " + fmt::format(__VA_ARGS__)); \
  } while (0)

#define ENGINE_FAIL(op, ...) throw ::engine::EngineError(std::string(op) + ": " + fmt::format(__VA_ARGS__))
