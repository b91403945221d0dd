/* How many threads the BLAS library behind scipy.linalg.cython_blas will use, asked at call time.
 *
 * Why: the kernels choose between BLAS and their own single-threaded packed GEMM for the per-step
 * products (packed.pxd, pack_for_steps). At B > 32 rows the packed GEMM wins only while BLAS runs one
 * thread, and that count changes at run time (threadpoolctl, OPENBLAS_NUM_THREADS, set_num_threads).
 *
 * How: the library holding scipy's sgemm is found from the function's address (dladdr) and asked for
 * its thread-count function by name. OpenBLAS (scipy's wheels and system builds), MKL and BLIS are
 * known; anything else, or a platform without dladdr, gives "unknown" (-1).
 */
#ifndef FASTRNN_BLAS_THREADS_H
#define FASTRNN_BLAS_THREADS_H

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define FR_HAVE_DLADDR 1
#else
#define FR_HAVE_DLADDR 0
#endif

typedef int (*fr_threads_fn)(void);

/* The thread-count function of the library that defines blas_function, or NULL when unknown. */
static fr_threads_fn fr_find_blas_threads(void *blas_function)
{
#if FR_HAVE_DLADDR
    static const char *const names[] = {
        "scipy_openblas_get_num_threads",       /* scipy's OpenBLAS wheels (symbols prefixed) */
        "scipy_openblas_get_num_threads64_",
        "openblas_get_num_threads",             /* OpenBLAS built by a distribution or conda */
        "openblas_get_num_threads64_",
        "MKL_Get_Max_Threads",
        "bli_thread_get_num_threads",           /* BLIS */
    };
    Dl_info info;
    void *lib, *fn;
    size_t i;
    if (blas_function == NULL || !dladdr(blas_function, &info) || info.dli_fname == NULL)
        return NULL;
    /* already loaded by scipy: RTLD_NOLOAD only takes a reference, it never loads anything new */
    lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (lib == NULL)
        return NULL;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        fn = dlsym(lib, names[i]);
        if (fn != NULL)
            return (fr_threads_fn)fn;   /* the reference is kept: the library stays loaded with scipy */
    }
    dlclose(lib);
#else
    (void)blas_function;
#endif
    return NULL;
}

#endif
