// Trains the ahead-of-time compiled encoder-decoder to reverse digit strings
// (length 5-10, generated from --seed) and decodes a held-out set greedily
// and with beam search. Links seq2seq (the generated object) and libkiln_rt.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <unordered_set>
#include <vector>

#include <kiln/rt/Runtime.h>

#include "Example.h"
#include "seq2seq.h"

using namespace kiln;

namespace {

constexpr int64_t kBatch = 64, kRows = 64, kSrcLen = 10, kTgtLen = 11, kVocab = 13;
constexpr int32_t kPad = 10, kEos = 11, kBos = 12;
constexpr int64_t kHidden = seq2seq::Model::k_ctx_size / kRows;

// Random digit strings of length 5..10 from (seed, stream), skipping those
// in `exclude` (the held-out set never appears in training).
class Source {
public:
  Source(uint64_t seed, uint64_t stream, const std::unordered_set<std::string>* exclude = nullptr)
      : seed_(seed), stream_(stream), exclude_(exclude) {}
  std::string next() {
    for (;;) {
      int64_t len = 5 + static_cast<int64_t>(rt::uniformBelow(6, seed_, stream_, n_++));
      std::string s;
      for (int64_t i = 0; i < len; ++i) s += static_cast<char>('0' + rt::uniformBelow(10, seed_, stream_, n_++));
      if (!exclude_ || !exclude_->count(s)) return s;
    }
  }

private:
  uint64_t seed_, stream_, n_ = 0;
  const std::unordered_set<std::string>* exclude_;
};

// Row b of src: the digits left-padded with PAD, so the encoder's last step
// reads the last digit.
void fillSrc(int32_t* src, int64_t b, const std::string& s) {
  int64_t pad = kSrcLen - static_cast<int64_t>(s.size());
  for (int64_t i = 0; i < kSrcLen; ++i) src[b * kSrcLen + i] = i < pad ? kPad : s[i - pad] - '0';
}

// Row b of the teacher-forcing inputs: tgt = reversed digits, EOS, PAD...;
// decIn = BOS, tgt shifted right; mask = 1 through the EOS.
void fillTarget(seq2seq::Model& m, int64_t b, const std::string& s) {
  std::string r(s.rbegin(), s.rend());
  for (int64_t t = 0; t < kTgtLen; ++t) {
    int64_t n = static_cast<int64_t>(r.size());
    int32_t tok = t < n ? r[t] - '0' : t == n ? kEos : kPad;
    m.tgt()[b * kTgtLen + t] = tok;
    m.decIn()[b * kTgtLen + t] = t == 0 ? kBos : m.tgt()[b * kTgtLen + t - 1];
    m.mask()[b * kTgtLen + t] = t <= n ? 1.0f : 0.0f;
  }
}

std::string tokensText(const std::vector<int32_t>& toks) {
  std::string s;
  for (int32_t t : toks) s += t < 10 ? static_cast<char>('0' + t) : '?';
  return s;
}

void logSoftmaxRow(const float* logits, double* out) {
  double mx = *std::max_element(logits, logits + kVocab), sum = 0;
  for (int v = 0; v < kVocab; ++v) sum += std::exp(logits[v] - mx);
  for (int v = 0; v < kVocab; ++v) out[v] = logits[v] - mx - std::log(sum);
}

// Encodes up to kBatch strings; enc row i belongs to strings[i].
std::vector<float> encodeAll(seq2seq::Model& m, const std::vector<std::string>& strings) {
  for (int64_t b = 0; b < kBatch; ++b) fillSrc(m.src(), b, strings[std::min<size_t>(b, strings.size() - 1)]);
  m.encode();
  return std::vector<float>(m.encode_enc(), m.encode_enc() + kBatch * kHidden);
}

// Greedy decoding of up to kRows strings: the most likely token each step,
// until EOS or kTgtLen tokens.
std::vector<std::vector<int32_t>> greedy(seq2seq::Model& m, const std::vector<std::string>& strings) {
  std::vector<float> enc = encodeAll(m, strings);
  std::memcpy(m.ctx(), enc.data(), kRows * kHidden * sizeof(float));
  std::memcpy(m.state(), enc.data(), kRows * kHidden * sizeof(float));
  std::fill(m.prev(), m.prev() + kRows, kBos);
  std::vector<std::vector<int32_t>> outs(strings.size());
  std::vector<bool> done(strings.size(), false);
  for (int64_t t = 0; t < kTgtLen; ++t) {
    m.decodeStep();
    for (size_t b = 0; b < strings.size(); ++b) {
      const float* l = m.decodeStep_logits() + b * kVocab;
      int32_t tok = static_cast<int32_t>(std::max_element(l, l + kVocab) - l);
      m.prev()[b] = tok;
      if (done[b]) continue;
      if (tok == kEos) done[b] = true;
      else outs[b].push_back(tok);
    }
    std::memcpy(m.state(), m.decodeStep_state(), kRows * kHidden * sizeof(float));
  }
  return outs;
}

// Beam search with `width` beams per string: kRows / width strings per
// decodeStep call. A beam ends at EOS; finished beams compete on total
// log-probability with the unfinished ones.
std::vector<std::vector<int32_t>> beamSearch(seq2seq::Model& m, const std::vector<std::string>& strings,
                                             int64_t width) {
  std::vector<float> enc = encodeAll(m, strings);
  std::vector<std::vector<int32_t>> outs(strings.size());
  int64_t per = kRows / width;
  struct Beam {
    std::vector<int32_t> toks;
    double logp = 0;
    bool done = false;
    std::vector<float> state;
  };
  std::vector<double> lp(kVocab);
  for (size_t first = 0; first < strings.size(); first += static_cast<size_t>(per)) {
    size_t count = std::min(strings.size() - first, static_cast<size_t>(per));
    std::vector<std::vector<Beam>> beams(count);
    for (size_t i = 0; i < count; ++i) {
      const float* e = enc.data() + (first + i) * kHidden;
      beams[i].push_back({{}, 0.0, false, std::vector<float>(e, e + kHidden)});
    }
    for (int64_t t = 0; t < kTgtLen; ++t) {
      // Row (i, k) runs beam k of string i (rows of missing beams idle).
      std::fill(m.prev(), m.prev() + kRows, kBos);
      for (size_t i = 0; i < count; ++i)
        for (size_t k = 0; k < static_cast<size_t>(width); ++k) {
          int64_t row = static_cast<int64_t>(i) * width + static_cast<int64_t>(k);
          const Beam& b = beams[i][std::min(k, beams[i].size() - 1)];
          m.prev()[row] = b.toks.empty() ? kBos : b.toks.back();
          std::memcpy(m.ctx() + row * kHidden, enc.data() + (first + i) * kHidden, kHidden * sizeof(float));
          std::memcpy(m.state() + row * kHidden, b.state.data(), kHidden * sizeof(float));
        }
      m.decodeStep();
      for (size_t i = 0; i < count; ++i) {
        struct Cand {
          double logp;
          size_t beam;
          int32_t tok;  // -1: a finished beam carried over
        };
        std::vector<Cand> cands;
        for (size_t k = 0; k < beams[i].size(); ++k) {
          if (beams[i][k].done) {
            cands.push_back({beams[i][k].logp, k, -1});
            continue;
          }
          int64_t row = static_cast<int64_t>(i) * width + static_cast<int64_t>(k);
          logSoftmaxRow(m.decodeStep_logits() + row * kVocab, lp.data());
          for (int32_t v = 0; v < 10; ++v) cands.push_back({beams[i][k].logp + lp[v], k, v});
          cands.push_back({beams[i][k].logp + lp[kEos], k, kEos});
        }
        size_t keep = std::min(cands.size(), static_cast<size_t>(width));
        std::partial_sort(cands.begin(), cands.begin() + keep, cands.end(), [](const Cand& a, const Cand& b) {
          return a.logp != b.logp ? a.logp > b.logp : (a.beam != b.beam ? a.beam < b.beam : a.tok < b.tok);
        });
        std::vector<Beam> next;
        for (size_t j = 0; j < keep; ++j) {
          const Beam& from = beams[i][cands[j].beam];
          Beam nb = from;
          nb.logp = cands[j].logp;
          if (cands[j].tok == kEos) {
            nb.done = true;
          } else if (cands[j].tok >= 0) {
            nb.toks.push_back(cands[j].tok);
            int64_t row = static_cast<int64_t>(i) * width + static_cast<int64_t>(cands[j].beam);
            nb.state.assign(m.decodeStep_state() + row * kHidden, m.decodeStep_state() + (row + 1) * kHidden);
          }
          next.push_back(std::move(nb));
        }
        beams[i] = std::move(next);
      }
    }
    for (size_t i = 0; i < count; ++i) outs[first + i] = beams[i][0].toks;  // best beam
  }
  return outs;
}

// Fraction of `test` decoded exactly (the reversed string, then EOS).
double exactMatch(seq2seq::Model& m, const std::vector<std::string>& test, int64_t beam,
                  std::vector<std::string>* shown = nullptr) {
  int64_t correct = 0;
  for (size_t first = 0; first < test.size(); first += kBatch) {
    std::vector<std::string> part(test.begin() + first, test.begin() + std::min(test.size(), first + kBatch));
    auto outs = beam > 1 ? beamSearch(m, part, beam) : greedy(m, part);
    for (size_t i = 0; i < part.size(); ++i) {
      std::string want(part[i].rbegin(), part[i].rend()), got = tokensText(outs[i]);
      correct += want == got;
      if (shown && shown->size() < 6) shown->push_back(part[i] + " -> " + got + (want == got ? "" : "  (wrong)"));
    }
  }
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: seq2seq [options]\n"
                              "Trains a GRU encoder-decoder (hidden 128; Adam, lr 3e-3 times 0.999 a step;\n"
                              "clip norm 1.0) to reverse digit strings of length 5-10 and reports exact match\n"
                              "on held-out strings.\n"
                              "  --steps N        training steps per epoch (batch 64; default 250)\n"
                              "  --test N         held-out strings (default 1000)\n"
                              "  --beam K         beam width for the beam-search score, 2..64 (default 4)\n") +
                      example::commonUsage());
    example::Common c = example::parseCommon(args, "seq2seq", 8, 2, "");
    int64_t steps = args.getInt("steps", c.quick ? 100 : 250);
    int64_t testCount = args.getInt("test", c.quick ? 256 : 1000);
    int64_t beam = args.getInt("beam", 4);
    args.finish();
    if (!c.data.empty()) throw rt::Error("--data: seq2seq generates its data from --seed; no data path is read");
    if (steps < 1 || testCount < 1) throw rt::Error("--steps and --test must be positive");
    if (beam < 2 || beam > kRows) throw rt::Error("--beam must be in 2.." + std::to_string(kRows));

    // The held-out strings (distinct), then a training stream that skips them.
    std::unordered_set<std::string> held;
    std::vector<std::string> test;
    Source testSource(c.seed, 1);
    while (static_cast<int64_t>(test.size()) < testCount) {
      std::string s = testSource.next();
      if (held.insert(s).second) test.push_back(s);
    }
    Source trainSource(c.seed, 2, &held);
    std::printf("seq2seq: reverse digit strings of length 5-10; %lld epochs x %lld steps x %lld, %lld held-out, "
                "seed %llu\n",
                static_cast<long long>(c.epochs), static_cast<long long>(steps), static_cast<long long>(kBatch),
                static_cast<long long>(testCount), static_cast<unsigned long long>(c.seed));

    seq2seq::Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    rt::MetricsLog log(c.metricsCsv(), {"epoch", "train_loss", "exact_match"});
    double acc = 0;
    for (int64_t e = 0; e < c.epochs; ++e) {
      rt::Progress bar("epoch " + std::to_string(e + 1), steps);
      double lossSum = 0;
      for (int64_t k = 0; k < steps; ++k) {
        for (int64_t b = 0; b < kBatch; ++b) {
          std::string s = trainSource.next();
          fillSrc(m.src(), b, s);
          fillTarget(m, b, s);
        }
        m.trainStep();
        lossSum += m.trainStep_loss()[0];
        char info[64];
        std::snprintf(info, sizeof info, "loss %.4f", lossSum / (k + 1));
        bar.update(k + 1, info);
      }
      bar.finish();
      acc = exactMatch(m, test, 1);
      log.row({static_cast<double>(e + 1), lossSum / steps, acc});
      std::printf("epoch %2lld  train loss %.4f  held-out exact match (greedy) %.4f\n", static_cast<long long>(e + 1),
                  lossSum / steps, acc);
      std::fflush(stdout);
    }
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    std::vector<std::string> shown;
    double greedyAcc = exactMatch(m, test, 1, &shown);
    double beamAcc = exactMatch(m, test, beam);
    for (const std::string& s : shown) std::printf("  %s\n", s.c_str());
    example::finishPlots(c, "seq2seq");
    std::printf("final beam exact match: %.4f\n", beamAcc);
    std::printf("final exact match: %.4f\n", greedyAcc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seq2seq: %s\n", e.what());
    return 1;
  }
}
