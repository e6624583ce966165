// Kernel IR: what each entry point runs, in order, over which buffers.
//
// Every non-source op becomes one kernel (a loop nest of its op family) for
// now; fusion will group several ops into one kernel. Kernels run in value-id
// order (the `schedule` pass picks that order). Every value a function needs
// gets a buffer in one block of memory per model instance: sources, function
// outputs and update staging in named or persistent buffers; every other
// value (a temporary) in one activation arena shared by all entry points, at
// an offset planned from liveness intervals so that temporaries never live
// at the same time may share bytes (memory planning, see Plan.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/Graph.h"

namespace kiln::lower {

enum class BufferKind { Input, Param, State, Output, Temp };
std::string_view bufferKindName(BufferKind k);

// A user-visible buffer (inputs, params, state, outputs).
struct NamedBuffer {
  std::string name;  // source name, or "function.output" for outputs
  BufferKind kind;
  ir::ValueId value;
  int64_t offset = 0;
  ir::TensorType type;
};

struct Kernel {
  ir::ValueId value;  // the op it computes (its output buffer is offsetOf[value])
  // The buffers it reads: the root's operands in order for ops that index
  // their operands themselves; for generator roots (Fusion.h) the
  // materialized values under its inlined tree, each once.
  std::vector<ir::ValueId> inputs;
  std::vector<ir::ValueId> fused;  // inlined values it computes, in id order
  int64_t scratchBytes = 0;        // working memory it needs while it runs (kernelScratchBytes)
  // An in-place update (planModule): the kernel computes an update's new
  // value straight into the updated source's buffer, which is also its
  // input at this position; codegen reads that input through the output
  // pointer. -1 = not in place.
  int32_t inPlaceInput = -1;
  // Loop fusion (planLoops): consecutive flat elementwise kernels over the
  // same number of elements run as one loop, each element of every member
  // computed in member order. The first member holds the member count, the
  // others 0; 1 = a loop of its own.
  int32_t loopMembers = 1;
  // false: a loop member whose value only later members of its loop read;
  // they take it from the register it was computed in, and it is never
  // written to memory.
  bool store = true;
};

// Whether kernel k is a flat elementwise loop: an elementwise map whose
// fused tree reads every buffer at the index it writes (or a scalar at 0):
// no transposes and no broadcasts of more than one element.
bool isFlatElementwise(const ir::Graph& g, const Kernel& k);
// The matmul or conv2d a kernel runs as a GEMM whose epilogue is the rest
// of its fused tree (passes/Fusion.h), or -1. Its C is written into the
// kernel's output buffer, tile by tile (a conv: image by image), and each
// finished tile (image) is then overwritten by the kernel's tree evaluated
// at its elements.
ir::ValueId epilogueProduct(const ir::Graph& g, const Kernel& k);
// Whether a generator kernel's tree needs each element's multi-index (a
// transpose, or a broadcast of more than one element).
bool needsMultiIndex(const ir::Graph& g, const Kernel& k);

// A buffer-to-buffer copy run after a function's kernels. Copies run in
// order and never read a buffer an earlier copy of the same call wrote: an
// output that is a source is copied out before any update, and an update
// whose value is another update's target reads a staged copy.
struct Copy {
  std::string dst, src;  // labels for listings: "%3", "f.out", "stage"
  int64_t dstOffset = 0, srcOffset = 0, bytes = 0;
};

// An i32 input used as indices: every element must lie in [0, bound) on
// every call, checked before any kernel runs (out-of-range indices would
// otherwise read 0 or write nothing, silently).
struct IndexCheck {
  ir::ValueId input;
  int64_t bound;
  std::string use;  // "take_along at model.cpp:14", for the message
};

// Checked mode (PlanOptions::checked): an f32 buffer scanned for the first
// non-finite element, either a declared input before any kernel runs or a
// kernel's output right after that kernel. The entry point stops at the
// first one that fails and returns -(its number + 1).
struct FiniteCheck {
  ir::ValueId value;
  int32_t afterKernel = -1;  // index into FunctionPlan::kernels; -1 = an input, checked up front
};

// What a failed FiniteCheck reports (message text for the JIT and the AOT
// header alike).
struct FiniteCheckSite {
  std::string value;  // "%45"
  std::string op;     // op kind ("exp"), or "input"
  std::string name;   // the input's name; empty for ops
  std::string loc;    // "model.cpp:12", or empty when unknown
  std::string type;   // "f32[64,10]"
  ir::Shape shape;
};
FiniteCheckSite finiteCheckSite(const ir::Graph& g, ir::ValueId v);

// A view (planModule): a value that is a pure relabelling of a contiguous
// run of its operand's bytes (a reshape, a stop_gradient, a slice that cuts
// only whole rows) runs no kernel; its buffer is its operand's, `offset`
// bytes in: offsetOf[value] = offsetOf[base] + offset. The operand may be a
// view itself. Views are read-only aliases (never written, never a function
// output or an update's value) and their offsets into the underlying buffer
// are multiples of kBufferAlign, so kernels see the same alignment as for
// any other buffer.
struct View {
  ir::ValueId value;
  ir::ValueId base;    // the operand
  int64_t offset = 0;  // bytes into base's buffer
};

struct FunctionPlan {
  std::string name;
  std::vector<IndexCheck> checks;  // one per index input, tightest bound
  // checked mode only (empty otherwise): inputs first, then kernel outputs in kernel order
  std::vector<FiniteCheck> finiteChecks;
  int64_t callCountOffset = -1;  // checked mode: i64 count of this function's calls since init
  std::vector<Kernel> kernels;  // in execution order
  std::vector<View> views;      // the views its kernels read, by value id (no kernel runs for them)
  // Concats assembled in place (PlanOptions::placeConcatInputs): every
  // input's kernel writes straight into its slot of the concat's buffer
  // (offsetOf[input] = offsetOf[concat] + the bytes before it), so no
  // kernel runs for the concat. By value id.
  std::vector<ir::ValueId> assembled;
  std::vector<Copy> copies;     // outputs of sources, staging, then updates
  int64_t arenaBytes = 0;       // arena bytes this function's temporaries reach (from the arena start)
  int64_t naiveBytes = 0;       // its intermediate values' bytes with no reuse and no fusion (each its own slot)
  int64_t persistentBytes = 0;  // the named/persistent buffers it reads or writes
};

// How the arena offsets were chosen; both strategies are always computed.
enum class ArenaStrategyKind { IntervalPacking, GraphColoring };
std::string_view arenaStrategyName(ArenaStrategyKind k);

struct ModulePlan {
  std::vector<int64_t> offsetOf;  // by value id; -1 = no buffer (not needed, or fused into a consumer)
  std::vector<bool> inlined;      // by value id: computed inside its consumers' kernels
  std::vector<NamedBuffer> named;
  std::vector<FunctionPlan> functions;
  // 16 bytes where a failed index check records {i32 check, i32 value,
  // i64 position}; the entry point then returns the check's number + 1.
  // In checked mode a failed finite check records {i32 check, f32 value,
  // i64 position} and returns -(check + 1). -1 when no function has index
  // inputs and the module is not checked.
  int64_t errorOffset = -1;
  bool checked = false;  // planned with PlanOptions::checked
  int64_t totalBytes = 0;
  int64_t persistentBytes = 0;  // sources, outputs and staging, at the start of the block
  int64_t tempBytes = 0;        // the arena, after the persistent region
  int64_t naiveTempBytes = 0;   // every intermediate value (fused ones too) in its own slot
  // One scratch region after the arena, as big as the largest kernel's
  // need (packed GEMM panels, im2col columns); kernels run one at a time,
  // so they all share it. -1 when no kernel needs scratch.
  int64_t scratchOffset = -1, scratchBytes = 0;
  int64_t packingBytes = 0, coloringBytes = 0;  // arena size under each strategy
  ArenaStrategyKind strategy = ArenaStrategyKind::IntervalPacking;
};

inline constexpr int64_t kBufferAlign = 64;

// GEMM blocking shared by the plan (scratch sizes) and codegen: the k
// dimension is cut into blocks of kGemmKC, and each block of B is packed
// into panels of the micro-kernel's width (at most kGemmMaxNR floats),
// zero-padded at the right edge.
inline constexpr int64_t kGemmKC = 256;
inline constexpr int64_t kGemmMaxNR = 32;
// A narrow tail panel of at most this many columns goes by row vectors
// when op(A)'s rows lie side by side at each k (codegen/Gemm.cpp).
inline constexpr int64_t kGemmRowVectorCols = 4;
inline constexpr int64_t kGemmMR = 8;  // rows of the micro-kernel (and of a packed micro-panel of A)
int64_t gemmScratchBytes(int64_t k, int64_t n);
// A matmul's GEMM may also pack a k block of A (m rows) after the B panels,
// when A is transposed or its rows are a multiple of 1024 floats long, it
// has at most 4096 rows and n > 3 * kGemmMaxNR (4 panels or more reuse it):
// kGemmMR-row micro-panels of 8 floats per k, or rows padded by 16 floats.
// 0 when it never packs A (codegen then gives it no room).
int64_t gemmPackABytes(int64_t m, int64_t k, int64_t n, bool ta);

// A conv kernel's geometry (conv2d, conv2d_bwd_input, conv2d_bwd_filter;
// x [n,c,h,w], w [o,cg,kh,kw], y [n,o,oh,ow]) and its work split and scratch
// layout, shared by the plan and codegen (Families.cpp). The kernel's work
// is `units` independent pieces: conv2d and conv2d_bwd_input, the images;
// conv2d_bwd_filter, (group, row chunk) pairs, each group's ckk rows cut
// into `chunks` ranges of `rowsPer` rows (the last one the rest; each
// element's sum over the images stays one chain in image order). The units are dealt as `items` contiguous runs
// to kiln_rt_parallel_for; item i works in scratch slot i (`slotBytes` at
// i * slotBytes), which holds its column matrix [rows][ohw] at colAt (none
// when `direct`) and its GEMM packing space at packAt (slot-relative
// offsets). conv2d_bwd_filter also has, after the slots, the transposed
// accumulator [groups*ckk][og] at accAt (its GEMM reads dy transposed, tb,
// so dy needs no copy). Offsets are 64-aligned bytes, -1 when not used.
inline constexpr int64_t kConvItems = 8;
// conv2d_bwd_filter's row chunks (work items) when it has one group: enough
// for 4 threads; each chunk repeats the packing of dy (see convLayout)
inline constexpr int64_t kConvFilterChunks = 4;
struct ConvLayout {
  int64_t n = 0, c = 0, h = 0, w = 0, o = 0, kh = 0, kw = 0, oh = 0, ow = 0, cg = 0, og = 0, ckk = 0, ohw = 0;
  int64_t groups = 1;
  bool direct = false;  // 1x1, stride 1, no padding: the image is its own column matrix
  int64_t units = 0, chunks = 1, rowsPer = 0, items = 0, slotBytes = 0;
  int64_t colAt = -1, packAt = -1, accAt = -1, bytes = 0;
  // the column matrix's row stride in floats: the forward's and the filter
  // gradient's rows start 64-byte aligned (the forward's GEMM reads them in
  // place as its B), the input gradient's (its GEMM's C) are ohw apart
  int64_t colLd = 0;
  // conv2d whose output positions end in a tail of at most
  // kGemmRowVectorCols columns past a multiple of 16: the weights
  // transposed, [group][ckk][og], once per call, which the GEMMs' narrow
  // tail panels read as op(A)'s columns (GemmArgs::aT); -1 = none
  int64_t wTAt = -1;
};
ConvLayout convLayout(const ir::Graph& g, const ir::Node& node);

// Scratch bytes the kernel computing `v` needs (0 for most ops).
int64_t kernelScratchBytes(const ir::Graph& g, ir::ValueId v);

struct PlanOptions {
  bool fuse = true;  // honour the `fuse` pass's marks (passes/Fusion.h)
  // Checked mode: every f32 input and kernel output is scanned for
  // non-finite values (FiniteCheck). Implies no fusion, so every op has
  // its own buffer and a failure names the op that produced it (fusion
  // never changes results, so the values are the same bits).
  bool checked = false;
  // Concats whose inputs can all write their slots directly are assembled
  // in place (FunctionPlan::assembled); not in checked mode.
  bool placeConcatInputs = true;
};

ModulePlan planModule(const ir::Graph& g, const PlanOptions& opts = {});

// Human-readable kernel listing (the kernels.txt dump).
std::string printPlan(const ir::Graph& g, const ModulePlan& p);

}  // namespace kiln::lower
