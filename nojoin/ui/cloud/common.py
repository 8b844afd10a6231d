"""Small pieces the Cloud dialogs share: a heading, an inline error/info message, and a
"working…" strip that keeps the dialog alive while a request runs on a worker thread."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

ERROR_COLOR = "#dc2626"
OK_COLOR = "#15803d"
# Brighter variants for dark themes: the light-theme greens and reds are too dim there.
DARK_ERROR_COLOR = "#f87171"
DARK_OK_COLOR = "#4ade80"


def heading(title: str, subtitle: str = "") -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 6)
    layout.setSpacing(4)
    label = QLabel(title)
    label.setObjectName("cloudHeading")
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.35)
    font.setBold(True)
    label.setFont(font)
    layout.addWidget(label)
    if subtitle:
        sub = QLabel(subtitle)
        sub.setObjectName("muted")
        sub.setWordWrap(True)
        layout.addWidget(sub)
    return box


class MessageLabel(QLabel):
    """An inline message under a form: red for errors, green for confirmations."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cloudMessage")
        self._error = False
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide()

    def _dark(self) -> bool:
        return self.palette().window().color().lightness() < 128

    def show_error(self, text: str) -> None:
        self._error = True
        self._show(text, DARK_ERROR_COLOR if self._dark() else ERROR_COLOR)

    def show_info(self, text: str) -> None:
        self._error = False
        self._show(text, DARK_OK_COLOR if self._dark() else OK_COLOR)

    def clear_message(self) -> None:
        self.setText("")
        self.hide()

    @property
    def is_error(self) -> bool:
        return self.isVisible() and self._error

    def _show(self, text: str, color: str) -> None:
        self.setStyleSheet(
            f"QLabel#cloudMessage {{ color: {color}; border: 1px solid {color}; "
            "border-radius: 6px; padding: 6px 8px; }"
        )
        self.setText(text)
        self.show()
        grow_to_fit(self.window())


def grow_to_fit(window: QWidget) -> None:
    """Make `window` tall enough for its (word-wrapped) content at its current width, so a
    message that appears never squeezes the text above it."""
    layout = window.layout()
    if layout is None or not window.isVisible():
        return
    layout.activate()
    width = window.width()
    needed = (
        layout.totalHeightForWidth(width)
        if layout.hasHeightForWidth()
        else layout.totalSizeHint().height()
    )
    if needed > window.height():
        window.resize(width, needed)


class BusyStrip(QFrame):
    """'Signing in…' with an indeterminate bar (or a percentage when a total is known)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.label = QLabel()
        self.label.setObjectName("muted")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(140)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        self.hide()

    def start(self, text: str) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self.show()
        grow_to_fit(self.window())

    def set_progress(self, text: str, fraction: float) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 1000)
        self.bar.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        self.show()

    def stop(self) -> None:
        self.hide()


TABLE_STYLE = "QTableWidget::item { padding: 0px 5px; }"
"""Cells breathe a little; the header sections get the same left padding from the theme."""
