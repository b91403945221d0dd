"""LSTM (with PyTorch's optional projection): one layer, one direction, whole sequence, GIL released.

Notation: T steps, B rows, I inputs, H cell units, P = proj_size or H (the size of h), gates i, f, g, o
in PyTorch's order, each H wide, so G has 4H columns.

    (1) G      = X @ W_ih^T                                  one GEMM over all T*B rows
    (2) G[t]  += h_prev @ W_hh^T                             per step (GEMV at B=1)
   (1+2) G[t]  = x_t @ W_ih^T + h_prev @ W_hh^T              instead, per step, when packed (see packed.pxd)
    (3) i, f, g, o = sig(.), sig(.), tanh(.), sig(.)  of  G[t] + b_ih + b_hh
    (4) c_t    = f * c_prev + i * g
    (5) r_t    = o * tanh(c_t)
    (6) h_t    = r_t @ W_hr^T     with projection;  h_t = r_t  without
    (7) Y[t]   = h_t                                         zero where t >= lengths[b]; states held there

Slots: ``Hs`` (nslots, B, P) and ``Cs`` (nslots, B, H) as in rnn.pyx (2 for inference, T+1 for
training). G has T slots, or one for inference (the kernel then finds room for (1) itself when
it cannot fuse (1) into the steps). ``R`` holds r_t when projecting: (T, B, H) for training, (1, B, H) for inference. Training
keeps G (the gate activations), Hs, Cs and R; backward overwrites G with dG. Independent blocks of
batch rows may run their time loops on parallel threads (packed.pxd, row_parts).
"""
cimport numpy as cnp
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from numpy cimport int64_t

from .arrays cimport data_ptr, empty_block, empty_rows, is_block, is_rows, opt_ptr, seq_rows, step_rows
from .gates cimport lstm_bwd, lstm_fwd
from .packed cimport (call_order, fr_packed_alloc, fr_run_parts, gemm_input, gemm_once, gemm_once_at, gemm_packed_2,
                      gemm_step, pack_for_steps, pack_steps_2, row_parts)
from .steps cimport active, add_col_sums, emit, gather_dh, hold_inactive, zero_row

cnp.import_array()


ctypedef struct _Call:
    # One call's arguments, shared by its row blocks (parts.h); arrays as void*, typed again in _fwd_part /
    # _bwd_part. rows: the rows per block (the last may have fewer).
    int T, B, In, H, P, rows, ldy, ng, nslots, nr   # In: I (a C macro name, from complex.h)
    bint reverse, order   # order: the desc of the first step (call_order)
    const int64_t* lengths
    const void* X
    const void* W_hh
    const void* W_hr
    const void* Wp_x
    const void* Wp_hh
    const void* Wp_hr
    const void* b_ih
    const void* b_hh
    void* Y
    void* G
    void* Hs
    void* Cs
    void* R
    const void* dY
    const void* dh_n
    const void* dc_n
    void* dh0
    void* dc0
    void* scratch


cdef int _forward(int T, int B, int I, int H, int P, bint reverse,
                  const floating* X, const floating* W_ih, const floating* W_hh, const floating* W_hr,
                  const floating* b_ih, const floating* b_hh, const floating* h0, const floating* c0,
                  const int64_t* lengths, floating* Y, int ldy, floating* G, int ng,
                  floating* Hs, floating* Cs, int nslots, floating* R, int nr) noexcept nogil:
    """(1)-(7); G has ng = T slots or 1. Returns -1 when scratch cannot be allocated."""
    cdef int H4 = 4 * H, first
    cdef int parts = row_parts(T, B)       # blocks of rows whose time loops run on parallel threads
    cdef int rows = (B + parts - 1) // parts
    cdef Py_ssize_t BP = <Py_ssize_t>B * P, BH = <Py_ssize_t>B * H
    cdef floating* G_all = NULL   # (T, B, 4H) for (1) when G has one slot and (1) is not fused
    cdef floating* Wp_x = pack_steps_2(T, rows, I, P, H4, W_ih, W_hh)   # fused (1+2), or NULL
    cdef floating* Wp_hh = NULL   # W_hh^T packed for the step GEMMs, or NULL (BLAS); see packed.pxd
    cdef floating* Wp_hr = NULL   # W_hr^T likewise
    cdef bint order = call_order(T)
    cdef _Call c
    if Wp_x == NULL:
        if ng != T:
            G_all = <floating*>fr_packed_alloc(<size_t>T * B * H4 * sizeof(floating))
            if G_all == NULL:
                return -1
            G, ng = G_all, T
        # (1) G = X @ W_ih^T
        gemm_input(T * B, H4, I, X, I, W_ih, I, <floating>0, G, H4, order)
        Wp_hh = pack_for_steps(T, rows, True, P, H4, W_hh, P)
    first = T if reverse else 0
    memcpy(Hs + (first % nslots) * BP, h0, BP * sizeof(floating))
    memcpy(Cs + (first % nslots) * BH, c0, BH * sizeof(floating))
    if W_hr != NULL:
        Wp_hr = pack_for_steps(T, rows, True, H, P, W_hr, H)
    if Wp_x == NULL and Wp_hh == NULL or W_hr != NULL and Wp_hr == NULL:
        parts, rows = 1, B   # BLAS steps: blocks on parallel threads would oversubscribe the cores
    c = _Call(T=T, B=B, In=I, H=H, P=P, rows=rows, ldy=ldy, ng=ng, nslots=nslots, nr=nr, reverse=reverse,
              order=order, lengths=lengths, X=X, W_hh=W_hh, W_hr=W_hr, Wp_x=Wp_x, Wp_hh=Wp_hh, Wp_hr=Wp_hr,
              b_ih=b_ih, b_hh=b_hh, Y=Y, G=G, Hs=Hs, Cs=Cs, R=R, dY=NULL, dh_n=NULL, dc_n=NULL, dh0=NULL,
              dc0=NULL, scratch=NULL)
    fr_run_parts(parts, _fwd_part_f if floating is float else _fwd_part_d, &c)
    free(Wp_x)
    free(Wp_hh)
    free(Wp_hr)
    free(G_all)
    return 0


cdef void _fwd_part_f(void* c, int part) noexcept nogil:
    _fwd_part(<float>0, <_Call*>c, part)


cdef void _fwd_part_d(void* c, int part) noexcept nogil:
    _fwd_part(<double>0, <_Call*>c, part)


cdef void _fwd_part(floating kind, _Call* c, int part) noexcept nogil:
    """The time loop, (1+2) or (2), then (3)-(7), for block `part` of the rows: the nb rows from row b0
    (buffers keep their B-row layout; each block touches only its own rows)."""
    cdef int s, t, b, k_prev, k_new
    cdef bint desc
    cdef int T = c.T, B = c.B, I = c.In, H = c.H, P = c.P, H4 = 4 * c.H, ldy = c.ldy
    cdef int ng = c.ng, nslots = c.nslots, nr = c.nr
    cdef int b0 = part * c.rows
    cdef int nb = c.rows if c.rows < B - b0 else B - b0
    cdef Py_ssize_t BP = <Py_ssize_t>B * P, BH = <Py_ssize_t>B * H
    cdef const int64_t* lens = c.lengths + b0 if c.lengths != NULL else NULL
    cdef const floating* X = <const floating*>c.X
    cdef const floating* W_hh = <const floating*>c.W_hh
    cdef const floating* W_hr = <const floating*>c.W_hr
    cdef const floating* Wp_x = <const floating*>c.Wp_x
    cdef const floating* Wp_hh = <const floating*>c.Wp_hh
    cdef const floating* Wp_hr = <const floating*>c.Wp_hr
    cdef const floating* b_ih = <const floating*>c.b_ih
    cdef const floating* b_hh = <const floating*>c.b_hh
    cdef floating* Y = <floating*>c.Y
    cdef floating* G = <floating*>c.G
    cdef floating* Hs = <floating*>c.Hs
    cdef floating* Cs = <floating*>c.Cs
    cdef floating* R = <floating*>c.R
    cdef floating* g
    cdef floating* h_prev
    cdef floating* h_t
    cdef floating* c_prev
    cdef floating* c_t
    cdef floating* r_t
    for s in range(T):
        t = T - 1 - s if c.reverse else s
        desc = (s & 1) ^ c.order
        k_prev = (t + 1 if c.reverse else t) % nslots
        k_new = (t if c.reverse else t + 1) % nslots
        h_prev, h_t = Hs + k_prev * BP + b0 * P, Hs + k_new * BP + b0 * P
        c_prev, c_t = Cs + k_prev * BH + b0 * H, Cs + k_new * BH + b0 * H
        r_t = R + (t % nr) * BH + b0 * H if W_hr != NULL else h_t
        g = G + ((t % ng) * B + b0) * <Py_ssize_t>H4
        if Wp_x != NULL:
            # (1+2) g = x_t @ W_ih^T + h_prev @ W_hh^T
            gemm_packed_2(nb, H4, I, X + (<Py_ssize_t>t * B + b0) * I, I, P, h_prev, P, Wp_x, <floating>0, g, H4, desc)
        else:
            # (2) g += h_prev @ W_hh^T
            gemm_step(Wp_hh, True, nb, H4, P, h_prev, P, W_hh, P, <floating>1, g, H4, desc)
        for b in range(nb):
            if active(lens, t, b):
                # (3), (4), (5)
                lstm_fwd(H, g + b * H4, b_ih, b_hh, c_prev + b * H, c_t + b * H, r_t + b * H)
            elif W_hr != NULL:
                zero_row(r_t + b * H, H)  # read by dW_hr's GEMM: must be finite
        if W_hr != NULL:
            # (6) h_t = r_t @ W_hr^T
            gemm_step(Wp_hr, True, nb, P, H, r_t, H, W_hr, H, <floating>0, h_t, P, desc)
        hold_inactive(h_t, h_prev, nb, P, lens, t)
        hold_inactive(c_t, c_prev, nb, H, lens, t)
        # (7) Y[t] = h_t
        emit(Y + (<Py_ssize_t>t * B + b0) * ldy if Y != NULL else NULL, ldy, h_t, nb, P, lens, t)


cdef int _backward(int T, int B, int I, int H, int P, bint reverse,
                   const floating* X, const floating* W_ih, const floating* W_hh, const floating* W_hr,
                   const int64_t* lengths, const floating* Hs, const floating* Cs, const floating* R,
                   floating* G, const floating* dY, int ldy, const floating* dh_n, const floating* dc_n,
                   floating* dX, floating* dh0, floating* dc0, floating* dW_ih, floating* dW_hh, floating* dW_hr,
                   floating* db_ih, floating* db_hh) noexcept nogil:
    """BPTT through (1)-(7); G is overwritten by dG. Returns -1 when scratch cannot be allocated."""
    cdef int H4 = 4 * H
    cdef int parts = row_parts(T, B)       # blocks of rows whose time loops run on parallel threads
    cdef int rows = (B + parts - 1) // parts
    cdef Py_ssize_t BP = <Py_ssize_t>B * P, BH = <Py_ssize_t>B * H, TB = <Py_ssize_t>T * B
    cdef bint proj = W_hr != NULL
    # scratch: dh, dh_next, dh_prev (B, P); dc_next, dc_prev, dr (B, H); dH (T, B, P) for dW_hr
    cdef Py_ssize_t n_scratch = 3 * BP + 3 * BH + (TB * P if proj else 0)
    cdef floating* scratch = <floating*>malloc(n_scratch * sizeof(floating))
    cdef floating* Wp_hh   # W_hh packed for the step GEMMs, or NULL (BLAS); see packed.pxd
    cdef floating* Wp_hr = NULL   # W_hr likewise
    cdef _Call c
    if scratch == NULL:
        return -1
    Wp_hh = pack_for_steps(T, rows, False, H4, P, W_hh, P)
    if proj:
        Wp_hr = pack_for_steps(T, rows, False, P, H, W_hr, H)
    if Wp_hh == NULL or proj and Wp_hr == NULL:
        parts, rows = 1, B   # BLAS steps: blocks on parallel threads would oversubscribe the cores
    c = _Call(T=T, B=B, In=I, H=H, P=P, rows=rows, ldy=ldy, ng=T, nslots=T + 1, nr=T, reverse=reverse,
              order=False, lengths=lengths, X=NULL, W_hh=W_hh, W_hr=W_hr, Wp_x=NULL, Wp_hh=Wp_hh, Wp_hr=Wp_hr,
              b_ih=NULL, b_hh=NULL, Y=NULL, G=G, Hs=NULL, Cs=<void*>Cs, R=NULL, dY=dY, dh_n=dh_n, dc_n=dc_n,
              dh0=dh0, dc0=dc0, scratch=scratch)
    fr_run_parts(parts, _bwd_part_f if floating is float else _bwd_part_d, &c)
    free(Wp_hh)
    free(Wp_hr)
    if proj:
        # (6) dW_hr += dH^T @ R
        gemm_once_at(P, H, TB, scratch + 3 * BP + 3 * BH, P, R, H, <floating>1, dW_hr, H)
    free(scratch)
    # (1) dW_ih += dG^T @ X;  dX += dG @ W_ih  (dX = dG @ W_ih over X itself, once dW_ih has read it)
    gemm_once_at(H4, I, TB, G, H4, X, I, <floating>1, dW_ih, I)
    gemm_once(False, TB, I, H4, G, H4, W_ih, I, <floating>0 if dX == X else <floating>1, dX, I)
    # (2) dW_hh += dG^T @ H_prev
    gemm_once_at(H4, P, TB, G, H4, Hs + (BP if reverse else 0), P, <floating>1, dW_hh, P)
    # (3) db_ih += dG.sum(0);  db_hh += dG.sum(0)
    add_col_sums(db_ih, G, TB, H4, H4)
    add_col_sums(db_hh, G, TB, H4, H4)
    return 0


cdef void _bwd_part_f(void* c, int part) noexcept nogil:
    _bwd_part(<float>0, <_Call*>c, part)


cdef void _bwd_part_d(void* c, int part) noexcept nogil:
    _bwd_part(<double>0, <_Call*>c, part)


cdef void _bwd_part(floating kind, _Call* c, int part) noexcept nogil:
    """The BPTT time loop, (7) back to (2), for block `part` of the rows (the nb rows from row b0): dG
    into G, and dh0, dc0 of these rows. Scratch is laid out as _backward says, each block using its rows."""
    cdef int s, t, b, k_prev, k_new
    cdef int T = c.T, B = c.B, H = c.H, P = c.P, H4 = 4 * c.H, ldy = c.ldy
    cdef int b0 = part * c.rows
    cdef int nb = c.rows if c.rows < B - b0 else B - b0
    cdef Py_ssize_t BP = <Py_ssize_t>B * P, BH = <Py_ssize_t>B * H
    cdef const int64_t* lens = c.lengths + b0 if c.lengths != NULL else NULL
    cdef const floating* W_hh = <const floating*>c.W_hh
    cdef const floating* W_hr = <const floating*>c.W_hr
    cdef const floating* Wp_hh = <const floating*>c.Wp_hh
    cdef const floating* Wp_hr = <const floating*>c.Wp_hr
    cdef const floating* Cs = <const floating*>c.Cs
    cdef const floating* dY = <const floating*>c.dY
    cdef floating* G = <floating*>c.G
    cdef floating* scratch = <floating*>c.scratch
    cdef floating* dh = scratch + b0 * P
    cdef floating* dh_next = scratch + BP + b0 * P
    cdef floating* dh_prev = scratch + 2 * BP + b0 * P
    cdef floating* dc_next = scratch + 3 * BP + b0 * H
    cdef floating* dc_prev = scratch + 3 * BP + BH + b0 * H
    cdef floating* dr = scratch + 3 * BP + 2 * BH + b0 * H
    cdef floating* dH = scratch + 3 * BP + 3 * BH
    cdef floating* dh_t
    cdef floating* swap
    cdef floating* dg
    cdef const floating* c_t
    cdef const floating* c_prev
    memcpy(dh_next, <const floating*>c.dh_n + b0 * P, nb * P * sizeof(floating))
    memcpy(dc_next, <const floating*>c.dc_n + b0 * H, nb * H * sizeof(floating))
    for s in range(T):
        t = s if c.reverse else T - 1 - s
        k_prev = t + 1 if c.reverse else t
        k_new = t if c.reverse else t + 1
        c_prev, c_t = Cs + k_prev * BH + b0 * H, Cs + k_new * BH + b0 * H
        dg = G + (<Py_ssize_t>t * B + b0) * H4
        gather_dh(dh, dh_next, dY + (<Py_ssize_t>t * B + b0) * ldy, ldy, nb, P, lens, t)
        if W_hr != NULL:
            # (6) dr = dh @ W_hr; dW_hr later from dH = dh of active rows (inactive rows: 0)
            dh_t = dH + t * BP + b0 * P
            memcpy(dh_t, dh, nb * P * sizeof(floating))
            for b in range(nb):
                if not active(lens, t, b):
                    zero_row(dh_t + b * P, P)
            gemm_step(Wp_hr, False, nb, H, P, dh_t, P, W_hr, H, <floating>0, dr, H, s & 1)
        else:
            memcpy(dr, dh, nb * H * sizeof(floating))
        for b in range(nb):
            if active(lens, t, b):
                # (5), (4), (3)
                lstm_bwd(H, dg + b * H4, c_prev + b * H, c_t + b * H, dr + b * H, dc_next + b * H, dc_prev + b * H)
            else:
                zero_row(dg + b * H4, H4)
                memcpy(dc_prev + b * H, dc_next + b * H, H * sizeof(floating))
        # (2) dh_prev = dG[t] @ W_hh
        gemm_step(Wp_hh, False, nb, P, H4, dg, H4, W_hh, P, <floating>0, dh_prev, P, s & 1)
        hold_inactive(dh_prev, dh, nb, P, lens, t)
        swap = dh_next
        dh_next = dh_prev
        dh_prev = swap
        swap = dc_next
        dc_next = dc_prev
        dc_prev = swap
    memcpy(<floating*>c.dh0 + b0 * P, dh_next, nb * P * sizeof(floating))
    memcpy(<floating*>c.dc0 + b0 * H, dc_next, nb * H * sizeof(floating))


def forward(X, W_ih, W_hh, W_hr, b_ih, b_hh, h0, c0, lengths, Y, int col, G, Hs, Cs, R, bint reverse):
    """Run (1)-(7). X (T, B, I); h0 (B, P); c0 (B, H); Y (T, B, ldy) written at columns [col, col+P)
    or None; G (T, B, 4H), or (1, B, 4H) for inference; Hs (nslots, B, P); Cs (nslots, B, H); R (T or 1, B, H) or None without
    projection (W_hr None); lengths (B,) int64 or None. b_ih, b_hh are
    required (pass zeros for a layer without bias)."""
    cdef int T = X.shape[0], B = X.shape[1], I = X.shape[2], H = W_hh.shape[0] // 4, P = W_hh.shape[1]
    cdef int nslots = Hs.shape[0], ldy = Y.shape[2] if Y is not None else 0
    cdef int nr = R.shape[0] if R is not None else 1, ng = G.shape[0]
    cdef int tn = cnp.PyArray_TYPE(X)
    cdef int64_t* lp = <int64_t*>opt_ptr(lengths, B, cnp.NPY_INT64, "lengths")
    if ng != T and ng != 1:
        raise ValueError(f"kernel argument G: expected T={T} slots or 1, got {ng}")
    if W_hh.shape[0] != 4 * H or H == 0:
        raise ValueError(f"kernel argument W_hh: expected shape (4H, P), got {W_hh.shape}")
    if Y is not None and (col < 0 or col + P > ldy or Y.shape[0] * Y.shape[1] != <Py_ssize_t>T * B):
        raise ValueError(f"kernel argument Y: shape {Y.shape} cannot hold columns [{col}, {col + P})")
    if nslots < 2 or (nslots != 2 and nslots != T + 1) or Cs.shape[0] != nslots:
        raise ValueError(f"kernel arguments Hs, Cs: expected 2 or T+1={T + 1} slots each, got {nslots}, {Cs.shape[0]}")
    if (W_hr is None) != (R is None) or (R is not None and nr != 1 and nr != T):
        raise ValueError("kernel arguments W_hr, R: give both (R with 1 or T slots) or neither")
    if tn == cnp.NPY_FLOAT32:
        _fwd_entry(<float>0, T, B, I, H, P, reverse, X, W_ih, W_hh, W_hr, b_ih, b_hh, h0, c0, lp, Y, ldy, col,
                   G, ng, Hs, Cs, nslots, R, nr, tn)
    else:
        _fwd_entry(<double>0, T, B, I, H, P, reverse, X, W_ih, W_hh, W_hr, b_ih, b_hh, h0, c0, lp, Y, ldy, col,
                   G, ng, Hs, Cs, nslots, R, nr, tn)


cdef int _fwd_entry(floating kind, int T, int B, int I, int H, int P, bint reverse,
                    X, W_ih, W_hh, W_hr, b_ih, b_hh, h0, c0, int64_t* lp, Y, int ldy, int col,
                    G, int ng, Hs, Cs, int nslots, R, int nr, int tn) except -1:
    cdef Py_ssize_t TB = <Py_ssize_t>T * B
    cdef const floating* x = <floating*>data_ptr(X, TB * I, tn, "X")
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, <Py_ssize_t>4 * H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, <Py_ssize_t>4 * H * P, tn, "W_hh")
    cdef const floating* w_hr = <floating*>opt_ptr(W_hr, <Py_ssize_t>P * H, tn, "W_hr")
    cdef const floating* bi = <floating*>data_ptr(b_ih, 4 * H, tn, "b_ih")
    cdef const floating* bh = <floating*>data_ptr(b_hh, 4 * H, tn, "b_hh")
    cdef const floating* h_0 = <floating*>data_ptr(h0, <Py_ssize_t>B * P, tn, "h0")
    cdef const floating* c_0 = <floating*>data_ptr(c0, <Py_ssize_t>B * H, tn, "c0")
    cdef floating* y = <floating*>opt_ptr(Y, TB * ldy, tn, "Y")
    cdef floating* g = <floating*>data_ptr(G, <Py_ssize_t>ng * B * 4 * H, tn, "G")
    cdef floating* hs = <floating*>data_ptr(Hs, <Py_ssize_t>nslots * B * P, tn, "Hs")
    cdef floating* cs = <floating*>data_ptr(Cs, <Py_ssize_t>nslots * B * H, tn, "Cs")
    cdef floating* r = <floating*>opt_ptr(R, <Py_ssize_t>nr * B * H, tn, "R")
    if w_hr == NULL and P != H:
        raise ValueError(f"kernel argument W_hh: {P} columns without projection, expected H={H}")
    cdef int status
    with nogil:
        status = _forward(T, B, I, H, P, reverse, x, w_ih, w_hh, w_hr, bi, bh, h_0, c_0, lp,
                          y + col if y != NULL else NULL, ldy, g, ng, hs, cs, nslots, r, nr)
    if status != 0:
        raise MemoryError(f"cannot allocate {<Py_ssize_t>T * B * 4 * H * sizeof(floating)} bytes for the LSTM gates")
    return 0


def backward(X, W_ih, W_hh, W_hr, lengths, Hs, Cs, R, G, dY, int col, dh_n, dc_n, dX, dh0, dc0,
             dW_ih, dW_hh, dW_hr, db_ih, db_hh, bint reverse):
    """BPTT for one (layer, direction). G (from a training forward) is overwritten by dG.
    dY (T, B, ldy) read at columns [col, col+P); dX, dW_*, db_* are ADDED to; dh0, dc0 are written.
    dX may be X itself (when nothing else reads X): X is then overwritten by this call's dX."""
    cdef int T = X.shape[0], B = X.shape[1], I = X.shape[2], H = W_hh.shape[0] // 4, P = W_hh.shape[1]
    cdef int tn = cnp.PyArray_TYPE(X)
    cdef int64_t* lp = <int64_t*>opt_ptr(lengths, B, cnp.NPY_INT64, "lengths")
    if Hs.shape[0] != T + 1 or Cs.shape[0] != T + 1:
        raise ValueError(f"kernel arguments Hs, Cs: expected T+1={T + 1} slots from a training forward")
    if (W_hr is None) != (R is None) or (R is not None and R.shape[0] != T):
        raise ValueError("kernel arguments W_hr, R: give both (R with T slots) or neither")
    if col < 0 or col + P > dY.shape[2] or dY.shape[0] != T or dY.shape[1] != B:
        raise ValueError(f"kernel argument dY: shape {dY.shape} cannot hold columns [{col}, {col + P})")
    if tn == cnp.NPY_FLOAT32:
        return _bwd_entry(<float>0, T, B, I, H, P, reverse, X, W_ih, W_hh, W_hr, lp, Hs, Cs, R, G, dY, col,
                          dh_n, dc_n, dX, dh0, dc0, dW_ih, dW_hh, dW_hr, db_ih, db_hh, tn)
    return _bwd_entry(<double>0, T, B, I, H, P, reverse, X, W_ih, W_hh, W_hr, lp, Hs, Cs, R, G, dY, col,
                      dh_n, dc_n, dX, dh0, dc0, dW_ih, dW_hh, dW_hr, db_ih, db_hh, tn)


cdef int _bwd_entry(floating kind, int T, int B, int I, int H, int P, bint reverse,
                    X, W_ih, W_hh, W_hr, int64_t* lp, Hs, Cs, R, G, dY, int col, dh_n, dc_n, dX, dh0, dc0,
                    dW_ih, dW_hh, dW_hr, db_ih, db_hh, int tn) except -1:
    cdef Py_ssize_t TB = <Py_ssize_t>T * B
    cdef int ldy = dY.shape[2]
    cdef const floating* x = <floating*>data_ptr(X, TB * I, tn, "X")
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, <Py_ssize_t>4 * H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, <Py_ssize_t>4 * H * P, tn, "W_hh")
    cdef const floating* w_hr = <floating*>opt_ptr(W_hr, <Py_ssize_t>P * H, tn, "W_hr")
    cdef const floating* hs = <floating*>data_ptr(Hs, (TB + B) * P, tn, "Hs")
    cdef const floating* cs = <floating*>data_ptr(Cs, (TB + B) * H, tn, "Cs")
    cdef const floating* r = <floating*>opt_ptr(R, TB * H, tn, "R")
    cdef floating* g = <floating*>data_ptr(G, TB * 4 * H, tn, "G")
    cdef const floating* dy = <floating*>data_ptr(dY, TB * ldy, tn, "dY")
    cdef const floating* dhn = <floating*>data_ptr(dh_n, <Py_ssize_t>B * P, tn, "dh_n")
    cdef const floating* dcn = <floating*>data_ptr(dc_n, <Py_ssize_t>B * H, tn, "dc_n")
    cdef floating* dx = <floating*>data_ptr(dX, TB * I, tn, "dX")
    cdef floating* dh_0 = <floating*>data_ptr(dh0, <Py_ssize_t>B * P, tn, "dh0")
    cdef floating* dc_0 = <floating*>data_ptr(dc0, <Py_ssize_t>B * H, tn, "dc0")
    cdef floating* dw_ih = <floating*>data_ptr(dW_ih, <Py_ssize_t>4 * H * I, tn, "dW_ih")
    cdef floating* dw_hh = <floating*>data_ptr(dW_hh, <Py_ssize_t>4 * H * P, tn, "dW_hh")
    cdef floating* dw_hr = <floating*>opt_ptr(dW_hr, <Py_ssize_t>P * H, tn, "dW_hr")
    cdef floating* dbi = <floating*>opt_ptr(db_ih, 4 * H, tn, "db_ih")
    cdef floating* dbh = <floating*>opt_ptr(db_hh, 4 * H, tn, "db_hh")
    cdef int status
    if (w_hr == NULL) != (dw_hr == NULL):
        raise ValueError("kernel arguments W_hr and dW_hr: give both or neither")
    with nogil:
        status = _backward(T, B, I, H, P, reverse, x, w_ih, w_hh, w_hr, lp, hs, cs, r, g, dy + col, ldy,
                           dhn, dcn, dx, dh_0, dc_0, dw_ih, dw_hh, dw_hr, dbi, dbh)
    if status != 0:
        raise MemoryError("cannot allocate scratch memory for the LSTM backward pass")
    return 0


def step(x, h, c, cnp.ndarray W_ih, cnp.ndarray W_hh, cnp.ndarray b_ih, cnp.ndarray b_hh):
    """The cells' fast path: (1)-(5) for one step (T = 1, no projection) of rows x (B, I) from states
    h, c (B, H). Returns (h_new, c_new), or None when x, h or c is not already a C-contiguous 2-D array
    of the weights' dtype and shape; the caller then validates and converts them."""
    cdef int tn = cnp.PyArray_TYPE(W_hh)
    cdef Py_ssize_t I = cnp.PyArray_DIM(W_ih, 1), H = cnp.PyArray_DIM(W_hh, 1)
    cdef Py_ssize_t B = step_rows(x, h, W_ih, W_hh, tn)
    if B < 0 or not is_rows(c, tn, B, H):
        return None
    h_new, c_new = empty_rows(B, H, tn), empty_rows(B, H, tn)
    if tn == cnp.NPY_FLOAT32:
        _run(<float>0, 1, B, I, H, x, h, c, W_ih, W_hh, b_ih, b_hh, h_new, None, c_new, tn)
    else:
        _run(<double>0, 1, B, I, H, x, h, c, W_ih, W_hh, b_ih, b_hh, h_new, None, c_new, tn)
    return h_new, c_new


def run(x, h0, c0, cnp.ndarray W_ih, cnp.ndarray W_hh, cnp.ndarray b_ih, cnp.ndarray b_hh):
    """The layers' fast path for inference of one layer, one direction, no projection, every row the full
    length: (1)-(7) over x (T, B, I) from states h0, c0 (1, B, H). Returns (y (T, B, H), h_n, c_n (1, B, H)),
    or None when x, h0 or c0 is not already a C-contiguous 3-D array of the weights' dtype and shape (the
    caller then validates and converts them). The caller has checked T and B against the size limits."""
    cdef int tn = cnp.PyArray_TYPE(W_hh)
    cdef Py_ssize_t I = cnp.PyArray_DIM(W_ih, 1), H = cnp.PyArray_DIM(W_hh, 1)
    cdef Py_ssize_t B = seq_rows(x, h0, W_ih, W_hh, tn), T
    if B < 0 or not is_block(c0, tn, 1, B, H):
        return None
    T = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
    y, h_n, c_n = empty_block(T, B, H, tn), empty_block(1, B, H, tn), empty_block(1, B, H, tn)
    if tn == cnp.NPY_FLOAT32:
        _run(<float>0, T, B, I, H, x, h0, c0, W_ih, W_hh, b_ih, b_hh, y, h_n, c_n, tn)
    else:
        _run(<double>0, T, B, I, H, x, h0, c0, W_ih, W_hh, b_ih, b_hh, y, h_n, c_n, tn)
    return y, h_n, c_n


cdef int _run(floating kind, int T, int B, int I, int H, x, h0, c0, W_ih, W_hh, b_ih, b_hh, y, h_n, c_n,
              int tn) except -1:
    # y (T, B, H) gets every h_t; h_n, c_n (B, H) the final states. h_n may be None: the cells' step (T = 1)
    # passes its h_new as y.
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, 4 * H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, 4 * H * H, tn, "W_hh")
    cdef const floating* bi = <floating*>data_ptr(b_ih, 4 * H, tn, "b_ih")
    cdef const floating* bh = <floating*>data_ptr(b_hh, 4 * H, tn, "b_hh")
    cdef const floating* x_ = <floating*>data_ptr(x, <Py_ssize_t>T * B * I, tn, "x")
    cdef const floating* h_ = <floating*>data_ptr(h0, BH, tn, "h0")
    cdef const floating* c_ = <floating*>data_ptr(c0, BH, tn, "c0")
    cdef floating* y_ = <floating*>data_ptr(y, <Py_ssize_t>T * BH, tn, "y")
    cdef floating* out_h = <floating*>opt_ptr(h_n, BH, tn, "h_n")
    cdef floating* out_c = <floating*>data_ptr(c_n, BH, tn, "c_n")
    # scratch: G with one slot (B, 4H), Hs and Cs with 2 slots of (B, H) each
    cdef floating* scratch = <floating*>malloc(8 * BH * sizeof(floating))
    cdef int status
    if scratch == NULL:
        raise MemoryError(f"cannot allocate {8 * BH * sizeof(floating)} bytes of LSTM scratch")
    with nogil:
        status = _forward(T, B, I, H, H, False, x_, w_ih, w_hh, NULL, bi, bh, h_, c_, NULL, y_, H,
                          scratch, 1, scratch + 4 * BH, scratch + 6 * BH, 2, NULL, 1)
        if status == 0:
            if out_h != NULL:
                memcpy(out_h, scratch + 4 * BH + (T % 2) * BH, BH * sizeof(floating))
            memcpy(out_c, scratch + 6 * BH + (T % 2) * BH, BH * sizeof(floating))
    free(scratch)
    if status != 0:
        raise MemoryError(f"cannot allocate {<Py_ssize_t>T * B * 4 * H * sizeof(floating)} bytes for the LSTM gates")
    return 0
