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
keeps G (the gate activations), Hs, Cs and R; backward overwrites G with dG.
"""
cimport numpy as cnp
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from numpy cimport int64_t

from .arrays cimport data_ptr, empty_rows, is_rows, opt_ptr, step_rows
from .blas cimport gemm
from .gates cimport lstm_bwd, lstm_fwd
from .packed cimport gemm_packed_2, gemm_step, pack_for_steps, pack_steps_2
from .steps cimport active, add_col_sums, emit, gather_dh, hold_inactive, zero_row

cnp.import_array()


cdef int _forward(int T, int B, int I, int H, int P, bint reverse,
                  const floating* X, const floating* W_ih, const floating* W_hh, const floating* W_hr,
                  const floating* b_ih, const floating* b_hh, const floating* h0, const floating* c0,
                  const int64_t* lengths, floating* Y, int ldy, floating* G, int ng,
                  floating* Hs, floating* Cs, int nslots, floating* R, int nr) noexcept nogil:
    """(1)-(7); G has ng = T slots or 1. Returns -1 when scratch cannot be allocated."""
    cdef int s, t, b, j, first, k_prev, k_new
    cdef int H4 = 4 * H
    cdef Py_ssize_t BP = <Py_ssize_t>B * P, BH = <Py_ssize_t>B * H
    cdef floating* g
    cdef floating* h_prev
    cdef floating* h_t
    cdef floating* c_prev
    cdef floating* c_t
    cdef floating* r_t
    cdef floating* G_all = NULL   # (T, B, 4H) for (1) when G has one slot and (1) is not fused
    cdef floating* Wp_x = pack_steps_2(T, B, I, P, H4, W_ih, W_hh)   # fused (1+2), or NULL
    cdef floating* Wp_hh = NULL   # W_hh^T packed for the step GEMMs, or NULL (BLAS); see packed.pxd
    cdef floating* Wp_hr = NULL   # W_hr^T likewise
    if Wp_x == NULL:
        if ng != T:
            G_all = <floating*>malloc(<size_t>T * B * H4 * sizeof(floating))
            if G_all == NULL:
                return -1
            G, ng = G_all, T
        # (1) G = X @ W_ih^T
        gemm(False, True, T * B, H4, I, <floating>1, X, I, W_ih, I, <floating>0, G, H4)
        Wp_hh = pack_for_steps(T, B, True, P, H4, W_hh, P)
    first = T if reverse else 0
    memcpy(Hs + (first % nslots) * BP, h0, BP * sizeof(floating))
    memcpy(Cs + (first % nslots) * BH, c0, BH * sizeof(floating))
    if W_hr != NULL:
        Wp_hr = pack_for_steps(T, B, True, H, P, W_hr, H)
    for s in range(T):
        t = T - 1 - s if reverse else s
        k_prev = (t + 1 if reverse else t) % nslots
        k_new = (t if reverse else t + 1) % nslots
        h_prev, h_t = Hs + k_prev * BP, Hs + k_new * BP
        c_prev, c_t = Cs + k_prev * BH, Cs + k_new * BH
        r_t = R + (t % nr) * BH if W_hr != NULL else h_t
        g = G + (t % ng) * B * H4
        if Wp_x != NULL:
            # (1+2) g = x_t @ W_ih^T + h_prev @ W_hh^T
            gemm_packed_2(B, H4, I, X + <Py_ssize_t>t * B * I, I, P, h_prev, P, Wp_x, <floating>0, g, H4)
        else:
            # (2) g += h_prev @ W_hh^T
            gemm_step(Wp_hh, True, B, H4, P, h_prev, P, W_hh, P, <floating>1, g, H4)
        for b in range(B):
            if active(lengths, t, b):
                # (3), (4), (5)
                lstm_fwd(H, g + b * H4, b_ih, b_hh, c_prev + b * H, c_t + b * H, r_t + b * H)
            elif W_hr != NULL:
                zero_row(r_t + b * H, H)  # read by dW_hr's GEMM: must be finite
        if W_hr != NULL:
            # (6) h_t = r_t @ W_hr^T
            gemm_step(Wp_hr, True, B, P, H, r_t, H, W_hr, H, <floating>0, h_t, P)
        hold_inactive(h_t, h_prev, B, P, lengths, t)
        hold_inactive(c_t, c_prev, B, H, lengths, t)
        # (7) Y[t] = h_t
        emit(Y + <Py_ssize_t>t * B * ldy if Y != NULL else NULL, ldy, h_t, B, P, lengths, t)
    free(Wp_x)
    free(Wp_hh)
    free(Wp_hr)
    free(G_all)
    return 0


cdef int _backward(int T, int B, int I, int H, int P, bint reverse,
                   const floating* X, const floating* W_ih, const floating* W_hh, const floating* W_hr,
                   const int64_t* lengths, const floating* Hs, const floating* Cs, const floating* R,
                   floating* G, const floating* dY, int ldy, const floating* dh_n, const floating* dc_n,
                   floating* dX, floating* dh0, floating* dc0, floating* dW_ih, floating* dW_hh, floating* dW_hr,
                   floating* db_ih, floating* db_hh) noexcept nogil:
    """BPTT through (1)-(7); G is overwritten by dG. Returns -1 when scratch cannot be allocated."""
    cdef int s, t, b, j, k_prev, k_new
    cdef int H4 = 4 * H
    cdef Py_ssize_t BP = <Py_ssize_t>B * P, BH = <Py_ssize_t>B * H, TB = <Py_ssize_t>T * B
    cdef bint proj = W_hr != NULL
    # scratch: dh, dh_next, dh_prev (B, P); dc_next, dc_prev, dr (B, H); dH (T, B, P) for dW_hr
    cdef Py_ssize_t n_scratch = 3 * BP + 3 * BH + (TB * P if proj else 0)
    cdef floating* scratch = <floating*>malloc(n_scratch * sizeof(floating))
    cdef floating* dh
    cdef floating* dh_next
    cdef floating* dh_prev
    cdef floating* dc_next
    cdef floating* dc_prev
    cdef floating* dr
    cdef floating* dH
    cdef floating* swap
    cdef floating* dg
    cdef const floating* c_t
    cdef const floating* c_prev
    cdef floating* Wp_hh   # W_hh packed for the step GEMMs, or NULL (BLAS); see packed.pxd
    cdef floating* Wp_hr = NULL   # W_hr likewise
    if scratch == NULL:
        return -1
    Wp_hh = pack_for_steps(T, B, False, H4, P, W_hh, P)
    if proj:
        Wp_hr = pack_for_steps(T, B, False, P, H, W_hr, H)
    dh, dh_next, dh_prev = scratch, scratch + BP, scratch + 2 * BP
    dc_next, dc_prev, dr = scratch + 3 * BP, scratch + 3 * BP + BH, scratch + 3 * BP + 2 * BH
    dH = scratch + 3 * BP + 3 * BH
    memcpy(dh_next, dh_n, BP * sizeof(floating))
    memcpy(dc_next, dc_n, BH * sizeof(floating))
    for s in range(T):
        t = s if reverse else T - 1 - s
        k_prev = t + 1 if reverse else t
        k_new = t if reverse else t + 1
        c_prev, c_t = Cs + k_prev * BH, Cs + k_new * BH
        dg = G + t * B * H4
        gather_dh(dh, dh_next, dY + t * B * ldy, ldy, B, P, lengths, t)
        if proj:
            # (6) dr = dh @ W_hr; dW_hr later from dH = dh of active rows (inactive rows: 0)
            memcpy(dH + t * BP, dh, BP * sizeof(floating))
            for b in range(B):
                if not active(lengths, t, b):
                    zero_row(dH + t * BP + b * P, P)
            gemm_step(Wp_hr, False, B, H, P, dH + t * BP, P, W_hr, H, <floating>0, dr, H)
        else:
            memcpy(dr, dh, BH * sizeof(floating))
        for b in range(B):
            if active(lengths, t, b):
                # (5), (4), (3)
                lstm_bwd(H, dg + b * H4, c_prev + b * H, c_t + b * H, dr + b * H, dc_next + b * H, dc_prev + b * H)
            else:
                zero_row(dg + b * H4, H4)
                memcpy(dc_prev + b * H, dc_next + b * H, H * sizeof(floating))
        # (2) dh_prev = dG[t] @ W_hh
        gemm_step(Wp_hh, False, B, P, H4, dg, H4, W_hh, P, <floating>0, dh_prev, P)
        hold_inactive(dh_prev, dh, B, P, lengths, t)
        swap = dh_next
        dh_next = dh_prev
        dh_prev = swap
        swap = dc_next
        dc_next = dc_prev
        dc_prev = swap
    memcpy(dh0, dh_next, BP * sizeof(floating))
    memcpy(dc0, dc_next, BH * sizeof(floating))
    free(Wp_hh)
    free(Wp_hr)
    if proj:
        # (6) dW_hr += dH^T @ R
        gemm(True, False, P, H, TB, <floating>1, dH, P, R, H, <floating>1, dW_hr, H)
    free(scratch)
    # (1) dW_ih += dG^T @ X;  dX += dG @ W_ih
    gemm(True, False, H4, I, TB, <floating>1, G, H4, X, I, <floating>1, dW_ih, I)
    gemm(False, False, TB, I, H4, <floating>1, G, H4, W_ih, I, <floating>1, dX, I)
    # (2) dW_hh += dG^T @ H_prev
    gemm(True, False, H4, P, TB, <floating>1, G, H4, Hs + (BP if reverse else 0), P, <floating>1, dW_hh, P)
    # (3) db_ih += dG.sum(0);  db_hh += dG.sum(0)
    add_col_sums(db_ih, G, TB, H4, H4)
    add_col_sums(db_hh, G, TB, H4, H4)
    return 0


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
    dY (T, B, ldy) read at columns [col, col+P); dX, dW_*, db_* are ADDED to; dh0, dc0 are written."""
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
        _step(<float>0, B, I, H, x, h, c, W_ih, W_hh, b_ih, b_hh, h_new, c_new, tn)
    else:
        _step(<double>0, B, I, H, x, h, c, W_ih, W_hh, b_ih, b_hh, h_new, c_new, tn)
    return h_new, c_new


cdef int _step(floating kind, int B, int I, int H, x, h, c, W_ih, W_hh, b_ih, b_hh, h_new, c_new,
               int tn) except -1:
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, 4 * H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, 4 * H * H, tn, "W_hh")
    cdef const floating* bi = <floating*>data_ptr(b_ih, 4 * H, tn, "b_ih")
    cdef const floating* bh = <floating*>data_ptr(b_hh, 4 * H, tn, "b_hh")
    # scratch: G (B, 4H), Hs and Cs with 2 slots of (B, H) each
    cdef floating* scratch = <floating*>malloc(8 * BH * sizeof(floating))
    if scratch == NULL:
        raise MemoryError(f"cannot allocate {8 * BH * sizeof(floating)} bytes of LSTM step scratch")
    cdef const floating* x_ = <floating*>data_ptr(x, <Py_ssize_t>B * I, tn, "x")
    cdef const floating* h_ = <floating*>data_ptr(h, BH, tn, "h")
    cdef const floating* c_ = <floating*>data_ptr(c, BH, tn, "c")
    cdef floating* out_h = <floating*>data_ptr(h_new, BH, tn, "h_new")
    cdef floating* out_c = <floating*>data_ptr(c_new, BH, tn, "c_new")
    with nogil:
        _forward(1, B, I, H, H, False, x_, w_ih, w_hh, NULL, bi, bh,
                 h_, c_, NULL, NULL, 0,
                 scratch, 1, scratch + 4 * BH, scratch + 6 * BH, 2, NULL, 1)
        memcpy(out_h, scratch + 5 * BH, BH * sizeof(floating))
        memcpy(out_c, scratch + 7 * BH, BH * sizeof(floating))
    free(scratch)
    return 0
