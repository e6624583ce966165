// Trains a character-level RNN on Debian's fortune cookies and writes text
// with it. Every variant (--cell tanh|relu|lstm, --layers 1|2) is its own
// ahead-of-time compiled model with the same entry points (see model.cpp);
// this program links them all plus libkiln_rt and drives the one chosen.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <kiln/rt/Fortunes.h>
#include <kiln/rt/Runtime.h>

#include "Example.h"
#include "char_rnn_lstm1.h"
#ifdef KILN_CHAR_RNN_LSTM2
#include "char_rnn_lstm2.h"
#endif
#include "char_rnn_relu1.h"
#include "char_rnn_relu2.h"
#include "char_rnn_tanh1.h"
#include "char_rnn_tanh2.h"

using namespace kiln;

namespace {

// ---- the character vocabulary: tab, newline, ' '..'~', and "other" ----
constexpr int kVocab = 98;
constexpr int kOther = 97;
constexpr double kLn2 = 0.69314718055994530942;

int charId(unsigned char c) {
  if (c == '\t') return 0;
  if (c == '\n') return 1;
  if (c >= 32 && c <= 126) return c - 30;
  return kOther;
}

std::string idText(int id) {
  if (id == 0) return "\t";
  if (id == 1) return "\n";
  if (id >= 2 && id < kOther) return std::string(1, static_cast<char>(id + 30));
  return "\xEF\xBF\xBD";  // U+FFFD for anything outside ASCII
}

// Entries joined as in the fortune files ("%" line after each); a UTF-8
// sequence becomes one "other" character.
std::vector<int32_t> encode(const std::vector<rt::FortuneEntry>& entries) {
  std::vector<int32_t> ids;
  for (const rt::FortuneEntry& e : entries) {
    std::string s = e.text + "%\n";
    for (size_t i = 0; i < s.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      ids.push_back(charId(c));
      if (c >= 0x80)
        while (i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) ++i;
    }
  }
  return ids;
}

// Entropy (bits) of the text's own character distribution: the best any
// model that ignores context can do on it.
double unigramBits(const std::vector<int32_t>& ids) {
  std::vector<double> count(kVocab, 0.0);
  for (int32_t id : ids) count[static_cast<size_t>(id)] += 1;
  double h = 0;
  for (double c : count)
    if (c > 0) h -= c / ids.size() * std::log2(c / ids.size());
  return h;
}

// log-softmax of one row of logits.
void logSoftmaxRow(const float* logits, std::vector<double>& out) {
  double mx = *std::max_element(logits, logits + kVocab), sum = 0;
  for (int v = 0; v < kVocab; ++v) sum += std::exp(logits[v] - mx);
  double lse = mx + std::log(sum);
  out.resize(kVocab);
  for (int v = 0; v < kVocab; ++v) out[static_cast<size_t>(v)] = logits[v] - lse;
}

struct Settings {
  example::Common c;
  std::string cell;
  int64_t layers = 1;
  int64_t maxSteps = 0;  // per epoch; 0 = the whole training text
  int64_t valChars = 0;  // 0 = the whole validation text
  int64_t genChars = 300;
  int64_t beam = 8;
  double temperature = 0.8;
};

template <typename Model>
class Trainer {
public:
  static constexpr int64_t T = 64;
  static constexpr int64_t B = Model::k_x_size / T;   // training streams
  static constexpr int64_t K = Model::k_sc_size;      // rows of the step function
  static constexpr int64_t S = Model::k_sh_size / K;  // packed recurrent state

  Trainer(const Settings& s) : s_(s) {}

  // Copies chunk `chunk` of the B streams of `ids` (each `len` long,
  // starting at `offset`) into x and y.
  static void fillChunk(Model& m, const std::vector<int32_t>& ids, int64_t offset, int64_t len, int64_t chunk) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        size_t i = static_cast<size_t>(offset + b * len + chunk * T + t);
        m.x()[b * T + t] = ids[i];
        m.y()[b * T + t] = ids[i + 1];
      }
  }

  // Bits per character over the validation text, read one character at a
  // time by the step function as K streams, the state carried throughout.
  double validate(Model& m, const std::vector<int32_t>& val) {
    int64_t len = static_cast<int64_t>(val.size() - 1) / K;
    std::fill(m.sh(), m.sh() + K * S, 0.0f);
    std::vector<double> logp;
    double nats = 0;
    for (int64_t t = 0; t < len; ++t) {
      for (int64_t k = 0; k < K; ++k) m.sc()[k] = val[static_cast<size_t>(k * len + t)];
      m.step();
      for (int64_t k = 0; k < K; ++k) {
        logSoftmaxRow(m.step_logits() + k * kVocab, logp);
        nats -= logp[static_cast<size_t>(val[static_cast<size_t>(k * len + t + 1)])];
      }
      std::memcpy(m.sh(), m.step_h(), K * S * sizeof(float));
    }
    return nats / static_cast<double>(len * K) / kLn2;
  }

  int run(const std::vector<int32_t>& train, const std::vector<int32_t>& val) {
    const example::Common& c = s_.c;
    Model m;
    m.init(c.seed);
    if (!c.resume.empty()) {
      m.load(c.resume);
      std::printf("resumed from %s\n", c.resume.c_str());
    }
    double unigram = unigramBits(val);
    rt::MetricsLog log(c.metricsCsv(), {"epoch", "train_bpc", "val_bpc", "unigram_bpc"});
    double valBpc = validate(m, val);
    std::printf("untrained val bpc %.4f, unigram bpc %.4f\n", valBpc, unigram);
    // The training text as B streams; each epoch starts them at a new offset
    // below T so chunk boundaries move.
    int64_t len = static_cast<int64_t>(train.size() - 1 - T) / B;
    int64_t chunks = len / T;
    if (s_.maxSteps > 0) chunks = std::min(chunks, s_.maxSteps);
    for (int64_t e = 0; e < c.epochs; ++e) {
      int64_t offset = static_cast<int64_t>(rt::uniformBelow(T, c.seed, 7, static_cast<uint64_t>(e)));
      std::fill(m.carry(), m.carry() + B * S, 0.0f);
      rt::Progress bar("epoch " + std::to_string(e + 1), chunks);
      double nats = 0, norm = 0;
      for (int64_t k = 0; k < chunks; ++k) {
        fillChunk(m, train, offset, len, k);
        m.trainStep();
        nats += m.trainStep_loss()[0];
        norm += m.trainStep_grad_norm()[0];
        char info[80];
        std::snprintf(info, sizeof info, "bpc %.3f |g| %.2f", nats / (k + 1) / kLn2, norm / (k + 1));
        bar.update(k + 1, info);
      }
      bar.finish();
      valBpc = validate(m, val);
      double trainBpc = nats / static_cast<double>(chunks) / kLn2;
      log.row({static_cast<double>(e + 1), trainBpc, valBpc, unigram});
      std::printf("epoch %2lld  train bpc %.4f  val bpc %.4f  (mean grad norm before clipping %.2f)\n",
                  static_cast<long long>(e + 1), trainBpc, valBpc, norm / chunks);
      std::fflush(stdout);
    }
    if (!c.save.empty()) {
      m.save(c.save);
      std::printf("saved %s\n", c.save.c_str());
    }
    generate(m);
    example::finishPlots(c, "char_rnn " + s_.cell + " x" + std::to_string(s_.layers));
    std::printf("final unigram bpc: %.4f\n", unigram);
    std::printf("final val bpc: %.4f\n", valBpc);
    std::printf("final bpc gain: %.4f\n", unigram - valBpc);
    return 0;
  }

private:
  // Feeds `prime` through row 0 of the step function from a zero state and
  // returns its last logits (log-softmaxed) and state.
  void prime(Model& m, const std::string& text, std::vector<double>& logp, std::vector<float>& state) {
    std::fill(m.sh(), m.sh() + K * S, 0.0f);
    std::fill(m.sc(), m.sc() + K, 0);
    for (unsigned char ch : text) {
      m.sc()[0] = charId(ch);
      m.step();
      std::memcpy(m.sh(), m.step_h(), S * sizeof(float));
    }
    logSoftmaxRow(m.step_logits(), logp);
    state.assign(m.step_h(), m.step_h() + S);
  }

  void generate(Model& m) {
    const std::string start = "%\n";  // the model starts a fresh fortune
    std::vector<double> logp;
    std::vector<float> state;
    // Temperature sampling: draw from softmax(logits / temperature).
    prime(m, start, logp, state);
    std::string out;
    uint64_t draw = 0;
    for (int64_t i = 0; i < s_.genChars; ++i) {
      std::vector<double> p(kVocab);
      double mx = *std::max_element(logp.begin(), logp.end()), sum = 0;
      for (int v = 0; v < kVocab; ++v) sum += p[v] = std::exp((logp[v] - mx) / s_.temperature);
      double u = rt::uniform01(s_.c.seed, 11, draw++) * sum, acc = 0;
      int next = kVocab - 1;
      for (int v = 0; v < kVocab; ++v)
        if ((acc += p[v]) > u) {
          next = v;
          break;
        }
      out += idText(next);
      m.sc()[0] = next;
      m.step();
      std::memcpy(m.sh(), m.step_h(), S * sizeof(float));
      logSoftmaxRow(m.step_logits(), logp);
    }
    std::printf("--- sample (temperature %.2f, %lld chars) ---\n%s\n", s_.temperature,
                static_cast<long long>(s_.genChars), out.c_str());

    // Beam search: keep the `beam` most probable continuations, all K rows
    // of the step function advancing together.
    struct Beam {
      std::string text;
      double logp = 0;
      int last = 0;
      std::vector<float> state;
    };
    prime(m, start, logp, state);
    int64_t width = std::clamp<int64_t>(s_.beam, 1, K);
    std::vector<Beam> beams{{"", 0.0, -1, state}};
    std::vector<std::vector<double>> rowLogp{logp};
    int64_t beamChars = std::min<int64_t>(s_.genChars, 120);
    for (int64_t i = 0; i < beamChars; ++i) {
      struct Cand {
        double logp;
        size_t beam;
        int ch;
      };
      std::vector<Cand> cands;
      for (size_t b = 0; b < beams.size(); ++b)
        for (int v = 0; v < kVocab; ++v) cands.push_back({beams[b].logp + rowLogp[b][v], b, v});
      std::partial_sort(cands.begin(), cands.begin() + width, cands.end(), [](const Cand& a, const Cand& b) {
        return a.logp != b.logp ? a.logp > b.logp : (a.beam != b.beam ? a.beam < b.beam : a.ch < b.ch);
      });
      std::vector<Beam> next;
      for (int64_t j = 0; j < width; ++j) {
        const Beam& from = beams[cands[j].beam];
        next.push_back({from.text + idText(cands[j].ch), cands[j].logp, cands[j].ch, from.state});
      }
      beams = std::move(next);
      for (size_t b = 0; b < beams.size(); ++b) {
        m.sc()[b] = beams[b].last;
        std::memcpy(m.sh() + b * S, beams[b].state.data(), S * sizeof(float));
      }
      m.step();
      rowLogp.assign(beams.size(), {});
      for (size_t b = 0; b < beams.size(); ++b) {
        beams[b].state.assign(m.step_h() + b * S, m.step_h() + (b + 1) * S);
        logSoftmaxRow(m.step_logits() + b * kVocab, rowLogp[b]);
      }
    }
    std::printf("--- beam search (width %lld, %lld chars, log-prob %.2f) ---\n%s\n", static_cast<long long>(width),
                static_cast<long long>(beamChars), beams[0].logp, beams[0].text.c_str());
  }

  const Settings& s_;
};

template <typename Model>
int runModel(const Settings& s, const std::vector<int32_t>& train, const std::vector<int32_t>& val) {
  Trainer<Model> t(s);
  return t.run(train, val);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    rt::Args args(argc, argv,
                  std::string("usage: char_rnn [options]\n"
                              "Trains a character-level RNN (T = 64, hidden 256, Adam, clip norm 1.0) on\n"
                              "fortune cookies, reports validation bits per character, and writes text.\n"
                              "  --cell C         tanh (default), relu (identity init) or lstm\n"
                              "  --layers N       1 (default) or 2 stacked layers\n"
                              "  --max-steps N    cap on training steps per epoch (default: whole text)\n"
                              "  --val-chars N    use the first N validation characters (default: all)\n"
                              "  --gen-chars N    characters to generate (default 300)\n"
                              "  --temperature T  sampling temperature (default 0.8)\n"
                              "  --beam K         beam width, 1..8 (default 8)\n") +
                      example::commonUsage());
    Settings s;
    s.c = example::parseCommon(args, "char_rnn", 2, 1, "/usr/share/games/fortunes");
    s.cell = args.getString("cell", "tanh");
    s.layers = args.getInt("layers", 1);
    s.maxSteps = args.getInt("max-steps", s.c.quick ? 150 : 0);
    s.valChars = args.getInt("val-chars", s.c.quick ? 32768 : 0);
    s.genChars = args.getInt("gen-chars", 300);
    s.temperature = args.getDouble("temperature", 0.8);
    s.beam = args.getInt("beam", 8);
    args.finish();
    if (s.cell != "tanh" && s.cell != "relu" && s.cell != "lstm")
      throw rt::Error("--cell must be tanh, relu or lstm, got '" + s.cell + "'");
    if (s.layers != 1 && s.layers != 2)
      throw rt::Error("--layers must be 1 or 2, got " + std::to_string(s.layers));
    if (s.temperature <= 0) throw rt::Error("--temperature must be positive");
    if (s.beam < 1 || s.beam > 8) throw rt::Error("--beam must be in 1..8, got " + std::to_string(s.beam));

    // A fixed split: every 10th fortune is validation text.
    std::vector<rt::FortuneEntry> all = rt::loadFortunes(s.c.data), trainEntries, valEntries;
    rt::splitFortunes(all, 10, trainEntries, valEntries);
    std::vector<int32_t> train = encode(trainEntries), val = encode(valEntries);
    if (s.valChars > 0 && static_cast<int64_t>(val.size()) > s.valChars) {
      // Every n-th validation fortune, so a short validation text still
      // samples every category (the files are read in name order).
      size_t every = (val.size() + static_cast<size_t>(s.valChars) - 1) / static_cast<size_t>(s.valChars);
      std::vector<rt::FortuneEntry> some;
      for (size_t i = 0; i < valEntries.size(); i += every) some.push_back(valEntries[i]);
      val = encode(some);
    }
    if (val.size() < 64 * 64 || train.size() < 64 * 64 * 4)
      throw rt::Error(s.c.data + ": too little text (" + std::to_string(train.size()) + " train / " +
                      std::to_string(val.size()) + " validation characters)");
    std::printf("char_rnn: %s x%lld, %zu fortunes, %zu train / %zu validation chars, %lld epochs, seed %llu\n",
                s.cell.c_str(), static_cast<long long>(s.layers), all.size(), train.size(), val.size(),
                static_cast<long long>(s.c.epochs), static_cast<unsigned long long>(s.c.seed));

    std::string variant = s.cell + std::to_string(s.layers);
    if (variant == "tanh1") return runModel<char_rnn_tanh1::Model>(s, train, val);
    if (variant == "tanh2") return runModel<char_rnn_tanh2::Model>(s, train, val);
    if (variant == "relu1") return runModel<char_rnn_relu1::Model>(s, train, val);
    if (variant == "relu2") return runModel<char_rnn_relu2::Model>(s, train, val);
    if (variant == "lstm1") return runModel<char_rnn_lstm1::Model>(s, train, val);
#ifdef KILN_CHAR_RNN_LSTM2
    return runModel<char_rnn_lstm2::Model>(s, train, val);
#else
    throw rt::Error("--cell lstm --layers 2 is not built: its generator takes minutes (configure with "
                    "-DKILN_CHAR_RNN_LSTM2=ON)");
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "char_rnn: %s\n", e.what());
    return 1;
  }
}
