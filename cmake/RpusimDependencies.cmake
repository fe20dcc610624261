# Finds the real dependencies (Debian package names in brackets) and defines
# rpusim_deps, an INTERFACE target that carries them.
find_package(MPI REQUIRED COMPONENTS C)                      # [openmpi-bin libopenmpi-dev]

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)                     # [libhdf5-openmpi-dev]
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR
    "rpusim needs parallel HDF5, but the HDF5 found (${HDF5_C_INCLUDE_DIRS}) is serial. "
    "Install libhdf5-openmpi-dev (Debian/Ubuntu) or point HDF5_ROOT at a parallel build.")
endif()

set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)                                  # [libopenblas-dev]
find_package(LAPACK REQUIRED)
find_path(CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas-pthread openblas)
if(NOT CBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "cblas.h not found: install libopenblas-dev")
endif()

# Debian's ScaLAPACK CMake package points at a file that does not exist: use pkg-config.
find_package(PkgConfig)
if(PkgConfig_FOUND)
  pkg_check_modules(SCALAPACK IMPORTED_TARGET scalapack-openmpi)  # [libscalapack-openmpi-dev]
endif()
if(SCALAPACK_FOUND)
  set(RPUSIM_SCALAPACK_LIB PkgConfig::SCALAPACK)
else()
  find_library(RPUSIM_SCALAPACK_LIB NAMES scalapack-openmpi scalapack)
  if(NOT RPUSIM_SCALAPACK_LIB)
    message(FATAL_ERROR "ScaLAPACK not found: install libscalapack-openmpi-dev")
  endif()
endif()

add_library(rpusim_deps INTERFACE)
target_include_directories(rpusim_deps INTERFACE ${CBLAS_INCLUDE_DIR})
target_link_libraries(rpusim_deps INTERFACE ${RPUSIM_SCALAPACK_LIB} HDF5::HDF5 LAPACK::LAPACK
                      BLAS::BLAS MPI::MPI_C m)

# IDX data files, gzip-compressed or plain (src/data.c).
find_package(ZLIB REQUIRED)                                  # [zlib1g-dev]
target_link_libraries(rpusim_deps INTERFACE ZLIB::ZLIB)

