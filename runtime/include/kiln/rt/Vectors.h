// Cosine similarity and nearest neighbours over the rows of an embedding
// table (row-major f32[rows, dim]), for the examples that show what their
// embeddings learned.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::rt {

/// a.b / (|a| |b|); 0 if either vector is zero.
float cosineSimilarity(const float* a, const float* b, int64_t dim);

struct Neighbour {
  int64_t row = 0;
  float similarity = 0;
};

/// The k rows most cosine-similar to row `query` (itself excluded), most
/// similar first; ties go to the lower row. Rows for which `allowed` is given
/// and false are skipped.
std::vector<Neighbour> nearestByCosine(const float* table, int64_t rows, int64_t dim, int64_t query, int64_t k,
                                       const std::vector<bool>* allowed = nullptr);

} // namespace kiln::rt
