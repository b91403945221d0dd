"""Forecasting a real series: the weekly Mauna Loa CO2 record (1958-2001) shipped with statsmodels.

An LSTM learns to predict next week's value from the weeks before it (trained on windows of two
years), then forecasts the last year it never saw, feeding each prediction back as the next input.
Needs statsmodels (`pip install statsmodels`).

    python examples/forecast_co2.py
"""
import numpy as np
from statsmodels.datasets import co2

import fastrnn as fr


def main(epochs=30, seed=0):
    series = co2.load_pandas().data["co2"].interpolate().to_numpy()   # 2284 weeks, ppm (59 gaps filled)
    horizon = 52
    history, future = series[:-horizon], series[-horizon:]
    # model week-to-week changes, scaled: the trend is then a constant the LSTM can carry
    diffs = np.diff(history)
    scale = diffs.std()
    z = diffs / scale
    rng = np.random.default_rng(seed)
    starts = np.arange(0, len(z) - 105, 13)
    windows = np.stack([z[s:s + 105] for s in starts], axis=1)[:, :, None]   # (T+1=105, B, 1)
    model = fr.Forecaster(input_size=1, hidden_size=32, seed=seed)
    opt = fr.Adam(model, lr=1e-2)

    def batches():
        cols = rng.permutation(windows.shape[1])
        return [(windows[:-1, c], windows[1:, c]) for c in np.array_split(cols, 6)]

    fr.fit(model, opt, batches, loss_fn=fr.mse_loss, epochs=epochs, progress=False, log_every=10**9,
           print_fn=lambda *a: None)
    steps = model.forecast(z[:, None], horizon)[:, 0] * scale                # predicted weekly changes
    forecast = history[-1] + np.cumsum(steps)
    naive = np.full(horizon, history[-1])                                     # "same as last week"
    rmse = float(np.sqrt(np.mean((forecast - future) ** 2)))
    rmse_naive = float(np.sqrt(np.mean((naive - future) ** 2)))
    print(f"CO2, last {horizon} weeks: forecast RMSE {rmse:.2f} ppm (repeating the last value: {rmse_naive:.2f} ppm)")
    return rmse, rmse_naive


if __name__ == "__main__":
    main()
