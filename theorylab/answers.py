"""Answers collected from a student's code, as plain data the grader can check in its own process.

A check of an exercise has two halves, split by a line that starts with ``# -- check``::

    answers = collect(eta=step_size_tau(10, 3, 1.0, 0.5))      # runs where the student's code runs
    # -- check: in the grader's own process, on the collected answers
    import math
    assert math.isclose(answers["eta"], 10 / 15.25, rel_tol=1e-9), "η* for τ = 0.5 is …"

In the book and in a student's notebook the whole cell runs as written. The grader runs only the first
half in the student's kernel, saves ``answers`` with :func:`dump` (numbers and arrays, nothing
executable), and runs the second half in its own clean process with ``answers`` loaded by
:func:`load`, so monkeypatching, lying ``__eq__`` methods or exception hooks in the student's kernel
cannot change what is compared.

:func:`collect` turns each value into plain data: ``bool``, ``int``, ``float``, or a numpy array (from
a numpy array, a torch tensor, or a nested list of numbers); ``None`` stays ``None``.

With ``THEORYLAB_ANSWERS_LOG`` set to a file, :func:`collect` also appends each collection to it, one
JSON object per line (:func:`read_log` reads them back): the test suite sets it for its one execution
of each chapter, so that the book's own solutions are graded from that run without executing the
chapter again.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys

import numpy as np

__all__ = ["collect", "to_plain", "dump", "load", "read_log", "LOG_VARIABLE"]

#: The environment variable naming the file to which :func:`collect` appends each collection.
LOG_VARIABLE = "THEORYLAB_ANSWERS_LOG"

_DTYPES = ("bool", "int64", "float64", "float32")


def to_plain(name: str, value):
    """``value`` as plain data (see the module docstring); anything else is a ``TypeError``."""
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        # through the base class, so that a subclass's __torch_function__ cannot answer for itself
        with torch._C.DisableTorchFunctionSubclass():
            value = torch.Tensor.numpy(torch.Tensor.cpu(torch.Tensor.detach(value)))
    if isinstance(value, list | tuple | np.ndarray):
        try:
            array = np.array(value)
        except (TypeError, ValueError):
            raise TypeError(f"answer {name!r} must be numbers or an array of numbers") from None
        if array.dtype.kind == "b":
            return array.astype(bool)
        if array.dtype.kind in "iu":
            return array.astype(np.int64)
        if array.dtype.kind == "f":
            return array.astype(np.float64 if array.dtype.itemsize > 4 else np.float32)
        raise TypeError(f"answer {name!r} must be numbers or an array of numbers, got dtype {array.dtype}")
    raise TypeError(f"answer {name!r} must be a number, a bool, an array or a tensor, got "
                    f"{type(value).__name__}")


def collect(**values) -> dict:
    """The answers to check, as plain data: ``collect(eta=..., Gamma=...)``."""
    plain = {name: to_plain(name, value) for name, value in values.items()}
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({name: _encode(value) for name, value in plain.items()}) + "\n")
    return plain


def _encode(value):
    if isinstance(value, np.ndarray):
        data = [None if not math.isfinite(x) else x for x in value.ravel().tolist()] \
            if value.dtype.kind == "f" else value.ravel().tolist()
        nonfinite = {} if value.dtype.kind != "f" else {
            "nan": np.flatnonzero(np.isnan(value)).tolist(),
            "posinf": np.flatnonzero(np.isposinf(value)).tolist(),
            "neginf": np.flatnonzero(np.isneginf(value)).tolist()}
        return {"array": data, "dtype": str(value.dtype), "shape": list(value.shape), **nonfinite}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def dump(answers: dict, path: str) -> None:
    """Write ``answers`` (a dict from :func:`collect`) to ``path`` as JSON."""
    if not isinstance(answers, dict):
        raise TypeError(f"answers must be the dict returned by collect(...), got {type(answers).__name__}")
    plain = {str(k): _encode(to_plain(str(k), v)) for k, v in answers.items()}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(plain, fh)


def _decode(value):
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    if isinstance(value, dict) and "array" in value:
        dtype = value["dtype"]
        if dtype not in _DTYPES:
            raise ValueError(f"unexpected dtype {dtype!r} in the answers")
        flat = [np.nan if x is None else x for x in value["array"]]
        array = np.array(flat, dtype=dtype)
        for key, fill in (("nan", np.nan), ("posinf", np.inf), ("neginf", -np.inf)):
            where = np.asarray(value.get(key, []), dtype=np.int64)
            if where.size:
                array[where] = fill
        return array.reshape(value["shape"])
    if value is None or isinstance(value, bool | int | float):
        return value
    raise ValueError(f"unexpected value of type {type(value).__name__} in the answers")


def load(path: str, *, max_bytes: int = 50_000_000) -> dict:
    """Read answers written by :func:`dump`: plain numbers, bools, ``None`` and numpy arrays only."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read(max_bytes + 1)
    if len(text) > max_bytes:
        raise ValueError(f"the answers file is larger than {max_bytes} bytes")
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("the answers file does not hold a dict")
    return {str(k): _decode(v) for k, v in raw.items()}


def read_log(path) -> list[dict]:
    """The collections appended to ``path`` under ``THEORYLAB_ANSWERS_LOG``, in the order they were made."""
    with open(path, encoding="utf-8") as fh:
        return [{str(k): _decode(v) for k, v in json.loads(line).items()} for line in fh if line.strip()]
