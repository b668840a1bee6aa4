// TrackML score: join submission onto truth, per-track majority particle (ties -> smaller id), double majority.
#include "data/score.h"

#include <algorithm>
#include <fmt/format.h>
#include <stdexcept>
#include <unordered_map>

namespace data {

double trackml_score(const Truth& truth, const Submission& sub) {
  if (sub.hit_id.size() != sub.track_id.size()) throw std::invalid_argument("trackml_score: submission columns differ in length");
  if (truth.weight.size() != truth.size() || truth.particle_id.size() != truth.size()) {
    throw std::invalid_argument("trackml_score: truth columns differ in length");
  }
  std::unordered_map<int64_t, int64_t> track_of(sub.hit_id.size() * 2);
  for (size_t i = 0; i < sub.hit_id.size(); ++i) {
    if (!track_of.emplace(sub.hit_id[i], sub.track_id[i]).second) {
      throw std::invalid_argument(fmt::format("trackml_score: hit_id {} appears twice in the submission", sub.hit_id[i]));
    }
  }
  struct HitRow {
    int64_t track;  // dense track index
    int64_t pid;
    double weight;
  };
  std::unordered_map<int64_t, int64_t> dense;  // submitted track id -> dense index
  std::unordered_map<int64_t, int64_t> particle_hits;
  std::vector<HitRow> rows(truth.size());
  double total = 0;
  int64_t next = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    auto it = track_of.find(truth.hit_id[i]);
    int64_t t = next;  // a hit missing from the submission is its own track
    if (it != track_of.end()) t = dense.try_emplace(it->second, next).first->second;
    if (t == next) ++next;
    rows[i] = {t, truth.particle_id[i], truth.weight[i]};
    ++particle_hits[truth.particle_id[i]];
    total += truth.weight[i];
  }
  if (!(total > 0)) throw std::invalid_argument("trackml_score: the truth weights sum to zero");
  std::sort(rows.begin(), rows.end(), [](const HitRow& a, const HitRow& b) {
    return a.track != b.track ? a.track < b.track : a.pid < b.pid;
  });
  double good = 0;
  for (size_t b = 0; b < rows.size();) {  // one track: rows [b, e)
    size_t e = b;
    int64_t best_pid = 0, best_n = 0;
    double best_w = 0;
    while (e < rows.size() && rows[e].track == rows[b].track) {
      size_t g = e;
      double w = 0;
      while (g < rows.size() && rows[g].track == rows[b].track && rows[g].pid == rows[e].pid) w += rows[g++].weight;
      const int64_t n = static_cast<int64_t>(g - e);
      if (n > best_n) best_pid = rows[e].pid, best_n = n, best_w = w;  // strictly larger: smaller pid wins ties
      e = g;
    }
    const int64_t track_size = static_cast<int64_t>(e - b);
    if (2 * best_n > track_size && 2 * best_n > particle_hits[best_pid]) good += best_w;
    b = e;
  }
  return good / total;
}

}  // namespace data
