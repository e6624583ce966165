// kiln's floating-point mode: subnormal numbers are flushed to zero, as
// results (FTZ) and as inputs (DAZ), in every compiled entry point (which
// sets the mode on entry and restores the caller's on return), in the
// runtime pool's workers while they run a call's items (they take the
// caller's mode), and in the interpreter (so the two still agree bit for
// bit). Without it, training whose values drift into the subnormal range
// (weights collapsed by weight decay: ~1e-30, whose products and squares
// are subnormal) runs every such operation on the CPU's slow path: the
// benchmark's collaborative-filtering step went from 0.14 to 1.3 ms after
// ~900 steps. TensorFlow runs with FTZ by default; PyTorch has
// torch.set_flush_denormal. Results change only in the subnormal range
// (|x| < 1.18e-38). x86 only (MXCSR); elsewhere a no-op.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define KILN_RT_HAVE_MXCSR 1
#endif

namespace kiln::rt {

// MXCSR bits: flush to zero (15) and denormals are zero (6)
inline constexpr unsigned kFlushDenormalBits = 0x8040u;

// The current thread's floating-point control word (MXCSR on x86, else 0).
inline unsigned floatControl() {
#ifdef KILN_RT_HAVE_MXCSR
  return _mm_getcsr();
#else
  return 0;
#endif
}

inline void setFloatControl(unsigned csr) {
#ifdef KILN_RT_HAVE_MXCSR
  _mm_setcsr(csr);
#else
  (void)csr;
#endif
}

// Sets FTZ and DAZ for its lifetime, then restores the thread's mode.
class ScopedFlushDenormals {
public:
  ScopedFlushDenormals() : saved_(floatControl()) { setFloatControl(saved_ | kFlushDenormalBits); }
  ~ScopedFlushDenormals() { setFloatControl(saved_); }
  ScopedFlushDenormals(const ScopedFlushDenormals&) = delete;
  ScopedFlushDenormals& operator=(const ScopedFlushDenormals&) = delete;

private:
  unsigned saved_;
};

}  // namespace kiln::rt
