"""Results of one inference: a mapping by output name that also indexes by position."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..model import Port


class Results(Mapping[str, Any]):
    """Output name -> ``numpy.ndarray``; ``results[0]`` and ``results[port]`` work too."""

    __slots__ = ("_names", "_values", "_index", "userdata")

    def __init__(self, names: Sequence[str], values: Sequence[Any], userdata: Any = None) -> None:
        self.userdata = userdata
        """What was passed with the inputs (``AsyncInferQueue.submit(inputs, userdata)``)."""
        self._names = list(names)
        self._values = list(values)
        self._index = {n: k for k, n in enumerate(self._names)}

    def __getitem__(self, key: str | int | Port) -> Any:
        if isinstance(key, int):
            return self._values[key]
        name = key.name if isinstance(key, Port) else key
        try:
            return self._values[self._index[name]]
        except KeyError:
            raise KeyError(f"no output named {name!r}; outputs are {self._names}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def to_list(self) -> list[Any]:
        """The outputs in model order."""
        return list(self._values)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{n!r}: {getattr(v, 'dtype', type(v).__name__)}{list(getattr(v, 'shape', []))}"
            for n, v in zip(self._names, self._values, strict=True)
        )
        return f"Results({{{parts}}})"
