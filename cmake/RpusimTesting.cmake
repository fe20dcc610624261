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
set(RPUSIM_TEST_RANKS 1 2 3 4 CACHE STRING "Default rank counts of MPI tests")

# Sanitized builds (RPUSIM_SANITIZE=ON) add the sanitizer settings of every test process.
# Open MPI 4.1 leaves MPI_Init's allocations alive at exit; mpi_tests/lsan.supp suppresses
# leaks whose allocation stack passes through Open MPI, PMIx, hwloc or libevent, so leaks
# in rpusim's own code are still reported. fast_unwind_on_malloc=0 is required: Open MPI
# is built without frame pointers, so the fast unwinder stops at Open MPI's first frame,
# often inside a component that MPI_Finalize has already unloaded ("<unknown module>"),
# and no suppression can match.
if(RPUSIM_SANITIZE)
  set(RPUSIM_MPI_TEST_ENV ${RPUSIM_MPI_TEST_ENV}
    "ASAN_OPTIONS=fast_unwind_on_malloc=0:detect_leaks=1"
    "LSAN_OPTIONS=suppressions=\"${PROJECT_SOURCE_DIR}/mpi_tests/lsan.supp\":print_suppressions=0"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()

function(rpusim_add_mpi_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;RANKS;ARGS;LIBS" ${ARGN})
  if(NOT T_RANKS)
    set(T_RANKS ${RPUSIM_TEST_RANKS})
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE rpusim rpusim_deps rpusim_testlib ${T_LIBS})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/mpi_tests)
  foreach(np IN LISTS T_RANKS)
    add_test(NAME ${T_NAME}_np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:${T_NAME}> ${MPIEXEC_POSTFLAGS} ${T_ARGS})
    set_tests_properties(${T_NAME}_np${np} PROPERTIES
      ENVIRONMENT "${RPUSIM_MPI_TEST_ENV}" TIMEOUT ${T_TIMEOUT} PROCESSORS ${np}
      LABELS "mpi;np${np}")
  endforeach()
endfunction()
