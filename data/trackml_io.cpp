// TrackML table readers/writers on top of the CSV tokenizer; cross-table checks for read_event.
#include "data/trackml_io.h"

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <unordered_map>

#include "data/csv.h"

namespace data {

namespace {

// Throws on the first repeated hit_id, naming the line (header is line 1, so row i is line i + 2 when no blank lines).
void check_unique_ids(const std::string& path, const std::vector<int64_t>& ids, const std::vector<size_t>& lines) {
  std::unordered_map<int64_t, size_t> seen;
  seen.reserve(ids.size() * 2);
  for (size_t i = 0; i < ids.size(); ++i) {
    auto [it, fresh] = seen.emplace(ids[i], lines[i]);
    if (!fresh) {
      throw ParseError(fmt::format("{}:{}: column 1 'hit_id': duplicate hit_id {} (first on line {})", path, lines[i],
                                   ids[i], it->second));
    }
  }
}

void append_row_end(std::string& out) { out.back() = '\n'; }

template <class T> void put(std::string& out, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    append_number(out, static_cast<float>(v));
  } else {
    append_number(out, static_cast<int64_t>(v));
  }
  out.push_back(',');
}

}  // namespace

Hits read_hits(const std::string& path) {
  CsvTable t(path);
  const size_t c_id = t.column("hit_id"), c_x = t.column("x"), c_y = t.column("y"), c_z = t.column("z"),
               c_vol = t.column("volume_id"), c_lay = t.column("layer_id"), c_mod = t.column("module_id");
  Hits h;
  const size_t n = t.count_rows();
  for (auto* v : {&h.x, &h.y, &h.z}) v->reserve(n);
  for (auto* v : {&h.volume_id, &h.layer_id, &h.module_id}) v->reserve(n);
  h.hit_id.reserve(n);
  std::vector<size_t> lines;
  lines.reserve(n);
  t.for_each_row([&](const CsvTable::Row& r) {
    h.hit_id.push_back(r.i64(c_id));
    h.x.push_back(r.f32(c_x));
    h.y.push_back(r.f32(c_y));
    h.z.push_back(r.f32(c_z));
    h.volume_id.push_back(r.i32(c_vol));
    h.layer_id.push_back(r.i32(c_lay));
    h.module_id.push_back(r.i32(c_mod));
    lines.push_back(r.line());
  });
  check_unique_ids(path, h.hit_id, lines);
  return h;
}

Truth read_truth(const std::string& path) {
  CsvTable t(path);
  const size_t c_id = t.column("hit_id"), c_pid = t.column("particle_id");
  const size_t cols[7] = {t.column("tx"),  t.column("ty"),  t.column("tz"),    t.column("tpx"),
                          t.column("tpy"), t.column("tpz"), t.column("weight")};
  Truth tr;
  std::vector<float>* dst[7] = {&tr.tx, &tr.ty, &tr.tz, &tr.tpx, &tr.tpy, &tr.tpz, &tr.weight};
  const size_t n = t.count_rows();
  tr.hit_id.reserve(n);
  tr.particle_id.reserve(n);
  for (auto* v : dst) v->reserve(n);
  std::vector<size_t> lines;
  lines.reserve(n);
  t.for_each_row([&](const CsvTable::Row& r) {
    tr.hit_id.push_back(r.i64(c_id));
    tr.particle_id.push_back(r.i64(c_pid));
    for (int k = 0; k < 7; ++k) dst[k]->push_back(r.f32(cols[k]));
    lines.push_back(r.line());
  });
  check_unique_ids(path, tr.hit_id, lines);
  return tr;
}

Particles read_particles(const std::string& path) {
  CsvTable t(path);
  const size_t c_pid = t.column("particle_id"), c_q = t.column("q"), c_nh = t.column("nhits");
  const size_t cols[6] = {t.column("vx"), t.column("vy"), t.column("vz"), t.column("px"), t.column("py"), t.column("pz")};
  const bool typed = t.has_column("particle_type");
  const size_t c_type = typed ? t.column("particle_type") : 0;
  Particles p;
  std::vector<float>* dst[6] = {&p.vx, &p.vy, &p.vz, &p.px, &p.py, &p.pz};
  const size_t n = t.count_rows();
  p.particle_id.reserve(n);
  for (auto* v : dst) v->reserve(n);
  t.for_each_row([&](const CsvTable::Row& r) {
    p.particle_id.push_back(r.i64(c_pid));
    if (typed) p.particle_type.push_back(r.i32(c_type));
    for (int k = 0; k < 6; ++k) dst[k]->push_back(r.f32(cols[k]));
    p.q.push_back(r.i32(c_q));
    p.nhits.push_back(r.i32(c_nh));
  });
  return p;
}

Cells read_cells(const std::string& path) {
  CsvTable t(path);
  const size_t c_id = t.column("hit_id"), c_0 = t.column("ch0"), c_1 = t.column("ch1"), c_v = t.column("value");
  Cells c;
  const size_t n = t.count_rows();
  c.hit_id.reserve(n);
  c.ch0.reserve(n);
  c.ch1.reserve(n);
  c.value.reserve(n);
  t.for_each_row([&](const CsvTable::Row& r) {
    c.hit_id.push_back(r.i64(c_id));
    c.ch0.push_back(r.i32(c_0));
    c.ch1.push_back(r.i32(c_1));
    c.value.push_back(r.f32(c_v));
  });
  return c;
}

std::string find_event_file(const std::string& prefix, const std::string& name) {
  for (const char* ext : {".csv", ".csv.gz"}) {
    std::string p = prefix + "-" + name + ext;
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

std::string event_prefix(const std::string& dir, int64_t event_id) {
  return fmt::format("{}/event{:09d}", dir, event_id);
}

namespace {

int64_t parse_event_id(const std::string& prefix) {
  const std::string name = std::filesystem::path(prefix).filename().string();
  if (name.size() < 9) throw ParseError(fmt::format("{}: event prefix must end in 9 digits", prefix));
  const std::string digits = name.substr(name.size() - 9);
  if (!std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    throw ParseError(fmt::format("{}: event prefix must end in 9 digits", prefix));
  }
  return std::stoll(digits);
}

// Reorders truth rows into hits order; throws when the two files do not hold the same hit ids.
void align_truth(const std::string& truth_path, const Hits& hits, Truth& truth) {
  if (truth.hit_id == hits.hit_id) return;
  std::unordered_map<int64_t, size_t> row_of;
  row_of.reserve(hits.size() * 2);
  for (size_t i = 0; i < hits.size(); ++i) row_of.emplace(hits.hit_id[i], i);
  std::vector<size_t> perm(hits.size(), SIZE_MAX);  // perm[hits row] = truth row
  for (size_t j = 0; j < truth.size(); ++j) {
    auto it = row_of.find(truth.hit_id[j]);
    if (it == row_of.end()) {
      throw ParseError(fmt::format("{}: data row {}: column 1 'hit_id': hit_id {} is not in the hits file", truth_path,
                                   j + 1, truth.hit_id[j]));
    }
    perm[it->second] = j;
  }
  for (size_t i = 0; i < hits.size(); ++i) {
    if (perm[i] == SIZE_MAX) {
      throw ParseError(fmt::format("{}: hit_id {} of the hits file has no truth row", truth_path, hits.hit_id[i]));
    }
  }
  auto permute = [&](auto& v) {
    auto old = v;
    for (size_t i = 0; i < perm.size(); ++i) v[i] = old[perm[i]];
  };
  permute(truth.hit_id);
  permute(truth.particle_id);
  for (auto* v : {&truth.tx, &truth.ty, &truth.tz, &truth.tpx, &truth.tpy, &truth.tpz, &truth.weight}) permute(*v);
}

void check_cells(const std::string& cells_path, const Hits& hits, const Cells& cells) {
  std::vector<int64_t> ids = hits.hit_id;
  std::sort(ids.begin(), ids.end());
  for (size_t j = 0; j < cells.size(); ++j) {
    if (!std::binary_search(ids.begin(), ids.end(), cells.hit_id[j])) {
      throw ParseError(fmt::format("{}: data row {}: column 1 'hit_id': hit_id {} is not in the hits file", cells_path,
                                   j + 1, cells.hit_id[j]));
    }
  }
}

}  // namespace

Event read_event(const std::string& prefix) {
  Event ev;
  ev.event_id = parse_event_id(prefix);
  const std::string hits_path = find_event_file(prefix, "hits");
  if (hits_path.empty()) throw ParseError(fmt::format("{}: no hits file ({}-hits.csv[.gz])", prefix, prefix));
  ev.hits = read_hits(hits_path);
  if (auto p = find_event_file(prefix, "truth"); !p.empty()) {
    ev.truth = read_truth(p);
    align_truth(p, ev.hits, ev.truth);
  }
  if (auto p = find_event_file(prefix, "particles"); !p.empty()) ev.particles = read_particles(p);
  if (auto p = find_event_file(prefix, "cells"); !p.empty()) {
    ev.cells = read_cells(p);
    check_cells(p, ev.hits, ev.cells);
  }
  return ev;
}

namespace {

std::string format_hits(const Hits& h) {
  std::string s = "hit_id,x,y,z,volume_id,layer_id,module_id\n";
  s.reserve(h.size() * 48);
  for (size_t i = 0; i < h.size(); ++i) {
    put(s, h.hit_id[i]), put(s, h.x[i]), put(s, h.y[i]), put(s, h.z[i]);
    put(s, h.volume_id[i]), put(s, h.layer_id[i]), put(s, h.module_id[i]);
    append_row_end(s);
  }
  return s;
}

std::string format_truth(const Truth& t) {
  std::string s = "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n";
  s.reserve(t.size() * 96);
  for (size_t i = 0; i < t.size(); ++i) {
    put(s, t.hit_id[i]), put(s, t.particle_id[i]);
    put(s, t.tx[i]), put(s, t.ty[i]), put(s, t.tz[i]), put(s, t.tpx[i]), put(s, t.tpy[i]), put(s, t.tpz[i]);
    put(s, t.weight[i]);
    append_row_end(s);
  }
  return s;
}

std::string format_particles(const Particles& p) {
  const bool typed = !p.particle_type.empty();
  std::string s = typed ? "particle_id,particle_type,vx,vy,vz,px,py,pz,q,nhits\n" : "particle_id,vx,vy,vz,px,py,pz,q,nhits\n";
  s.reserve(p.size() * 96);
  for (size_t i = 0; i < p.size(); ++i) {
    put(s, p.particle_id[i]);
    if (typed) put(s, p.particle_type[i]);
    put(s, p.vx[i]), put(s, p.vy[i]), put(s, p.vz[i]), put(s, p.px[i]), put(s, p.py[i]), put(s, p.pz[i]);
    put(s, p.q[i]), put(s, p.nhits[i]);
    append_row_end(s);
  }
  return s;
}

std::string format_cells(const Cells& c) {
  std::string s = "hit_id,ch0,ch1,value\n";
  s.reserve(c.size() * 32);
  for (size_t i = 0; i < c.size(); ++i) {
    put(s, c.hit_id[i]), put(s, c.ch0[i]), put(s, c.ch1[i]), put(s, c.value[i]);
    append_row_end(s);
  }
  return s;
}

}  // namespace

void write_event(const std::string& prefix, const Event& event, bool gzip) {
  const std::string ext = gzip ? ".csv.gz" : ".csv";
  auto write = [&](const char* name, size_t rows, const std::string& text) {
    if (rows > 0) write_text_file_atomic(prefix + "-" + name + ext, text, gzip);
  };
  write("hits", event.hits.size(), format_hits(event.hits));
  write("truth", event.truth.size(), format_truth(event.truth));
  write("particles", event.particles.size(), format_particles(event.particles));
  write("cells", event.cells.size(), format_cells(event.cells));
}

}  // namespace data
