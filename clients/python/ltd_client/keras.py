"""The Keras bridge: watch your own notebook's ``model.fit`` live in ltd (docs/KERAS_BRIDGE.md).

    import ltd_client.keras as ltk
    history = ltk.fit(model, x, y, job="nb1", epochs=4, batch_size=4, shuffle=False)

is ``model.fit(x, y, epochs=4, batch_size=4, shuffle=False)`` with one more callback, ``ltk.Watch``, that publishes
every step to ltd as an external job. Then, in any terminal: ``ltctl tail nb1``; afterwards ``ltctl replicate nb1``
and ``ltctl diff nb1 nb1-replica``. ``fit`` knows the batch size, shuffle and validation arguments because it is given
them; to add ``Watch`` to your own ``callbacks=[...]`` instead, give it the same ``batch_size``, ``shuffle`` and
validation arguments as ``fit``.

The callback never changes what ``fit`` computes or prints: it reads the weights and the logs, and scores the
validation set on a separate copy of the model. With no daemon it warns once and training goes on.
"""

import math
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .client import _Connection
from .errors import LtdError
from .wire import default_socket_path

__all__ = ["Watch", "fit", "BridgeError"]

# Keras 3 optimizer class name → ltd's optimizer name and the get_config() keys ltd's spec takes.
_OPTIMIZERS = {
    "SGD": ("sgd", ["learning_rate", "momentum", "nesterov"]),
    "RMSprop": ("rmsprop", ["learning_rate", "rho", "momentum", "epsilon", "centered"]),
    "Adam": ("adam", ["learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"]),
    "AdamW": ("adamw", ["learning_rate", "weight_decay", "beta_1", "beta_2", "epsilon", "amsgrad"]),
    "Adagrad": ("adagrad", ["learning_rate", "initial_accumulator_value", "epsilon"]),
}
# Options that change the update in ways ltd does not model; each must be off.
_UNSUPPORTED_OPTIONS = ("clipnorm", "global_clipnorm", "clipvalue", "loss_scale_factor", "gradient_accumulation_steps")


class BridgeError(ValueError):
    """The model or the run cannot be watched: raised at ``on_train_begin`` with what to change."""


def _platform() -> Dict[str, Any]:
    import keras
    import numpy
    info: Dict[str, Any] = {"keras": keras.__version__, "numpy": numpy.__version__, "backend": keras.backend.backend()}
    device = "CPU"
    try:
        import tensorflow as tf
        info["tensorflow"] = tf.__version__
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            device = "GPU (%s)" % gpus[0].name
    except ImportError:
        pass
    info["device"] = device
    # TensorFlow turns oneDNN on by default on x86 Linux CPUs; TF_ENABLE_ONEDNN_OPTS=0 turns it off.
    info["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") not in ("0", "false", "False")
    return info


def _column(values: Any, what: str) -> List[float]:
    import numpy as np
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise BridgeError("%s must be one number per row (shape (n,) or (n, 1)), not shape %s" % (what, array.shape))
    return [float(v) for v in array.astype("float64")]


class _Publisher:
    """One connection to ltd that created the external job; only it may publish to the job."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        self.conn = _Connection(socket_path, timeout)
        self.next_id = 1

    def request(self, op: str, **fields: Any) -> Dict[str, Any]:
        from .errors import ConnectionLost, error_from_reply
        request_id = self.next_id
        self.next_id += 1
        request = {"op": op, "id": request_id}
        request.update(fields)
        self.conn.send(request)
        while True:
            message = self.conn.read_message()
            if message is None:
                raise ConnectionLost("ltd at %s closed the connection during %r" % (self.conn.path, op))
            if message.get("id") == request_id or ("id" not in message and message.get("type") == "error"):
                if message.get("type") == "error":
                    raise error_from_reply(message)
                return message

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass


try:
    import keras as _keras
    _CallbackBase: Any = _keras.callbacks.Callback
except ImportError:  # the module imports without Keras; using Watch then says what to install
    _CallbackBase = object


class Watch(_CallbackBase):
    """A Keras 3 callback that publishes every optimizer step of ``fit`` to ltd as the external job ``job``.

    ``x`` and ``y`` are the arrays given to ``fit``; ``batch_size``, ``shuffle``, ``validation_split`` and
    ``validation_data`` must be what ``fit`` is given too (``ltd_client.keras.fit`` passes them for you). Keras's
    defaults are ``batch_size=32`` and ``shuffle=True``; a shuffled run is watched, but its rows are unknown, so
    ``ltctl replicate`` refuses it.

    ``validation=False`` skips scoring the validation set after every step (for long runs); the epochs' validation
    figures from ``fit``'s own logs are still published.
    """

    def __init__(self, job: str, x: Any, y: Any, batch_size: Optional[int] = None, shuffle: bool = True,
                 validation_split: float = 0.0, validation_data: Optional[Sequence[Any]] = None,
                 validation: bool = True, socket_path: Optional[str] = None, timeout: float = 30.0) -> None:
        if _CallbackBase is object:
            raise ImportError("ltd_client.keras needs Keras 3: pip install keras tensorflow-cpu")
        super().__init__()
        self.job = job
        self.x, self.y = x, y
        self.batch_size = 32 if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.validation_split = float(validation_split or 0.0)
        self.validation_data = validation_data
        self.validation = validation
        self.socket_path = socket_path or default_socket_path()
        self.timeout = timeout
        self.publisher: Optional[_Publisher] = None
        self._warned = False
        self._scorer: Any = None

    # What the run is.

    def _weights(self) -> Tuple[Any, Any]:
        return self._kernel.numpy().reshape(()).item(), self._bias.numpy().reshape(()).item()

    def _check_model(self) -> None:
        weights = list(self.model.trainable_weights)
        shapes = [tuple(int(d) for d in w.shape) for w in weights]
        if len(weights) != 2 or sorted(shapes, key=len) != [(1,), (1, 1)]:
            described = ", ".join("%s %s" % (w.path, tuple(int(d) for d in w.shape)) for w in weights) or "none"
            raise BridgeError(
                "ltd watches a one-feature linear regression: a model whose trainable weights are one 1x1 kernel and "
                "one bias, such as Sequential([Input((1,)), Dense(1)]); this model's trainable weights are: %s"
                % described)
        self._kernel = next(w for w in weights if len(w.shape) == 2)
        self._bias = next(w for w in weights if len(w.shape) == 1)

    def _optimizer(self) -> Dict[str, Any]:
        optimizer = self.model.optimizer
        kind = type(optimizer).__name__
        if kind not in _OPTIMIZERS:
            raise BridgeError("ltd reproduces SGD, RMSprop, Adam, AdamW and Adagrad; this model's optimizer is %s"
                              % kind)
        name, keys = _OPTIMIZERS[kind]
        config = optimizer.get_config()
        for option in _UNSUPPORTED_OPTIONS:
            if config.get(option) not in (None, 1):
                raise BridgeError("the optimizer's %s is %r; ltd reproduces optimizers without it" % (option, config[option]))
        if config.get("use_ema"):
            raise BridgeError("the optimizer uses an exponential moving average (use_ema=True); ltd does not")
        spec: Dict[str, Any] = {"name": name}
        for key in keys:
            value = config.get(key)
            if isinstance(value, dict):
                raise BridgeError("the optimizer's %s is a schedule (%s); ltd takes a constant %s"
                                  % (key, value.get("class_name", "a dict"), key))
            if value is not None:
                spec[key] = value if isinstance(value, bool) else float(value)
        return spec

    def _check_loss(self) -> None:
        import keras
        loss = self.model.loss
        names = ("mse", "mean_squared_error", "MeanSquaredError")
        if isinstance(loss, str) and loss in names:
            return
        if isinstance(loss, keras.losses.MeanSquaredError) or getattr(loss, "__name__", None) in names:
            return
        raise BridgeError("ltd reproduces mean squared error; this model's loss is %r" % (loss,))

    def _split(self) -> None:
        x, y = _column(self.x, "x"), _column(self.y, "y")
        if len(x) != len(y):
            raise BridgeError("x has %d rows but y has %d" % (len(x), len(y)))
        self.val_x: Optional[List[float]] = None
        self.val_y: Optional[List[float]] = None
        if self.validation_data is not None:
            if len(self.validation_data) != 2:
                raise BridgeError("validation_data must be (x_val, y_val)")
            self.val_x = _column(self.validation_data[0], "validation x")
            self.val_y = _column(self.validation_data[1], "validation y")
        elif self.validation_split:
            # As Keras 3.15 splits (array_slicing.train_validation_split): the last rows, before any shuffle.
            split_at = int(math.floor(len(x) * (1.0 - self.validation_split)))
            x, self.val_x = x[:split_at], x[split_at:]
            y, self.val_y = y[:split_at], y[split_at:]
        self.train_x, self.train_y = x, y

    def _spec(self, kernel: float, bias: float) -> Dict[str, Any]:
        spec: Dict[str, Any] = {
            "data": {"x": self.train_x, "y": self.train_y},
            "init": {"kernel": kernel, "bias": bias},
            "optimizer": self._optimizer(),
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "shuffle": self._shuffle_spec(),
        }
        if self.val_x is not None:
            spec["validation"] = {"x": self.val_x, "y": self.val_y}
        return spec

    def _shuffle_spec(self) -> Any:
        """false; or, for a shuffled run with TensorFlow's global seed set (keras.utils.set_random_seed(S)), {"seed": S}:
        Keras 3.15.1 then feeds the rows in an order ltd reproduces from S alone (docs/SHUFFLE.md)."""
        if not self.shuffle:
            return False
        try:
            from tensorflow.python.eager import context
            seed = context.global_seed()  # read only: asking tf.random.get_seed would advance TF's op-seed counter
        except ImportError:
            return False
        return {"seed": int(seed)} if seed is not None else False

    def _make_scorer(self) -> Any:
        """A copy of the model with its own compiled loss and RMSE, for validation after every step: the training
        model's metrics are never touched (model.evaluate from a callback would reset them and change what fit
        prints). Its initializers are zeros, so building it draws no random numbers from the run's generators."""
        import keras

        def clone_layer(layer: Any) -> Any:
            config = layer.get_config()
            for key in ("kernel_initializer", "bias_initializer"):
                if key in config:
                    config[key] = "zeros"
            return layer.__class__.from_config(config)

        scorer = keras.models.clone_model(self.model, clone_function=clone_layer)
        scorer.compile(loss="mean_squared_error", metrics=[keras.metrics.RootMeanSquaredError(name="rmse")])
        return scorer

    def _score(self) -> Tuple[float, float]:
        """model.evaluate(val_x, val_y, batch_size=B) at the current weights, on the scorer."""
        import numpy as np
        self._scorer.set_weights(self.model.get_weights())
        vx = self.val_x if self.val_x is not None else self.train_x
        vy = self.val_y if self.val_y is not None else self.train_y
        result = self._scorer.evaluate(np.asarray(vx, dtype="float32").reshape(-1, 1), np.asarray(vy, dtype="float32"),
                                       batch_size=self.batch_size, verbose=0, return_dict=True)
        return float(result["loss"]), float(result["rmse"])

    # Talking to ltd: every failure after the job exists warns once and stops publishing; training goes on.

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn("ltd_client.keras.Watch: %s; training goes on without it" % message, RuntimeWarning,
                          stacklevel=3)

    def _publish(self, event: Dict[str, Any]) -> None:
        if self.publisher is None:
            return
        try:
            self.publisher.request("publish", job=self.job, event=event)
        except (OSError, LtdError) as exc:
            self._warn("ltd stopped taking job %s's events (%s)" % (self.job, exc))
            self.publisher.close()
            self.publisher = None

    # Keras hooks.

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self._warned = False
        if self.publisher is not None:  # a fit interrupted before its end: that job ends failed when we let go
            self.publisher.close()
            self.publisher = None
        self._check_model()
        self._check_loss()
        self._split()
        self.epochs = int(self.params.get("epochs") or 1)
        rows = len(self.train_x)
        self.steps_per_epoch = max(1, -(-rows // self.batch_size))
        steps = self.params.get("steps")
        if steps is not None and int(steps) != self.steps_per_epoch:
            raise BridgeError(
                "fit runs %d steps per epoch, but %d training rows in batches of %d make %d: give Watch the same "
                "batch_size and validation_split as fit (or use ltd_client.keras.fit)"
                % (int(steps), rows, self.batch_size, self.steps_per_epoch))
        kernel, bias = self._weights()
        spec = self._spec(kernel, bias)
        self.iteration = 0
        self._scorer = self._make_scorer() if self.validation else None
        try:
            publisher = _Publisher(self.socket_path, self.timeout)
        except (OSError, LtdError) as exc:
            self._warn("no ltd to publish to (%s)" % exc)
            return
        try:
            # A daemon older than external jobs would only say "unknown op"; say which side to upgrade instead.
            hello = publisher.request("hello")
            if "external_jobs" not in (hello.get("capabilities") or []):
                from . import __version__
                publisher.close()
                self._warn("ltd at %s is version %s, which cannot take a published job (its hello lists no "
                           "'external_jobs' capability); upgrade that daemon to ltd %s, this client's version, or newer"
                           % (self.socket_path, hello.get("version", "unknown"), __version__))
                return
            publisher.request("create", job=self.job, spec=spec, platform=_platform(), shuffled=self.shuffle)
        except (OSError, LtdError) as exc:
            publisher.close()
            self._warn("ltd did not create job %s (%s)" % (self.job, exc))
            return
        self.publisher = publisher

    def on_train_batch_begin(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.publisher is not None:
            self._before = self._weights()

    def on_train_batch_end(self, batch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.publisher is None:
            return
        logs = logs or {}
        self.iteration += 1
        epoch, step = (self.iteration - 1) // self.steps_per_epoch + 1, (self.iteration - 1) % self.steps_per_epoch + 1
        rows = len(self.train_x)
        first = (step - 1) * self.batch_size
        size = min(self.batch_size, rows - first)
        w_after, b_after = self._weights()
        event: Dict[str, Any] = {
            "type": "step", "epoch": epoch, "step": step, "iteration": self.iteration,
            "batch": {"size": size},
            "w_before": self._before[0], "b_before": self._before[1], "w_after": w_after, "b_after": b_after,
            "loss": float(logs.get("loss", float("nan"))),
            "slots": self._slots(),
        }
        if not self.shuffle:
            event["batch"]["indices"] = list(range(first, first + size))
        rmse = _rmse(logs)
        if rmse is not None:
            event["rmse"] = rmse
        if self._scorer is not None:
            event["val_loss"], event["val_rmse"] = self._score()
        self._publish(event)

    def _slots(self) -> Dict[str, Dict[str, float]]:
        slots: Dict[str, Dict[str, float]] = {"kernel": {}, "bias": {}}
        prefixes = {"kernel": self._kernel.path.replace("/", "_") + "_", "bias": self._bias.path.replace("/", "_") + "_"}
        for variable in self.model.optimizer.variables:
            name = variable.name
            for which, prefix in prefixes.items():
                if name.startswith(prefix):
                    slots[which][name[len(prefix):]] = variable.numpy().reshape(()).item()
        return slots

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.publisher is None:
            return
        logs = logs or {}
        event: Dict[str, Any] = {"type": "epoch", "epoch": epoch + 1, "loss": float(logs.get("loss", float("nan")))}
        rmse = _rmse(logs)
        if rmse is not None:
            event["rmse"] = rmse
        if "val_loss" in logs:
            event["val_loss"] = float(logs["val_loss"])
            val_rmse = _rmse({k[4:]: v for k, v in logs.items() if k.startswith("val_")})
            if val_rmse is not None:
                event["val_rmse"] = val_rmse
        self._publish(event)

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.publisher is None:
            return
        total = self.steps_per_epoch * self.epochs
        if self.iteration == total:
            self._publish({"type": "end", "state": "finished"})
        else:
            self._publish({"type": "end", "state": "cancelled",
                           "message": "fit stopped after %d of %d steps (a callback such as EarlyStopping stopped it)"
                                      % (self.iteration, total)})
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None


def _rmse(logs: Dict[str, Any]) -> Optional[float]:
    for key, value in logs.items():
        if key == "rmse" or key.endswith("root_mean_squared_error"):
            return float(value)
    return None


def fit(model: Any, x: Any, y: Any, job: str, validation: bool = True, socket_path: Optional[str] = None,
        **fit_kwargs: Any) -> Any:
    """``model.fit(x, y, **fit_kwargs)`` watched live by ltd as job ``job``; returns fit's ``History``.

    Every ``fit`` argument works as usual; ``batch_size``, ``shuffle``, ``validation_split`` and
    ``validation_data`` are read to describe the run (``shuffle=False`` makes it replicable by ``ltctl replicate``).
    """
    watch = Watch(job, x, y, batch_size=fit_kwargs.get("batch_size"), shuffle=fit_kwargs.get("shuffle", True),
                  validation_split=fit_kwargs.get("validation_split", 0.0),
                  validation_data=fit_kwargs.get("validation_data"), validation=validation, socket_path=socket_path)
    # Watch first: the job exists before any other callback's on_train_begin (one may start watching it).
    callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    return model.fit(x, y, callbacks=[watch] + callbacks, **fit_kwargs)
