# kiln_add_model(NAME GENERATOR model.cpp [SOURCES more.cpp...] [DUMP_DIR dir]
#                [TARGET_CPU cpu] [ARGS arg...])
#
# Builds the generator (a program that builds a kiln::Module and calls
# kiln::aot::emit), runs it at build time, and exposes a static library
# target NAME holding NAME.o with NAME.h on its include path. Linking NAME
# brings in libkiln_rt only: no LLVM. The object targets the build machine's
# CPU (all its features) unless TARGET_CPU names another, e.g. x86-64-v3.
#
# The same file serves the build tree and the installed package
# (find_package(kiln); see KilnInstall.cmake): both define kiln::kiln and
# kiln::kiln_rt.
# ARGS are passed to the generator, so one model.cpp can build several
# variants (one kiln_add_model call each; the generator must strip them
# before aot::emit).
function(kiln_add_model NAME)
  cmake_parse_arguments(PARSE_ARGV 1 KAM "" "GENERATOR;DUMP_DIR;TARGET_CPU" "SOURCES;ARGS")
  if(NOT KAM_GENERATOR)
    message(FATAL_ERROR "kiln_add_model(${NAME}): GENERATOR is required")
  endif()
  set(gen ${NAME}_generator)
  add_executable(${gen} ${KAM_GENERATOR} ${KAM_SOURCES})
  target_link_libraries(${gen} PRIVATE kiln::kiln)
  set_target_properties(${gen} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/generators)

  set(out ${CMAKE_CURRENT_BINARY_DIR}/${NAME}_aot)
  set(extra_args)
  if(KAM_DUMP_DIR)
    list(APPEND extra_args --dump ${KAM_DUMP_DIR})
  endif()
  if(KAM_TARGET_CPU)
    list(APPEND extra_args --target-cpu ${KAM_TARGET_CPU})
  endif()
  list(APPEND extra_args ${KAM_ARGS})
  add_custom_command(
    OUTPUT ${out}/${NAME}.o ${out}/${NAME}.h
    COMMAND ${gen} --out-dir ${out} ${extra_args}
    DEPENDS ${gen}
    COMMENT "kiln: compiling model ${NAME} ahead of time"
    VERBATIM)
  add_custom_target(${NAME}_aot DEPENDS ${out}/${NAME}.o ${out}/${NAME}.h)

  add_library(${NAME} STATIC ${out}/${NAME}.o)
  set_source_files_properties(${out}/${NAME}.o PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
  set_target_properties(${NAME} PROPERTIES LINKER_LANGUAGE CXX)
  target_include_directories(${NAME} PUBLIC ${out})
  target_link_libraries(${NAME} PUBLIC kiln::kiln_rt m)
  add_dependencies(${NAME} ${NAME}_aot)
endfunction()
