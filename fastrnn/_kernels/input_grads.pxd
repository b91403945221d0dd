# The input side of a kernel's backward pass: dX += dG @ W_ih, dW_ih += dG^T @ X and db_ih += dG.sum(0),
# from the gate gradients dG (T, B, N) that the BPTT time loop writes (N = gates * H, W_ih of N x I).
#
# Computed after the time loop by the calling thread, or, when input_grads_pay says so, by a helper thread
# (parts.h) that starts with the loop: it takes dX a few steps at a time as the loop finishes them, then
# dW_ih and db_ih once the loop is done, while the caller goes on to dW_hh. The same kernels make the same
# numbers either way (dX by rows through the packed GEMM, whose rows are independent; dW_ih and db_ih by
# the same calls), so the results do not depend on the helper (tests/test_input_grads.py).
#
# Use: input_grads_start before the loop; the loop calls fr_progress_publish(progress, s + 1) after its
# step s when progress is not NULL; input_grads_finish after the loop (it joins the helper, or does the
# work itself). The loop must run on one thread (row_parts == 1): the steps it counts are all the rows'.
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from .blas cimport blas_threads
from .packed cimport fr_packed_mr, fr_part_fn, gemm_once, gemm_once_at, gemm_packed, pack_weights, packed_product
from .steps cimport add_col_sums


cdef extern from "parts.h" nogil:
    ctypedef struct fr_helper:
        pass
    void fr_helper_start(fr_helper* h, fr_part_fn fn, void* ctx)
    void fr_helper_join(fr_helper* h)
    void fr_progress_publish(int* count, int n)
    void fr_progress_wait(const int* count, int n)


ctypedef struct InputGrads:
    int T, B, In, N   # In: I (a C macro name, from complex.h)
    bint reverse, dbl, helped
    const void* G
    const void* X
    const void* W_ih
    void* dX
    void* dX_own     # the helper's dX when dX is X (X is read by dW_ih after the last step), else NULL
    void* dW_ih
    void* db_ih
    int progress     # steps the time loop has finished (fr_progress_publish)
    fr_helper helper


# The helper's dX chunk: at least this many rows (the packed GEMM's micro-tile is 8 rows high with
# AVX-512), so that a chunk reads the packed W_ih once for a full tile; the last chunk, left when the loop
# ends, is this small.
cdef enum:
    CHUNK_ROWS = 8


# Whether a helper thread pays for the input side of a T-step backward with B rows: there is a second BLAS
# thread (the user's setting for how many cores a call may use) that the time loop does not use (one
# block of rows, row_parts), dX goes to the packed GEMM (so that its chunks make the same numbers as the
# whole), and its T*B*I*N multiply-adds, with dW_ih's as many, are past 2^20 (about 20 us on one core;
# a thread costs 10-45 us to start, but it starts while the loop runs). Past SMALL_MACS the products
# already run split on fastrnn's own threads (packed.pxd, own_parts), and packed_product says no there.
cdef inline bint input_grads_pay(int T, int B, int I, int N, int parts, size_t itemsize) noexcept nogil:
    cdef size_t macs = <size_t>T * B * I * N
    if parts != 1 or T < 4 or macs < (<size_t>1) << 20 or blas_threads() < 2:
        return False
    return packed_product(False, T * B, I, N, itemsize)


# Sets up g for the input side of a backward (arguments as the module's notes say; dX may be X itself, then
# overwritten with dX once dW_ih has read X) and, when helper says so (1: always, where a thread can be
# had; -1: input_grads_pay decides; 0: never), starts the helper. Returns the progress count for the
# time loop to publish to, or NULL (no helper).
cdef inline int* input_grads_start(InputGrads* g, int helper, int T, int B, int I, int N, bint reverse,
                                   const floating* G, const floating* X, const floating* W_ih, floating* dX,
                                   floating* dW_ih, floating* db_ih, int parts) noexcept nogil:
    g.T, g.B, g.In, g.N, g.reverse, g.dbl = T, B, I, N, reverse, floating is double
    g.G, g.X, g.W_ih, g.dX, g.dX_own, g.dW_ih, g.db_ih = G, X, W_ih, dX, NULL, dW_ih, db_ih
    g.progress = 0
    g.helped = helper == 1 or helper == -1 and input_grads_pay(T, B, I, N, parts, sizeof(floating))
    if g.helped and dX == X:
        g.dX_own = malloc(<size_t>T * B * I * sizeof(floating))
        g.helped = g.dX_own != NULL
    if not g.helped:
        return NULL
    fr_helper_start(&g.helper, _helper_main_f if floating is float else _helper_main_d, g)
    return &g.progress


# After the time loop: the input side, done (the helper joined, or the products computed here).
cdef inline void input_grads_finish(InputGrads* g) noexcept nogil:
    if g.helped:
        fr_helper_join(&g.helper)
    elif g.dbl:
        _products(<double>0, g, NULL, g.T)
    else:
        _products(<float>0, g, NULL, g.T)


cdef inline void _helper_main_f(void* g, int part) noexcept nogil:
    _helper_main(<float>0, <InputGrads*>g)


cdef inline void _helper_main_d(void* g, int part) noexcept nogil:
    _helper_main(<double>0, <InputGrads*>g)


cdef inline void _helper_main(floating kind, InputGrads* g) noexcept nogil:
    # W_ih packed as gemm_once would (op(W) = W, K = N, N = I); without memory, dX whole after the loop
    cdef floating* Wp = pack_weights(False, g.N, g.In, <const floating*>g.W_ih, g.In)
    cdef int mr = fr_packed_mr()
    _products(kind, g, Wp, (CHUNK_ROWS + mr - 1) // mr * mr)
    free(Wp)
    if g.dX_own != NULL:
        memcpy(g.dX, g.dX_own, <size_t>g.T * g.B * g.In * sizeof(floating))
        free(g.dX_own)


cdef inline void _products(floating kind, InputGrads* g, const floating* Wp, int chunk) noexcept nogil:
    # dX on Wp (the packed W_ih) in chunks of `chunk` rows, each once the loop has published its steps, in
    # the loop's order; chunk is a multiple of the packed GEMM's tile height and the chunks start at
    # multiples of it, so that every row falls in the tile it has in the whole product (the tiles of one or
    # two rows sum in another order). Wp NULL: dX whole through gemm_once after the last step. Then dW_ih
    # and db_ih.
    cdef int T = g.T, B = g.B, I = g.In, N = g.N, TB = g.T * g.B, c, n_chunks, r0, r1
    cdef const floating* G = <const floating*>g.G
    cdef const floating* X = <const floating*>g.X
    cdef floating* dX = <floating*>(g.dX_own if g.dX_own != NULL else g.dX)
    cdef floating beta = 0 if g.dX_own != NULL or g.dX == g.X else 1   # over X itself, or added to
    if Wp == NULL:
        if g.helped:
            fr_progress_wait(&g.progress, T)
        # dX += dG @ W_ih (= when dX is X, which nothing reads after dW_ih: so dW_ih first)
        gemm_once_at(N, I, TB, G, N, X, I, <floating>1, <floating*>g.dW_ih, I)
        gemm_once(False, TB, I, N, G, N, <const floating*>g.W_ih, I, beta, dX, I)
    else:
        n_chunks = (TB + chunk - 1) // chunk
        for c in range(n_chunks):
            # the rows [r0, r1): from the last row back for the forward direction, from the first for
            # reverse; the loop has finished them once it has done the steps from their first step (the
            # forward direction's loop runs from t = T - 1 down) or up to their last (reverse)
            r0 = c * chunk if g.reverse else (n_chunks - 1 - c) * chunk
            r1 = r0 + chunk if r0 + chunk < TB else TB
            fr_progress_wait(&g.progress, (r1 - 1) // B + 1 if g.reverse else T - r0 // B)
            # dX[r0:r1] (+)= dG[r0:r1] @ W_ih
            gemm_packed(r1 - r0, I, N, G + <Py_ssize_t>r0 * N, N, Wp, beta, dX + <Py_ssize_t>r0 * I, I)
        # dW_ih += dG^T @ X
        gemm_once_at(N, I, TB, G, N, X, I, <floating>1, <floating*>g.dW_ih, I)
    # db_ih += dG.sum(0)
    add_col_sums(<floating*>g.db_ih, G, TB, N, N)
