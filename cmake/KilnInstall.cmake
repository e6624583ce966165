# `cmake --install build --prefix P`: kiln as a library for other projects.
#
#   P/include/kiln/kiln.h, Layers.h     the public DSL headers
#   P/include/kiln/rt/*.h               the runtime (libkiln_rt)
#   P/include/kiln/compiler/<layer>/*.h the compiler headers kiln.h includes
#                                       by layer path ("ir/Builder.h"); the
#                                       exported targets put this folder on
#                                       the include path
#   P/lib/libkiln*.a                    the compiler, one library per layer,
#                                       plus libkiln.a (frontend) and
#                                       libkiln_rt.a
#   P/bin/kiln-opt
#   P/lib/cmake/kiln/                   kilnConfig.cmake: find_package(kiln)
#                                       gives kiln::kiln, kiln::kiln_rt,
#                                       kiln::kiln-opt and kiln_add_model
#
# The build tree has the same kiln:: names as aliases, so kiln_add_model
# links the same way in-tree and from the installed package.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(KILN_VERSION 0.1.0)
set(KILN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)
# Every library target kiln links: an exported target may only link
# exported targets or imported ones (LLVM, fmt, Threads).
set(KILN_INSTALL_LIBS kiln_rt kiln_ir kiln_interp kiln_autodiff kiln_passes kiln_lower kiln_codegen kiln_driver kiln)

foreach(t ${KILN_INSTALL_LIBS})
  add_library(kiln::${t} ALIAS ${t})
endforeach()
add_executable(kiln::kiln-opt ALIAS kiln-opt)

install(TARGETS ${KILN_INSTALL_LIBS} kiln-opt EXPORT kilnTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# kiln-opt finds libLLVM where it was linked from (/usr/lib/llvm-19/lib).
set_target_properties(kiln-opt PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)

install(DIRECTORY ${CMAKE_SOURCE_DIR}/frontend/include/ ${CMAKE_SOURCE_DIR}/runtime/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${CMAKE_SOURCE_DIR}/compiler/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kiln/compiler
        FILES_MATCHING PATTERN "*.h" PATTERN "*.def")

install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION ${KILN_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/kilnConfig.cmake.in ${CMAKE_BINARY_DIR}/kilnConfig.cmake
                              INSTALL_DESTINATION ${KILN_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/kilnConfigVersion.cmake VERSION ${KILN_VERSION}
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/kilnConfig.cmake ${CMAKE_BINARY_DIR}/kilnConfigVersion.cmake
              ${CMAKE_SOURCE_DIR}/cmake/KilnAddModel.cmake
        DESTINATION ${KILN_INSTALL_CMAKEDIR})
