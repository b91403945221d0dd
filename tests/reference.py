"""Plain-numpy twin of fastrnn's recurrent kernels: the oracle the other tests trust.

Written for clarity, not speed: one step function per cell, a Python loop over time and a
hand-written backward pass (backpropagation through time) for every cell. The semantics are
PyTorch's (torch.nn.RNN / LSTM / GRU and torch.nn.RNNCell / LSTMCell / GRUCell), including
packed-sequence `lengths`, plus the textbook GRU (reset gate before the matmul), which torch lacks.

Notation
    T steps, B batch rows, I input features, H hidden units, P projection size (LSTM proj_size),
    H_out = P if P > 0 else H, L layers, D directions (1 or 2).
    Time-major x (T, B, I); batch rows are row vectors, so a weight W acts as ``x @ W.T``.
    States: (L*D, B, H_out); the LSTM cell state c is (L*D, B, H).
    Parameters use torch's names and layouts: weight_ih_l{k}[_reverse] (G*H, I_k),
    weight_hh_l{k} (G*H, H_out), bias_ih_l{k} / bias_hh_l{k} (G*H,), weight_hr_l{k} (P, H),
    with the gates stacked in torch's order: LSTM i, f, g, o; GRU r, z, n (G = 4 or 3).

Lengths (packed sequences)
    Row b is valid at steps t < lengths[b]. A step on an invalid row leaves the state alone and
    outputs zero. Because an invalid step changes nothing, the reverse direction, which walks
    t = T-1 .. 0, still holds its initial state when it reaches t = lengths[b] - 1: it starts each
    sequence at that sequence's own last valid step, as torch's packed sequences do.

Public functions
    forward(kind, params, x, state0=None, lengths=None, ...) -> (y, state_n)
    backward(kind, params, x, state0, dy, dstate_n=None, lengths=None, ...) -> (dx, dstate0, dparams)
    rnn_cell / lstm_cell / gru_cell and their *_backward: one step, torch.nn.*Cell semantics.
"""
import numpy as np

KINDS = ("rnn", "lstm", "gru")
NONLINEARITIES = ("tanh", "relu")
N_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


# --------------------------------------------------------------------------- activations


def sigmoid(a):
    """Overflow-free logistic function: sigmoid(a) = (1 + tanh(a / 2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def relu(a):
    return np.maximum(a, 0.0)


# --------------------------------------------------------------------------- cell steps
#
# Each step takes the cell weights w (a dict with the torch *Cell names weight_ih, weight_hh,
# bias_ih, bias_hh and, for a projected LSTM, weight_hr; absent biases are None), one time
# step x_t (B, I_k) and the previous state, and returns (h_t, c_t, cache). c_t is None for RNN
# and GRU. Each *_backward takes the cache and the gradients reaching h_t and c_t, ADDS the
# parameter gradients into dw (same keys as w) and returns (dx_t, dh_prev, dc_prev).


def _affine(x_t, W, b):
    """x_t @ W.T + b, with b = None meaning no bias."""
    out = x_t @ W.T
    if b is not None:
        out = out + b
    return out


def rnn_step(w, x_t, h_prev, nonlinearity="tanh"):
    """Elman RNN step.

    (1) a_t = x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh
    (2) h_t = tanh(a_t)  or  relu(a_t)
    """
    # (1)
    a_t = _affine(x_t, w["weight_ih"], w["bias_ih"]) + _affine(h_prev, w["weight_hh"], w["bias_hh"])
    # (2)
    h_t = np.tanh(a_t) if nonlinearity == "tanh" else relu(a_t)
    return h_t, None, (x_t, h_prev, h_t)


def rnn_step_backward(w, cache, dh_t, dc_t, dw, nonlinearity="tanh"):
    x_t, h_prev, h_t = cache
    # (2) tanh' = 1 - h_t^2; relu' = [a_t > 0] = [h_t > 0] (torch's threshold_backward)
    da = dh_t * (1.0 - h_t * h_t) if nonlinearity == "tanh" else dh_t * (h_t > 0)
    # (1)
    dw["weight_ih"] += da.T @ x_t
    dw["weight_hh"] += da.T @ h_prev
    if dw["bias_ih"] is not None:
        dw["bias_ih"] += da.sum(axis=0)
        dw["bias_hh"] += da.sum(axis=0)
    dx_t = da @ w["weight_ih"]
    dh_prev = da @ w["weight_hh"]
    return dx_t, dh_prev, None


def lstm_step(w, x_t, h_prev, c_prev):
    """LSTM step (torch.nn.LSTM, optionally with proj_size).

    (1) [a_i, a_f, a_g, a_o] = x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh     (each (B, H))
    (2) i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
    (3) c_t = f * c_prev + i * g
    (4) m_t = o * tanh(c_t)
    (5) h_t = m_t W_hr^T   if proj_size > 0,  else h_t = m_t
    """
    H = c_prev.shape[1]
    # (1)
    a = _affine(x_t, w["weight_ih"], w["bias_ih"]) + _affine(h_prev, w["weight_hh"], w["bias_hh"])
    # (2)
    i = sigmoid(a[:, 0 * H:1 * H])
    f = sigmoid(a[:, 1 * H:2 * H])
    g = np.tanh(a[:, 2 * H:3 * H])
    o = sigmoid(a[:, 3 * H:4 * H])
    # (3)
    c_t = f * c_prev + i * g
    # (4)
    tanh_c = np.tanh(c_t)
    m_t = o * tanh_c
    # (5)
    h_t = m_t @ w["weight_hr"].T if w.get("weight_hr") is not None else m_t
    return h_t, c_t, (x_t, h_prev, c_prev, i, f, g, o, tanh_c, m_t)


def lstm_step_backward(w, cache, dh_t, dc_t, dw):
    x_t, h_prev, c_prev, i, f, g, o, tanh_c, m_t = cache
    # (5)
    if w.get("weight_hr") is not None:
        dw["weight_hr"] += dh_t.T @ m_t
        dm = dh_t @ w["weight_hr"]
    else:
        dm = dh_t
    # (4) both through o and through c_t
    do = dm * tanh_c
    dc = dc_t + dm * o * (1.0 - tanh_c * tanh_c)
    # (3)
    di = dc * g
    df = dc * c_prev
    dg = dc * i
    dc_prev = dc * f
    # (2) sigmoid' = s (1 - s), tanh' = 1 - t^2
    da = np.concatenate([di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g * g), do * o * (1.0 - o)], axis=1)
    # (1)
    dw["weight_ih"] += da.T @ x_t
    dw["weight_hh"] += da.T @ h_prev
    if dw["bias_ih"] is not None:
        dw["bias_ih"] += da.sum(axis=0)
        dw["bias_hh"] += da.sum(axis=0)
    dx_t = da @ w["weight_ih"]
    dh_prev = da @ w["weight_hh"]
    return dx_t, dh_prev, dc_prev


def gru_step(w, x_t, h_prev, reset_after=True):
    """GRU step; gate rows in torch's order r, z, n.

    (1) [gi_r, gi_z, gi_n] = x_t W_ih^T + b_ih
    (2) r = sigmoid(gi_r + h_prev W_hr^T + b_hr)
    (3) z = sigmoid(gi_z + h_prev W_hz^T + b_hz)
    (4a) reset_after (torch):  n = tanh(gi_n + r * (h_prev W_hn^T + b_hn))
    (4b) reset_before (textbook): n = tanh(gi_n + (r * h_prev) W_hn^T + b_hn)
    (5) h_t = (1 - z) * n + z * h_prev
    Here W_hr, W_hz, W_hn are the row blocks of weight_hh (not LSTM's projection weight_hr).
    """
    H = h_prev.shape[1]
    W_hh, b_hh = w["weight_hh"], w["bias_hh"]
    W_hrz, W_hn = W_hh[:2 * H], W_hh[2 * H:]
    b_hrz = None if b_hh is None else b_hh[:2 * H]
    b_hn = None if b_hh is None else b_hh[2 * H:]
    # (1)
    gi = _affine(x_t, w["weight_ih"], w["bias_ih"])
    # (2), (3)
    gh_rz = _affine(h_prev, W_hrz, b_hrz)
    r = sigmoid(gi[:, :H] + gh_rz[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh_rz[:, H:])
    if reset_after:
        # (4a)
        gh_n = _affine(h_prev, W_hn, b_hn)
        n = np.tanh(gi[:, 2 * H:] + r * gh_n)
    else:
        # (4b)
        gh_n = _affine(r * h_prev, W_hn, b_hn)
        n = np.tanh(gi[:, 2 * H:] + gh_n)
    # (5)
    h_t = (1.0 - z) * n + z * h_prev
    return h_t, None, (x_t, h_prev, r, z, n, gh_n)


def gru_step_backward(w, cache, dh_t, dc_t, dw, reset_after=True):
    x_t, h_prev, r, z, n, gh_n = cache
    H = h_prev.shape[1]
    W_hh = w["weight_hh"]
    W_hrz, W_hn = W_hh[:2 * H], W_hh[2 * H:]
    # (5)
    dn = dh_t * (1.0 - z)
    dz = dh_t * (h_prev - n)
    dh_prev = dh_t * z
    # (4) tanh'
    da_n = dn * (1.0 - n * n)
    if reset_after:
        # (4a) d(gh_n) = da_n * r, dr = da_n * gh_n
        dgh_n = da_n * r
        dr = da_n * gh_n
        dw["weight_hh"][2 * H:] += dgh_n.T @ h_prev
        dh_prev = dh_prev + dgh_n @ W_hn
    else:
        # (4b) gh_n = (r * h_prev) W_hn^T + b_hn
        dgh_n = da_n
        drh = dgh_n @ W_hn
        dr = drh * h_prev
        dw["weight_hh"][2 * H:] += dgh_n.T @ (r * h_prev)
        dh_prev = dh_prev + drh * r
    # (2), (3) sigmoid'
    da_r = dr * r * (1.0 - r)
    da_z = dz * z * (1.0 - z)
    dgh_rz = np.concatenate([da_r, da_z], axis=1)
    dw["weight_hh"][:2 * H] += dgh_rz.T @ h_prev
    dh_prev = dh_prev + dgh_rz @ W_hrz
    # (1)
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)
    dw["weight_ih"] += dgi.T @ x_t
    if dw["bias_ih"] is not None:
        dw["bias_ih"] += dgi.sum(axis=0)
        dw["bias_hh"][:2 * H] += dgh_rz.sum(axis=0)
        dw["bias_hh"][2 * H:] += dgh_n.sum(axis=0)
    dx_t = dgi @ w["weight_ih"]
    return dx_t, dh_prev, None


def _step_functions(kind, nonlinearity, reset_after):
    """(step, step_backward) with the cell options bound, as step(w, x_t, h_prev, c_prev)."""
    if kind == "rnn":
        return (lambda w, x_t, h, c: rnn_step(w, x_t, h, nonlinearity),
                lambda w, cache, dh, dc, dw: rnn_step_backward(w, cache, dh, dc, dw, nonlinearity))
    if kind == "lstm":
        return lstm_step, lstm_step_backward
    return (lambda w, x_t, h, c: gru_step(w, x_t, h, reset_after),
            lambda w, cache, dh, dc, dw: gru_step_backward(w, cache, dh, dc, dw, reset_after))


# --------------------------------------------------------------------------- one direction


def _run_direction(step, w, x, h0, c0, valid, reverse):
    """Run one (layer, direction) over the sequence.

    x (T, B, I_k); valid (T, B) bool; returns y (T, B, H_out), h_n, c_n and per-step caches.
    On rows where valid[t] is False the step is computed but discarded: h and c keep their value
    and y[t] is zero.
    """
    T = x.shape[0]
    h, c = h0, c0
    y = np.zeros((T,) + h0.shape, dtype=h0.dtype)
    caches = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        h_t, c_t, caches[t] = step(w, x[t], h, c)
        v = valid[t][:, None]
        y[t] = np.where(v, h_t, 0.0)
        h = np.where(v, h_t, h)
        if c is not None:
            c = np.where(v, c_t, c)
    return y, h, c, caches


def _run_direction_backward(step_backward, w, caches, valid, reverse, dy, dh_n, dc_n, dw, I_k):
    """BPTT through one (layer, direction). Adds parameter gradients into dw.

    Returns dx (T, B, I_k), dh0, dc0 (dc0 None for RNN/GRU).
    """
    T, B = dy.shape[:2]
    dx = np.zeros((T, B, I_k), dtype=dy.dtype)
    dh, dc = dh_n, dc_n
    # walk the steps in the opposite order of the forward pass
    for t in (range(T) if reverse else range(T - 1, -1, -1)):
        v = valid[t][:, None]
        # y[t] = where(v, h_t, 0) and h = where(v, h_t, h_prev): on valid rows the step's h_t
        # receives dy[t] plus the carried dh; on invalid rows the step receives nothing and the
        # carried gradient passes through unchanged.
        dh_t = np.where(v, dh + dy[t], 0.0)
        dc_t = None if dc is None else np.where(v, dc, 0.0)
        dx[t], dh_prev, dc_prev = step_backward(w, caches[t], dh_t, dc_t, dw)
        dh = np.where(v, dh_prev, dh)
        if dc is not None:
            dc = np.where(v, dc_prev, dc)
    return dx, dh, dc


# --------------------------------------------------------------------------- checks and layout


def _kind(kind):
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    return kind.lower()


def _float_dtype(dtype, *arrays):
    if dtype is not None:
        return np.dtype(dtype)
    dt = np.result_type(np.float32, *[a.dtype for a in arrays if a is not None])
    if dt not in (np.float32, np.float64):
        raise TypeError(f"expected float32 or float64 arrays; got {dt}")
    return dt


def param_names(kind, num_layers=1, bidirectional=False, bias=True, proj_size=0):
    """The torch parameter names of a stacked layer, in torch's order."""
    names = []
    for k in range(num_layers):
        for suffix in ("", "_reverse")[: 2 if bidirectional else 1]:
            names += [f"weight_ih_l{k}{suffix}", f"weight_hh_l{k}{suffix}"]
            if bias:
                names += [f"bias_ih_l{k}{suffix}", f"bias_hh_l{k}{suffix}"]
            if proj_size > 0:
                names.append(f"weight_hr_l{k}{suffix}")
    return names


def param_shapes(kind, input_size, hidden_size, num_layers=1, bidirectional=False, bias=True, proj_size=0):
    """{torch name: shape} for a stacked layer."""
    kind = _kind(kind)
    G = N_GATES[kind]
    H = hidden_size
    H_out = proj_size if proj_size > 0 else H
    D = 2 if bidirectional else 1
    shapes = {}
    for name in param_names(kind, num_layers, bidirectional, bias, proj_size):
        k = int(name.split("_l")[1].split("_")[0])
        I_k = input_size if k == 0 else D * H_out
        base = name.split("_l")[0]
        shapes[name] = {"weight_ih": (G * H, I_k), "weight_hh": (G * H, H_out), "bias_ih": (G * H,),
                        "bias_hh": (G * H,), "weight_hr": (proj_size, H)}[base]
    return shapes


def init_params(kind, input_size, hidden_size, num_layers=1, bidirectional=False, bias=True, proj_size=0,
                rng=None, scale=None, dtype=np.float64):
    """Random parameters, uniform(-scale, scale) with torch's default scale 1/sqrt(H)."""
    rng = np.random.default_rng(rng)
    scale = 1.0 / np.sqrt(hidden_size) if scale is None else scale
    shapes = param_shapes(kind, input_size, hidden_size, num_layers, bidirectional, bias, proj_size)
    return {name: rng.uniform(-scale, scale, size=shape).astype(dtype) for name, shape in shapes.items()}


def _describe(params, x, num_layers, bidirectional, proj_size, kind, nonlinearity):
    """Infer (H, H_out, bias, P) from params and check every name and shape; ValueError if off."""
    if not isinstance(params, dict) or "weight_hh_l0" not in params:
        raise ValueError("params must be a dict with torch names such as 'weight_hh_l0'")
    if kind == "rnn" and nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}; got {nonlinearity!r}")
    if proj_size and kind != "lstm":
        raise ValueError(f"proj_size is only for LSTM; got proj_size={proj_size} for {kind}")
    G = N_GATES[kind]
    H = np.shape(params["weight_hh_l0"])[0] // G
    P = np.shape(params["weight_hr_l0"])[0] if "weight_hr_l0" in params else 0
    if proj_size not in (0, P):
        raise ValueError(f"proj_size={proj_size} disagrees with weight_hr_l0 of shape "
                         f"{np.shape(params['weight_hr_l0']) if P else None}")
    bias = "bias_ih_l0" in params
    expected = param_shapes(kind, x.shape[2], H, num_layers, bidirectional, bias, P)
    found = {name: tuple(np.shape(value)) for name, value in params.items()}
    if found != expected:
        raise ValueError(f"params do not match the configuration: expected {expected}; got {found}")
    return H, (P if P > 0 else H), bias, P


def _valid_mask(lengths, T, B):
    """(T, B) bool, valid[t, b] = t < lengths[b]."""
    if lengths is None:
        return np.ones((T, B), dtype=bool)
    lengths = np.asarray(lengths)
    if lengths.shape != (B,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be an integer array of shape ({B},); got {lengths.dtype} {lengths.shape}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must be in [1, T={T}]; got {lengths.tolist()}")
    return np.arange(T)[:, None] < lengths[None, :]


def _split_state(kind, state, shape_h, shape_c, dt, name):
    """state -> (h, c) float arrays of the expected shapes; None means zeros. c is None unless LSTM."""
    if kind == "lstm":
        if state is None:
            state = (None, None)
        if not isinstance(state, tuple) or len(state) != 2:
            raise TypeError(f"LSTM {name} must be a tuple (h, c); got {type(state).__name__}")
        h, c = state
    else:
        h, c = state, None
    h = np.zeros(shape_h, dt) if h is None else np.asarray(h, dtype=dt)
    if h.shape != shape_h:
        raise ValueError(f"{name} h must have shape {shape_h}; got {h.shape}")
    if kind == "lstm":
        c = np.zeros(shape_c, dt) if c is None else np.asarray(c, dtype=dt)
        if c.shape != shape_c:
            raise ValueError(f"{name} c must have shape {shape_c}; got {c.shape}")
    return h, c


def _cell_weights(params, k, suffix, dt):
    """The weights of layer k, direction suffix, under the torch *Cell names."""
    def get(base):
        name = f"{base}_l{k}{suffix}"
        return np.asarray(params[name], dtype=dt) if name in params else None
    return {base: get(base) for base in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}


def _setup(kind, params, x, lengths, num_layers, bidirectional, nonlinearity, proj_size, batch_first, dtype,
           extra_arrays=()):
    kind = _kind(kind)
    x = np.asarray(x)
    dt = _float_dtype(dtype, x, *extra_arrays)
    x = x.astype(dt)
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (T, B, I); got shape {x.shape}")
    if batch_first:
        x = x.transpose(1, 0, 2)
    T, B, _ = x.shape
    H, H_out, bias, P = _describe(params, x, num_layers, bidirectional, proj_size, kind, nonlinearity)
    D = 2 if bidirectional else 1
    valid = _valid_mask(lengths, T, B)
    return kind, x, dt, T, B, H, H_out, D, valid


# --------------------------------------------------------------------------- stacked layers


def _forward_stack(kind, params, x, state0, lengths, num_layers, bidirectional, nonlinearity, proj_size,
                   reset_after, batch_first, dtype):
    kind, x, dt, T, B, H, H_out, D, valid = _setup(kind, params, x, lengths, num_layers, bidirectional,
                                                   nonlinearity, proj_size, batch_first, dtype)
    L = num_layers
    h0, c0 = _split_state(kind, state0, (L * D, B, H_out), (L * D, B, H), dt, "state0")
    step, _ = _step_functions(kind, nonlinearity, reset_after)
    h_n = np.zeros_like(h0)
    c_n = None if c0 is None else np.zeros_like(c0)
    layer_input = x
    record = []  # per (layer, direction): (input, weights, caches)
    for k in range(L):
        outputs = []
        for d in range(D):
            j = k * D + d
            w = _cell_weights(params, k, "_reverse" if d else "", dt)
            y_d, h_n[j], c_j, caches = _run_direction(step, w, layer_input, h0[j], None if c0 is None else c0[j],
                                                      valid, reverse=d == 1)
            if c_n is not None:
                c_n[j] = c_j
            outputs.append(y_d)
            record.append((layer_input, w, caches))
        layer_input = np.concatenate(outputs, axis=2)
    y = layer_input
    state_n = (h_n, c_n) if kind == "lstm" else h_n
    return y, state_n, (kind, dt, T, B, H, H_out, D, valid, record)


def forward(kind, params, x, state0=None, lengths=None, num_layers=1, bidirectional=False, nonlinearity="tanh",
            proj_size=0, reset_after=True, batch_first=False, dtype=None):
    """Run a stacked, possibly bidirectional RNN / LSTM / GRU like torch.nn.RNN / LSTM / GRU.

    kind: "rnn", "lstm" or "gru". params: {torch name: array}. x (T, B, I), or (B, T, I) with
    batch_first. state0: None (zeros), h0 (L*D, B, H_out), or for LSTM (h0, c0).
    lengths: None or int (B,) in [1, T], packed-sequence semantics (no sorting needed).
    reset_after=False selects the textbook GRU. dtype: computation dtype (default: the promoted
    float type of x and the states, at least float32).
    Returns y (T, B, D*H_out) (batch-first if batch_first) and state_n (same form as state0).
    """
    y, state_n, _ = _forward_stack(kind, params, x, state0, lengths, num_layers, bidirectional, nonlinearity,
                                   proj_size, reset_after, batch_first, dtype)
    if batch_first:
        y = np.ascontiguousarray(y.transpose(1, 0, 2))
    return y, state_n


def backward(kind, params, x, state0, dy, dstate_n=None, lengths=None, num_layers=1, bidirectional=False,
             nonlinearity="tanh", proj_size=0, reset_after=True, batch_first=False, dtype=None):
    """Gradients of <dy, y> + <dstate_n, state_n> for forward(kind, params, x, state0, ...).

    dy has y's shape (None = zeros); dstate_n has state_n's form (None = zeros; for LSTM either
    entry of the tuple may be None). Re-runs the forward pass, then BPTT.
    Returns (dx, dstate0, dparams): dx like x, dstate0 like state_n (a tuple for LSTM), dparams
    {torch name: array} with the same names and shapes as params.
    """
    y, state_n, (kind, dt, T, B, H, H_out, D, valid, record) = _forward_stack(
        kind, params, x, state0, lengths, num_layers, bidirectional, nonlinearity, proj_size, reset_after,
        batch_first, dtype)
    L = num_layers
    _, step_backward = _step_functions(kind, nonlinearity, reset_after)
    if dy is None:
        dy = np.zeros_like(y)
    dy = np.asarray(dy, dtype=dt)
    if batch_first:
        dy = dy.transpose(1, 0, 2)
    if dy.shape != y.shape:
        raise ValueError(f"dy must have shape {y.shape} (time-major); got {dy.shape}")
    dh_n, dc_n = _split_state(kind, dstate_n, (L * D, B, H_out), (L * D, B, H), dt, "dstate_n")
    dh0 = np.zeros_like(dh_n)
    dc0 = None if dc_n is None else np.zeros_like(dc_n)
    dparams = {}
    d_output = dy  # gradient reaching the output of layer k
    for k in range(L - 1, -1, -1):
        d_input = None
        for d in range(D):
            j = k * D + d
            suffix = "_reverse" if d else ""
            layer_input, w, caches = record[j]
            dw = {base: None if W is None else np.zeros_like(W) for base, W in w.items()}
            dx_d, dh0[j], dc_j = _run_direction_backward(
                step_backward, w, caches, valid, d == 1, d_output[:, :, d * H_out:(d + 1) * H_out],
                dh_n[j], None if dc_n is None else dc_n[j], dw, layer_input.shape[2])
            if dc0 is not None:
                dc0[j] = dc_j
            d_input = dx_d if d_input is None else d_input + dx_d
            for base, g in dw.items():
                if g is not None:
                    dparams[f"{base}_l{k}{suffix}"] = g
        d_output = d_input
    dx = d_output
    if batch_first:
        dx = np.ascontiguousarray(dx.transpose(1, 0, 2))
    dstate0 = (dh0, dc0) if kind == "lstm" else dh0
    return dx, dstate0, {name: dparams[name] for name in params}


# --------------------------------------------------------------------------- single-step cells
#
# torch.nn.RNNCell / LSTMCell / GRUCell semantics. params: weight_ih, weight_hh and (optional)
# bias_ih, bias_hh. x (B, I) or unbatched (I,); states likewise (B, H) or (H,); None = zeros.


def _cell_setup(params, x, states, G, dtype):
    x = np.asarray(x)
    dt = _float_dtype(dtype, x, *[None if s is None else np.asarray(s) for s in states])
    w = {base: None if params.get(base) is None else np.asarray(params[base], dtype=dt)
         for base in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    w["weight_hr"] = None
    extra = set(params) - set(w)
    if extra:
        raise ValueError(f"unexpected cell parameters {sorted(extra)}")
    H = w["weight_hh"].shape[1]
    if w["weight_hh"].shape != (G * H, H) or w["weight_ih"].shape != (G * H, x.shape[-1]):
        raise ValueError(f"cell weights must be weight_ih {(G * H, x.shape[-1])}, weight_hh {(G * H, H)}; got "
                         f"{w['weight_ih'].shape}, {w['weight_hh'].shape}")
    batched = x.ndim == 2
    if x.ndim not in (1, 2):
        raise ValueError(f"x must be (B, I) or (I,); got shape {x.shape}")
    x2 = x.astype(dt).reshape(-1, x.shape[-1])
    B = x2.shape[0]
    out = []
    for s in states:
        s = np.zeros((B, H), dt) if s is None else np.asarray(s, dtype=dt).reshape(-1, H)
        if s.shape != (B, H):
            raise ValueError(f"cell state must have shape {(B, H) if batched else (H,)}; got {s.shape}")
        out.append(s)
    unbatch = (lambda a: a) if batched else (lambda a: a[0])
    return w, x2, out, unbatch


def _cell_grads(params, dw):
    return {name: dw[name] for name in params if params[name] is not None}


def _zero_grads(w):
    return {base: None if W is None else np.zeros_like(W) for base, W in w.items()}


def rnn_cell(params, x, h=None, nonlinearity="tanh", dtype=None):
    """torch.nn.RNNCell: returns h' (same batching as x)."""
    w, x2, (h2,), unbatch = _cell_setup(params, x, [h], 1, dtype)
    h_t, _, _ = rnn_step(w, x2, h2, nonlinearity)
    return unbatch(h_t)


def rnn_cell_backward(params, x, h, dh_new, nonlinearity="tanh", dtype=None):
    """Gradients of <dh_new, rnn_cell(params, x, h)>: returns (dx, dh, dparams)."""
    w, x2, (h2, dh2), unbatch = _cell_setup(params, x, [h, dh_new], 1, dtype)
    _, _, cache = rnn_step(w, x2, h2, nonlinearity)
    dw = _zero_grads(w)
    dx, dh, _ = rnn_step_backward(w, cache, dh2, None, dw, nonlinearity)
    return unbatch(dx), unbatch(dh), _cell_grads(params, dw)


def lstm_cell(params, x, state=None, dtype=None):
    """torch.nn.LSTMCell: state (h, c) or None; returns (h', c')."""
    h, c = (None, None) if state is None else state
    w, x2, (h2, c2), unbatch = _cell_setup(params, x, [h, c], 4, dtype)
    h_t, c_t, _ = lstm_step(w, x2, h2, c2)
    return unbatch(h_t), unbatch(c_t)


def lstm_cell_backward(params, x, state, dstate_new, dtype=None):
    """Gradients of <dh', h'> + <dc', c'>: returns (dx, (dh, dc), dparams)."""
    h, c = (None, None) if state is None else state
    dh_new, dc_new = (None, None) if dstate_new is None else dstate_new
    w, x2, (h2, c2, dh2, dc2), unbatch = _cell_setup(params, x, [h, c, dh_new, dc_new], 4, dtype)
    _, _, cache = lstm_step(w, x2, h2, c2)
    dw = _zero_grads(w)
    dx, dh, dc = lstm_step_backward(w, cache, dh2, dc2, dw)
    return unbatch(dx), (unbatch(dh), unbatch(dc)), _cell_grads(params, dw)


def gru_cell(params, x, h=None, reset_after=True, dtype=None):
    """torch.nn.GRUCell (reset_after=True) or the textbook GRU cell (reset_after=False)."""
    w, x2, (h2,), unbatch = _cell_setup(params, x, [h], 3, dtype)
    h_t, _, _ = gru_step(w, x2, h2, reset_after)
    return unbatch(h_t)


def gru_cell_backward(params, x, h, dh_new, reset_after=True, dtype=None):
    """Gradients of <dh_new, gru_cell(params, x, h)>: returns (dx, dh, dparams)."""
    w, x2, (h2, dh2), unbatch = _cell_setup(params, x, [h, dh_new], 3, dtype)
    _, _, cache = gru_step(w, x2, h2, reset_after)
    dw = _zero_grads(w)
    dx, dh, _ = gru_step_backward(w, cache, dh2, None, dw, reset_after)
    return unbatch(dx), unbatch(dh), _cell_grads(params, dw)
