"""The measurements behind scripts/bench-alternatives: the same training job (12 rows, batch 1, RMSprop, lr 0.05,
w0 = 0.5, b0 = 0) done three ways, each writing one JSON line per step to a file, timed from start to the last line
written: ltd (`ltctl start`, then `ltctl tail --json`; validation after every step), a plain Python loop (float64,
validation after every step), and Keras `model.fit` with a per-batch callback (validation once per epoch, as fit
does). Keras runs only where TensorFlow imports (`--keras-python`)."""
import argparse, json, os, subprocess, sys, tempfile, time, textwrap

sys.path.insert(0, os.path.dirname(__file__))
from bench_daemon import Conn, spec  # noqa: E402

def python_loop(xs, ys, epochs, out):
    """What a user would write instead: the model, RMSprop and the metrics by hand, one JSON line per step."""
    w, b, vw, vb, lr, rho, eps = 0.5, 0.0, 0.0, 0.0, 0.05, 0.9, 1e-7
    n = len(xs); seq = 0
    for epoch in range(1, epochs + 1):
        total = 0.0
        for step in range(1, n + 1):
            x, y = xs[step - 1], ys[step - 1]
            d = y - (w * x + b); gw = -2 * d * x; gb = -2 * d
            wb, bb = w, b
            vw = rho * vw + (1 - rho) * gw * gw; vb = rho * vb + (1 - rho) * gb * gb
            w -= lr * gw / (vw + eps) ** 0.5; b -= lr * gb / (vb + eps) ** 0.5
            total += d * d
            val = sum((yy - (w * xx + b)) ** 2 for xx, yy in zip(xs, ys)) / n
            seq += 1
            out.write(json.dumps({"type": "step", "job": "py", "seq": seq, "epoch": epoch, "step": step,
                                  "iteration": seq, "batch": {"x": [x], "y": [y]}, "w_before": wb, "b_before": bb,
                                  "grad_w": gw, "grad_b": gb, "w": w, "b": b, "loss": total / step,
                                  "rmse": (total / step) ** 0.5, "val_loss": val, "val_rmse": val ** 0.5,
                                  "slots": {"kernel": {"velocity": vw}, "bias": {"velocity": vb}}}) + "\n")
    return seq

KERAS = textwrap.dedent("""
    import json, sys, time, os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, keras
    xs, ys, epochs, path = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    x = np.array(xs, dtype="float32").reshape(-1, 1); y = np.array(ys, dtype="float32").reshape(-1, 1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(0.5))])
    model.compile(optimizer=keras.optimizers.RMSprop(0.05), loss="mean_squared_error",
                  metrics=[keras.metrics.RootMeanSquaredError()])
    out = open(path, "w"); seq = [0]
    def on_batch(batch, logs):
        seq[0] += 1
        k, bias = model.get_weights()
        out.write(json.dumps({"type": "step", "job": "keras", "seq": seq[0], "step": batch + 1,
                              "w": float(k[0][0]), "b": float(bias[0]), **{k2: float(v) for k2, v in logs.items()}}) + "\\n")
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=1, epochs=epochs, shuffle=False, validation_data=(x, y), verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=on_batch)])
    out.close()
    print(json.dumps({"steps": seq[0], "seconds": time.perf_counter() - t0}))
""")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ltd", required=True); ap.add_argument("--ltctl", required=True)
    ap.add_argument("--keras-python", help="a python with tensorflow-cpu 2.21.0 and keras 3.15.1")
    ap.add_argument("--epochs", type=int, default=10_000, help="for ltd and the Python loop (12 steps each)")
    ap.add_argument("--keras-epochs", type=int, default=100)
    a = ap.parse_args()
    job = spec(12, a.epochs, 1, "exact")
    xs, ys = job["data"]["x"], job["data"]["y"]
    d = tempfile.mkdtemp(prefix="ltd-alt-")
    sock = d + "/s.sock"
    p = subprocess.Popen([a.ltd, "--socket", sock, "--state-dir", d + "/state", "--log-level", "warning"])
    try:
        for _ in range(200):
            try: ctl = Conn(sock); break
            except OSError: time.sleep(0.05)
        print(f"# the same job three ways: 12 rows, batch 1, RMSprop lr 0.05; one JSON line per step into a file; "
              f"{os.cpu_count()} cores")
        print("| what | steps | seconds | steps/s | validation |")
        print("|---|---:|---:|---:|---|")
        t0 = time.perf_counter()
        r = ctl.request({"op": "start", "job": "alt", "spec": job}); assert r["type"] == "started", r
        with open(d + "/ltd.ndjson", "wb") as sink:
            subprocess.run([a.ltctl, "tail", "alt", "--json", "--socket", sock], stdout=sink, check=True)
        dt = time.perf_counter() - t0
        steps = a.epochs * 12
        print(f"| ltd, `ltctl start` + `ltctl tail --json` | {steps} | {dt:.3f} | {steps / dt:,.0f} | every step (exact) |")
        t0 = time.perf_counter()
        with open(d + "/py.ndjson", "w") as out: steps = python_loop(xs, ys, a.epochs, out)
        dt = time.perf_counter() - t0
        print(f"| Python loop (float64), json.dumps per step | {steps} | {dt:.3f} | {steps / dt:,.0f} | every step |")
        if a.keras_python:
            r = subprocess.run([a.keras_python, "-c", KERAS, json.dumps(xs), json.dumps(ys), str(a.keras_epochs),
                                d + "/keras.ndjson"], capture_output=True, text=True)
            if r.returncode == 0:
                k = json.loads(r.stdout.strip().splitlines()[-1])
                print(f"| Keras `fit` + per-batch callback | {k['steps']} | {k['seconds']:.3f} | "
                      f"{k['steps'] / k['seconds']:,.0f} | once per epoch |")
            else:
                print(f"| Keras `fit` + per-batch callback | – | – | – | failed: {r.stderr.strip()[-300:]} |")
    finally:
        p.send_signal(2); p.wait(timeout=10)
        subprocess.run(["rm", "-rf", d])

if __name__ == "__main__":
    main()
