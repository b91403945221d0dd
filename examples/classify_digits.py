"""Many-to-one classification on real data: scikit-learn's handwritten digits, read row by row.

Each 8x8 image is a sequence of T=8 rows of I=8 pixels; a GRU reads the rows and a linear head
classifies the state after the last row. Needs scikit-learn (`pip install scikit-learn`).

    python examples/classify_digits.py
"""
import numpy as np
from sklearn.datasets import load_digits

import fastrnn as fr


def main(epochs=12, seed=0):
    X, y = load_digits(return_X_y=True)                       # 1797 images of 64 pixels in 0..16
    x = (X / 16.0).reshape(-1, 8, 8).transpose(1, 0, 2)      # time-major (T=8 rows, B images, I=8)
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:1400], order[1400:]
    model = fr.SequenceClassifier(num_classes=10, input_size=8, hidden_size=64, cell="gru", seed=seed)
    batches = [(x[:, train[i:i + 50]], y[train[i:i + 50]]) for i in range(0, len(train), 50)]
    fr.fit(model, fr.Adam(model, lr=1e-2), batches, epochs=epochs, progress=False, log_every=10**9,
           print_fn=lambda *a: None)
    accuracy = float(np.mean(model.predict(x[:, test]) == y[test]))
    print(f"digits read row by row: test accuracy {accuracy:.3f} on {len(test)} held-out images")
    return accuracy


if __name__ == "__main__":
    main()
