"""How the demo prints: colours when stdout is a terminal, steps, fields, wrapped text and e-mails."""

from __future__ import annotations

import os
import sys
import textwrap

WIDTH = 100


class Style:
    """ANSI colour when stdout is a terminal (and NO_COLOR is not set); plain text otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stdout(cls) -> Style:
        tty = sys.stdout.isatty()
        return cls(tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def good(self, text: str) -> str:
        return self._wrap("1;32", text)

    def bad(self, text: str) -> str:
        return self._wrap("1;31", text)

    def note(self, text: str) -> str:
        return self._wrap("1;33", text)

    def accent(self, text: str) -> str:
        return self._wrap("36", text)


class Printer:
    def __init__(self, style: Style) -> None:
        self.s = style

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def step(self, number: int, total: int, text: str) -> None:
        self.line()
        self.line(self.s.bold(f"[{number}/{total}] {text}"))

    def field(self, label: str, text: str) -> None:
        """`  label           text`, continuation lines aligned under the text."""
        lines = text.split("\n")
        self.line(f"  {label:<16}{lines[0]}")
        for extra in lines[1:]:
            self.line(f"  {'':<16}{extra}")

    def wrapped(self, text: str, indent: int = 6) -> None:
        for line in textwrap.wrap(text, WIDTH - indent, break_on_hyphens=False, break_long_words=True):
            self.line(" " * indent + line)

    def email(self, subject: str, body: str) -> None:
        bar = self.s.dim("|")
        self.line(f"      {bar} Subject: {self.s.bold(subject)}")
        self.line(f"      {bar}")
        for text in body.rstrip("\n").split("\n"):
            self.line(f"      {bar} {text}".rstrip())
