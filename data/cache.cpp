// Processed-sample cache: safetensors per sample, manifest.json (nlohmann-json), deterministic split.
#include "data/cache.h"

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/csv.h"
#include "data/trackml_io.h"
#include "engine/io/safetensors.h"
#include "engine/parallel.h"

namespace data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "hept-tracking-cache";
constexpr int kVersion = 1;

engine::Tensor required(const engine::io::SafetensorsContents& c, const std::string& path, const char* name) {
  const engine::Tensor* t = c.find(name);
  if (!t) throw std::runtime_error(fmt::format("{}: missing tensor '{}'", path, name));
  return *t;
}

json options_json(const FeatureOptions& o) {
  return {{"n_sectors", o.n_sectors},     {"sector_ds", o.sector_ds},
          {"sector_di", o.sector_di},     {"graphs", o.graphs}, {"radius_pairs", o.radius_pairs},
          {"pair_radius", o.pair_radius}, {"pair_max_neighbors", o.pair_max_neighbors},
          {"knn_k", o.knn_k}};
}

FeatureOptions options_from_json(const json& j) {
  FeatureOptions o;
  o.n_sectors = j.at("n_sectors");
  o.sector_ds = j.at("sector_ds");
  o.sector_di = j.at("sector_di");
  o.graphs = j.at("graphs");
  o.radius_pairs = j.value("radius_pairs", true);  // caches written before the option have the pairs
  o.pair_radius = j.at("pair_radius");
  o.pair_max_neighbors = j.at("pair_max_neighbors");
  o.knn_k = j.at("knn_k");
  return o;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> prefixes;
  for (const auto& in : inputs) {
    if (fs::is_directory(in)) {
      auto found = find_event_prefixes(in);
      prefixes.insert(prefixes.end(), found.begin(), found.end());
    } else {
      prefixes.push_back(in);
    }
  }
  return prefixes;
}

}  // namespace

std::vector<std::string> find_event_prefixes(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    for (const char* suffix : {"-hits.csv", "-hits.csv.gz"}) {
      const std::string sfx = suffix;
      if (name.size() == 14 + sfx.size() && name.rfind("event", 0) == 0 && name.ends_with(sfx)) {
        out.push_back((e.path().parent_path() / name.substr(0, 14)).string());
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::vector<size_t>> split_indices(const std::vector<CacheEntry>& entries) {
  std::vector<size_t> order(entries.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(entries[a].event_id, entries[a].sector) < std::tie(entries[b].event_id, entries[b].sector);
  });
  const size_t len = order.size();
  size_t n_train = len * 8 / 10;
  n_train -= n_train % 10;
  const size_t n_valid = len / 10;
  std::vector<std::vector<size_t>> split(3);
  split[0].assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_train));
  split[1].assign(order.begin() + static_cast<std::ptrdiff_t>(n_train),
                  order.begin() + static_cast<std::ptrdiff_t>(n_train + n_valid));
  split[2].assign(order.begin() + static_cast<std::ptrdiff_t>(n_train + n_valid), order.end());
  return split;
}

namespace {

// Pair lists are stored as int32 (half the disk of int64; a sample never has 2^31 hits) and read back as int64.
engine::Tensor as_stored_index(const engine::Tensor& pairs, int64_t num_hits) {
  if (num_hits >= (int64_t{1} << 31))
    throw std::invalid_argument(fmt::format("save_sample: {} hits do not fit int32 pair indices", num_hits));
  return pairs.to(engine::DType::I32);
}

}  // namespace

void save_sample(const std::string& path, const Sample& s) {
  engine::io::save_safetensors(path,
                               {{"x", s.x},
                                {"coords", s.coords},
                                {"pos", s.pos},
                                {"particle_id", s.particle_id},
                                {"pt", s.pt},
                                {"reconstructable", s.reconstructable},
                                {"layer", s.layer},
                                {"hit_id", s.hit_id},
                                {"particle_sector", s.particle_sector},
                                {"point_pairs", as_stored_index(s.point_pairs, s.num_hits())},
                                {"knn_edges", as_stored_index(s.knn_edges, s.num_hits())}},
                               {{"event_id", std::to_string(s.event_id)}, {"sector", std::to_string(s.sector)}});
}

Sample load_sample(const std::string& path) {
  const auto c = engine::io::load_safetensors(path);
  Sample s;
  auto meta = [&](const char* key) {
    auto it = c.metadata.find(key);
    if (it == c.metadata.end()) throw std::runtime_error(fmt::format("{}: missing metadata '{}'", path, key));
    return std::stoll(it->second);
  };
  s.event_id = meta("event_id");
  s.sector = meta("sector");
  s.x = required(c, path, "x");
  s.coords = required(c, path, "coords");
  s.pos = required(c, path, "pos");
  s.particle_id = required(c, path, "particle_id");
  s.pt = required(c, path, "pt");
  s.reconstructable = required(c, path, "reconstructable");
  s.layer = required(c, path, "layer");
  s.hit_id = required(c, path, "hit_id");
  s.particle_sector = required(c, path, "particle_sector");
  s.point_pairs = required(c, path, "point_pairs").to(engine::DType::I64);  // int32 on disk (int64 in old caches)
  s.knn_edges = required(c, path, "knn_edges").to(engine::DType::I64);
  return s;
}

void build_cache(const std::vector<std::string>& inputs, const std::string& out_dir, const CacheOptions& options) {
  fs::create_directories(out_dir);
  Detector from_file;
  if (!options.detector_path.empty()) from_file = read_detectors(options.detector_path);
  const Detector& detector = options.detector_path.empty() ? builtin_detector() : from_file;
  const std::vector<std::string> prefixes = expand_inputs(inputs);
  std::vector<std::vector<CacheEntry>> per_event(prefixes.size());
  std::mutex progress_mutex;
  size_t done = 0;
  engine::parallel_for_each(static_cast<int64_t>(prefixes.size()), [&](int64_t i) {
    for (const Sample& s : build_samples(read_event(prefixes[i]), detector, options.features)) {
      CacheEntry e{s.event_id, s.sector, fmt::format("event{:09d}_s{}.safetensors", s.event_id, s.sector),
                   s.num_hits(), s.point_pairs.size(1), s.knn_edges.size(1)};
      save_sample((fs::path(out_dir) / e.file).string(), s);
      per_event[i].push_back(std::move(e));
    }
    const std::lock_guard<std::mutex> lock(progress_mutex);
    if (options.on_event_done) options.on_event_done(++done, prefixes.size());
  });
  std::vector<CacheEntry> entries;
  for (auto& event_entries : per_event)
    for (auto& e : event_entries) entries.push_back(std::move(e));
  json samples = json::array();
  for (const auto& e : entries) {
    samples.push_back({{"event_id", e.event_id}, {"sector", e.sector}, {"file", e.file}, {"num_hits", e.num_hits},
                       {"num_point_pairs", e.num_point_pairs}, {"num_knn_edges", e.num_knn_edges}});
  }
  const auto split = split_indices(entries);
  const json manifest = {{"format", kFormat},
                         {"version", kVersion},
                         {"features", options_json(options.features)},
                         {"detector", options.detector_path.empty() ? "builtin" : options.detector_path},
                         {"samples", samples},
                         {"split", {{"train", split[0]}, {"valid", split[1]}, {"test", split[2]}}}};
  write_text_file_atomic((fs::path(out_dir) / "manifest.json").string(), manifest.dump(1), /*gzip=*/false);
}

Dataset::Dataset(const std::string& cache_dir) : dir_(cache_dir) {
  const std::string path = (fs::path(cache_dir) / "manifest.json").string();
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open cache manifest", path));
  try {
    const json m = json::parse(in);
    if (m.at("format") != kFormat || m.at("version") != kVersion) {
      throw std::runtime_error("not a version-1 hept-tracking-cache manifest");
    }
    features_ = options_from_json(m.at("features"));
    for (const auto& s : m.at("samples")) {
      entries_.push_back({s.at("event_id"), s.at("sector"), s.at("file"), s.at("num_hits"), s.at("num_point_pairs"),
                          s.at("num_knn_edges")});
    }
    for (const char* name : {"train", "valid", "test"}) {
      split_.push_back(m.at("split").at(name).get<std::vector<size_t>>());
      for (size_t i : split_.back()) {
        if (i >= entries_.size()) throw std::runtime_error(fmt::format("split '{}' index {} out of range", name, i));
      }
    }
  } catch (const json::exception& e) {
    throw std::runtime_error(fmt::format("{}: bad manifest ({})", path, e.what()));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

Sample Dataset::load(Split split, size_t i) const {
  const auto& idx = indices(split);
  if (i >= idx.size()) throw std::out_of_range(fmt::format("Dataset::load: index {} >= split size {}", i, idx.size()));
  return load_sample((fs::path(dir_) / entries_[idx[i]].file).string());
}

}  // namespace data
