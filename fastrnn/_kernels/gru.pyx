"""GRU, reset-after (PyTorch's) and reset-before (textbook): one layer, one direction, whole sequence.

Notation: T steps, B rows, I inputs, H hidden units, gates r, z, n in PyTorch's order, each H wide,
G has 3H columns; W_hh = [W_hr; W_hz; W_hn] and b_hh likewise (b_ir etc. for b_ih).

    (1) G     = X @ W_ih^T                                    one GEMM over all T*B rows (per step when packed)
    (2) r     = sig(G_r + b_ir + h_prev @ W_hr^T + b_hr)
    (3) z     = sig(G_z + b_iz + h_prev @ W_hz^T + b_hz)
    reset-after (PyTorch):
    (4a) hn   = h_prev @ W_hn^T + b_hn
    (5a) n    = tanh(G_n + b_in + r * hn)
    reset-before (textbook):
    (4b) rh   = r * h_prev
    (5b) n    = tanh(G_n + b_in + rh @ W_hn^T + b_hn)
    (6) h_t   = (1 - z) * n + z * h_prev
    (7) Y[t]  = h_t                                           zero where t >= lengths[b]; state held there

Slots ``Hs`` (nslots, B, H) as in rnn.pyx. ``A`` (T slots for training, 1 for inference, each (B, H))
holds hn (reset-after) or rh (reset-before). Training keeps G as [r, z, n], Hs and A; backward
overwrites G with dG and A with its own gradient terms. Independent blocks of batch rows may run their
time loops on parallel threads (packed.pxd, row_parts).
"""
cimport numpy as cnp
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from numpy cimport int64_t

from .arrays cimport data_ptr, empty_block, empty_rows, opt_ptr, seq_rows, step_rows
from .gates cimport (gru_after_bwd, gru_after_fwd, gru_before_bwd_r, gru_before_bwd_zn, gru_before_fwd_n,
                     gru_before_fwd_rz)
from .packed cimport (call_order, fr_packed_alloc, fr_run_parts, gemm_input, gemm_once, gemm_once_at, gemm_packed,
                      gemm_step, pack_for_steps, row_parts)
from .steps cimport active, add_col_sums, emit, gather_dh, hold_inactive, zero_row

cnp.import_array()


ctypedef struct _Call:
    # One call's arguments, shared by its row blocks (parts.h); arrays as void*, typed again in _fwd_part /
    # _bwd_part. rows: the rows per block (the last may have fewer).
    int T, B, In, H, rows, ldy, nslots, na   # In: I (a C macro name, from complex.h)
    bint reverse, reset_after, order   # order: the desc of the first step (call_order)
    const int64_t* lengths
    const void* X
    const void* W_hh
    const void* Wp_ih
    const void* Wp_rz
    const void* Wp_n
    const void* b_ih
    const void* b_hh
    void* Y
    void* G
    void* Hs
    void* A
    void* Gh
    const void* dY
    const void* dh_n
    void* dh0
    void* scratch


cdef void _forward(int T, int B, int I, int H, bint reverse, bint reset_after,
                   const floating* X, const floating* W_ih, const floating* W_hh,
                   const floating* b_ih, const floating* b_hh, const floating* h0,
                   const int64_t* lengths, floating* Y, int ldy,
                   floating* G, floating* Hs, int nslots, floating* A, int na, floating* Gh) noexcept nogil:
    """Gh: (B, 3H) scratch for the reset-after recurrence."""
    cdef int H3 = 3 * H
    cdef int parts = row_parts(T, B)       # blocks of rows whose time loops run on parallel threads
    cdef int rows = (B + parts - 1) // parts
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    # W_hh^T packed for the step GEMMs, or NULL (BLAS); see packed.pxd. Reset-after: all of W_hh;
    # reset-before: W_hh[:2H] (Wp_rz) and W_hn (Wp_n), which multiply different rows.
    cdef floating* Wp_rz = NULL
    cdef floating* Wp_n = NULL
    cdef floating* Wp_ih = NULL   # W_ih^T packed for (1) inside the steps, or NULL: (1) before the loop
    cdef bint order = call_order(T)
    cdef _Call c
    memcpy(Hs + ((T if reverse else 0) % nslots) * BH, h0, BH * sizeof(floating))
    if reset_after:
        Wp_rz = pack_for_steps(T, rows, True, H, H3, W_hh, H)
    else:
        Wp_rz = pack_for_steps(T, rows, True, H, 2 * H, W_hh, H)
        Wp_n = pack_for_steps(T, rows, True, H, H, W_hh + 2 * H * H, H)
    if Wp_rz == NULL or not reset_after and Wp_n == NULL:
        parts, rows = 1, B   # BLAS steps: blocks on parallel threads would oversubscribe the cores
    elif rows >= 16:
        # (1) inside the steps, as the fused LSTM/RNN steps (packed.pxd, pack_steps_2), and no BLAS call is
        # left in the call. Measured (inference, 1 thread, against (1) as one GEMM before the loop):
        # 1.05-1.23x at B = 16-64, H = 128-512, but 0.96-0.98x at B = 8; training 0.97-1.04x.
        Wp_ih = pack_for_steps(T, rows, True, I, H3, W_ih, I)
    if Wp_ih == NULL:
        # (1) G = X @ W_ih^T
        gemm_input(T * B, H3, I, X, I, W_ih, I, <floating>0, G, H3, order)
    c = _Call(T=T, B=B, In=I, H=H, rows=rows, ldy=ldy, nslots=nslots, na=na, reverse=reverse, order=order,
              reset_after=reset_after, lengths=lengths, X=X, W_hh=W_hh, Wp_ih=Wp_ih, Wp_rz=Wp_rz, Wp_n=Wp_n,
              b_ih=b_ih, b_hh=b_hh, Y=Y, G=G, Hs=Hs, A=A, Gh=Gh, dY=NULL, dh_n=NULL, dh0=NULL, scratch=NULL)
    fr_run_parts(parts, _fwd_part_f if floating is float else _fwd_part_d, &c)
    free(Wp_ih)
    free(Wp_rz)
    free(Wp_n)


cdef void _fwd_part_f(void* c, int part) noexcept nogil:
    _fwd_part(<float>0, <_Call*>c, part)


cdef void _fwd_part_d(void* c, int part) noexcept nogil:
    _fwd_part(<double>0, <_Call*>c, part)


cdef void _fwd_part(floating kind, _Call* c, int part) noexcept nogil:
    """The time loop (2)-(7) for block `part` of the rows: the nb rows from row b0 (buffers keep their
    B-row layout; each block touches only its own rows)."""
    cdef int s, t, b
    cdef bint desc
    cdef int T = c.T, B = c.B, I = c.In, H = c.H, H3 = 3 * c.H, ldy = c.ldy, nslots = c.nslots, na = c.na
    cdef int b0 = part * c.rows
    cdef int nb = c.rows if c.rows < B - b0 else B - b0
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef const int64_t* lens = c.lengths + b0 if c.lengths != NULL else NULL
    cdef const floating* W_hh = <const floating*>c.W_hh
    cdef const floating* Wp_ih = <const floating*>c.Wp_ih
    cdef const floating* Wp_rz = <const floating*>c.Wp_rz
    cdef const floating* Wp_n = <const floating*>c.Wp_n
    cdef const floating* b_ih = <const floating*>c.b_ih
    cdef const floating* b_hh = <const floating*>c.b_hh
    cdef floating* Y = <floating*>c.Y
    cdef floating* Hs = <floating*>c.Hs
    cdef floating* Gh = <floating*>c.Gh + b0 * H3
    cdef floating* g
    cdef floating* h_prev
    cdef floating* h_t
    cdef floating* a_t
    for s in range(T):
        t = T - 1 - s if c.reverse else s
        desc = (s & 1) ^ c.order
        h_prev = Hs + ((t + 1 if c.reverse else t) % nslots) * BH + b0 * H
        h_t = Hs + ((t if c.reverse else t + 1) % nslots) * BH + b0 * H
        a_t = <floating*>c.A + (t % na) * BH + b0 * H
        g = <floating*>c.G + (<Py_ssize_t>t * B + b0) * H3
        if Wp_ih != NULL:
            # (1) g = x_t @ W_ih^T
            gemm_packed(nb, H3, I, <const floating*>c.X + (<Py_ssize_t>t * B + b0) * I, I, Wp_ih, <floating>0,
                        g, H3, desc)
        if c.reset_after:
            # (2)-(4a) Gh = h_prev @ W_hh^T
            gemm_step(Wp_rz, True, nb, H3, H, h_prev, H, W_hh, H, <floating>0, Gh, H3, desc)
            for b in range(nb):
                if active(lens, t, b):
                    # (2), (3), (4a), (5a), (6)
                    gru_after_fwd(H, g + b * H3, Gh + b * H3, b_ih, b_hh, h_prev + b * H, a_t + b * H, h_t + b * H)
                else:
                    zero_row(a_t + b * H, H)  # read by dW_hh's GEMM in backward: must be finite
        else:
            # (2), (3) g[:, :2H] += h_prev @ W_hh[:2H]^T
            gemm_step(Wp_rz, True, nb, 2 * H, H, h_prev, H, W_hh, H, <floating>1, g, H3, desc)
            for b in range(nb):
                if active(lens, t, b):
                    # (2), (3), (4b)
                    gru_before_fwd_rz(H, g + b * H3, b_ih, b_hh, h_prev + b * H, a_t + b * H)
                else:
                    zero_row(a_t + b * H, H)
            # (5b) g[:, 2H:] += rh @ W_hn^T
            gemm_step(Wp_n, True, nb, H, H, a_t, H, W_hh + 2 * H * H, H, <floating>1, g + 2 * H, H3, desc)
            for b in range(nb):
                if active(lens, t, b):
                    # (5b), (6)
                    gru_before_fwd_n(H, g + b * H3, b_ih, b_hh, h_prev + b * H, h_t + b * H)
        hold_inactive(h_t, h_prev, nb, H, lens, t)
        # (7) Y[t] = h_t
        emit(Y + (<Py_ssize_t>t * B + b0) * ldy if Y != NULL else NULL, ldy, h_t, nb, H, lens, t)


cdef int _backward(int T, int B, int I, int H, bint reverse, bint reset_after,
                   const floating* X, const floating* W_ih, const floating* W_hh,
                   const int64_t* lengths, const floating* Hs, floating* A, floating* G,
                   const floating* dY, int ldy, const floating* dh_n,
                   floating* dX, floating* dh0, floating* dW_ih, floating* dW_hh,
                   floating* db_ih, floating* db_hh) noexcept nogil:
    """BPTT through (1)-(7). G becomes dG = d(pre-activations of the x side) and A becomes
    d(hn pre-activation) * r (reset-after) or keeps rh (reset-before). Returns -1 without scratch."""
    cdef int H3 = 3 * H
    cdef int parts = row_parts(T, B)       # blocks of rows whose time loops run on parallel threads
    cdef int rows = (B + parts - 1) // parts
    cdef Py_ssize_t BH = <Py_ssize_t>B * H, TB = <Py_ssize_t>T * B
    # scratch: dh, dh_next, dh_prev, drh (B, H)
    cdef floating* scratch = <floating*>malloc(4 * BH * sizeof(floating))
    cdef const floating* h_prev
    # W_hh[:2H] and W_hn packed for the step GEMMs, or NULL (BLAS); see packed.pxd
    cdef floating* Wp_rz
    cdef floating* Wp_n
    cdef _Call c
    if scratch == NULL:
        return -1
    Wp_rz = pack_for_steps(T, rows, False, 2 * H, H, W_hh, H)
    Wp_n = pack_for_steps(T, rows, False, H, H, W_hh + 2 * H * H, H)
    if Wp_rz == NULL or Wp_n == NULL:
        parts, rows = 1, B   # BLAS steps: blocks on parallel threads would oversubscribe the cores
    c = _Call(T=T, B=B, In=I, H=H, rows=rows, ldy=ldy, nslots=T + 1, na=T, reverse=reverse, order=False,
              reset_after=reset_after, lengths=lengths, X=NULL, W_hh=W_hh, Wp_ih=NULL, Wp_rz=Wp_rz, Wp_n=Wp_n,
              b_ih=NULL, b_hh=NULL, Y=NULL, G=G, Hs=<void*>Hs, A=A, Gh=NULL, dY=dY, dh_n=dh_n, dh0=dh0,
              scratch=scratch)
    fr_run_parts(parts, _bwd_part_f if floating is float else _bwd_part_d, &c)
    free(scratch)
    free(Wp_rz)
    free(Wp_n)
    h_prev = Hs + (BH if reverse else 0)
    # (1) dW_ih += dG^T @ X;  dX += dG @ W_ih  (dX = dG @ W_ih over X itself, once dW_ih has read it);
    #     db_ih += dG.sum(0)
    gemm_once_at(H3, I, TB, G, H3, X, I, <floating>1, dW_ih, I)
    gemm_once(False, TB, I, H3, G, H3, W_ih, I, <floating>0 if dX == X else <floating>1, dX, I)
    add_col_sums(db_ih, G, TB, H3, H3)
    # (2), (3) dW_hh[:2H] += dG[:, :2H]^T @ H_prev;  db_hh[:2H] += dG[:, :2H].sum(0)
    gemm_once_at(2 * H, H, TB, G, H3, h_prev, H, <floating>1, dW_hh, H)
    add_col_sums(db_hh, G, TB, 2 * H, H3)
    if reset_after:
        # (4a) dW_hn += dA^T @ H_prev;  db_hn += dA.sum(0)
        gemm_once_at(H, H, TB, A, H, h_prev, H, <floating>1, dW_hh + 2 * H * H, H)
        add_col_sums(db_hh + 2 * H if db_hh != NULL else NULL, A, TB, H, H)
    else:
        # (5b) dW_hn += dG[:, 2H:]^T @ RH;  db_hn += dG[:, 2H:].sum(0)
        gemm_once_at(H, H, TB, G + 2 * H, H3, A, H, <floating>1, dW_hh + 2 * H * H, H)
        add_col_sums(db_hh + 2 * H if db_hh != NULL else NULL, G + 2 * H, TB, H, H3)
    return 0


cdef void _bwd_part_f(void* c, int part) noexcept nogil:
    _bwd_part(<float>0, <_Call*>c, part)


cdef void _bwd_part_d(void* c, int part) noexcept nogil:
    _bwd_part(<double>0, <_Call*>c, part)


cdef void _bwd_part(floating kind, _Call* c, int part) noexcept nogil:
    """The BPTT time loop, (7) back to (2), for block `part` of the rows (the nb rows from row b0): dG
    into G, dA into A and dh0 of these rows. Scratch is laid out as _backward says, each block using its rows."""
    cdef int s, t, b
    cdef int T = c.T, B = c.B, H = c.H, H3 = 3 * c.H, ldy = c.ldy
    cdef int b0 = part * c.rows
    cdef int nb = c.rows if c.rows < B - b0 else B - b0
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef const int64_t* lens = c.lengths + b0 if c.lengths != NULL else NULL
    cdef const floating* W_hh = <const floating*>c.W_hh
    cdef const floating* Wp_rz = <const floating*>c.Wp_rz
    cdef const floating* Wp_n = <const floating*>c.Wp_n
    cdef const floating* Hs = <const floating*>c.Hs
    cdef const floating* dY = <const floating*>c.dY
    cdef floating* scratch = <floating*>c.scratch
    cdef floating* dh = scratch + b0 * H
    cdef floating* dh_next = scratch + BH + b0 * H
    cdef floating* dh_prev = scratch + 2 * BH + b0 * H
    cdef floating* drh = scratch + 3 * BH + b0 * H
    cdef floating* swap
    cdef floating* dg
    cdef floating* a_t
    cdef const floating* h_prev
    memcpy(dh_next, <const floating*>c.dh_n + b0 * H, nb * H * sizeof(floating))
    for s in range(T):
        t = s if c.reverse else T - 1 - s
        h_prev = Hs + (t + 1 if c.reverse else t) * BH + b0 * H
        a_t = <floating*>c.A + t * BH + b0 * H
        dg = <floating*>c.G + (<Py_ssize_t>t * B + b0) * H3
        gather_dh(dh, dh_next, dY + (<Py_ssize_t>t * B + b0) * ldy, ldy, nb, H, lens, t)
        for b in range(nb):
            if not active(lens, t, b):
                zero_row(dg + b * H3, H3)
                zero_row(a_t + b * H, H)
            elif c.reset_after:
                # (6), (5a), (4a), (3), (2)
                gru_after_bwd(H, dg + b * H3, a_t + b * H, h_prev + b * H, dh + b * H, dh_prev + b * H)
            else:
                # (6), (5b), (3)
                gru_before_bwd_zn(H, dg + b * H3, h_prev + b * H, dh + b * H, dh_prev + b * H)
        if c.reset_after:
            # (2), (3) dh_prev += dG[t][:, :2H] @ W_hh[:2H];  (4a) dh_prev += dA[t] @ W_hn
            gemm_step(Wp_rz, False, nb, H, 2 * H, dg, H3, W_hh, H, <floating>1, dh_prev, H, s & 1)
            gemm_step(Wp_n, False, nb, H, H, a_t, H, W_hh + 2 * H * H, H, <floating>1, dh_prev, H, s & 1)
        else:
            # (5b) drh = dn_pre @ W_hn
            gemm_step(Wp_n, False, nb, H, H, dg + 2 * H, H3, W_hh + 2 * H * H, H, <floating>0, drh, H, s & 1)
            for b in range(nb):
                if active(lens, t, b):
                    # (4b) dr = drh * h_prev, dh_prev += drh * r;  (2)
                    gru_before_bwd_r(H, dg + b * H3, drh + b * H, h_prev + b * H, dh_prev + b * H)
            # (2), (3) dh_prev += dG[t][:, :2H] @ W_hh[:2H]
            gemm_step(Wp_rz, False, nb, H, 2 * H, dg, H3, W_hh, H, <floating>1, dh_prev, H, s & 1)
        hold_inactive(dh_prev, dh, nb, H, lens, t)
        swap = dh_next
        dh_next = dh_prev
        dh_prev = swap
    memcpy(<floating*>c.dh0 + b0 * H, dh_next, nb * H * sizeof(floating))


def forward(X, W_ih, W_hh, b_ih, b_hh, h0, lengths, Y, int col, G, Hs, A, bint reverse, bint reset_after):
    """Run (1)-(7). X (T, B, I); h0 (B, H); Y (T, B, ldy) written at columns [col, col+H) or None;
    G (T, B, 3H); Hs (nslots, B, H); A (T or 1, B, H); lengths (B,) int64 or None. b_ih, b_hh are
    required (pass zeros for a layer without bias)."""
    cdef int T = X.shape[0], B = X.shape[1], I = X.shape[2], H = W_hh.shape[1]
    cdef int nslots = Hs.shape[0], ldy = Y.shape[2] if Y is not None else 0, na = A.shape[0]
    cdef int tn = cnp.PyArray_TYPE(X)
    cdef int64_t* lp = <int64_t*>opt_ptr(lengths, B, cnp.NPY_INT64, "lengths")
    if W_hh.shape[0] != 3 * H:
        raise ValueError(f"kernel argument W_hh: expected shape (3 * {H}, {H}), got {W_hh.shape}")
    if Y is not None and (col < 0 or col + H > ldy or Y.shape[0] * Y.shape[1] != <Py_ssize_t>T * B):
        raise ValueError(f"kernel argument Y: shape {Y.shape} cannot hold columns [{col}, {col + H})")
    if nslots < 2 or (nslots != 2 and nslots != T + 1):
        raise ValueError(f"kernel argument Hs: expected 2 or T+1={T + 1} slots, got {nslots}")
    if na != 1 and na != T:
        raise ValueError(f"kernel argument A: expected 1 or T={T} slots, got {na}")
    if tn == cnp.NPY_FLOAT32:
        _fwd_entry(<float>0, T, B, I, H, reverse, reset_after, X, W_ih, W_hh, b_ih, b_hh, h0, lp, Y, ldy, col,
                   G, Hs, nslots, A, na, tn)
    else:
        _fwd_entry(<double>0, T, B, I, H, reverse, reset_after, X, W_ih, W_hh, b_ih, b_hh, h0, lp, Y, ldy, col,
                   G, Hs, nslots, A, na, tn)


cdef int _fwd_entry(floating kind, int T, int B, int I, int H, bint reverse, bint reset_after,
                    X, W_ih, W_hh, b_ih, b_hh, h0, int64_t* lp, Y, int ldy, int col,
                    G, Hs, int nslots, A, int na, int tn) except -1:
    cdef Py_ssize_t TB = <Py_ssize_t>T * B
    cdef const floating* x = <floating*>data_ptr(X, TB * I, tn, "X")
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, <Py_ssize_t>3 * H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, <Py_ssize_t>3 * H * H, tn, "W_hh")
    cdef const floating* bi = <floating*>data_ptr(b_ih, 3 * H, tn, "b_ih")
    cdef const floating* bh = <floating*>data_ptr(b_hh, 3 * H, tn, "b_hh")
    cdef const floating* h_0 = <floating*>data_ptr(h0, <Py_ssize_t>B * H, tn, "h0")
    cdef floating* y = <floating*>opt_ptr(Y, TB * ldy, tn, "Y")
    cdef floating* g = <floating*>data_ptr(G, TB * 3 * H, tn, "G")
    cdef floating* hs = <floating*>data_ptr(Hs, <Py_ssize_t>nslots * B * H, tn, "Hs")
    cdef floating* a = <floating*>data_ptr(A, <Py_ssize_t>na * B * H, tn, "A")
    cdef floating* gh
    gh = <floating*>malloc(<Py_ssize_t>B * 3 * H * sizeof(floating))
    if gh == NULL:
        raise MemoryError(f"cannot allocate {B * 3 * H * sizeof(floating)} bytes of GRU scratch")
    with nogil:
        _forward(T, B, I, H, reverse, reset_after, x, w_ih, w_hh, bi, bh, h_0, lp,
                 y + col if y != NULL else NULL, ldy, g, hs, nslots, a, na, gh)
    free(gh)
    return 0


def backward(X, W_ih, W_hh, lengths, Hs, A, G, dY, int col, dh_n, dX, dh0, dW_ih, dW_hh, db_ih, db_hh,
             bint reverse, bint reset_after):
    """BPTT for one (layer, direction). G and A (from a training forward) are overwritten.
    dY (T, B, ldy) read at columns [col, col+H); dX, dW_*, db_* are ADDED to; dh0 is written.
    dX may be X itself (when nothing else reads X): X is then overwritten by this call's dX."""
    cdef int T = X.shape[0], B = X.shape[1], I = X.shape[2], H = W_hh.shape[1]
    cdef int tn = cnp.PyArray_TYPE(X)
    cdef int64_t* lp = <int64_t*>opt_ptr(lengths, B, cnp.NPY_INT64, "lengths")
    if Hs.shape[0] != T + 1 or A.shape[0] != T:
        raise ValueError(f"kernel arguments Hs, A: expected T+1={T + 1} and T slots from a training forward")
    if col < 0 or col + H > dY.shape[2] or dY.shape[0] != T or dY.shape[1] != B:
        raise ValueError(f"kernel argument dY: shape {dY.shape} cannot hold columns [{col}, {col + H})")
    if tn == cnp.NPY_FLOAT32:
        return _bwd_entry(<float>0, T, B, I, H, reverse, reset_after, X, W_ih, W_hh, lp, Hs, A, G, dY, col,
                          dh_n, dX, dh0, dW_ih, dW_hh, db_ih, db_hh, tn)
    return _bwd_entry(<double>0, T, B, I, H, reverse, reset_after, X, W_ih, W_hh, lp, Hs, A, G, dY, col,
                      dh_n, dX, dh0, dW_ih, dW_hh, db_ih, db_hh, tn)


cdef int _bwd_entry(floating kind, int T, int B, int I, int H, bint reverse, bint reset_after,
                    X, W_ih, W_hh, int64_t* lp, Hs, A, G, dY, int col, dh_n, dX, dh0, dW_ih, dW_hh,
                    db_ih, db_hh, int tn) except -1:
    cdef Py_ssize_t TB = <Py_ssize_t>T * B
    cdef int ldy = dY.shape[2]
    cdef const floating* x = <floating*>data_ptr(X, TB * I, tn, "X")
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, <Py_ssize_t>3 * H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, <Py_ssize_t>3 * H * H, tn, "W_hh")
    cdef const floating* hs = <floating*>data_ptr(Hs, (TB + B) * H, tn, "Hs")
    cdef floating* a = <floating*>data_ptr(A, TB * H, tn, "A")
    cdef floating* g = <floating*>data_ptr(G, TB * 3 * H, tn, "G")
    cdef const floating* dy = <floating*>data_ptr(dY, TB * ldy, tn, "dY")
    cdef const floating* dhn = <floating*>data_ptr(dh_n, <Py_ssize_t>B * H, tn, "dh_n")
    cdef floating* dx = <floating*>data_ptr(dX, TB * I, tn, "dX")
    cdef floating* dh_0 = <floating*>data_ptr(dh0, <Py_ssize_t>B * H, tn, "dh0")
    cdef floating* dw_ih = <floating*>data_ptr(dW_ih, <Py_ssize_t>3 * H * I, tn, "dW_ih")
    cdef floating* dw_hh = <floating*>data_ptr(dW_hh, <Py_ssize_t>3 * H * H, tn, "dW_hh")
    cdef floating* dbi = <floating*>opt_ptr(db_ih, 3 * H, tn, "db_ih")
    cdef floating* dbh = <floating*>opt_ptr(db_hh, 3 * H, tn, "db_hh")
    cdef int status
    with nogil:
        status = _backward(T, B, I, H, reverse, reset_after, x, w_ih, w_hh, lp, hs, a, g, dy + col, ldy, dhn,
                           dx, dh_0, dw_ih, dw_hh, dbi, dbh)
    if status != 0:
        raise MemoryError("cannot allocate scratch memory for the GRU backward pass")
    return 0


def step(x, h, cnp.ndarray W_ih, cnp.ndarray W_hh, cnp.ndarray b_ih, cnp.ndarray b_hh, bint reset_after):
    """The cells' fast path: (1)-(6) for one step (T = 1) of rows x (B, I) from h (B, H). Returns h_new,
    or None when x or h is not already a C-contiguous 2-D array of the weights' dtype and shape; the
    caller then validates and converts them."""
    cdef int tn = cnp.PyArray_TYPE(W_hh)
    cdef Py_ssize_t I = cnp.PyArray_DIM(W_ih, 1), H = cnp.PyArray_DIM(W_hh, 1)
    cdef Py_ssize_t B = step_rows(x, h, W_ih, W_hh, tn)
    if B < 0:
        return None
    h_new = empty_rows(B, H, tn)
    if tn == cnp.NPY_FLOAT32:
        _run(<float>0, 1, B, I, H, x, h, W_ih, W_hh, b_ih, b_hh, h_new, None, reset_after, tn)
    else:
        _run(<double>0, 1, B, I, H, x, h, W_ih, W_hh, b_ih, b_hh, h_new, None, reset_after, tn)
    return h_new


def run(x, h0, cnp.ndarray W_ih, cnp.ndarray W_hh, cnp.ndarray b_ih, cnp.ndarray b_hh, bint reset_after):
    """The layers' fast path for inference of one layer, one direction, every row the full length: (1)-(7)
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
        _run(<float>0, T, B, I, H, x, h0, W_ih, W_hh, b_ih, b_hh, y, h_n, reset_after, tn)
    else:
        _run(<double>0, T, B, I, H, x, h0, W_ih, W_hh, b_ih, b_hh, y, h_n, reset_after, tn)
    return y, h_n


cdef int _run(floating kind, int T, int B, int I, int H, x, h0, W_ih, W_hh, b_ih, b_hh, y, h_n,
              bint reset_after, int tn) except -1:
    # y (T, B, H) gets every h_t; h_n (B, H) the final state. h_n may be None: the cells' step (T = 1)
    # passes its h_new as y.
    cdef Py_ssize_t BH = <Py_ssize_t>B * H
    cdef const floating* w_ih = <floating*>data_ptr(W_ih, 3 * H * I, tn, "W_ih")
    cdef const floating* w_hh = <floating*>data_ptr(W_hh, 3 * H * H, tn, "W_hh")
    cdef const floating* bi = <floating*>data_ptr(b_ih, 3 * H, tn, "b_ih")
    cdef const floating* bh = <floating*>data_ptr(b_hh, 3 * H, tn, "b_hh")
    cdef const floating* x_ = <floating*>data_ptr(x, <Py_ssize_t>T * B * I, tn, "x")
    cdef const floating* h_ = <floating*>data_ptr(h0, BH, tn, "h0")
    cdef floating* y_ = <floating*>data_ptr(y, <Py_ssize_t>T * BH, tn, "y")
    cdef floating* out_h = <floating*>opt_ptr(h_n, BH, tn, "h_n")
    # scratch: G (T, B, 3H), Hs with 2 slots of (B, H), A (B, H), Gh (B, 3H)
    cdef floating* scratch = <floating*>fr_packed_alloc((3 * T + 6) * BH * sizeof(floating))
    cdef floating* g = scratch
    cdef floating* hs = g + 3 * T * BH
    if scratch == NULL:
        raise MemoryError(f"cannot allocate {(3 * T + 6) * BH * sizeof(floating)} bytes of GRU scratch")
    with nogil:
        _forward(T, B, I, H, False, reset_after, x_, w_ih, w_hh, bi, bh, h_, NULL, y_, H,
                 g, hs, 2, hs + 2 * BH, 1, hs + 3 * BH)
        if out_h != NULL:
            memcpy(out_h, hs + (T % 2) * BH, BH * sizeof(floating))
    free(scratch)
    return 0
