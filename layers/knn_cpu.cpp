// CPU kNN kernels (layers/knn_kernels.h): a kd-tree with tight per-node bounding boxes and a tiled brute force.
// Both keep, per query, a sorted top-k list ordered by (squared distance, index); ties at the k-th distance are
// resolved by index, so the result is unique and independent of the method and of the thread count (every query
// is independent; engine::parallel_for splits queries into static ranges).
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "engine/engine.h"
#include "engine/parallel.h"
#include "layers/knn_kernels.h"

namespace layers::cpu {

using engine::Tensor;

namespace {

// The running top-k of one query: (d2, idx) pairs sorted ascending by (d2, idx).
struct TopK {
  int64_t k = 0, n = 0;
  double* d;
  int64_t* id;
  bool full() const { return n == k; }
  // Lexicographic (d2, j) < current worst: only then does a candidate enter.
  bool accepts(double d2, int64_t j) const {
    if (n < k || n == 0) return true;
    return d2 < d[n - 1] || (d2 == d[n - 1] && j < id[n - 1]);
  }
  void insert(double d2, int64_t j) {
    int64_t pos = n < k ? n++ : k - 1;  // the slot freed (the worst falls off when full)
    while (pos > 0 && (d[pos - 1] > d2 || (d[pos - 1] == d2 && id[pos - 1] > j))) {
      d[pos] = d[pos - 1];
      id[pos] = id[pos - 1];
      --pos;
    }
    d[pos] = d2;
    id[pos] = j;
  }
  // Pruning bound: a box whose lower bound exceeds the worst distance cannot hold a better candidate (a box at
  // exactly that distance may hold a tie with a smaller index, so it is visited).
  bool prune(double lower) const { return n == k && n > 0 && lower > d[n - 1]; }
};

template <class T>
std::vector<double> to_double(const Tensor& points) {
  const int64_t n = points.numel();
  const T* p = points.data<T>();
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<double>(p[i]);
  return out;
}

std::vector<double> points_as_double(const Tensor& points) {
  return points.dtype() == engine::DType::F64 ? to_double<double>(points) : to_double<float>(points);
}

// ------------------------------------------------------------------------------------------------ kd-tree
constexpr int64_t kLeafSize = 16;

struct KdTree {
  int64_t N = 0, D = 0;
  std::vector<double> pts;      // [N, D] in tree order (leaf points contiguous)
  std::vector<int64_t> order;   // tree position -> original index
  struct Node {
    int64_t begin, end;
    int64_t left = -1, right = -1;  // children (both or neither)
  };
  std::vector<Node> nodes;
  std::vector<double> lo, hi;   // [nodes, D] tight bounding boxes

  KdTree(const std::vector<double>& p, int64_t n, int64_t d) : N(n), D(d) {
    order.resize(static_cast<size_t>(N));
    std::iota(order.begin(), order.end(), int64_t(0));
    nodes.reserve(static_cast<size_t>(2 * (N / kLeafSize + 1)));
    build(p, 0, N);
    pts.resize(static_cast<size_t>(N * D));
    for (int64_t t = 0; t < N; ++t)
      std::memcpy(&pts[static_cast<size_t>(t * D)], &p[static_cast<size_t>(order[t] * D)],
                  sizeof(double) * static_cast<size_t>(D));
  }

  int64_t build(const std::vector<double>& p, int64_t b, int64_t e) {
    const int64_t id = static_cast<int64_t>(nodes.size());
    nodes.push_back({b, e});
    lo.resize(static_cast<size_t>((id + 1) * D));
    hi.resize(static_cast<size_t>((id + 1) * D));
    double* l = &lo[static_cast<size_t>(id * D)];
    double* h = &hi[static_cast<size_t>(id * D)];
    for (int64_t d = 0; d < D; ++d) l[d] = h[d] = p[static_cast<size_t>(order[b] * D + d)];
    for (int64_t t = b + 1; t < e; ++t) {
      const double* q = &p[static_cast<size_t>(order[t] * D)];
      for (int64_t d = 0; d < D; ++d) {
        l[d] = std::min(l[d], q[d]);
        h[d] = std::max(h[d], q[d]);
      }
    }
    if (e - b <= kLeafSize) return id;
    int64_t dim = 0;
    for (int64_t d = 1; d < D; ++d)
      if (h[d] - l[d] > h[dim] - l[dim]) dim = d;
    if (!(h[dim] > l[dim])) return id;  // all points identical: one (large) leaf
    const int64_t mid = b + (e - b) / 2;
    std::nth_element(order.begin() + b, order.begin() + mid, order.begin() + e, [&](int64_t x, int64_t y) {
      const double a = p[static_cast<size_t>(x * D + dim)], c = p[static_cast<size_t>(y * D + dim)];
      return a < c || (a == c && x < y);
    });
    const int64_t left = build(p, b, mid);
    const int64_t right = build(p, mid, e);
    nodes[static_cast<size_t>(id)].left = left;
    nodes[static_cast<size_t>(id)].right = right;
    return id;
  }

  double box_distance(int64_t node, const double* q) const {
    const double* l = &lo[static_cast<size_t>(node * D)];
    const double* h = &hi[static_cast<size_t>(node * D)];
    double acc = 0;
    for (int64_t d = 0; d < D; ++d) {
      const double v = q[d] < l[d] ? l[d] - q[d] : (q[d] > h[d] ? q[d] - h[d] : 0.0);
      acc += v * v;
    }
    return acc;
  }

  void search(int64_t node, const double* q, int64_t self, TopK& top, int64_t& visited) const {
    const Node& nd = nodes[static_cast<size_t>(node)];
    if (nd.left < 0) {
      visited += nd.end - nd.begin;
      for (int64_t t = nd.begin; t < nd.end; ++t) {
        const int64_t j = order[static_cast<size_t>(t)];
        if (j == self) continue;
        const double* p = &pts[static_cast<size_t>(t * D)];
        double acc = 0;
        for (int64_t d = 0; d < D; ++d) {
          const double v = p[d] - q[d];
          acc += v * v;
        }
        if (top.accepts(acc, j)) top.insert(acc, j);
      }
      return;
    }
    const double dl = box_distance(nd.left, q), dr = box_distance(nd.right, q);
    const int64_t first = dl <= dr ? nd.left : nd.right, second = dl <= dr ? nd.right : nd.left;
    const double d1 = std::min(dl, dr), d2 = std::max(dl, dr);
    if (!top.prune(d1)) search(first, q, self, top, visited);
    if (!top.prune(d2)) search(second, q, self, top, visited);
  }
};

}  // namespace

bool knn_kdtree(const Tensor& points, int64_t k, bool include_self, const Tensor& out, double max_visit_fraction) {
  const int64_t N = points.size(0), D = points.size(1);
  const std::vector<double> p = points_as_double(points);
  const KdTree tree(p, N, D);
  int64_t* o = out.data<int64_t>();
  std::vector<double> dbuf(static_cast<size_t>(k));
  if (max_visit_fraction > 0 && N >= 4096) {
    // Probe: 64 evenly spaced queries; give up when they look at too large a share of the points.
    constexpr int64_t kProbes = 64;
    int64_t visited = 0;
    for (int64_t s = 0; s < kProbes; ++s) {
      const int64_t i = s * N / kProbes;
      TopK top{k, 0, dbuf.data(), o + i * k};
      tree.search(0, &p[static_cast<size_t>(i * D)], include_self ? -1 : i, top, visited);
    }
    if (static_cast<double>(visited) > max_visit_fraction * static_cast<double>(kProbes * N)) return false;
  }
  // Queries in tree order: consecutive queries are spatial neighbours and walk the same nodes and leaves, so the
  // tree stays in cache (in input order, a random event, each query touched cold memory: time grew faster than
  // N log N above ~50k points).
  engine::parallel_for(0, N, 64, [&](int64_t b, int64_t e) {
    std::vector<double> d(static_cast<size_t>(k));
    int64_t visited = 0;
    for (int64_t t = b; t < e; ++t) {
      const int64_t i = tree.order[static_cast<size_t>(t)];
      TopK top{k, 0, d.data(), o + i * k};
      tree.search(0, &tree.pts[static_cast<size_t>(t * D)], include_self ? -1 : i, top, visited);
    }
  });
  return true;
}

void knn_bruteforce(const Tensor& points, int64_t k, bool include_self, const Tensor& out) {
  const int64_t N = points.size(0), D = points.size(1);
  const std::vector<double> p = points_as_double(points);
  // Point-transposed copy [D, N]: the inner loop runs over a tile of points (vectorised), one dim at a time.
  std::vector<double> pt(static_cast<size_t>(N * D));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t d = 0; d < D; ++d) pt[static_cast<size_t>(d * N + i)] = p[static_cast<size_t>(i * D + d)];
  constexpr int64_t kQueryTile = 32, kPointTile = 256;
  int64_t* o = out.data<int64_t>();
  const int64_t qtiles = (N + kQueryTile - 1) / kQueryTile;
  engine::parallel_for(0, qtiles, 1, [&](int64_t tb, int64_t te) {
    std::vector<double> dbuf(static_cast<size_t>(kQueryTile * k));
    std::vector<double> acc(static_cast<size_t>(kPointTile));
    for (int64_t qt = tb; qt < te; ++qt) {
      const int64_t q0 = qt * kQueryTile, q1 = std::min(N, q0 + kQueryTile);
      std::vector<TopK> tops;
      for (int64_t i = q0; i < q1; ++i) tops.push_back(TopK{k, 0, &dbuf[static_cast<size_t>((i - q0) * k)], o + i * k});
      // Point tiles in increasing index order, the query tile's rows reuse the tile from cache.
      for (int64_t p0 = 0; p0 < N; p0 += kPointTile) {
        const int64_t len = std::min(kPointTile, N - p0);
        for (int64_t i = q0; i < q1; ++i) {
          const double* q = &p[static_cast<size_t>(i * D)];
          double* a = acc.data();
          std::fill(a, a + len, 0.0);
          for (int64_t d = 0; d < D; ++d) {
            const double qd = q[d];
            const double* col = &pt[static_cast<size_t>(d * N + p0)];
#pragma omp simd
            for (int64_t t = 0; t < len; ++t) {
              const double v = col[t] - qd;
              a[t] += v * v;
            }
          }
          TopK& top = tops[static_cast<size_t>(i - q0)];
          for (int64_t t = 0; t < len; ++t) {
            const int64_t j = p0 + t;
            if (j == i && !include_self) continue;
            if (top.accepts(a[t], j)) top.insert(a[t], j);
          }
        }
      }
    }
  });
}

}  // namespace layers::cpu
