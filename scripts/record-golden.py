#!/usr/bin/env python3
"""Records golden traces: real Keras `model.fit` runs, step by step (Tests/LTEngineTests/Golden/README.md).

Usage (from the repository root):
    python3 -m venv .venv-keras                                   # git-ignored
    .venv-keras/bin/pip install tensorflow-cpu==2.21.0 keras==3.15.1
    .venv-keras/bin/python scripts/record-golden.py Tests/LTEngineTests/Golden/seed_e4_b4.config.json [OUT_DIR]

For each NAME.config.json given, writes NAME.trace.ndjson next to it (or into OUT_DIR). The format and the config fields
are described in the README. Set nothing else: oneDNN stays on (TF_ENABLE_ONEDNN_OPTS unset), `fit` runs as a graph
without XLA, TF uses `threads` intra-op and inter-op threads (default 1).
"""
import json
import math
import os
import platform
import sys


def number(v):
    """A float32 value widened to double, or the strings nan / inf / -inf."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def record(config_path, out_dir):
    with open(config_path) as f:
        config = json.load(f)
    threads = config.get("threads", 1)

    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    f32 = np.float32
    x = np.array(config["x"], dtype=np.float32).reshape(-1, 1)
    y = np.array(config["y"], dtype=np.float32).reshape(-1, 1)
    val_x = np.array(config.get("val_x", config["x"]), dtype=np.float32).reshape(-1, 1)
    val_y = np.array(config.get("val_y", config["y"]), dtype=np.float32).reshape(-1, 1)
    n_train, n_val = len(x), len(val_x)
    epochs = config.get("epochs", 1)
    batch_size = config.get("batch_size", 32)
    shuffle = config.get("shuffle", False)
    seed = config.get("seed", 0)
    pass_validation = config.get("pass_validation", True)
    record_batches = config.get("record_batches", True)
    init = config.get("init", {"mode": "constant", "kernel": 0.5, "bias": 0.0})

    if seed is not None:
        keras.utils.set_random_seed(seed)

    # The model, its initialisers as the config asks.
    if init["mode"] == "constant":
        dense = keras.layers.Dense(1, input_shape=(1,),
                                   kernel_initializer=keras.initializers.Constant(init.get("kernel", 0.5)),
                                   bias_initializer=keras.initializers.Constant(init.get("bias", 0.0)))
    elif init["mode"] == "glorot_uniform":
        dense = keras.layers.Dense(1, input_shape=(1,),
                                   kernel_initializer=keras.initializers.GlorotUniform(seed=init["seed"]))
    else:
        dense = keras.layers.Dense(1, input_shape=(1,))
    model = keras.Sequential([dense])

    # The optimizer: sgd_momentum and nesterov are SGD with momentum 0.9 unless given.
    name = config["optimizer"]
    extras = {k: config[k] for k in ("momentum", "nesterov", "rho", "epsilon", "centered", "beta_1", "beta_2",
                                     "amsgrad", "weight_decay", "initial_accumulator_value") if k in config}
    if "learning_rate" in config:
        extras["learning_rate"] = config["learning_rate"]
    classes = {"sgd": keras.optimizers.SGD, "sgd_momentum": keras.optimizers.SGD, "nesterov": keras.optimizers.SGD,
               "rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
               "adagrad": keras.optimizers.Adagrad}
    if name in ("sgd_momentum", "nesterov"):
        extras.setdefault("momentum", 0.9)
    if name == "nesterov":
        extras["nesterov"] = True
    optimizer = classes[name](**extras)
    model.compile(optimizer=optimizer, loss="mean_squared_error", metrics=[keras.metrics.RootMeanSquaredError()])

    # The evaluating twin: same architecture and compile, zeros initialiser (draws nothing), weights copied in.
    twin = keras.Sequential([keras.layers.Dense(1, input_shape=(1,), kernel_initializer="zeros")])
    twin.compile(optimizer="sgd", loss="mean_squared_error", metrics=[keras.metrics.RootMeanSquaredError()])

    # Capture the batch each step is fed: copy it into side variables, then run the real train_step.
    batch_x = tf.Variable(np.zeros((0, 1), np.float32), shape=tf.TensorShape(None), trainable=False)
    batch_y = tf.Variable(np.zeros((0, 1), np.float32), shape=tf.TensorShape(None), trainable=False)
    if record_batches:
        original_train_step = model.train_step

        def train_step(data):
            bx, by = data[0], data[1]
            batch_x.assign(bx)
            batch_y.assign(by)
            return original_train_step(data)

        model.train_step = train_step

    positions = {}
    for i, (xi, yi) in enumerate(zip(x[:, 0].tolist(), y[:, 0].tolist())):
        positions.setdefault((xi, yi), []).append(i)
    unique = all(len(p) == 1 for p in positions.values())

    def weights():
        return float(dense.kernel.numpy()[0, 0]), float(dense.bias.numpy()[0])

    lines = []

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.global_step = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_begin(self, batch, logs=None):
            self.before = weights()

        def on_train_batch_end(self, batch, logs=None):
            self.global_step += 1
            w_before, b_before = self.before
            w_after, b_after = weights()
            bx = batch_x.numpy().reshape(-1) if record_batches else np.zeros(0, np.float32)
            by = batch_y.numpy().reshape(-1) if record_batches else np.zeros(0, np.float32)
            n = len(bx)
            indices = [positions[(a, b)][0] for a, b in zip(bx.tolist(), by.tolist())] if unique and record_batches else None
            # Reference values, outside Keras: numpy float32 (pairwise) and float64, at the pre-update weights.
            pred32 = bx * f32(w_before) + f32(b_before)
            mse32 = np.mean((pred32 - by) ** 2)
            r64 = bx.astype(np.float64) * w_before + b_before - by.astype(np.float64)
            # Validation at the after-step weights: numpy references, and real Keras evaluate through the twin.
            vpred32 = val_x[:, 0] * f32(w_after) + f32(b_after)
            vmse32 = np.mean((vpred32 - val_y[:, 0]) ** 2)
            vr64 = val_x[:, 0].astype(np.float64) * w_after + b_after - val_y[:, 0].astype(np.float64)
            vmse64 = float(np.mean(vr64 ** 2))
            twin.set_weights(model.get_weights())
            evaluated = twin.evaluate(val_x, val_y, batch_size=batch_size, verbose=0, return_dict=True)
            lines.append({
                "type": "step", "epoch": self.epoch, "step": batch + 1, "global_step": self.global_step,
                "batch_size": n, "indices": indices,
                "x": [number(v) for v in bx], "y": [number(v) for v in by],
                "w_before": number(w_before), "b_before": number(b_before),
                "w_after": number(w_after), "b_after": number(b_after),
                "batch_mse_f32": number(mse32), "batch_mse_f64": number(np.mean(r64 ** 2)),
                "grad_w_f64": number(2 * np.sum(r64 * bx.astype(np.float64)) / n),
                "grad_b_f64": number(2 * np.sum(r64) / n),
                "logs": {k: number(v) for k, v in (logs or {}).items()},
                "val_mse_f32": number(vmse32), "val_rmse_f32": number(np.sqrt(vmse32)),
                "val_mse_f64": number(vmse64), "val_rmse_f64": number(math.sqrt(vmse64)),
                "val_eval_loss": number(evaluated["loss"]),
                "val_eval_rmse": number(evaluated["root_mean_squared_error"]),
                "optimizer_iterations": int(optimizer.iterations.numpy()),
            })

        def on_epoch_end(self, epoch, logs=None):
            w, b = weights()
            lines.append({"type": "epoch_end", "epoch": epoch + 1, "global_step": self.global_step,
                          "logs": {k: number(v) for k, v in (logs or {}).items()}, "w": number(w), "b": number(b)})

    w0, b0 = weights()
    optimizer_config = optimizer.get_config()
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=shuffle, verbose=0,
                        validation_data=(val_x, val_y) if pass_validation else None, callbacks=[Recorder()])
    w, b = weights()
    head = {
        "type": "init",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "env": {"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "threads": threads,
                "jit_compile": bool(model.jit_compile), "run_eagerly": bool(model.run_eagerly)},
        "config": config,
        "config_path": os.path.basename(config_path),
        "resolved": {
            "optimizer_class": type(optimizer).__name__, "optimizer_config": optimizer_config,
            "learning_rate_f32": float(f32(optimizer_config["learning_rate"])), "epochs": epochs,
            "batch_size": batch_size, "shuffle": shuffle, "seed": seed, "pass_validation": pass_validation,
            "n_train": n_train, "n_val": n_val, "steps_per_epoch": -(-n_train // batch_size),
            "init_mode": init["mode"],
        },
        "x_f32": [number(v) for v in x[:, 0]], "y_f32": [number(v) for v in y[:, 0]],
        "val_x_f32": [number(v) for v in val_x[:, 0]], "val_y_f32": [number(v) for v in val_y[:, 0]],
        "w": number(w0), "b": number(b0),
    }
    end = {"type": "end", "w": number(w), "b": number(b), "global_step": len([l for l in lines if l["type"] == "step"]),
           "optimizer_iterations": int(optimizer.iterations.numpy()),
           "history": {k: [number(v) for v in vs] for k, vs in history.history.items()}}
    stem = os.path.basename(config_path)[:-len(".config.json")]
    out = os.path.join(out_dir or os.path.dirname(config_path), stem + ".trace.ndjson")
    with open(out, "w") as f:
        for line in [head] + lines + [end]:
            f.write(json.dumps(line) + "\n")
    print(out)


if __name__ == "__main__":
    configs = [a for a in sys.argv[1:] if a.endswith(".config.json")]
    others = [a for a in sys.argv[1:] if not a.endswith(".config.json")]
    if not configs or len(others) > 1:
        sys.exit(__doc__)
    if len(configs) == 1:
        record(configs[0], others[0] if others else None)
    else:
        # TF's thread settings and seeds belong to a fresh process: one per config.
        import subprocess
        for path in configs:
            subprocess.run([sys.executable, __file__, path] + others, check=True)
