// Cosine similarity and nearest neighbours (see Vectors.h).
#include "kiln/rt/Vectors.h"

#include "kiln/rt/Error.h"

#include <algorithm>
#include <cmath>

namespace kiln::rt {

float cosineSimilarity(const float* a, const float* b, int64_t dim) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < dim; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  if (aa == 0 || bb == 0)
    return 0;
  return static_cast<float>(ab / std::sqrt(aa * bb));
}

std::vector<Neighbour> nearestByCosine(const float* table, int64_t rows, int64_t dim, int64_t query, int64_t k,
                                       const std::vector<bool>* allowed) {
  if (query < 0 || query >= rows)
    fail("nearestByCosine: query row %lld outside 0..%lld", static_cast<long long>(query),
         static_cast<long long>(rows - 1));
  std::vector<Neighbour> all;
  all.reserve(static_cast<size_t>(rows));
  const float* q = table + query * dim;
  for (int64_t r = 0; r < rows; ++r) {
    if (r == query || (allowed && !(*allowed)[static_cast<size_t>(r)]))
      continue;
    all.push_back({r, cosineSimilarity(q, table + r * dim, dim)});
  }
  size_t n = std::min<size_t>(all.size(), static_cast<size_t>(std::max<int64_t>(k, 0)));
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                    [](const Neighbour& a, const Neighbour& b) {
                      return a.similarity != b.similarity ? a.similarity > b.similarity : a.row < b.row;
                    });
  all.resize(n);
  return all;
}

} // namespace kiln::rt
