"""Elman RNN: one layer, one direction, the whole sequence per call, GIL released.

Notation: T steps, B rows, I inputs, H hidden units; act is tanh or relu.

    (1) G      = X @ W_ih^T                        all T*B rows in one GEMM, before the loop
    (2) G[t]  += h_prev @ W_hh^T                   the recurrence, one GEMM (GEMV at B=1) per step
   (1+2) G[t]  = x_t @ W_ih^T + h_prev @ W_hh^T    instead, per step, when packed (see packed.pxd)
    (3) h_t    = act(G[t] + b_ih + b_hh)
    (4) Y[t]   = h_t                               zero where t >= lengths[b]; h_t = h_prev there

State history ``Hs`` has ``nslots`` slots of (B, H): 2 for inference (ping-pong), T+1 for training,
where slot k % nslots holds h after processing time index k-1 (forward) or k (reverse); h0 goes in
the slot before the first step. Training keeps Hs; backward needs nothing else (act' comes from h_t).
G is scratch: one slot is enough (the kernel then finds room for (1) itself when it cannot fuse (1)
into the steps), T slots also work.

Backward runs the steps in chunks of k (chunk_steps): each chunk's dG (k, B, H) goes into the weight
gradients, GEMMs over its k*B rows, before the next chunk overwrites it, so dG needs k slots, not T
(one chunk of T when the time loop runs as blocks of rows on parallel threads).
Independent blocks of batch rows may run their time loops on parallel threads (packed.pxd, row_parts).
"""
cimport numpy as cnp
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from numpy cimport int64_t

from .arrays cimport data_ptr, empty_block, empty_rows, opt_ptr, seq_rows, step_rows
from .gates cimport rnn_bwd, rnn_fwd
from .packed cimport (call_order, fr_packed_alloc, fr_run_parts, gemm_input, gemm_once, gemm_once_at, gemm_packed_2,
                      gemm_step, pack_for_steps, pack_steps_2, row_parts)
from .steps cimport active, add_col_sums_with, emit, gather_dh, hold_inactive, zero_row

cnp.import_array()


ctypedef struct _Call:
    # One call's arguments, shared by its row blocks (parts.h); arrays as void*, typed again in _fwd_part /
    # _bwd_part. rows: the rows per block (the last may have fewer).
    int T, B, In, H, rows, ldy, ng, nslots   # In: I (a C macro name, from complex.h)
    int t0, nt                               # backward: the chunk of steps [t0, t0 + nt) being run
    bint reverse, use_relu, order   # order: the desc of the first step (call_order)
    const int64_t* lengths
    const void* X
    const void* W_hh
    const void* Wp_x
    const void* Wp_hh
    const void* b_ih
    const void* b_hh
    void* Y
    void* G
    void* Hs
    const void* dY
    const void* dh_n
    void* dh0
    void* scratch


cdef int _forward(int T, int B, int I, int H, bint reverse, bint use_relu,
                  const floating* X, const floating* W_ih, const floating* W_hh,
                  const floating* b_ih, const floating* b_hh, const floating* h0,
                  const int64_t* lengths, floating* Y, int ldy,
                  floating* G, int ng, floating* Hs, int nslots) noexcept nogil:
    """(1)-(4); G has ng = T slots or 1. Returns -1 when scratch cannot be allocated."""
    cdef int first
    cdef int parts = row_parts(T, B)       # blocks of rows whose time loops run on parallel threads
    cdef int rows = (B + parts - 1) // parts
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef floating* G_all = NULL   # (T, B, H) for (1) when G has one slot and (1) is not fused
    cdef floating* Wp_x = pack_steps_2(T, rows, I, H, H, W_ih, W_hh)   # fused (1+2), or NULL
    cdef floating* Wp_hh = NULL   # W_hh^T packed for the step GEMMs, or NULL (BLAS); see packed.pxd
    cdef bint order = call_order(T)
    cdef _Call c
    if Wp_x == NULL:
        if ng != T:
            G_all = <floating*>fr_packed_alloc(<size_t>T * B * H * sizeof(floating))
            if G_all == NULL:
                return -1
            G, ng = G_all, T
        # (1) G = X @ W_ih^T
        gemm_input(T * B, H, I, X, I, W_ih, I, <floating>0, G, H, order)
        Wp_hh = pack_for_steps(T, rows, True, H, H, W_hh, H)
    first = T if reverse else 0
    memcpy(Hs + (first % nslots) * BH, h0, BH * sizeof(floating))
    if Wp_x == NULL and Wp_hh == NULL:
        parts, rows = 1, B   # BLAS steps: blocks on parallel threads would oversubscribe the cores
    c = _Call(T=T, B=B, In=I, H=H, rows=rows, ldy=ldy, ng=ng, nslots=nslots, t0=0, nt=T, reverse=reverse,
              order=order, use_relu=use_relu, lengths=lengths, X=X, W_hh=W_hh, Wp_x=Wp_x, Wp_hh=Wp_hh, b_ih=b_ih,
              b_hh=b_hh, Y=Y, G=G, Hs=Hs, dY=NULL, dh_n=NULL, dh0=NULL, scratch=NULL)
    fr_run_parts(parts, _fwd_part_f if floating is float else _fwd_part_d, &c)
    free(Wp_x)
    free(Wp_hh)
    free(G_all)
    return 0


cdef void _fwd_part_f(void* c, int part) noexcept nogil:
    _fwd_part(<float>0, <_Call*>c, part)


cdef void _fwd_part_d(void* c, int part) noexcept nogil:
    _fwd_part(<double>0, <_Call*>c, part)


cdef void _fwd_part(floating kind, _Call* c, int part) noexcept nogil:
    """The time loop, (1+2) or (2), then (3)-(4), for block `part` of the rows: the nb rows from row b0
    (buffers keep their B-row layout; each block touches only its own rows)."""
    cdef int s, t, b
    cdef bint desc
    cdef int T = c.T, B = c.B, I = c.In, H = c.H, ldy = c.ldy, ng = c.ng, nslots = c.nslots
    cdef int b0 = part * c.rows
    cdef int nb = c.rows if c.rows < B - b0 else B - b0
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef const int64_t* lens = c.lengths + b0 if c.lengths != NULL else NULL
    cdef const floating* X = <const floating*>c.X
    cdef const floating* W_hh = <const floating*>c.W_hh
    cdef const floating* Wp_x = <const floating*>c.Wp_x
    cdef const floating* Wp_hh = <const floating*>c.Wp_hh
    cdef const floating* b_ih = <const floating*>c.b_ih
    cdef const floating* b_hh = <const floating*>c.b_hh
    cdef floating* Y = <floating*>c.Y
    cdef floating* G = <floating*>c.G
    cdef floating* Hs = <floating*>c.Hs
    cdef floating* g
    cdef floating* h_prev
    cdef floating* h_t
    for s in range(T):
        t = T - 1 - s if c.reverse else s
        desc = (s & 1) ^ c.order
        h_prev = Hs + ((t + 1 if c.reverse else t) % nslots) * BH + b0 * H
        h_t = Hs + ((t if c.reverse else t + 1) % nslots) * BH + b0 * H
        g = G + ((t % ng) * B + b0) * <Py_ssize_t>H
        if Wp_x != NULL:
            # (1+2) g = x_t @ W_ih^T + h_prev @ W_hh^T
            gemm_packed_2(nb, H, I, X + (<Py_ssize_t>t * B + b0) * I, I, H, h_prev, H, Wp_x, <floating>0, g, H, desc)
        else:
            # (2) g += h_prev @ W_hh^T
            gemm_step(Wp_hh, True, nb, H, H, h_prev, H, W_hh, H, <floating>1, g, H, desc)
        for b in range(nb):
            if active(lens, t, b):
                # (3) h_t = act(g + b_ih + b_hh)
                rnn_fwd(H, c.use_relu, g + b * H, b_ih, b_hh, h_t + b * H)
        hold_inactive(h_t, h_prev, nb, H, lens, t)
        # (4) Y[t] = h_t
        emit(Y + (<Py_ssize_t>t * B + b0) * ldy if Y != NULL else NULL, ldy, h_t, nb, H, lens, t)


# The steps per chunk of the backward pass for B rows: enough for 512 rows, so that the weight-gradient
# GEMMs of a chunk (K or M = k * B) run about as fast per row as one over all T * B rows (OpenBLAS's
# blocks are 256-384 rows deep), while dG takes k * B * H elements instead of T * B * H.
# One chunk of all T steps when the time loop runs as blocks of rows on parallel threads (row_parts):
# between chunks the GEMMs run on BLAS's threads, which then spin waiting for the next call (OpenBLAS
# for up to ~0.1 s) on the cores the blocks need (parts.h says the same of thread pools).
cdef inline int chunk_steps(int T, int B) noexcept nogil:
    cdef int k = (512 + B - 1) // B
    if row_parts(T, B) > 1:
        return T
    return k if k < T else T


cdef int _backward(int T, int B, int I, int H, bint reverse, bint use_relu,
                   const floating* X, const floating* W_ih, const floating* W_hh,
                   const int64_t* lengths, const floating* Hs,
                   const floating* dY, int ldy, const floating* dh_n,
                   floating* dX, floating* dh0, floating* dW_ih, floating* dW_hh,
                   floating* db_ih, floating* db_hh, floating* dG, int k, const floating* ones) noexcept nogil:
    """BPTT through (1)-(4), k steps at a time; dG (k, B, H) and ones (k * B) are the caller's scratch.
    Returns -1 when scratch cannot be allocated."""
    cdef int parts = row_parts(T, B)       # blocks of rows whose time loops run on parallel threads
    cdef int rows = (B + parts - 1) // parts
    cdef int done, t0, nt, n
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef floating beta_dx = 0 if dX == X else 1   # dX over X itself, or added to
    # scratch: dh, dh_next, dh_prev (B, H); dh_next carries the recurrence from one chunk to the next
    cdef floating* scratch = <floating*>malloc(3 * BH * sizeof(floating))
    cdef floating* Wp_hh   # W_hh packed for the step GEMMs, or NULL (BLAS); see packed.pxd
    cdef const floating* H_prev
    cdef _Call c
    if scratch == NULL:
        return -1
    Wp_hh = pack_for_steps(T, rows, False, H, H, W_hh, H)
    if Wp_hh == NULL:
        parts, rows = 1, B   # BLAS steps: blocks on parallel threads would oversubscribe the cores
    c = _Call(T=T, B=B, In=I, H=H, rows=rows, ldy=ldy, ng=k, nslots=T + 1, t0=0, nt=0, reverse=reverse,
              order=False, use_relu=use_relu, lengths=lengths, X=NULL, W_hh=W_hh, Wp_x=NULL, Wp_hh=Wp_hh, b_ih=NULL,
              b_hh=NULL, Y=NULL, G=dG, Hs=<void*>Hs, dY=dY, dh_n=dh_n, dh0=dh0, scratch=scratch)
    memcpy(scratch + BH, dh_n, BH * sizeof(floating))
    done = 0
    while done < T:
        # the chunk [t0, t0 + nt): from the last step back for forward, from the first for reverse
        nt = k if k < T - done else T - done
        t0 = done if reverse else T - done - nt
        c.t0, c.nt = t0, nt
        fr_run_parts(parts, _bwd_part_f if floating is float else _bwd_part_d, &c)
        n = nt * B
        # (1) dW_ih += dG^T @ X[t0:t0+nt];  dX[t0:t0+nt] += dG @ W_ih  (or = over X itself: these rows of
        #     X are read by nothing after dW_ih)
        gemm_once_at(H, I, n, dG, H, X + <Py_ssize_t>t0 * B * I, I, <floating>1, dW_ih, I)
        gemm_once(False, n, I, H, dG, H, W_ih, I, beta_dx, dX + <Py_ssize_t>t0 * B * I, I)
        # (2) dW_hh += dG^T @ H_prev, H_prev = the slots before each step's output
        H_prev = Hs + (t0 + 1 if reverse else t0) * BH
        gemm_once_at(H, H, n, dG, H, H_prev, H, <floating>1, dW_hh, H)
        # (3) db_ih += dG.sum(0);  db_hh += dG.sum(0)
        add_col_sums_with(ones, db_ih, dG, n, H, H)
        add_col_sums_with(ones, db_hh, dG, n, H, H)
        done += nt
    memcpy(dh0, scratch + BH, BH * sizeof(floating))
    free(scratch)
    free(Wp_hh)
    return 0


cdef void _bwd_part_f(void* c, int part) noexcept nogil:
    _bwd_part(<float>0, <_Call*>c, part)


cdef void _bwd_part_d(void* c, int part) noexcept nogil:
    _bwd_part(<double>0, <_Call*>c, part)


cdef void _bwd_part(floating kind, _Call* c, int part) noexcept nogil:
    """The BPTT time loop, (4) back to (2), over the chunk of steps [c.t0, c.t0 + c.nt) for block `part`
    of the rows (the nb rows from row b0): dG of these steps and rows into G (slot t - t0), the
    recurrence's dh_next carried in scratch slot 1 from the chunk before to the next. Scratch is laid
    out as _backward says, each block using its rows."""
    cdef int s, t, b
    cdef int B = c.B, H = c.H, ldy = c.ldy, t0 = c.t0, nt = c.nt
    cdef int b0 = part * c.rows
    cdef int nb = c.rows if c.rows < B - b0 else B - b0
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef const int64_t* lens = c.lengths + b0 if c.lengths != NULL else NULL
    cdef const floating* W_hh = <const floating*>c.W_hh
    cdef const floating* Wp_hh = <const floating*>c.Wp_hh
    cdef const floating* Hs = <const floating*>c.Hs
    cdef const floating* dY = <const floating*>c.dY
    cdef floating* G = <floating*>c.G
    cdef floating* scratch = <floating*>c.scratch
    cdef floating* dh = scratch + b0 * H
    cdef floating* carry = scratch + BH + b0 * H
    cdef floating* dh_next = carry
    cdef floating* dh_prev = scratch + 2 * BH + b0 * H
    cdef floating* swap
    cdef floating* dg
    cdef const floating* h_t
    for s in range(nt):
        t = t0 + s if c.reverse else t0 + nt - 1 - s
        h_t = Hs + (t if c.reverse else t + 1) * BH + b0 * H
        dg = G + (<Py_ssize_t>(t - t0) * B + b0) * H
        gather_dh(dh, dh_next, dY + (<Py_ssize_t>t * B + b0) * ldy, ldy, nb, H, lens, t)
        for b in range(nb):
            if active(lens, t, b):
                # (3) dG = dh * act'(h_t)
                rnn_bwd(H, c.use_relu, dh + b * H, h_t + b * H, dg + b * H)
            else:
                zero_row(dg + b * H, H)
        # (2) dh_prev = dG[t] @ W_hh
        gemm_step(Wp_hh, False, nb, H, H, dg, H, W_hh, H, <floating>0, dh_prev, H, s & 1)
        hold_inactive(dh_prev, dh, nb, H, lens, t)
        swap = dh_next
        dh_next = dh_prev
        dh_prev = swap
    if dh_next != carry:
        memcpy(carry, dh_next, nb * H * sizeof(floating))


def forward(X, W_ih, W_hh, b_ih, b_hh, h0, lengths, Y, int col, G, Hs, bint reverse, bint use_relu):
    """Run (1)-(4). X (T, B, I); h0 (B, H); Y (T, B, ldy) written at columns [col, col+H) or None;
    G (T, B, H), or (1, B, H) for inference; Hs (nslots, B, H) state slots; lengths (B,) int64 or None.
    b_ih, b_hh are required (pass zeros for a layer without bias)."""
    cdef int T = X.shape[0], B = X.shape[1], I = X.shape[2], H = W_hh.shape[1]
    cdef int nslots = Hs.shape[0], ldy = Y.shape[2] if Y is not None else 0, ng = G.shape[0]
    cdef int tn = cnp.PyArray_TYPE(X)
    cdef Py_ssize_t TB = <Py_ssize_t>T * B
    cdef int64_t* lp = <int64_t*>opt_ptr(lengths, B, cnp.NPY_INT64, "lengths")
    if ng != T and ng != 1:
        raise ValueError(f"kernel argument G: expected T={T} slots or 1, got {ng}")
    if W_hh.shape[0] != H:
        raise ValueError(f"kernel argument W_hh: expected shape ({H}, {H}), got {W_hh.shape}")
    if Y is not None and (col < 0 or col + H > ldy or Y.shape[0] * Y.shape[1] != TB):
        raise ValueError(f"kernel argument Y: shape {Y.shape} cannot hold columns [{col}, {col + H})")
    if nslots < 2 or (nslots != 2 and nslots != T + 1):
        raise ValueError(f"kernel argument Hs: expected 2 or T+1={T + 1} slots, got {nslots}")
    if tn == cnp.NPY_FLOAT32:
        _fwd_entry(<float>0, T, B, I, H, reverse, use_relu, X, W_ih, W_hh, b_ih, b_hh, h0, lp, Y, ldy, col,
                   G, ng, Hs, nslots, tn)
    else:
        _fwd_entry(<double>0, T, B, I, H, reverse, use_relu, X, W_ih, W_hh, b_ih, b_hh, h0, lp, Y, ldy, col,
                   G, ng, Hs, nslots, tn)


cdef int _fwd_entry(floating kind, int T, int B, int I, int H, bint reverse, bint use_relu,
                    X, W_ih, W_hh, b_ih, b_hh, h0, int64_t* lp, Y, int ldy, int col,
                    G, int ng, Hs, int nslots, int tn) except -1:
    cdef Py_ssize_t TB = <Py_ssize_t>T * B
    cdef const floating* x = <floating*>data_ptr(X, TB * I, tn, "X")
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, <Py_ssize_t>H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, <Py_ssize_t>H * H, tn, "W_hh")
    cdef const floating* bi = <floating*>data_ptr(b_ih, H, tn, "b_ih")
    cdef const floating* bh = <floating*>data_ptr(b_hh, H, tn, "b_hh")
    cdef const floating* h_0 = <floating*>data_ptr(h0, <Py_ssize_t>B * H, tn, "h0")
    cdef floating* y = <floating*>opt_ptr(Y, TB * ldy, tn, "Y")
    cdef floating* g = <floating*>data_ptr(G, <Py_ssize_t>ng * B * H, tn, "G")
    cdef floating* hs = <floating*>data_ptr(Hs, <Py_ssize_t>nslots * B * H, tn, "Hs")
    cdef int status
    with nogil:
        status = _forward(T, B, I, H, reverse, use_relu, x, w_ih, w_hh, bi, bh, h_0, lp,
                          y + col if y != NULL else NULL, ldy, g, ng, hs, nslots)
    if status != 0:
        raise MemoryError(f"cannot allocate {TB * H * sizeof(floating)} bytes for the RNN pre-activations")
    return 0


def backward(X, W_ih, W_hh, lengths, Hs, dY, int col, dh_n, dX, dh0, dW_ih, dW_hh, db_ih, db_hh,
             bint reverse, bint use_relu):
    """BPTT for one (layer, direction) from the state history Hs of a training forward.
    dY (T, B, ldy) read at columns [col, col+H); dX, dW_*, db_* are ADDED to; dh0 is written.
    dX may be X itself (when nothing else reads X): X is then overwritten by this call's dX."""
    cdef int T = X.shape[0], B = X.shape[1], I = X.shape[2], H = W_hh.shape[1]
    cdef int tn = cnp.PyArray_TYPE(X)
    cdef int k = chunk_steps(T, B)
    cdef int64_t* lp = <int64_t*>opt_ptr(lengths, B, cnp.NPY_INT64, "lengths")
    cdef cnp.npy_intp dims[3]
    if Hs.shape[0] != T + 1:
        raise ValueError(f"kernel argument Hs: expected T+1={T + 1} slots from a training forward, got {Hs.shape[0]}")
    if col < 0 or col + H > dY.shape[2] or dY.shape[0] != T or dY.shape[1] != B:
        raise ValueError(f"kernel argument dY: shape {dY.shape} cannot hold columns [{col}, {col + H})")
    # scratch for one chunk of steps, as numpy arrays so that tracemalloc counts them: dG and the ones
    # whose product with dG gives its column sums
    dims[0], dims[1], dims[2] = k, B, H
    dG = cnp.PyArray_EMPTY(3, dims, tn, 0)
    dims[0] = <cnp.npy_intp>k * B
    ones = cnp.PyArray_EMPTY(1, dims, tn, 0)
    ones.fill(1)
    if tn == cnp.NPY_FLOAT32:
        return _bwd_entry(<float>0, T, B, I, H, reverse, use_relu, X, W_ih, W_hh, lp, Hs, dY, col, dh_n,
                          dX, dh0, dW_ih, dW_hh, db_ih, db_hh, dG, k, ones, tn)
    return _bwd_entry(<double>0, T, B, I, H, reverse, use_relu, X, W_ih, W_hh, lp, Hs, dY, col, dh_n,
                      dX, dh0, dW_ih, dW_hh, db_ih, db_hh, dG, k, ones, tn)


cdef int _bwd_entry(floating kind, int T, int B, int I, int H, bint reverse, bint use_relu,
                    X, W_ih, W_hh, int64_t* lp, Hs, dY, int col, dh_n, dX, dh0, dW_ih, dW_hh,
                    db_ih, db_hh, dG, int k, ones, int tn) except -1:
    cdef Py_ssize_t TB = <Py_ssize_t>T * B
    cdef int ldy = dY.shape[2]
    cdef const floating* x = <floating*>data_ptr(X, TB * I, tn, "X")
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, <Py_ssize_t>H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, <Py_ssize_t>H * H, tn, "W_hh")
    cdef const floating* hs = <floating*>data_ptr(Hs, (TB + B) * H, tn, "Hs")
    cdef const floating* dy = <floating*>data_ptr(dY, TB * ldy, tn, "dY")
    cdef const floating* dhn = <floating*>data_ptr(dh_n, <Py_ssize_t>B * H, tn, "dh_n")
    cdef floating* dx = <floating*>data_ptr(dX, TB * I, tn, "dX")
    cdef floating* dh_0 = <floating*>data_ptr(dh0, <Py_ssize_t>B * H, tn, "dh0")
    cdef floating* dw_ih = <floating*>data_ptr(dW_ih, <Py_ssize_t>H * I, tn, "dW_ih")
    cdef floating* dw_hh = <floating*>data_ptr(dW_hh, <Py_ssize_t>H * H, tn, "dW_hh")
    cdef floating* dbi = <floating*>opt_ptr(db_ih, H, tn, "db_ih")
    cdef floating* dbh = <floating*>opt_ptr(db_hh, H, tn, "db_hh")
    cdef floating* dg = <floating*>data_ptr(dG, <Py_ssize_t>k * B * H, tn, "dG")
    cdef const floating* one = <floating*>data_ptr(ones, <Py_ssize_t>k * B, tn, "ones")
    cdef int status
    with nogil:
        status = _backward(T, B, I, H, reverse, use_relu, x, w_ih, w_hh, lp, hs, dy + col, ldy, dhn,
                           dx, dh_0, dw_ih, dw_hh, dbi, dbh, dg, k, one)
    if status != 0:
        raise MemoryError(f"cannot allocate {3 * B * H * sizeof(floating)} bytes of scratch for the RNN backward pass")
    return 0


def step(x, h, cnp.ndarray W_ih, cnp.ndarray W_hh, cnp.ndarray b_ih, cnp.ndarray b_hh, bint use_relu):
    """The cells' fast path: (1)-(3) for one step (T = 1) of rows x (B, I) from h (B, H). Returns h_new,
    or None when x or h is not already a C-contiguous 2-D array of the weights' dtype and shape; the
    caller then validates and converts them."""
    cdef int tn = cnp.PyArray_TYPE(W_hh)
    cdef Py_ssize_t I = cnp.PyArray_DIM(W_ih, 1), H = cnp.PyArray_DIM(W_hh, 1)
    cdef Py_ssize_t B = step_rows(x, h, W_ih, W_hh, tn)
    if B < 0:
        return None
    h_new = empty_rows(B, H, tn)
    if tn == cnp.NPY_FLOAT32:
        _run(<float>0, 1, B, I, H, x, h, W_ih, W_hh, b_ih, b_hh, h_new, None, use_relu, tn)
    else:
        _run(<double>0, 1, B, I, H, x, h, W_ih, W_hh, b_ih, b_hh, h_new, None, use_relu, tn)
    return h_new


def run(x, h0, cnp.ndarray W_ih, cnp.ndarray W_hh, cnp.ndarray b_ih, cnp.ndarray b_hh, bint use_relu):
    """The layers' fast path for inference of one layer, one direction, every row the full length: (1)-(4)
    over x (T, B, I) from h0 (1, B, H). Returns (y (T, B, H), h_n (1, B, H)), or None when x or h0 is not
    already a C-contiguous 3-D array of the weights' dtype and shape (the caller then validates and
    converts them). The caller has checked T and B against the size limits."""
    cdef int tn = cnp.PyArray_TYPE(W_hh)
    cdef Py_ssize_t I = cnp.PyArray_DIM(W_ih, 1), H = cnp.PyArray_DIM(W_hh, 1)
    cdef Py_ssize_t B = seq_rows(x, h0, W_ih, W_hh, tn), T
    if B < 0:
        return None
    T = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
    y, h_n = empty_block(T, B, H, tn), empty_block(1, B, H, tn)
    if tn == cnp.NPY_FLOAT32:
        _run(<float>0, T, B, I, H, x, h0, W_ih, W_hh, b_ih, b_hh, y, h_n, use_relu, tn)
    else:
        _run(<double>0, T, B, I, H, x, h0, W_ih, W_hh, b_ih, b_hh, y, h_n, use_relu, tn)
    return y, h_n


cdef int _run(floating kind, int T, int B, int I, int H, x, h0, W_ih, W_hh, b_ih, b_hh, y, h_n, bint use_relu,
              int tn) except -1:
    # y (T, B, H) gets every h_t; h_n (B, H) the final state. h_n may be None: the cells' step (T = 1)
    # passes its h_new as y.
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, H * H, tn, "W_hh")
    cdef const floating* bi = <floating*>data_ptr(b_ih, H, tn, "b_ih")
    cdef const floating* bh = <floating*>data_ptr(b_hh, H, tn, "b_hh")
    cdef const floating* x_ = <floating*>data_ptr(x, <Py_ssize_t>T * B * I, tn, "x")
    cdef const floating* h_ = <floating*>data_ptr(h0, BH, tn, "h0")
    cdef floating* y_ = <floating*>data_ptr(y, <Py_ssize_t>T * BH, tn, "y")
    cdef floating* out_h = <floating*>opt_ptr(h_n, BH, tn, "h_n")
    # scratch: G with one slot (B, H) and Hs with 2 slots of (B, H)
    cdef floating* scratch = <floating*>malloc(3 * BH * sizeof(floating))
    cdef int status
    if scratch == NULL:
        raise MemoryError(f"cannot allocate {3 * BH * sizeof(floating)} bytes of RNN scratch")
    with nogil:
        status = _forward(T, B, I, H, False, use_relu, x_, w_ih, w_hh, bi, bh, h_, NULL, y_, H,
                          scratch, 1, scratch + BH, 2)
        if status == 0 and out_h != NULL:
            memcpy(out_h, scratch + BH + (T % 2) * BH, BH * sizeof(floating))
    free(scratch)
    if status != 0:
        raise MemoryError(f"cannot allocate {<Py_ssize_t>T * BH * sizeof(floating)} bytes for the RNN input product")
    return 0
