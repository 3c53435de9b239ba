"""The Keras bridge's cases against real Keras, in one process (TensorFlow takes seconds to import).

Run by test_keras_bridge.py with the pinned Keras venv's python:

    keras_cases.py SOCKET LTCTL OUT.json

Each case runs a real ``fit`` through ``ltd_client.keras`` with two ``ltctl tail --json`` watchers live, then
``ltctl replicate JOB --diff --json``; and the same fit again without the bridge, from the same initial weights, to
show that the bridge changes nothing. Results go to OUT.json, one object per case, for the pytest side to check.
"""

import json
import os
import subprocess
import sys
import traceback
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import ltd_client.keras as ltk  # noqa: E402

SOCKET, LTCTL, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
ENV = dict(os.environ, LTD_SOCKET=SOCKET, NO_COLOR="1")

COLAB_X = np.arange(1, 13, dtype="float32")
COLAB_Y = np.array([5, 8.8, 9.6, 14.2, 18.8, 19.5, 21.4, 26.8, 28.9, 32, 33.8, 38.2], dtype="float32")


def synthetic(rows, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, rows).astype("float32")
    y = (2.5 * x - 1.0 + rng.normal(0, 0.5, rows)).astype("float32")
    return x, y


def model_for(optimizer):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mean_squared_error", metrics=[keras.metrics.RootMeanSquaredError()])
    return model


class Recorder(keras.callbacks.Callback):
    """Every batch's logs, as fit hands them to callbacks."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append({k: float(v) for k, v in (logs or {}).items()})


class Watchers(keras.callbacks.Callback):
    """Starts two `ltctl tail --json` once the job exists (Watch created it in its on_train_begin, just before)."""

    def __init__(self, job):
        super().__init__()
        self.job = job
        self.processes = []

    def on_train_begin(self, logs=None):
        for _ in range(2):
            self.processes.append(subprocess.Popen([LTCTL, "tail", self.job, "--json"], env=ENV,
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE))

    def results(self):
        out = []
        for p in self.processes:
            stdout, stderr = p.communicate(timeout=120)
            out.append({"status": p.returncode, "stdout": stdout.decode(), "stderr": stderr.decode()})
        return out


def ltctl(*args):
    p = subprocess.run([LTCTL] + list(args), env=ENV, capture_output=True, timeout=300)
    return {"status": p.returncode, "stdout": p.stdout.decode(), "stderr": p.stderr.decode()}


def run_case(job, optimizer, x, y, fit_kwargs, seed=None, replicate=True):
    if seed is not None:
        keras.utils.set_random_seed(seed)
    else:
        tf.random.set_seed(None)  # no global seed, as in a fresh notebook that never set one
    model = model_for(optimizer())
    initial = [w.copy() for w in model.get_weights()]
    watched, watchers = Recorder(), Watchers(job)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = ltk.fit(model, x, y, job=job, verbose=0, callbacks=[watched, watchers], socket_path=SOCKET, **fit_kwargs)
    result = {"job": job, "warnings": [str(w.message) for w in caught if "ltd_client" in str(w.message)],
              "watchers": watchers.results(), "status": ltctl("status", job, "--json")}
    # The same fit without the bridge, from the same initial weights.
    twin = model_for(optimizer())
    twin.set_weights(initial)
    plain = Recorder()
    twin_history = twin.fit(x, y, verbose=0, callbacks=[plain], **fit_kwargs)
    result["same_weights"] = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))
    result["same_history"] = history.history == twin_history.history
    result["same_batch_logs"] = watched.batches == plain.batches and len(plain.batches) > 0
    result["batches"] = len(plain.batches)
    if replicate:
        result["replicate"] = ltctl("replicate", job, "--diff", "--json")
    return result


def no_daemon_case():
    keras.utils.set_random_seed(3)
    model = model_for(keras.optimizers.RMSprop(0.05))
    initial = [w.copy() for w in model.get_weights()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = ltk.fit(model, COLAB_X, COLAB_Y, job="nodaemon", epochs=2, batch_size=4, shuffle=False, verbose=0,
                          socket_path=os.path.join(os.path.dirname(SOCKET), "no-such.sock"))
    twin = model_for(keras.optimizers.RMSprop(0.05))
    twin.set_weights(initial)
    twin_history = twin.fit(COLAB_X, COLAB_Y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    return {"warnings": [str(w.message) for w in caught if "ltd_client" in str(w.message)],
            "same_history": history.history == twin_history.history,
            "same_weights": all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))}


def bad_model_case():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    try:
        ltk.fit(model, COLAB_X, COLAB_Y, job="badmodel", epochs=1, batch_size=4, shuffle=False, verbose=0,
                socket_path=SOCKET)
    except ltk.BridgeError as exc:
        return {"error": str(exc)}
    return {"error": None}


def main():
    sx, sy = synthetic(50, 7)  # 50 rows in batches of 16: the last batch of each epoch has 2 rows
    cases = {
        "colab": lambda: run_case("k-colab", lambda: keras.optimizers.RMSprop(0.05), COLAB_X, COLAB_Y,
                                  dict(epochs=4, batch_size=4, shuffle=False), seed=1),
        "unseeded": lambda: run_case("k-unseeded", lambda: keras.optimizers.RMSprop(0.05), COLAB_X, COLAB_Y,
                                     dict(epochs=1, batch_size=12, shuffle=False)),
        "sgd_momentum": lambda: run_case("k-sgd", lambda: keras.optimizers.SGD(0.01, momentum=0.9), sx, sy,
                                         dict(epochs=2, batch_size=16, shuffle=False), seed=2),
        "adam": lambda: run_case("k-adam", lambda: keras.optimizers.Adam(0.1), sx, sy,
                                 dict(epochs=2, batch_size=16, shuffle=False), seed=3),
        "adamw": lambda: run_case("k-adamw", lambda: keras.optimizers.AdamW(0.1, weight_decay=0.004), sx, sy,
                                  dict(epochs=2, batch_size=16, shuffle=False), seed=4),
        "validation_split": lambda: run_case("k-split", lambda: keras.optimizers.RMSprop(0.05), COLAB_X, COLAB_Y,
                                             dict(epochs=3, batch_size=4, shuffle=False, validation_split=0.25), seed=5),
        "shuffled_unseeded": lambda: run_case("k-shuffled", lambda: keras.optimizers.RMSprop(0.05), COLAB_X, COLAB_Y,
                                              dict(epochs=2, batch_size=4, shuffle=True)),
        "shuffled_seeded": lambda: run_case("k-shuffled-seeded", lambda: keras.optimizers.Adam(0.1), sx, sy,
                                            dict(epochs=3, batch_size=16, shuffle=True), seed=6),
        "no_daemon": no_daemon_case,
        "bad_model": bad_model_case,
    }
    results = {}
    for name, case in cases.items():
        try:
            results[name] = case()
        except Exception:  # recorded for the pytest side, which fails the case with it
            results[name] = {"exception": traceback.format_exc()}
    with open(OUT, "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main()
