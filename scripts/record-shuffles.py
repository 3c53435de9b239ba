#!/usr/bin/env python3
"""Records the rows real Keras `model.fit` feeds when it shuffles numpy arrays after `keras.utils.set_random_seed(S)`.

Needs TensorFlow 2.21.0 and Keras 3.15.1 (CPU), e.g. in a venv outside the repository:

    python3 -m venv /tmp/venv-keras && /tmp/venv-keras/bin/pip install tensorflow-cpu==2.21.0 keras==3.15.1
    /tmp/venv-keras/bin/python scripts/record-shuffles.py > Tests/LTEngineTests/Golden/keras_shuffles.json

For every (seed, N) it runs a real `fit` for two epochs on x = 0, 1, ..., N-1 (float32, exact up to 2^24) with
`shuffle=True` and batches of ceil(N / 3) rows. A wrapper around the model's `train_step` copies each fed batch of x
into a side variable, and a callback reads it after every step, so the rows are read off what `fit` actually fed.
The epoch's permutation is the concatenation of its batches. It also reads the `seed` and `seed2` attributes TF baked
into the RandomShuffle node of Keras's dataset (the op seeds of docs/SHUFFLE.md).

Output (JSON): `versions`, `command`, and `cases`, one per (seed, N):
  seed, n, batch_size;
  op_seeds: [seed, seed2] of the RandomShuffle node;
  epochs_identical: whether epoch 2 fed the same permutation as epoch 1;
  head: the first min(N, 16) rows;
  permutation: every row, for N <= 37 only;
  sha256: SHA-256 of the permutation written as decimal numbers joined by "," (no spaces, no newline).
"""
import hashlib
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import keras
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

SIZES = [1, 2, 12, 37, 1000, 100000]
# Edge seeds of the truncation to 31 bits (2^31 - 1 and 2 * (2^31 - 1) fold to global seed 0), the largest seed
# numpy accepts, the seeds of the golden traces, and a few arbitrary ones.
SEEDS = [0, 1, 2, 3, 7, 42, 123, 1000, 65535, 123456789, 2147483646, 2147483647, 2147483648, 3000000000,
         4294967294, 4294967295]

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)


def op_seeds_of_keras_dataset(n, batch_size):
    """The seed and seed2 attributes of the RandomShuffle node in the dataset Keras builds for fit (same call)."""
    x = np.zeros((n, 1), dtype="float32")
    adapter = ArrayDataAdapter(x, x, batch_size=batch_size, shuffle=True)
    graph = tf.compat.v1.GraphDef()
    graph.ParseFromString(adapter.get_tf_dataset()._as_serialized_graph().numpy())
    nodes = [node for function in graph.library.function for node in function.node_def] + list(graph.node)
    found = [[node.attr["seed"].i, node.attr["seed2"].i] for node in nodes if node.op == "RandomShuffle"]
    assert len(found) == 1, found
    return found[0]


def fed_permutations(seed, n, batch_size, epochs=2):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mean_squared_error")
    fed = tf.Variable(tf.zeros((0, 1)), shape=tf.TensorShape([None, 1]), trainable=False)
    original = model.train_step

    def capturing_train_step(data):
        fed.assign(data[0])
        return original(data)

    model.train_step = capturing_train_step
    rows = []

    class Reader(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rows.append([])

        def on_train_batch_end(self, batch, logs=None):
            rows[-1].extend(int(v) for v in fed.numpy().reshape(-1))

    x = np.arange(n, dtype="float32").reshape(n, 1)
    y = np.zeros((n, 1), dtype="float32")
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, callbacks=[Reader()], verbose=0)
    return rows


def main():
    cases = []
    for n in SIZES:
        batch_size = max(1, math.ceil(n / 3))
        for seed in SEEDS:
            epochs = fed_permutations(seed, n, batch_size)
            permutation = epochs[0]
            assert sorted(permutation) == list(range(n)), (seed, n)
            case = {"seed": seed, "n": n, "batch_size": batch_size,
                    "op_seeds": op_seeds_of_keras_dataset(n, batch_size),
                    "epochs_identical": all(e == permutation for e in epochs),
                    "head": permutation[:16]}
            if n <= 37:
                case["permutation"] = permutation
            case["sha256"] = hashlib.sha256(",".join(map(str, permutation)).encode()).hexdigest()
            cases.append(case)
            print(f"seed {seed} n {n}: {permutation[:8]}", file=sys.stderr)
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
                "python": sys.version.split()[0]}
    out = {"versions": versions, "command": "python scripts/record-shuffles.py", "cases": cases}
    # One case per line keeps the file readable and its diffs small.
    print("{")
    print(f'  "versions": {json.dumps(versions)},')
    print(f'  "command": {json.dumps(out["command"])},')
    print('  "cases": [')
    print(",\n".join("    " + json.dumps(c) for c in cases))
    print("  ]")
    print("}")


if __name__ == "__main__":
    main()
