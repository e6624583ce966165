// Matrix multiplication: a register-blocked, packed GEMM specialised to the
// static shapes.
//
// C[M,N] = op(A)[M,K] · op(B)[K,N] per batch, op = transpose when `ta`/`tb`.
// The k dimension is cut into blocks of lower::kGemmKC. Each block of op(B)
// is packed into the kernel's scratch as panels of NR columns (zero-padded
// at the right edge), so the micro-kernel reads B with unit stride whatever
// its layout: the transposed variants cost one packing pass, not an
// explicit transpose op. A is read in place (MR rows at a time, each element
// broadcast). The micro-kernel keeps an MR x NR block of C in vector
// registers: MR = 6 rows, NR = two vectors of the widest type the target has
// (16 floats with AVX-512, 8 with AVX, 4 otherwise).
//
// Every element of C is one fused multiply-add chain over k ascending,
// starting from 0 — a block's partial sums are stored to C and reloaded
// exactly — which is what the interpreter computes (std::fma, k ascending),
// so the two agree to the last bit whatever the blocking.
#include "Emitter.h"

#include <fmt/format.h>

namespace kiln::codegen::detail {

namespace {
constexpr int64_t kMR = 6;
}

void Emitter::loopV(Value* n, const std::function<void(Value*)>& body) {
  Function* f = b_.GetInsertBlock()->getParent();
  BasicBlock* pre = b_.GetInsertBlock();
  BasicBlock* head = BasicBlock::Create(ctx_, "loop", f);
  BasicBlock* exit = BasicBlock::Create(ctx_, "loop.end", f);
  b_.CreateBr(head);
  b_.SetInsertPoint(head);
  PHINode* i = b_.CreatePHI(i64_, 2, "i");
  i->addIncoming(b_.getInt64(0), pre);
  body(i);
  Value* next = b_.CreateAdd(i, b_.getInt64(1), "i.next", true, true);
  i->addIncoming(next, b_.GetInsertBlock());
  b_.CreateCondBr(b_.CreateICmpULT(next, n), head, exit);
  b_.SetInsertPoint(exit);
}

void Emitter::emitMatMul(const ir::Node& n, Value* out, const std::vector<Value*>& in) {
  const bool ta = n.attrs.getInt("ta", 0), tb = n.attrs.getInt("tb", 0);
  const ir::TensorType& at = g_.type(n.operands[0]);
  const size_t r = n.type.shape.size();
  const int64_t M = n.type.shape[r - 2], N = n.type.shape[r - 1], K = ta ? at.shape[r - 2] : at.shape[r - 1];
  const int64_t batch = n.type.numElements() / (M * N);
  if (K == 0) {  // an empty sum
    zeroFill(out, n.type);
    return;
  }
  if (!scratch_) throw ir::CompileError(fmt::format("codegen: matmul %{} has no scratch (internal error)", n.name));
  loop(batch, [&](Value* bt) {
    GemmArgs g;
    g.M = M, g.N = N, g.K = K, g.ta = ta, g.tb = tb;
    g.A = gep(f32_, in[0], mulc(bt, M * K));
    g.B = gep(f32_, in[1], mulc(bt, K * N));
    g.C = gep(f32_, out, mulc(bt, M * N));
    g.lda = ta ? M : K, g.ldb = tb ? K : N, g.ldc = N;
    emitGemm(g);
  });
}

void Emitter::emitGemm(const GemmArgs& ga) {
  const int64_t M = ga.M, N = ga.N, K = ga.K;
  const bool ta = ga.ta, tb = ga.tb;
  assert(K > 0 && "an empty sum has no k blocks");
  const int64_t VW = vecWidth_, NR = 2 * VW, NV = NR / VW;
  const int64_t KCs = std::min(K, lower::kGemmKC);  // packed panel depth
  const int64_t nBlocks = (K + KCs - 1) / KCs;
  const int64_t fullPanels = N / NR, tailN = N % NR, fullRows = M / kMR, tailM = M % kMR;
  VectorType* vt = FixedVectorType::get(f32_, static_cast<unsigned>(VW));
  Value* zero = Constant::getNullValue(vt);
  Value* Bp = ga.scratch ? ga.scratch : scratch_;
  Value *A = ga.A, *B = ga.B, *C = ga.C;

  // lanes [0, valid) of vector v in a panel whose first `cols` columns are real
  auto laneMask = [&](int64_t v, int64_t cols) -> Value* {
    std::vector<Constant*> bits;
    for (int64_t l = 0; l < VW; ++l) bits.push_back(b_.getInt1(v * VW + l < cols));
    return ConstantVector::get(bits);
  };
  auto fma = [&](Value* a, Value* b, Value* c) { return b_.CreateIntrinsic(Intrinsic::fma, {vt}, {a, b, c}); };

  std::vector<Value*> acc(static_cast<size_t>(kMR * NV));
  for (Value*& a : acc) a = alloca(vt);

  auto aAt = [&](Value* i, Value* k) { return ta ? add(mulc(k, ga.lda), i) : add(mulc(i, ga.lda), k); };
  loop(nBlocks, [&](Value* kb) {
    Value* k0 = mulc(kb, KCs);
    Value* left = b_.CreateSub(c64(K), k0);
    Value* kc = b_.CreateSelect(b_.CreateICmpULT(left, c64(KCs)), left, c64(KCs));
    // the first block starts from 0 (or from C when accumulating)
    Value* first = ga.accumulate ? static_cast<Value*>(b_.getFalse()) : b_.CreateICmpEQ(kb, c64(0));

    // pack B[k0 .. k0+kc) into panels: Bp[p][kk][0 .. NR)
    auto panelAt = [&](Value* p, Value* kk) { return mulc(add(mulc(p, KCs), kk), NR); };
    if (!tb) {
      auto packPanel = [&](Value* p, int64_t cols) {
        loopV(kc, [&](Value* kk) {
          Value* src = gep(f32_, B, add(mulc(add(k0, kk), ga.ldb), mulc(p, NR)));
          Value* dst = gep(f32_, Bp, panelAt(p, kk));
          for (int64_t v = 0; v < NV; ++v) {
            Value* s = gep(f32_, src, c64(v * VW));
            Value* x = cols == NR ? static_cast<Value*>(b_.CreateAlignedLoad(vt, s, Align(4)))
                                  : b_.CreateMaskedLoad(vt, s, Align(4), laneMask(v, cols), zero);
            b_.CreateAlignedStore(x, gep(f32_, dst, c64(v * VW)), Align(64));
          }
        });
      };
      if (fullPanels > 0) loop(fullPanels, [&](Value* p) { packPanel(p, NR); });
      if (tailN > 0) packPanel(c64(fullPanels), tailN);
    } else {
      // B is [N][K]: column j of op(B) is row j of B, contiguous in k
      auto packPanel = [&](Value* p, int64_t cols) {
        loop(cols, [&](Value* jj) {
          Value* row = gep(f32_, B, add(mulc(add(mulc(p, NR), jj), ga.ldb), k0));
          loopV(kc, [&](Value* kk) { storeF(loadF(row, kk), Bp, add(panelAt(p, kk), jj)); });
        });
        if (cols < NR)
          loop(NR - cols, [&](Value* jj) {
            loopV(kc, [&](Value* kk) { storeF(cf(0.0), Bp, add(panelAt(p, kk), add(jj, c64(cols)))); });
          });
      };
      if (fullPanels > 0) loop(fullPanels, [&](Value* p) { packPanel(p, NR); });
      if (tailN > 0) packPanel(c64(fullPanels), tailN);
    }

    // C[i0 .. i0+mr, p*NR .. p*NR+cols) (+)= A[i0.., k0..k0+kc) · Bp[p]
    auto micro = [&](Value* i0, int64_t mr, Value* p, int64_t cols) {
      auto cPtr = [&](int64_t row, int64_t v) {
        return gep(f32_, C, add(mulc(add(i0, c64(row)), ga.ldc), add(mulc(p, NR), c64(v * VW))));
      };
      for (int64_t row = 0; row < mr; ++row)
        for (int64_t v = 0; v < NV; ++v) {
          if (v * VW >= cols) continue;
          Value* old = cols >= (v + 1) * VW ? static_cast<Value*>(b_.CreateAlignedLoad(vt, cPtr(row, v), Align(4)))
                                            : b_.CreateMaskedLoad(vt, cPtr(row, v), Align(4), laneMask(v, cols), zero);
          b_.CreateStore(b_.CreateSelect(first, zero, old), acc[static_cast<size_t>(row * NV + v)]);
        }
      loopV(kc, [&](Value* kk) {
        Value* bRow = gep(f32_, Bp, panelAt(p, kk));
        std::vector<Value*> bv;
        for (int64_t v = 0; v < NV; ++v) bv.push_back(b_.CreateAlignedLoad(vt, gep(f32_, bRow, c64(v * VW)), Align(64)));
        for (int64_t row = 0; row < mr; ++row) {
          Value* a = b_.CreateVectorSplat(static_cast<unsigned>(VW), loadF(A, aAt(add(i0, c64(row)), add(k0, kk))));
          for (int64_t v = 0; v < NV; ++v) {
            if (v * VW >= cols) continue;
            Value* slot = acc[static_cast<size_t>(row * NV + v)];
            b_.CreateStore(fma(a, bv[static_cast<size_t>(v)], b_.CreateLoad(vt, slot)), slot);
          }
        }
      });
      for (int64_t row = 0; row < mr; ++row)
        for (int64_t v = 0; v < NV; ++v) {
          if (v * VW >= cols) continue;
          Value* x = b_.CreateLoad(vt, acc[static_cast<size_t>(row * NV + v)]);
          if (cols >= (v + 1) * VW) b_.CreateAlignedStore(x, cPtr(row, v), Align(4));
          else b_.CreateMaskedStore(x, cPtr(row, v), Align(4), laneMask(v, cols));
        }
    };
    // the B panel stays in L1 while every row block of A passes over it
    auto rows = [&](Value* p, int64_t cols) {
      if (fullRows > 0) loop(fullRows, [&](Value* ib) { micro(mulc(ib, kMR), kMR, p, cols); });
      if (tailM > 0) micro(c64(fullRows * kMR), tailM, p, cols);
    };
    if (fullPanels > 0) loop(fullPanels, [&](Value* p) { rows(p, NR); });
    if (tailN > 0) rows(c64(fullPanels), tailN);
  });
}

}  // namespace kiln::codegen::detail
