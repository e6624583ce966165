// In-process compilation: the object code the AOT path would write, loaded
// with ORC LLJIT, plus the model's memory and named buffer accessors.
#pragma once

#include <kiln/rt/Checkpoint.h>
#include <kiln/rt/Memory.h>

#include <map>
#include <memory>
#include <string>

#include "Compile.h"

namespace llvm::orc {
class LLJIT;
}

namespace kiln::jit {

class CompiledModule {
public:
  ~CompiledModule();
  CompiledModule(const CompiledModule&) = delete;
  CompiledModule& operator=(const CompiledModule&) = delete;

  // Fills params and state from `seed` (inputs and outputs are zeroed).
  void init(uint64_t seed);
  // Runs an entry point.
  void run(std::string_view function);

  // Buffers by name: inputs, params and state by their names, outputs as
  // "function.output" (e.g. "trainStep.loss").
  float* f32(std::string_view name);
  int32_t* i32(std::string_view name);
  const ir::TensorType& type(std::string_view name) const;
  std::vector<std::string> bufferNames() const;

  // Checkpoints of every param and state buffer (optimizer state and step
  // counters included), in the format and with the checks of
  // kiln/rt/Checkpoint.h; files are interchangeable with the AOT class's.
  // Both throw rt::Error; a failed load leaves the module unchanged.
  void save(const std::string& path) const;
  void load(const std::string& path);

  const driver::Compiled& compiled() const { return c_; }

private:
  friend std::unique_ptr<CompiledModule> compile(const ir::Graph&, const CompileOptions&, const std::string&);
  CompiledModule() = default;
  const lower::NamedBuffer& find(std::string_view name) const;
  std::vector<rt::CheckpointTensor> checkpointTensors() const;

  driver::Compiled c_;
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  std::map<std::string, int (*)(char*), std::less<>> entries_;
  rt::AlignedPtr mem_;
};

std::unique_ptr<CompiledModule> compile(const ir::Graph& g, const CompileOptions& opts = {},
                                        const std::string& builtText = {});

}  // namespace kiln::jit
