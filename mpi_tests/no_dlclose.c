/* Preloaded into the MPI test processes of sanitized builds (cmake/RpusimTesting.cmake):
 * dlclose does nothing, so the Open MPI components that MPI_Finalize unloads stay mapped
 * and LeakSanitizer can name the module of an allocation made inside one. That lets the
 * tests use ASan's fast (frame-pointer) unwinder, several times faster than the DWARF
 * unwinder on HDF5's and Open MPI's many small allocations, while mpi_tests/lsan.supp
 * still hides only allocations made inside Open MPI. Test tree only. */
int dlclose(void *handle);

int dlclose(void *handle) {
    (void)handle;
    return 0;
}
