# The Cython door to gates.h: per-row gate loops, one fused name per loop (float -> _f, double -> _d).
# What each computes, and which kernel equation, is written above it in gates_impl.h.
from cython cimport floating


cdef extern from "gates.h" nogil:
    void fr_rnn_fwd_f(int H, int relu, const float *g, const float *b_ih, const float *b_hh, float *h)
    void fr_rnn_fwd_d(int H, int relu, const double *g, const double *b_ih, const double *b_hh, double *h)
    void fr_rnn_bwd_f(int H, int relu, const float *dh, const float *h, float *dg)
    void fr_rnn_bwd_d(int H, int relu, const double *dh, const double *h, double *dg)
    void fr_lstm_fwd_f(int H, float *g, const float *b_ih, const float *b_hh, const float *c_prev, float *c, float *r)
    void fr_lstm_fwd_d(int H, double *g, const double *b_ih, const double *b_hh, const double *c_prev, double *c, double *r)
    void fr_lstm_bwd_f(int H, float *g, const float *c_prev, const float *c, const float *dr, const float *dc_next, float *dc_prev)
    void fr_lstm_bwd_d(int H, double *g, const double *c_prev, const double *c, const double *dr, const double *dc_next, double *dc_prev)
    void fr_gru_after_fwd_f(int H, float *g, const float *gh, const float *b_ih, const float *b_hh, const float *h_prev, float *hn, float *h)
    void fr_gru_after_fwd_d(int H, double *g, const double *gh, const double *b_ih, const double *b_hh, const double *h_prev, double *hn, double *h)
    void fr_gru_after_bwd_f(int H, float *g, float *hn, const float *h_prev, const float *dh, float *dh_prev)
    void fr_gru_after_bwd_d(int H, double *g, double *hn, const double *h_prev, const double *dh, double *dh_prev)
    void fr_gru_before_fwd_rz_f(int H, float *g, const float *b_ih, const float *b_hh, const float *h_prev, float *rh)
    void fr_gru_before_fwd_rz_d(int H, double *g, const double *b_ih, const double *b_hh, const double *h_prev, double *rh)
    void fr_gru_before_fwd_n_f(int H, float *g, const float *b_ih, const float *b_hh, const float *h_prev, float *h)
    void fr_gru_before_fwd_n_d(int H, double *g, const double *b_ih, const double *b_hh, const double *h_prev, double *h)
    void fr_gru_before_bwd_zn_f(int H, float *g, const float *h_prev, const float *dh, float *dh_prev)
    void fr_gru_before_bwd_zn_d(int H, double *g, const double *h_prev, const double *dh, double *dh_prev)
    void fr_gru_before_bwd_r_f(int H, float *g, const float *drh, const float *h_prev, float *dh_prev)
    void fr_gru_before_bwd_r_d(int H, double *g, const double *drh, const double *h_prev, double *dh_prev)


cdef inline void rnn_fwd(int H, int relu, const floating *g, const floating *b_ih, const floating *b_hh, floating *h) noexcept nogil:
    if floating is float:
        fr_rnn_fwd_f(H, relu, g, b_ih, b_hh, h)
    else:
        fr_rnn_fwd_d(H, relu, g, b_ih, b_hh, h)


cdef inline void rnn_bwd(int H, int relu, const floating *dh, const floating *h, floating *dg) noexcept nogil:
    if floating is float:
        fr_rnn_bwd_f(H, relu, dh, h, dg)
    else:
        fr_rnn_bwd_d(H, relu, dh, h, dg)


cdef inline void lstm_fwd(int H, floating *g, const floating *b_ih, const floating *b_hh, const floating *c_prev, floating *c, floating *r) noexcept nogil:
    if floating is float:
        fr_lstm_fwd_f(H, g, b_ih, b_hh, c_prev, c, r)
    else:
        fr_lstm_fwd_d(H, g, b_ih, b_hh, c_prev, c, r)


cdef inline void lstm_bwd(int H, floating *g, const floating *c_prev, const floating *c, const floating *dr, const floating *dc_next, floating *dc_prev) noexcept nogil:
    if floating is float:
        fr_lstm_bwd_f(H, g, c_prev, c, dr, dc_next, dc_prev)
    else:
        fr_lstm_bwd_d(H, g, c_prev, c, dr, dc_next, dc_prev)


cdef inline void gru_after_fwd(int H, floating *g, const floating *gh, const floating *b_ih, const floating *b_hh, const floating *h_prev, floating *hn, floating *h) noexcept nogil:
    if floating is float:
        fr_gru_after_fwd_f(H, g, gh, b_ih, b_hh, h_prev, hn, h)
    else:
        fr_gru_after_fwd_d(H, g, gh, b_ih, b_hh, h_prev, hn, h)


cdef inline void gru_after_bwd(int H, floating *g, floating *hn, const floating *h_prev, const floating *dh, floating *dh_prev) noexcept nogil:
    if floating is float:
        fr_gru_after_bwd_f(H, g, hn, h_prev, dh, dh_prev)
    else:
        fr_gru_after_bwd_d(H, g, hn, h_prev, dh, dh_prev)


cdef inline void gru_before_fwd_rz(int H, floating *g, const floating *b_ih, const floating *b_hh, const floating *h_prev, floating *rh) noexcept nogil:
    if floating is float:
        fr_gru_before_fwd_rz_f(H, g, b_ih, b_hh, h_prev, rh)
    else:
        fr_gru_before_fwd_rz_d(H, g, b_ih, b_hh, h_prev, rh)


cdef inline void gru_before_fwd_n(int H, floating *g, const floating *b_ih, const floating *b_hh, const floating *h_prev, floating *h) noexcept nogil:
    if floating is float:
        fr_gru_before_fwd_n_f(H, g, b_ih, b_hh, h_prev, h)
    else:
        fr_gru_before_fwd_n_d(H, g, b_ih, b_hh, h_prev, h)


cdef inline void gru_before_bwd_zn(int H, floating *g, const floating *h_prev, const floating *dh, floating *dh_prev) noexcept nogil:
    if floating is float:
        fr_gru_before_bwd_zn_f(H, g, h_prev, dh, dh_prev)
    else:
        fr_gru_before_bwd_zn_d(H, g, h_prev, dh, dh_prev)


cdef inline void gru_before_bwd_r(int H, floating *g, const floating *drh, const floating *h_prev, floating *dh_prev) noexcept nogil:
    if floating is float:
        fr_gru_before_bwd_r_f(H, g, drh, h_prev, dh_prev)
    else:
        fr_gru_before_bwd_r_d(H, g, drh, h_prev, dh_prev)
