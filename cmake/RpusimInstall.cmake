# Install rules, CMake package and pkg-config file of rpusim. Included from the top-level
# CMakeLists.txt after add_subdirectory(src), so it only touches the finished targets
# rpusim (the library) and rpusim_cli (the `rpusim` command).
#
#   cmake --install <build> [--prefix <dir>] installs
#     <libdir>/librpusim.{a,so}            static or shared, following BUILD_SHARED_LIBS
#     <includedir>/rpusim/*.h              every public header present at install time
#     <bindir>/rpusim                      the command
#     <libdir>/cmake/rpusim/               rpusimConfig.cmake, rpusimConfigVersion.cmake,
#                                          rpusimTargets*.cmake (targets rpusim::rpusim,
#                                          rpusim::cli)
#     <libdir>/pkgconfig/rpusim.pc         relocatable (paths relative to ${pcfiledir})
include(CMakePackageConfigHelpers)

set(RPUSIM_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/rpusim")
get_target_property(RPUSIM_LIBRARY_TYPE rpusim TYPE)   # STATIC_LIBRARY or SHARED_LIBRARY

# --- link interface of the installed library -----------------------------------------
# In the build tree rpusim links its private dependencies through the non-exported
# INTERFACE target rpusim_deps (wrapped in BUILD_INTERFACE). A static librpusim.a still
# needs them at the consumer's link step: CMake records PRIVATE links of a static library
# as $<LINK_ONLY:...>, so the installed target names rpusim::private_deps, which
# rpusimConfig.cmake recreates from the same dependencies (see rpusimConfig.cmake.in).
# For a shared library PRIVATE links are not exported at all.
target_link_libraries(rpusim PRIVATE $<INSTALL_INTERFACE:rpusim::private_deps>)

if(RPUSIM_SANITIZE)
  # An instrumented library needs the sanitizer runtimes in every program that links it.
  target_link_options(rpusim INTERFACE $<INSTALL_INTERFACE:-fsanitize=address,undefined>)
endif()

set_target_properties(rpusim PROPERTIES
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
  INSTALL_RPATH_USE_LINK_PATH TRUE)

# The installed command finds a shared librpusim next to it (bin/../lib) and its
# dependencies where they were linked from.
file(RELATIVE_PATH _rpusim_bin_to_lib
     "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}" "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}")
set_target_properties(rpusim_cli PROPERTIES
  EXPORT_NAME cli
  INSTALL_RPATH "$ORIGIN/${_rpusim_bin_to_lib}"
  INSTALL_RPATH_USE_LINK_PATH TRUE)

# --- install ----------------------------------------------------------------------------
install(TARGETS rpusim rpusim_cli
  EXPORT rpusimTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/rpusim
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

install(EXPORT rpusimTargets
  NAMESPACE rpusim::
  FILE rpusimTargets.cmake
  DESTINATION ${RPUSIM_CMAKE_INSTALL_DIR})

# --- private dependencies of a static librpusim.a ---------------------------------------
# Exactly the libraries librpusim.a calls into, as the files this build linked (so the
# package does not have to find them again): ScaLAPACK (and what its pkg-config module
# links: MPI, LAPACK, BLAS), OpenBLAS, parallel HDF5, zlib, libm. HDF5 is named by
# its own library only when that is shared (it then brings its own dependencies): the
# HDF5::HDF5 target of FindHDF5 would also put everything h5pcc links (curl, crypto, szip,
# dl) on every consumer's link line. rpusimConfig.cmake turns the list into
# rpusim::private_deps; a shared librpusim.so exports none of it.
set(_rpusim_private_libs "")
if(SCALAPACK_FOUND AND SCALAPACK_LINK_LIBRARIES)
  list(APPEND _rpusim_private_libs ${SCALAPACK_LINK_LIBRARIES})
elseif(RPUSIM_SCALAPACK_LIB)
  list(APPEND _rpusim_private_libs ${RPUSIM_SCALAPACK_LIB})
endif()
list(APPEND _rpusim_private_libs ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES})
if(HDF5_C_LIBRARY_hdf5 AND HDF5_C_LIBRARY_hdf5 MATCHES "\\.so(\\.[0-9.]+)?$")
  set(_rpusim_hdf5_libs ${HDF5_C_LIBRARY_hdf5})
else()
  set(_rpusim_hdf5_libs ${HDF5_C_LIBRARIES})   # a static HDF5 needs all of it
endif()
list(APPEND _rpusim_private_libs ${_rpusim_hdf5_libs})
list(APPEND _rpusim_private_libs ${ZLIB_LIBRARIES})
list(FILTER _rpusim_private_libs EXCLUDE REGEX "^(-l)?m$")   # libm is added by name below
list(REMOVE_DUPLICATES _rpusim_private_libs)
set(RPUSIM_PRIVATE_LIBS "${_rpusim_private_libs}")

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/rpusimConfig.cmake.in
  ${PROJECT_BINARY_DIR}/rpusimConfig.cmake
  INSTALL_DESTINATION ${RPUSIM_CMAKE_INSTALL_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/rpusimConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)   # 0.x: a minor version may break the API
install(FILES
  ${PROJECT_BINARY_DIR}/rpusimConfig.cmake
  ${PROJECT_BINARY_DIR}/rpusimConfigVersion.cmake
  DESTINATION ${RPUSIM_CMAKE_INSTALL_DIR})

# --- pkg-config -------------------------------------------------------------------------
# Dependencies are named by their own .pc modules when they have one (Debian ships
# ompi-c, hdf5-openmpi, scalapack-openmpi, openblas, zlib); otherwise the libraries
# CMake found are written out as they are. MPI is public (the public headers use MPI
# types); the rest is private.
set(_rpusim_pc_public "")
set(_rpusim_pc_private "")
set(_rpusim_pc_public_libs "")
set(_rpusim_pc_private_libs "-lm")
set(_rpusim_pc_cflags "")

if(PkgConfig_FOUND)
  pkg_search_module(_RPUSIM_PC_MPI QUIET mpi-c ompi-c mpich mpi)
  pkg_search_module(_RPUSIM_PC_HDF5 QUIET hdf5-openmpi hdf5-mpi hdf5)
  pkg_search_module(_RPUSIM_PC_SCALAPACK QUIET scalapack-openmpi scalapack)
  pkg_search_module(_RPUSIM_PC_OPENBLAS QUIET openblas)
endif()

if(_RPUSIM_PC_MPI_FOUND)
  list(APPEND _rpusim_pc_public ${_RPUSIM_PC_MPI_MODULE_NAME})
else()
  foreach(_d IN LISTS MPI_C_INCLUDE_DIRS)
    string(APPEND _rpusim_pc_cflags " -I${_d}")
  endforeach()
  list(APPEND _rpusim_pc_public_libs ${MPI_C_LIBRARIES})
endif()
if(_RPUSIM_PC_HDF5_FOUND)
  list(APPEND _rpusim_pc_private ${_RPUSIM_PC_HDF5_MODULE_NAME})
else()
  list(APPEND _rpusim_pc_private_libs ${_rpusim_hdf5_libs})
endif()
if(_RPUSIM_PC_SCALAPACK_FOUND)
  list(APPEND _rpusim_pc_private ${_RPUSIM_PC_SCALAPACK_MODULE_NAME})
elseif(SCALAPACK_FOUND)
  list(APPEND _rpusim_pc_private_libs ${SCALAPACK_LINK_LIBRARIES})
else()
  list(APPEND _rpusim_pc_private_libs ${RPUSIM_SCALAPACK_LIB})
endif()
if(_RPUSIM_PC_OPENBLAS_FOUND)
  list(APPEND _rpusim_pc_private ${_RPUSIM_PC_OPENBLAS_MODULE_NAME})
else()
  list(APPEND _rpusim_pc_private_libs ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES})
endif()
if(PkgConfig_FOUND)
  pkg_search_module(_RPUSIM_PC_ZLIB QUIET zlib)
endif()
if(_RPUSIM_PC_ZLIB_FOUND)
  list(APPEND _rpusim_pc_private ${_RPUSIM_PC_ZLIB_MODULE_NAME})
else()
  list(APPEND _rpusim_pc_private_libs ${ZLIB_LIBRARIES})
endif()
if(RPUSIM_SANITIZE)
  list(APPEND _rpusim_pc_public_libs -fsanitize=address,undefined)
endif()

# The private dependencies stay in Requires.private / Libs.private for both library
# types: `pkg-config --libs rpusim` is the shared library's link line (librpusim and MPI
# only), `pkg-config --static --libs rpusim` the static one's (plus HDF5, ScaLAPACK,
# OpenBLAS, zlib, libm), as pkg-config intends.
list(REMOVE_DUPLICATES _rpusim_pc_public)
list(JOIN _rpusim_pc_public " " RPUSIM_PC_REQUIRES)
list(JOIN _rpusim_pc_private " " RPUSIM_PC_REQUIRES_PRIVATE)
list(JOIN _rpusim_pc_public_libs " " RPUSIM_PC_LIBS)
list(JOIN _rpusim_pc_private_libs " " RPUSIM_PC_LIBS_PRIVATE)
set(RPUSIM_PC_CFLAGS "${_rpusim_pc_cflags}")

# Paths relative to the .pc file, so that `cmake --install --prefix <any>` gives a
# working file (pkg-config and pkgconf both define ${pcfiledir}).
set(_rpusim_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${_rpusim_pc_dir}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(RPUSIM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(RPUSIM_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(RPUSIM_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _rpusim_pc_up "/r/${_rpusim_pc_dir}" "/r")
  string(REGEX REPLACE "/$" "" _rpusim_pc_up "${_rpusim_pc_up}")
  set(RPUSIM_PC_PREFIX "\${pcfiledir}/${_rpusim_pc_up}")
  set(RPUSIM_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(RPUSIM_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/rpusim.pc.in ${PROJECT_BINARY_DIR}/rpusim.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/rpusim.pc DESTINATION ${_rpusim_pc_dir})
