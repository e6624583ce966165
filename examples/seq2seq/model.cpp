// The seq2seq generator: a GRU encoder-decoder that learns to reverse digit
// strings. The encoder's final state starts the decoder and is concatenated
// with the decoder's input at every step. Three entry points share the
// params:
//   encode      src i32[B,10] (left-padded digits) -> enc f32[B,H]
//   decodeStep  prev i32[D], ctx f32[D,H], state f32[D,H]
//                 -> logits f32[D,V], state f32[D,H] (one decoder step)
//   trainStep   src, decIn i32[B,11] (BOS then the target shifted right),
//               tgt i32[B,11] (reversed digits, EOS, PAD), mask f32[B,11]
//                 -> loss (cross-entropy per target token, teacher forcing)
// encode and decodeStep call the GRUCells of kiln/Layers.h. trainStep runs
// the same cells over whole sequences with the input half of each step's
// gates, x Wx + bx, computed for all steps in one matmul (for the decoder the
// encoding's share of it once): the same function of the same params with
// fewer kernels per unrolled step, which keeps compile time down while kiln
// emits every step's kernels anew. Held-out decoding goes through
// decodeStep, so every run checks the two formulations against each other.
#include <kiln/kiln.h>

using namespace kiln;

namespace {

constexpr int64_t kBatch = 64;     // B: training and encoding batch
constexpr int64_t kRows = 64;      // D: decoder rows (examples, or examples x beams)
constexpr int64_t kSrcLen = 10;    // longest input
constexpr int64_t kTgtLen = 11;    // longest output: 10 digits + EOS
constexpr int64_t kVocab = 13;     // digits 0-9, PAD 10, EOS 11, BOS 12
constexpr int64_t kEmbed = 32;
constexpr int64_t kHidden = 128;

// GRUCell's update given its input half xw = x Wx + bx (f32[R, 3H]):
// r = s(xr + hr), z = s(xz + hz), n = tanh(xn + r*hn), h' = (1-z)*n + z*h
// with (hr, hz, hn) = h Wh + bh.
Tensor gruStep(const GRUCell& cell, Tensor xw, Tensor h) {
  auto xs = split(xw, {kHidden, kHidden, kHidden}, 1);
  auto hs = split(matmul(h, cell.wh) + cell.bh, {kHidden, kHidden, kHidden}, 1);
  Tensor r = sigmoid(xs[0] + hs[0]), z = sigmoid(xs[1] + hs[1]);
  Tensor n = tanh(xs[2] + r * hs[2]);
  return (1.0 - z) * n + z * h;
}

// Rows (t, b) of a [B, T] token tensor, time-major: i32[T*B].
Tensor timeMajor(Tensor tokens) {
  return reshape(transpose(tokens, {1, 0}), {tokens.dim(0) * tokens.dim(1)});
}

}  // namespace

int main(int argc, char** argv) {
  Graph g;
  Embedding encEmbed(g, "enc_embed", kVocab, kEmbed), decEmbed(g, "dec_embed", kVocab, kEmbed);
  GRUCell encoder(g, "encoder", kEmbed, kHidden);
  GRUCell decoder(g, "decoder", kEmbed + kHidden, kHidden);
  Linear out(g, "out", kHidden, kVocab);

  Tensor src = g.input("src", {kBatch, kSrcLen}, DType::I32);
  Tensor decIn = g.input("decIn", {kBatch, kTgtLen}, DType::I32);
  Tensor tgt = g.input("tgt", {kBatch, kTgtLen}, DType::I32);
  Tensor mask = g.input("mask", {kBatch, kTgtLen});
  Tensor prev = g.input("prev", {kRows}, DType::I32);
  Tensor ctx = g.input("ctx", {kRows, kHidden});
  Tensor state = g.input("state", {kRows, kHidden});
  Module m(g);

  // encode: the cell one step at a time.
  Tensor enc = g.constant(0.0, {kBatch, kHidden});
  for (const Tensor& x : timeSteps(encEmbed(src))) enc = encoder(x, enc);
  m.addFunction("encode", {src}, {{"enc", enc}});

  // decodeStep: the previous token's embedding beside the encoding.
  Tensor stepState = decoder(concat({decEmbed(prev), ctx}, 1), state);
  m.addFunction("decodeStep", {prev, ctx, state}, {{"logits", out(stepState)}, {"state", stepState}});

  // trainStep: teacher forcing over whole sequences.
  Tensor encXw = matmul(encEmbed(timeMajor(src)), encoder.wx) + encoder.bx;  // f32[10*B, 3H]
  Tensor h = g.constant(0.0, {kBatch, kHidden});
  for (int64_t t = 0; t < kSrcLen; ++t) h = gruStep(encoder, sliceAxis(encXw, 0, t * kBatch, kBatch), h);
  Tensor code = h;
  // The decoder's Wx rows split as the input is: embedding, then encoding.
  auto wx = split(decoder.wx, {kEmbed, kHidden}, 0);
  Tensor embXw = matmul(decEmbed(timeMajor(decIn)), wx[0]);  // f32[11*B, 3H]
  Tensor codeXw = matmul(code, wx[1]) + decoder.bx;          // the same at every step
  std::vector<Tensor> hs;
  for (int64_t t = 0; t < kTgtLen; ++t) {
    h = gruStep(decoder, sliceAxis(embXw, 0, t * kBatch, kBatch) + codeXw, h);
    hs.push_back(h);
  }
  Tensor ce = softmaxCrossEntropy(out(concat(hs, 0)), timeMajor(tgt));  // rows (t, b)
  Tensor flatMask = reshape(transpose(mask, {1, 0}), {kTgtLen * kBatch});
  Tensor loss = sum(ce * flatMask) / sum(flatMask);
  TrainOptions opts;
  opts.clipNorm = 1.0;
  opts.schedule = ExponentialLR{.gamma = 0.999};  // lr 3e-3 * 0.999^step: 1.1e-3 at 1000, 4e-4 at 2000
  m.addTrainStep("trainStep", loss, Adam{.lr = 3e-3}, opts);
  return aot::emit(m, "seq2seq", argc, argv);
}
