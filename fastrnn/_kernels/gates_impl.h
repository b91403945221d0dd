/* The element-wise part of one time step for one batch row, written once and compiled twice by
 * gates.h (FR_T = float, then double). Every pointer is restrict, so gcc vectorizes each loop.
 * Equation numbers refer to the kernel headers in rnn.pyx, lstm.pyx and gru.pyx. Gate buffers hold
 * pre-activations on entry and activations on exit (forward), activations on entry and
 * pre-activation gradients on exit (backward). Derivatives are written from the outputs:
 * sigmoid' = y (1 - y), tanh' = 1 - y^2, relu' = [y > 0].
 * Each gate has its own pointer (g_i = g, g_f = g + H, ...) and every access is p[j]: Python builds
 * extensions with -fwrapv, under which gcc does not vectorize an index such as g[2 * H + j].
 */

static inline FR_T FR_NAME(sigmoid)(FR_T x)
{
    return (FR_T)1 / ((FR_T)1 + FR_EXP(-x));
}

/* tanh(x) = sign(x) (-m) / (2 + m), m = expm1(-2|x|): no cancellation near 0, +-1 at the ends */
static inline FR_T FR_NAME(tanh)(FR_T x)
{
    FR_T m = FR_EXPM1((FR_T)-2 * FR_FABS(x));
    return FR_COPYSIGN(-m / ((FR_T)2 + m), x);
}

/* ---- Elman RNN ---------------------------------------------------------------------------- */

/* (3) h = act(g + b_ih + b_hh) */
FR_CLONES static void FR_NAME(rnn_fwd)(int H, int relu, const FR_T *restrict g, const FR_T *restrict b_ih,
                             const FR_T *restrict b_hh, FR_T *restrict h)
{
    int j;
    FR_T x;
    if (relu) {
        for (j = 0; j < H; j++) {
            x = g[j] + b_ih[j] + b_hh[j];
            h[j] = (x > 0 || x != x) ? x : (FR_T)0;    /* keeps NaN */
        }
    } else {
        for (j = 0; j < H; j++)
            h[j] = FR_NAME(tanh)(g[j] + b_ih[j] + b_hh[j]);
    }
}

/* (3) dg = dh * act'(h) */
FR_CLONES static void FR_NAME(rnn_bwd)(int H, int relu, const FR_T *restrict dh, const FR_T *restrict h, FR_T *restrict dg)
{
    int j;
    if (relu) {
        for (j = 0; j < H; j++) {
            FR_T d = dh[j];                               /* unconditional load: lets gcc vectorize */
            dg[j] = h[j] > 0 ? d : (FR_T)0;
        }
    } else {
        for (j = 0; j < H; j++)
            dg[j] = dh[j] * ((FR_T)1 - h[j] * h[j]);
    }
}

/* ---- LSTM --------------------------------------------------------------------------------- */

/* (3) i, f, g, o;  (4) c = f c_prev + i g;  (5) r = o tanh(c).  g: 4H (pre-activations -> activations) */
FR_CLONES static void FR_NAME(lstm_fwd)(int H, FR_T *restrict g, const FR_T *restrict b_ih, const FR_T *restrict b_hh,
                              const FR_T *restrict c_prev, FR_T *restrict c, FR_T *restrict r)
{
    FR_T *restrict g_i = g, *restrict g_f = g + H, *restrict g_g = g + 2 * H, *restrict g_o = g + 3 * H;
    const FR_T *restrict bi_i = b_ih, *restrict bi_f = b_ih + H, *restrict bi_g = b_ih + 2 * H;
    const FR_T *restrict bi_o = b_ih + 3 * H;
    const FR_T *restrict bh_i = b_hh, *restrict bh_f = b_hh + H, *restrict bh_g = b_hh + 2 * H;
    const FR_T *restrict bh_o = b_hh + 3 * H;
    int j;
    FR_T i_, f_, g_, o_, c_;
    for (j = 0; j < H; j++) {
        i_ = FR_NAME(sigmoid)(g_i[j] + bi_i[j] + bh_i[j]);
        f_ = FR_NAME(sigmoid)(g_f[j] + bi_f[j] + bh_f[j]);
        g_ = FR_NAME(tanh)(g_g[j] + bi_g[j] + bh_g[j]);
        o_ = FR_NAME(sigmoid)(g_o[j] + bi_o[j] + bh_o[j]);
        g_i[j] = i_;
        g_f[j] = f_;
        g_g[j] = g_;
        g_o[j] = o_;
        c_ = f_ * c_prev[j] + i_ * g_;
        c[j] = c_;
        r[j] = o_ * FR_NAME(tanh)(c_);
    }
}

/* From dr = dL/dr and dc_next: (5) do, dc;  (4) dc_prev, di, df, dg;  (3) pre-activation gradients.
 * g: 4H (activations -> dG) */
FR_CLONES static void FR_NAME(lstm_bwd)(int H, FR_T *restrict g, const FR_T *restrict c_prev, const FR_T *restrict c,
                              const FR_T *restrict dr, const FR_T *restrict dc_next, FR_T *restrict dc_prev)
{
    FR_T *restrict g_i = g, *restrict g_f = g + H, *restrict g_g = g + 2 * H, *restrict g_o = g + 3 * H;
    int j;
    FR_T i_, f_, g_, o_, tc, dc;
    for (j = 0; j < H; j++) {
        i_ = g_i[j];
        f_ = g_f[j];
        g_ = g_g[j];
        o_ = g_o[j];
        tc = FR_NAME(tanh)(c[j]);
        dc = dc_next[j] + dr[j] * o_ * ((FR_T)1 - tc * tc);       /* (5) */
        dc_prev[j] = dc * f_;                                      /* (4) */
        g_i[j] = dc * g_ * i_ * ((FR_T)1 - i_);                     /* (4) -> (3) */
        g_f[j] = dc * c_prev[j] * f_ * ((FR_T)1 - f_);
        g_g[j] = dc * i_ * ((FR_T)1 - g_ * g_);
        g_o[j] = dr[j] * tc * o_ * ((FR_T)1 - o_);                  /* (5) -> (3) */
    }
}

/* ---- GRU, reset-after --------------------------------------------------------------------- */

/* (2), (3), (4a) hn, (5a) n, (6) h.  g: 3H x-side pre-activations -> [r, z, n]; gh = h_prev W_hh^T (3H) */
FR_CLONES static void FR_NAME(gru_after_fwd)(int H, FR_T *restrict g, const FR_T *restrict gh, const FR_T *restrict b_ih,
                                   const FR_T *restrict b_hh, const FR_T *restrict h_prev, FR_T *restrict hn,
                                   FR_T *restrict h)
{
    FR_T *restrict g_r = g, *restrict g_z = g + H, *restrict g_n = g + 2 * H;
    const FR_T *restrict gh_r = gh, *restrict gh_z = gh + H, *restrict gh_n = gh + 2 * H;
    const FR_T *restrict bi_r = b_ih, *restrict bi_z = b_ih + H, *restrict bi_n = b_ih + 2 * H;
    const FR_T *restrict bh_r = b_hh, *restrict bh_z = b_hh + H, *restrict bh_n = b_hh + 2 * H;
    int j;
    FR_T r, z, n, a;
    for (j = 0; j < H; j++) {
        r = FR_NAME(sigmoid)(g_r[j] + bi_r[j] + gh_r[j] + bh_r[j]);
        z = FR_NAME(sigmoid)(g_z[j] + bi_z[j] + gh_z[j] + bh_z[j]);
        a = gh_n[j] + bh_n[j];
        n = FR_NAME(tanh)(g_n[j] + bi_n[j] + r * a);
        g_r[j] = r;
        g_z[j] = z;
        g_n[j] = n;
        hn[j] = a;
        h[j] = ((FR_T)1 - z) * n + z * h_prev[j];
    }
}

/* From dh: (6) dn, dz, dh_prev (direct part);  (5a) dn_pre, dr;  (2), (3).
 * g: [r, z, n] -> x-side dG;  hn -> its own gradient dn_pre * r (the h-side n part) */
FR_CLONES static void FR_NAME(gru_after_bwd)(int H, FR_T *restrict g, FR_T *restrict hn, const FR_T *restrict h_prev,
                                   const FR_T *restrict dh, FR_T *restrict dh_prev)
{
    FR_T *restrict g_r = g, *restrict g_z = g + H, *restrict g_n = g + 2 * H;
    int j;
    FR_T r, z, n, dn_pre;
    for (j = 0; j < H; j++) {
        r = g_r[j];
        z = g_z[j];
        n = g_n[j];
        dn_pre = dh[j] * ((FR_T)1 - z) * ((FR_T)1 - n * n);
        g_r[j] = dn_pre * hn[j] * r * ((FR_T)1 - r);
        g_z[j] = dh[j] * (h_prev[j] - n) * z * ((FR_T)1 - z);
        g_n[j] = dn_pre;
        hn[j] = dn_pre * r;
        dh_prev[j] = dh[j] * z;
    }
}

/* ---- GRU, reset-before -------------------------------------------------------------------- */

/* (2), (3) r, z;  (4b) rh = r h_prev.  g: first 2H pre-activations -> [r, z] */
FR_CLONES static void FR_NAME(gru_before_fwd_rz)(int H, FR_T *restrict g, const FR_T *restrict b_ih,
                                       const FR_T *restrict b_hh, const FR_T *restrict h_prev, FR_T *restrict rh)
{
    FR_T *restrict g_r = g, *restrict g_z = g + H;
    const FR_T *restrict bi_r = b_ih, *restrict bi_z = b_ih + H, *restrict bh_r = b_hh, *restrict bh_z = b_hh + H;
    int j;
    FR_T r;
    for (j = 0; j < H; j++) {
        r = FR_NAME(sigmoid)(g_r[j] + bi_r[j] + bh_r[j]);
        g_r[j] = r;
        g_z[j] = FR_NAME(sigmoid)(g_z[j] + bi_z[j] + bh_z[j]);
        rh[j] = r * h_prev[j];
    }
}

/* (5b) n;  (6) h.  g: [r, z, n pre-activation] -> [r, z, n] */
FR_CLONES static void FR_NAME(gru_before_fwd_n)(int H, FR_T *restrict g, const FR_T *restrict b_ih,
                                      const FR_T *restrict b_hh, const FR_T *restrict h_prev, FR_T *restrict h)
{
    const FR_T *restrict g_z = g + H;
    FR_T *restrict g_n = g + 2 * H;
    const FR_T *restrict bi_n = b_ih + 2 * H, *restrict bh_n = b_hh + 2 * H;
    int j;
    FR_T z, n;
    for (j = 0; j < H; j++) {
        n = FR_NAME(tanh)(g_n[j] + bi_n[j] + bh_n[j]);
        z = g_z[j];
        g_n[j] = n;
        h[j] = ((FR_T)1 - z) * n + z * h_prev[j];
    }
}

/* (6) dn, dz, dh_prev (direct part);  (5b) dn_pre;  (3).  g: [r, z, n] -> [r, dz_pre, dn_pre] */
FR_CLONES static void FR_NAME(gru_before_bwd_zn)(int H, FR_T *restrict g, const FR_T *restrict h_prev,
                                       const FR_T *restrict dh, FR_T *restrict dh_prev)
{
    FR_T *restrict g_z = g + H, *restrict g_n = g + 2 * H;
    int j;
    FR_T z, n;
    for (j = 0; j < H; j++) {
        z = g_z[j];
        n = g_n[j];
        g_z[j] = dh[j] * (h_prev[j] - n) * z * ((FR_T)1 - z);
        g_n[j] = dh[j] * ((FR_T)1 - z) * ((FR_T)1 - n * n);
        dh_prev[j] = dh[j] * z;
    }
}

/* (4b) with drh = dn_pre W_hn: dr = drh h_prev, dh_prev += drh r;  (2).  g: r -> dr_pre (first H) */
FR_CLONES static void FR_NAME(gru_before_bwd_r)(int H, FR_T *restrict g, const FR_T *restrict drh,
                                      const FR_T *restrict h_prev, FR_T *restrict dh_prev)
{
    int j;
    FR_T r;
    for (j = 0; j < H; j++) {
        r = g[j];
        dh_prev[j] += drh[j] * r;
        g[j] = drh[j] * h_prev[j] * r * ((FR_T)1 - r);
    }
}
