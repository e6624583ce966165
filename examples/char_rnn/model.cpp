// The char-RNN generator: a character-level language model (embedding ->
// one or two recurrent layers -> linear to logits) unrolled over T = 64
// steps. One run builds one variant, chosen by --cell tanh|relu|lstm and
// --layers 1|2 (kiln_add_model ARGS), and writes char_rnn_<cell><layers>.o/.h.
//
// Every variant has the same interface, so main.cpp drives them all with one
// template. The recurrent state of all layers is one f32[rows, S] tensor
// (S = layers * hidden, twice that for LSTM: h then c per layer):
//   trainStep  x, y i32[B,T]; state "carry" f32[B,S] (the final state of the
//              previous batch, carried between calls: truncated BPTT over
//              B parallel streams of the text) -> loss, grad_norm
//   step       sc i32[K] (previous chars), sh f32[K,S] -> logits f32[K,V], h
// step is the single-character inference entry point (validation, sampling,
// beam search); it calls the cells of kiln/Layers.h one step at a time.
// trainStep runs the same cells layer by layer over the whole sequence and
// computes each layer's input half of the pre-activation, x Wx + b, for all
// T steps in one matmul (as cuDNN does): the same function of the same
// params with half the kernels per unrolled step. While kiln emits every
// step's kernels anew that matters: tanh at hidden 256 went from 1,095
// kernels and 29 s of generator CPU (per-step cells, plus an evaluation entry
// point since replaced by step) to 580 and 9 s. Validation goes through step,
// so the two formulations are checked against each other by every run.
#include <kiln/kiln.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

using namespace kiln;

namespace {

constexpr int64_t kBatch = 32;   // B: parallel text streams per training step
constexpr int64_t kSteps = 64;   // T: unrolled time steps
constexpr int64_t kVocab = 98;   // tab, newline, ' '..'~', other (see main.cpp)
constexpr int64_t kEmbed = 32;
constexpr int64_t kHidden = 128;
constexpr int64_t kRows = 32;    // K: rows of the step function (validation streams, beams)

// The recurrent layers of one variant over a packed state.
class Stack {
public:
  Stack(Graph& g, const std::string& cell, int64_t layers)
      : lstm_(cell == "lstm"), act_(cell == "relu" ? Activation::Relu : Activation::Tanh) {
    for (int64_t l = 0; l < layers; ++l) {
      std::string name = "rnn" + std::to_string(l);
      int64_t in = l == 0 ? kEmbed : kHidden;
      if (lstm_) {
        lstms_.emplace_back(g, name, in, kHidden);
      } else if (cell == "relu") {
        // Le et al. (2015): identity recurrent weights, zero bias.
        rnns_.emplace_back(g, name, in, kHidden,
                           RNNOptions{Activation::Relu, std::nullopt, Init::identity(), Init::zeros()});
      } else {
        rnns_.emplace_back(g, name, in, kHidden, RNNOptions{Activation::Tanh, std::nullopt, std::nullopt, std::nullopt});
      }
    }
  }

  int64_t layers() const { return static_cast<int64_t>(lstm_ ? lstms_.size() : rnns_.size()); }
  int64_t stateSize() const { return layers() * kHidden * (lstm_ ? 2 : 1); }

  // One time step: x f32[R,E], state f32[R,S] -> (top h f32[R,H], new state).
  std::pair<Tensor, Tensor> operator()(Tensor x, Tensor state) const {
    int64_t pieces = layers() * (lstm_ ? 2 : 1);
    std::vector<Tensor> parts = pieces == 1 ? std::vector<Tensor>{state}
                                            : split(state, std::vector<int64_t>(pieces, kHidden), 1);
    std::vector<Tensor> next;
    Tensor in = x;
    for (int64_t l = 0; l < layers(); ++l) {
      if (lstm_) {
        LSTMCell::State s = lstms_[l](in, {parts[2 * l], parts[2 * l + 1]});
        next.push_back(s.h);
        next.push_back(s.c);
        in = s.h;
      } else {
        in = rnns_[l](in, parts[l]);
        next.push_back(in);
      }
    }
    return {in, next.size() == 1 ? next[0] : concat(next, 1)};
  }

  // All T steps, layer by layer: xs f32[T*B, E] (rows (t, b)), state
  // f32[B,S] -> (top h of every step f32[T*B, H], final state).
  std::pair<Tensor, Tensor> sequence(Tensor xs, Tensor state) const {
    int64_t rows = xs.dim(0) / kSteps;
    int64_t pieces = layers() * (lstm_ ? 2 : 1);
    std::vector<Tensor> parts = pieces == 1 ? std::vector<Tensor>{state}
                                            : split(state, std::vector<int64_t>(pieces, kHidden), 1);
    std::vector<Tensor> final;
    for (int64_t l = 0; l < layers(); ++l) {
      Tensor wx = lstm_ ? lstms_[l].wx : rnns_[l].wx, wh = lstm_ ? lstms_[l].wh : rnns_[l].wh;
      Tensor b = lstm_ ? lstms_[l].b : rnns_[l].b;
      Tensor pre = matmul(xs, wx) + b;  // x Wx + b of every step
      Tensor h = parts[lstm_ ? 2 * l : l], c = lstm_ ? parts[2 * l + 1] : Tensor();
      std::vector<Tensor> hs;
      for (int64_t t = 0; t < kSteps; ++t) {
        Tensor z = sliceAxis(pre, 0, t * rows, rows) + matmul(h, wh);
        if (lstm_) {  // LSTMCell's gates (i, f, g, o)
          auto gates = split(z, {kHidden, kHidden, kHidden, kHidden}, 1);
          c = sigmoid(gates[1]) * c + sigmoid(gates[0]) * tanh(gates[2]);
          h = sigmoid(gates[3]) * tanh(c);
        } else {
          h = act_ == Activation::Tanh ? tanh(z) : relu(z);
        }
        hs.push_back(h);
      }
      final.push_back(h);
      if (lstm_) final.push_back(c);
      xs = concat(hs, 0);
    }
    return {xs, final.size() == 1 ? final[0] : concat(final, 1)};
  }

private:
  bool lstm_;
  Activation act_;
  std::vector<RNNCell> rnns_;
  std::vector<LSTMCell> lstms_;
};

struct Net {
  Embedding embed;
  Stack stack;
  Linear out;
  Net(Graph& g, const std::string& cell, int64_t layers)
      : embed(g, "embed", kVocab, kEmbed), stack(g, cell, layers), out(g, "out", kHidden, kVocab) {}

  // Mean cross-entropy (nats per char) of predicting y from x over T steps
  // starting from `state`; returns (loss, final state).
  std::pair<Tensor, Tensor> sequenceLoss(Tensor x, Tensor y, Tensor state) const {
    // Time-major rows (t, b) throughout.
    Tensor xs = embed(reshape(transpose(x, {1, 0}), {kSteps * kBatch}));  // f32[T*B, E]
    auto [tops, last] = stack.sequence(xs, state);
    Tensor logits = out(tops);                                          // f32[T*B, V]
    Tensor labels = reshape(transpose(y, {1, 0}), {kSteps * kBatch});   // i32[T*B]
    return {mean(softmaxCrossEntropy(logits, labels)), last};
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string cell = "tanh";
  int64_t layers = 1;
  std::vector<char*> rest{argv[0]};  // what aot::emit reads
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--cell" && i + 1 < argc) {
      cell = argv[++i];
    } else if (a == "--layers" && i + 1 < argc) {
      layers = std::atoll(argv[++i]);
    } else {
      rest.push_back(argv[i]);
    }
  }
  if ((cell != "tanh" && cell != "relu" && cell != "lstm") || layers < 1 || layers > 2) {
    std::fprintf(stderr, "char_rnn generator: --cell must be tanh, relu or lstm and --layers 1 or 2\n");
    return 2;
  }

  Graph g;
  Net net(g, cell, layers);
  int64_t S = net.stack.stateSize();
  Tensor x = g.input("x", {kBatch, kSteps}, DType::I32);
  Tensor y = g.input("y", {kBatch, kSteps}, DType::I32);
  Tensor carry = g.state("carry", {kBatch, S});
  Tensor sc = g.input("sc", {kRows}, DType::I32);
  Tensor sh = g.input("sh", {kRows, S});

  Module m(g);
  auto [stepTop, stepState] = net.stack(net.embed(sc), sh);
  m.addFunction("step", {sc, sh}, {{"logits", net.out(stepTop)}, {"h", stepState}});

  auto [trainLoss, trainState] = net.sequenceLoss(x, y, carry);
  g.addStateUpdate(carry, stopGradient(trainState));
  TrainOptions opts;
  opts.clipNorm = 1.0;  // clip the global gradient norm at 1.0
  m.addTrainStep("trainStep", trainLoss, Adam{.lr = 2e-3}, opts);

  std::string name = "char_rnn_" + cell + std::to_string(layers);
  return aot::emit(m, name, static_cast<int>(rest.size()), rest.data());
}
