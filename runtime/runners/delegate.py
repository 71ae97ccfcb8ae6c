"""A runner that stands in front of another one: the base of the wrappers the loop puts around its
runners (:class:`~.fit.ShapeFit`, :class:`~.fallback.FallbackRunner`).

The wrapped runner keeps its own state: activation, description, shape bounds and any other attribute
(``providers_used``, ``build_facts`` ...) are its, so a wrapper changes only what it is for — the calls.
"""

from __future__ import annotations

from edge_mmer.runner import Runner

__all__ = ["DelegatingRunner"]


class DelegatingRunner(Runner):
    """Delegates everything but ``_infer`` to :meth:`target`, the runner it wraps now."""

    _own: tuple[str, ...] = ()
    """Attributes the wrapper itself holds (never looked up on the target, so a half-built wrapper
    raises AttributeError instead of recursing)."""

    def target(self) -> Runner:
        raise NotImplementedError

    @property
    def active(self) -> bool:
        """The wrapped runner's state: it may have been activated before it was wrapped."""
        return self.target().active

    @active.setter
    def active(self, value: bool) -> None:
        del value  # activate / deactivate go to the wrapped runner

    @property
    def description(self) -> str:
        return self.target().description

    def __getattr__(self, name: str) -> object:
        """Anything else is the wrapped runner's."""
        if name in self._own:
            raise AttributeError(name)
        return getattr(self.target(), name)

    def shape_bounds(self) -> object:
        get = getattr(self.target(), "shape_bounds", None)
        return get() if callable(get) else None

    def activate(self) -> None:
        self.target().activate()

    def deactivate(self) -> None:
        self.target().deactivate()

    def _activate(self) -> None:
        self.target().activate()

    def _deactivate(self) -> None:
        self.target().deactivate()
