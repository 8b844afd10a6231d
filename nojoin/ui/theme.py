"""Light and dark themes: the Fusion style with a full palette plus a small style sheet.

"system" follows the desktop's colour scheme (Qt's style hints) and switches live when it changes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from nojoin.config import Theme

# Accent shared by both themes; readable on white and on the dark window colour.
ACCENT = "#3b82f6"
RECORD_RED = "#dc2626"

_LIGHT = {
    "window": "#f5f6f8",
    "base": "#ffffff",
    "alt": "#f0f2f5",
    "text": "#1f2328",
    "muted": "#656d76",
    "button": "#ffffff",
    "border": "#d0d7de",
    "highlight": ACCENT,
    "highlight_text": "#ffffff",
    "current": "#fff3bf",  # the segment being played
    "current_text": "#1f2328",
}
_DARK = {
    "window": "#1e2126",
    "base": "#16181c",
    "alt": "#1b1e22",
    "text": "#e6e8eb",
    "muted": "#9aa2ad",
    "button": "#2a2e35",
    "border": "#3a3f47",
    "highlight": ACCENT,
    "highlight_text": "#ffffff",
    "current": "#4a3f12",
    "current_text": "#fff7d6",
}


def resolve(theme: Theme) -> Theme:
    """LIGHT or DARK: what `theme` means on this desktop right now."""
    if theme is not Theme.SYSTEM:
        return theme
    hints = QGuiApplication.styleHints()
    if hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark:
        return Theme.DARK
    return Theme.LIGHT


def colors(theme: Theme) -> dict[str, str]:
    return _DARK if resolve(theme) is Theme.DARK else _LIGHT


def palette(theme: Theme) -> QPalette:
    c = colors(theme)
    p = QPalette()
    role = QPalette.ColorRole
    for r, key in (
        (role.Window, "window"),
        (role.WindowText, "text"),
        (role.Base, "base"),
        (role.AlternateBase, "alt"),
        (role.ToolTipBase, "base"),
        (role.ToolTipText, "text"),
        (role.Text, "text"),
        (role.Button, "button"),
        (role.ButtonText, "text"),
        (role.BrightText, "highlight_text"),
        (role.Highlight, "highlight"),
        (role.HighlightedText, "highlight_text"),
        (role.Link, "highlight"),
        (role.PlaceholderText, "muted"),
        (role.Mid, "border"),
        (role.Midlight, "border"),
    ):
        p.setColor(r, QColor(c[key]))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(disabled, r, QColor(c["muted"]))
    return p


def style_sheet(theme: Theme) -> str:
    c = colors(theme)
    return f"""
QWidget {{ font-size: 10pt; }}
QToolTip {{ color: {c["text"]}; background: {c["base"]}; border: 1px solid {c["border"]}; }}
QPushButton, QToolButton {{
    padding: 5px 12px; border: 1px solid {c["border"]}; border-radius: 6px;
    background: {c["button"]};
}}
QPushButton:hover, QToolButton:hover {{ border-color: {ACCENT}; }}
QPushButton:disabled, QToolButton:disabled {{ color: {c["muted"]}; }}
QPushButton#recordButton {{ color: white; background: {RECORD_RED}; border-color: {RECORD_RED};
    font-weight: 600; }}
QPushButton#recordButton:disabled {{ background: {c["button"]}; color: {c["muted"]};
    border-color: {c["border"]}; }}
QPushButton#primaryButton {{ color: white; background: {ACCENT}; border-color: {ACCENT}; }}
QLineEdit {{ padding: 3px 4px; }}
QLineEdit#meetingTitle {{ font-size: 15pt; font-weight: 600; background: transparent;
    border: 1px solid transparent; border-radius: 6px; padding: 2px 4px; }}
QLineEdit#meetingTitle:hover {{ border-color: {c["border"]}; }}
QLineEdit#meetingTitle:focus {{ border-color: {ACCENT}; background: {c["base"]}; }}
QToolButton::menu-indicator {{ image: none; width: 0px; }}
QTableView#transcript::item {{ padding: 4px 6px; }}
QListWidget::item {{ padding: 4px 6px; }}
QTableView#meetingList::item {{ padding: 0px 6px; }}
QGroupBox {{ font-weight: 600; border: 1px solid {c["border"]}; border-radius: 8px;
    margin-top: 14px; padding: 10px 8px 6px 8px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; }}
QGroupBox QLabel, QGroupBox QCheckBox {{ font-weight: normal; }}
QDockWidget::title {{ padding: 6px 10px; font-weight: 600; }}
QTableView, QListView, QTreeView {{
    border: 1px solid {c["border"]}; border-radius: 6px; background: {c["base"]};
    alternate-background-color: {c["alt"]};
}}
QHeaderView::section {{
    padding: 5px 8px; border: none; border-bottom: 1px solid {c["border"]};
    background: {c["window"]}; color: {c["muted"]}; font-weight: 600;
}}
QLabel#muted, QLabel#elapsed {{ color: {c["muted"]}; }}
QLabel#elapsed {{ font-family: monospace; font-size: 12pt; }}
QLabel#placeholder {{ color: {c["muted"]}; font-size: 12pt; }}
QFrame#banner {{ border: 1px solid {c["border"]}; border-radius: 6px; background: {c["alt"]}; }}
QFrame#recordBar {{ border-bottom: 1px solid {c["border"]}; }}
QProgressBar {{ border: 1px solid {c["border"]}; border-radius: 4px; text-align: center;
    background: {c["base"]}; max-height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QStatusBar {{ border-top: 1px solid {c["border"]}; }}
QSplitter::handle {{ background: transparent; }}
"""


def apply(app: QApplication, theme: Theme) -> None:
    """Apply `theme` to the whole application (safe to call again to switch)."""
    app.setStyle("Fusion")
    app.setPalette(palette(theme))
    app.setStyleSheet(style_sheet(theme))
    app.setProperty("nojoinTheme", resolve(theme).value)
