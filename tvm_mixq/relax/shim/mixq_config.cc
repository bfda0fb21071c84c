/*
 * Registers the project's `mixq.*` keys as TVM PassContext config options.
 *
 * TVM refuses PassContext config keys that nobody registered, and registration is a C++ API
 * (tvm::transform::PassContext::RegisterConfigOption, exported by libtvm_compiler.so). The
 * apache-tvm wheel ships the tvm/ffi headers but not tvm/ir/transform.h, so this file declares
 * the one static member it calls. Python (tvm_mixq/relax/config.py) loads this library with
 * RTLD_GLOBAL after `import tvm` and calls mixq_register_config_option() once per key, so the
 * list of keys, their types and their help text live in one place, on the Python side.
 *
 * Each key gets a legalization function that accepts only its declared type (bool keys also
 * take the integers 0 and 1, float keys also take integers) and otherwise fails with a message
 * naming the key, the expected type, what was given, and every registered mixq key.
 */
#include <tvm/ffi/any.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/string.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace tvm {
namespace transform {
// Declaration of the symbol exported by libtvm_compiler.so (declared private in TVM's header;
// access does not change the mangled name).
class PassContext {
 public:
  static void RegisterConfigOption(const char* key, ffi::String value_type_str,
                                   std::function<ffi::Any(ffi::Any)> legalization);
};
}  // namespace transform
}  // namespace tvm

namespace {

using tvm::ffi::Any;
using tvm::ffi::String;

enum class ValueKind { kBool, kInt, kFloat, kStr };

struct Registry {
  std::mutex mutex;
  std::vector<std::string> keys;  // "mixq.key (type)", in registration order
};

Registry& GetRegistry() {
  static Registry registry;
  return registry;
}

std::string ValidKeys() {
  Registry& reg = GetRegistry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  std::ostringstream os;
  for (size_t i = 0; i < reg.keys.size(); ++i) os << (i ? ", " : "") << reg.keys[i];
  return os.str();
}

const char* KindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt:
      return "int";
    case ValueKind::kFloat:
      return "float";
    default:
      return "str";
  }
}

std::string Describe(const Any& value) {
  int32_t tindex = value.type_index();
  if (tindex == tvm::ffi::TypeIndex::kTVMFFIInt) return "int " + std::to_string(value.cast<int64_t>());
  if (tindex == tvm::ffi::TypeIndex::kTVMFFIBool) return value.cast<bool>() ? "bool True" : "bool False";
  if (tindex == tvm::ffi::TypeIndex::kTVMFFIFloat) return "float " + std::to_string(value.cast<double>());
  if (auto s = value.as<String>()) return "str '" + std::string(*s) + "'";
  return value.GetTypeKey();
}

[[noreturn]] void Refuse(const std::string& key, ValueKind kind, const std::string& help, const Any& value,
                         const char* why) {
  TVM_FFI_THROW(TypeError) << "PassContext config " << key << " expects " << KindName(kind) << " (" << help
                           << "), got " << Describe(value) << why << ". Valid mixq keys: " << ValidKeys();
}

Any Legalize(const std::string& key, ValueKind kind, const std::string& help, Any value) {
  int32_t tindex = value.type_index();
  bool is_int = tindex == tvm::ffi::TypeIndex::kTVMFFIInt;
  bool is_bool = tindex == tvm::ffi::TypeIndex::kTVMFFIBool;
  bool is_float = tindex == tvm::ffi::TypeIndex::kTVMFFIFloat;
  switch (kind) {
    case ValueKind::kBool:
      if (is_bool) return value;
      if (is_int) {
        int64_t v = value.cast<int64_t>();
        if (v == 0 || v == 1) return Any(v == 1);
        Refuse(key, kind, help, value, " (only 0 and 1 stand for a bool)");
      }
      break;
    case ValueKind::kInt:
      if (is_int) return value;
      break;
    case ValueKind::kFloat:
      if (is_float) return value;
      if (is_int) return Any(static_cast<double>(value.cast<int64_t>()));
      break;
    case ValueKind::kStr:
      if (auto s = value.as<String>()) return Any(*s);
      break;
  }
  Refuse(key, kind, help, value, "");
}

}  // namespace

extern "C" {

/*!
 * \brief Register one mixq config key with TVM.
 * \param key The full key, e.g. "mixq.sram_limit_kb".
 * \param type One of "bool", "int", "float", "str".
 * \param help One line describing the value (used in error messages).
 * \return 0 on success, 1 for an unknown type, 2 if TVM refused the registration.
 */
__attribute__((visibility("default"))) int mixq_register_config_option(const char* key, const char* type,
                                                                       const char* help) {
  std::string type_str(type);
  ValueKind kind;
  if (type_str == "bool") {
    kind = ValueKind::kBool;
  } else if (type_str == "int") {
    kind = ValueKind::kInt;
  } else if (type_str == "float") {
    kind = ValueKind::kFloat;
  } else if (type_str == "str") {
    kind = ValueKind::kStr;
  } else {
    return 1;
  }
  std::string key_str(key);
  std::string help_str(help);
  try {
    tvm::transform::PassContext::RegisterConfigOption(
        key, String(type_str),
        [key_str, kind, help_str](Any value) -> Any { return Legalize(key_str, kind, help_str, std::move(value)); });
  } catch (const std::exception&) {
    return 2;
  }
  Registry& reg = GetRegistry();
  std::lock_guard<std::mutex> lock(reg.mutex);
  reg.keys.push_back(key_str + " (" + type_str + ")");
  return 0;
}

/*! \brief Version of this shim's C interface. */
__attribute__((visibility("default"))) int mixq_shim_abi_version(void) { return 1; }

}  // extern "C"
