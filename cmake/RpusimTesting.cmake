# rpusim_add_mpi_test(NAME <name> SOURCES <src...> [RANKS 1 2 3 4] [ARGS ...] [TIMEOUT s])
# Builds one test program and registers it with CTest once per rank count, run through the
# real mpiexec with the environment from shared/notes/toolchain.md set as test properties,
# so plain `ctest` works from a root shell on a 2-core machine.
set(RPUSIM_MPI_TEST_ENV
  OMPI_ALLOW_RUN_AS_ROOT=1
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_rmaps_base_oversubscribe=1
  OMPI_MCA_mpi_yield_when_idle=1
  OPENBLAS_NUM_THREADS=1
  CACHE STRING "Environment of every MPI test")
# What the sanitized build (ASan+UBSan) runs: every test of the C code, Python layer and
# CLI, but each MPI test at 1 and 3 ranks only (one rank, and a count that divides no work
# evenly and oversubscribes the 2 cores): under ASan the 2- and 4-rank runs add no code
# path beyond those two and the normal build's, and cost as much as the whole normal suite
# (test_ckpt: 14, 61, 213, 247 s at np 1-4). Tests of packaging, structure and the
# examples run in the normal build only (deps, install_consumer, py_install, py_abi,
# py_ckpt_abi, slurm, example_*): instrumenting them checks nothing new.
if(RPUSIM_SANITIZE)
  set(RPUSIM_TEST_RANKS 1 3 CACHE STRING "Default rank counts of MPI tests")
else()
  set(RPUSIM_TEST_RANKS 1 2 3 4 CACHE STRING "Default rank counts of MPI tests")
endif()

# Sanitized builds (RPUSIM_SANITIZE=ON) add the sanitizer settings of every test process.
# Open MPI 4.1 leaves MPI_Init's allocations alive at exit; mpi_tests/lsan.supp suppresses
# leaks allocated inside Open MPI, PMIx, hwloc or libevent (by module), so leaks in
# rpusim's own code are still reported. Open MPI is built without frame pointers, so ASan's
# fast unwinder sees only the first frame inside it, and that frame is in a component that
# MPI_Finalize has unloaded ("<unknown module>", no suppression can match) unless
# dlclose is a no-op: mpi_tests/no_dlclose.c, preloaded. (The alternative, the DWARF
# unwinder on every malloc, made the checkpoint tests 2-7x slower.)
if(RPUSIM_SANITIZE)
  if(NOT TARGET rpusim_no_dlclose)   # this file is included by several directories
    add_library(rpusim_no_dlclose SHARED ${PROJECT_SOURCE_DIR}/mpi_tests/no_dlclose.c)
    set_target_properties(rpusim_no_dlclose PROPERTIES
      OUTPUT_NAME no_dlclose LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/mpi_tests)
    # no sanitizer in the shim itself (it is preloaded into uninstrumented programs too)
    target_compile_options(rpusim_no_dlclose PRIVATE -fno-sanitize=all)
    target_link_options(rpusim_no_dlclose PRIVATE -fno-sanitize=all)
  endif()
  set(RPUSIM_NO_DLCLOSE ${PROJECT_BINARY_DIR}/mpi_tests/libno_dlclose.so)
  set(RPUSIM_MPI_TEST_ENV ${RPUSIM_MPI_TEST_ENV}
    "LD_PRELOAD=${RPUSIM_NO_DLCLOSE}"
    "ASAN_OPTIONS=fast_unwind_on_malloc=1:detect_leaks=1"
    "LSAN_OPTIONS=suppressions=\"${PROJECT_SOURCE_DIR}/mpi_tests/lsan.supp\":print_suppressions=0"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()
# Tests that make HDF5 read corrupted files: HDF5 1.10 leaks the cache entry of an object
# header that fails its checksum (lsan.supp: H5C_protect), a function the fast unwinder
# cannot see (HDF5 has no frame pointers), so these tests keep ASan's full unwinder.
set(RPUSIM_HDF5_FAULT_TEST_ENV ${RPUSIM_MPI_TEST_ENV})
if(RPUSIM_SANITIZE)
  list(FILTER RPUSIM_HDF5_FAULT_TEST_ENV EXCLUDE REGEX "^ASAN_OPTIONS=")
  list(APPEND RPUSIM_HDF5_FAULT_TEST_ENV "ASAN_OPTIONS=fast_unwind_on_malloc=0:detect_leaks=1")
endif()

# rpusim_add_mpi_runs(NAME <name> TARGET <program> [RANKS ...] [ARGS ...] [TIMEOUT s]
#                     [ENVIRONMENT ...]): registers <program> (built already) as test
# <name>_np<P> for each rank count P.
function(rpusim_add_mpi_runs)
  cmake_parse_arguments(T "" "NAME;TARGET;TIMEOUT" "RANKS;ARGS;ENVIRONMENT" ${ARGN})
  if(NOT T_RANKS)
    set(T_RANKS ${RPUSIM_TEST_RANKS})
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(NOT T_ENVIRONMENT)
    set(T_ENVIRONMENT ${RPUSIM_MPI_TEST_ENV})
  endif()
  # Sanitized builds: instrumented HDF5/MPI-heavy paths run 10-50x slower, and 3 ranks
  # share 2 cores, so each bound is tripled.
  if(RPUSIM_SANITIZE)
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 3")
  endif()
  foreach(np IN LISTS T_RANKS)
    add_test(NAME ${T_NAME}_np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:${T_TARGET}> ${MPIEXEC_POSTFLAGS} ${T_ARGS})
    set_tests_properties(${T_NAME}_np${np} PROPERTIES
      ENVIRONMENT "${T_ENVIRONMENT}" TIMEOUT ${T_TIMEOUT} PROCESSORS ${np}
      LABELS "mpi;np${np}")
  endforeach()
endfunction()

# rpusim_add_mpi_test(NAME <name> SOURCES <src...> [LIBS ...] [RANKS ...] [ARGS ...]
#                     [TIMEOUT s] [ENVIRONMENT ...]): builds program <name> and registers it.
function(rpusim_add_mpi_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;RANKS;ARGS;LIBS;ENVIRONMENT" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE rpusim rpusim_deps rpusim_testlib ${T_LIBS})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/mpi_tests)
  rpusim_add_mpi_runs(NAME ${T_NAME} TARGET ${T_NAME} RANKS ${T_RANKS} ARGS ${T_ARGS}
                      TIMEOUT ${T_TIMEOUT} ENVIRONMENT ${T_ENVIRONMENT})
endfunction()
