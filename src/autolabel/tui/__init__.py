"""The review TUI (Textual). The only package that imports textual.

Engine code and the CLI import this package lazily (inside ``autolabel review``), so
the rest of autolabel runs without loading textual.
"""

from autolabel.tui.app import ReviewApp, ReviewScreen

__all__ = ["ReviewApp", "ReviewScreen"]
