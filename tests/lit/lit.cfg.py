# lit configuration for the kiln-opt tests (.kir files). RUN lines name
# `kiln-opt`, `FileCheck`, `not` and `count`; they are found through PATH,
# with this build's bin dir and LLVM's tools dir first.
import os

import lit.formats
import lit.util

config.name = "kiln"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".kir"]
config.excludes = ["Inputs"]

if not hasattr(config, "kiln_tools_dir"):
    lit_config.fatal(
        "no site configuration: run lit on the build tree "
        "(e.g. lit build/tests/lit or ctest -L lit), not on the source folder"
    )

config.test_source_root = config.kiln_src_root
config.test_exec_root = config.kiln_obj_root

for tool, where in [("kiln-opt", config.kiln_tools_dir), ("FileCheck", config.llvm_tools_dir),
                    ("not", config.llvm_tools_dir), ("count", config.llvm_tools_dir)]:
    if not os.path.exists(os.path.join(where, tool)):
        lit_config.fatal("%s not found in %s (build it first)" % (tool, where))

config.environment["PATH"] = os.pathsep.join(
    [config.kiln_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")]
)
