// MNIST loader: two IDX files per split, checked against each other.
#include "kiln/rt/Mnist.h"

#include "kiln/rt/Error.h"
#include "kiln/rt/Idx.h"

#include <filesystem>

namespace kiln::rt {

static constexpr const char* kFetchHint = "run scripts/fetch-data.sh (or make data)";

static std::string joinPath(const std::string& dir, const char* name) {
  if (dir.empty() || dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

Dataset loadMnist(const std::string& dir, const std::string& split) {
  const char* imagesName;
  const char* labelsName;
  if (split == "train") {
    imagesName = "train-images-idx3-ubyte";
    labelsName = "train-labels-idx1-ubyte";
  } else if (split == "test") {
    imagesName = "t10k-images-idx3-ubyte";
    labelsName = "t10k-labels-idx1-ubyte";
  } else {
    fail("loadMnist: unknown split '%s' (expected 'train' or 'test')", split.c_str());
  }

  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    fail("%s: MNIST directory not found; %s", dir.c_str(), kFetchHint);
  std::string imagesPath = joinPath(dir, imagesName);
  std::string labelsPath = joinPath(dir, labelsName);
  for (const std::string* path : {&imagesPath, &labelsPath})
    if (!std::filesystem::exists(*path, ec))
      fail("%s: MNIST file not found; %s", path->c_str(), kFetchHint);

  IdxArray images = readIdx(imagesPath);
  IdxArray labels = readIdx(labelsPath);
  if (images.dims.size() != 3)
    fail("%s: expected 3 dims (count, rows, cols), found %zu", imagesPath.c_str(),
         images.dims.size());
  if (labels.dims.size() != 1)
    fail("%s: expected 1 dim (count), found %zu", labelsPath.c_str(), labels.dims.size());
  if (images.dims[0] != labels.dims[0])
    fail("%s: %lld labels but %s has %lld images", labelsPath.c_str(),
         (long long)labels.dims[0], imagesName, (long long)images.dims[0]);

  Dataset ds;
  ds.count = images.dims[0];
  ds.features = images.dims[1] * images.dims[2];
  ds.labels.resize(static_cast<size_t>(ds.count));
  for (int64_t i = 0; i < ds.count; ++i) {
    uint8_t label = labels.data[static_cast<size_t>(i)];
    if (label > 9)
      fail("%s: label %u at index %lld (byte %lld) is outside 0..9", labelsPath.c_str(), label,
           (long long)i, (long long)(8 + i));
    ds.labels[static_cast<size_t>(i)] = label;
  }
  ds.images.resize(images.data.size());
  for (size_t i = 0; i < images.data.size(); ++i)
    ds.images[i] = static_cast<float>(images.data[i]) / 255.0f;
  return ds;
}

} // namespace kiln::rt
