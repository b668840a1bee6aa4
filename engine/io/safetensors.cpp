// safetensors writer (ordered JSON header padded to 8 bytes, dense little-endian data, atomic temp-file + fsync +
// rename) and a strictly validating reader whose errors name the file.
#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace engine::io {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

constexpr const char* kSave = "save_safetensors";
constexpr const char* kLoad = "load_safetensors";

const char* st_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

bool parse_st_dtype(const std::string& s, DType& out) {
  for (DType t : {DType::F32, DType::F64, DType::I32, DType::I64, DType::U8, DType::Bool})
    if (s == st_dtype(t)) {
      out = t;
      return true;
    }
  return false;
}

// Writes all of `data` to fd, retrying short writes.
void write_all(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    ENGINE_CHECK(w > 0, kSave, "{}: write failed: {}", path, std::strerror(errno));
    data += w;
    n -= static_cast<size_t>(w);
  }
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

// Header JSON (ordered as given) and the dense CPU copies whose bytes follow it.
std::string build_header(const NamedTensors& tensors, const Metadata& metadata, std::vector<Tensor>& dense) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    check_defined(kSave, t, name.c_str());
    ENGINE_CHECK(name != "__metadata__" && !header.contains(name), kSave, "tensor name '{}' is reserved or repeated",
                 name);
    Tensor d = t.detach().to(Device::cpu()).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(d.numel() * d.element_size());
    header[name] = {{"dtype", st_dtype(d.dtype())}, {"shape", d.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    dense.push_back(d);
  }
  std::string json = header.empty() ? std::string("{}") : header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  return json;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  std::vector<Tensor> dense;
  const std::string json = build_header(tensors, metadata, dense);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ENGINE_CHECK(fd >= 0, kSave, "{}: cannot create {}: {}", path, tmp, std::strerror(errno));
  try {
    char len[8];
    const uint64_t n = json.size();
    std::memcpy(len, &n, 8);
    write_all(fd, len, 8, path);
    write_all(fd, json.data(), json.size(), path);
    for (const Tensor& d : dense)
      write_all(fd, static_cast<const char*>(d.raw_data()), static_cast<size_t>(d.numel() * d.element_size()), path);
    ENGINE_CHECK(::fsync(fd) == 0, kSave, "{}: fsync failed: {}", path, std::strerror(errno));
    ENGINE_CHECK(::close(fd) == 0, kSave, "{}: close failed: {}", path, std::strerror(errno));
    fd = -1;
    ENGINE_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, kSave, "{}: rename from {} failed: {}", path, tmp,
                 std::strerror(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Persist the rename itself (best effort: some file systems refuse fsync on directories).
  int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

const Tensor* SafetensorsContents::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

namespace {

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& j) {
  ENGINE_CHECK(j.is_object() && j.contains("dtype") && j.contains("shape") && j.contains("data_offsets"), kLoad,
               "{}: tensor '{}' needs dtype, shape and data_offsets", path, name);
  Entry e{name, DType::F32, {}, 0, 0};
  ENGINE_CHECK(j["dtype"].is_string() && parse_st_dtype(j["dtype"].get<std::string>(), e.dtype), kLoad,
               "{}: tensor '{}' has unsupported dtype {} (supported: F32, F64, I32, I64, U8, BOOL)", path, name,
               j["dtype"].dump());
  ENGINE_CHECK(j["shape"].is_array(), kLoad, "{}: tensor '{}' shape is not a list", path, name);
  uint64_t numel = 1;
  for (const auto& d : j["shape"]) {
    ENGINE_CHECK(d.is_number_unsigned(), kLoad, "{}: tensor '{}' has invalid shape {}", path, name, j["shape"].dump());
    e.shape.push_back(d.get<int64_t>());
    numel *= d.get<uint64_t>();
  }
  const auto& off = j["data_offsets"];
  ENGINE_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(), kLoad,
               "{}: tensor '{}' has invalid data_offsets {}", path, name, off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  const uint64_t nbytes = numel * static_cast<uint64_t>(dtype_size(e.dtype));
  ENGINE_CHECK(e.end >= e.begin && e.end - e.begin == nbytes, kLoad,
               "{}: tensor '{}' ({} {}) needs {} bytes but data_offsets [{}, {}] span {}", path, name, j["dtype"].dump(),
               shape_str(e.shape), nbytes, e.begin, e.end, static_cast<int64_t>(e.end - e.begin));
  return e;
}

Metadata parse_metadata(const std::string& path, const nlohmann::json& j) {
  ENGINE_CHECK(j.is_object(), kLoad, "{}: __metadata__ is not an object", path);
  Metadata m;
  for (const auto& [k, v] : j.items()) {
    ENGINE_CHECK(v.is_string(), kLoad, "{}: metadata '{}' is not a string", path, k);
    m[k] = v.get<std::string>();
  }
  return m;
}

}  // namespace

SafetensorsContents load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  ENGINE_CHECK(in.good(), kLoad, "{}: cannot open file", path);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  ENGINE_CHECK(file_size >= 8, kLoad, "{}: truncated ({} bytes, no header length)", path, file_size);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  ENGINE_CHECK(header_len <= file_size - 8, kLoad, "{}: truncated or not safetensors (header length {} > {} bytes left)",
               path, header_len, file_size - 8);
  std::string json(header_len, '\0');
  in.read(json.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    ENGINE_FAIL(kLoad, "{}: bad JSON header: {}", path, e.what());
  }
  ENGINE_CHECK(header.is_object(), kLoad, "{}: header is not a JSON object", path);
  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [name, j] : header.items()) {
    if (name == "__metadata__") out.metadata = parse_metadata(path, j);
    else entries.push_back(parse_entry(path, name, j));
  }
  // by (begin, end): an empty tensor shares its begin with the next one and must come first
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  const uint64_t data_size = file_size - 8 - header_len;
  uint64_t expected = 0;
  for (const Entry& e : entries) {
    ENGINE_CHECK(e.begin == expected, kLoad, "{}: tensor '{}' data starts at {} but the previous one ends at {}", path,
                 e.name, e.begin, expected);
    ENGINE_CHECK(e.end <= data_size, kLoad, "{}: truncated: tensor '{}' ends at byte {} but only {} data bytes exist",
                 path, e.name, e.end, data_size);
    expected = e.end;
  }
  ENGINE_CHECK(expected == data_size, kLoad, "{}: {} trailing bytes after the last tensor", path, data_size - expected);
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(e.end - e.begin));
    ENGINE_CHECK(in.good() || e.end == e.begin, kLoad, "{}: read error in tensor '{}'", path, e.name);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace engine::io
