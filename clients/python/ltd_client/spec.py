"""Job specs (docs/PROTOCOL.md, "The spec"). Plain dicts: edit them freely before `Client.start`."""

import copy
from typing import Any, Dict

__all__ = ["COLAB_X", "COLAB_Y", "colab_example"]

# The classic exercise's twelve points (shared/golden/README.md).
COLAB_X = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
COLAB_Y = [5.0, 8.8, 9.6, 14.2, 18.8, 19.5, 21.4, 26.8, 28.9, 32.0, 33.8, 38.2]


def colab_example(**overrides: Any) -> Dict[str, Any]:
    """The classic twelve-point spec: RMSprop (learning rate 0.05) from kernel 0.5 and bias 0, 4 epochs of
    batch size 4, no shuffling: twelve optimizer steps, twelve models.

    Keyword arguments replace top-level fields, e.g. ``colab_example(batch_size=3, epochs=1)`` or
    ``colab_example(pace_ms=500, paused=True)``. ``colab_example(shuffle={"seed": 42})`` feeds the rows Keras 3.15.1
    feeds ``fit(shuffle=True)`` after ``keras.utils.set_random_seed(42)``; ``shuffle=True`` does the same with a seed
    the daemon draws and records in the job's ``start`` event (``spec.shuffle.seed``). See docs/SHUFFLE.md.
    """
    spec: Dict[str, Any] = {
        "data": {"x": list(COLAB_X), "y": list(COLAB_Y)},
        "init": {"kernel": 0.5, "bias": 0.0},
        "optimizer": {"name": "rmsprop", "learning_rate": 0.05},
        "epochs": 4,
        "batch_size": 4,
        "shuffle": False,
    }
    spec.update(copy.deepcopy(overrides))
    return spec
