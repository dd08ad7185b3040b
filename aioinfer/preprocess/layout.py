"""Layouts (``"NCHW"``, ``"[N,H,W,C]"``) and the permutations between them."""

from __future__ import annotations

from ..errors import PreprocessError


class Layout:
    """A layout: one letter per axis (``N`` batch, ``C`` channels, ``H``/``W`` spatial, ``?``
    any other). ``Layout("NHWC")`` or OpenVINO's ``Layout("[N,H,W,C]")``."""

    def __init__(self, text: str | Layout) -> None:
        if isinstance(text, Layout):
            self.axes: tuple[str, ...] = text.axes
            return
        raw = text.strip()
        if raw.startswith("[") and raw.endswith("]"):
            names = [p.strip().upper() for p in raw[1:-1].split(",") if p.strip()]
        else:
            names = list(raw.upper())
        known = [n for n in names if n != "?"]
        if not names or len(set(known)) != len(known):
            raise PreprocessError(f"layout {text!r}: expected letters such as 'NCHW', each "
                                  "at most once ('?' for any other axis)")
        self.axes = tuple(names)

    @property
    def rank(self) -> int:
        return len(self.axes)

    def has(self, name: str) -> bool:
        return name in self.axes

    def index(self, name: str, what: str = "this step") -> int:
        if name not in self.axes:
            raise PreprocessError(f"layout {self}: {what} needs a {name!r} axis")
        return self.axes.index(name)

    def permutation_to(self, target: Layout) -> list[int]:
        """``perm`` of the Transpose taking this layout to ``target``."""
        if sorted(self.axes) != sorted(target.axes) or "?" in self.axes:
            raise PreprocessError(f"cannot convert layout {self} to {target}: they must name "
                                  "the same axes")
        return [self.axes.index(a) for a in target.axes]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.axes == other.axes

    def __hash__(self) -> int:
        return hash(self.axes)

    def __str__(self) -> str:
        return "".join(self.axes)

    def __repr__(self) -> str:
        return f"Layout({str(self)!r})"
