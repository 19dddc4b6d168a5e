"""The command line's name for the composition root (settleguard.bootstrap): commands get everything through
one :class:`Runtime` on ``ctx.obj``, so tests hand in fakes at this single place instead of monkeypatching."""

from __future__ import annotations

from settleguard.bootstrap import Container

Runtime = Container

__all__ = ["Runtime"]
