"""The desktop's widgets and dialogs (PySide6), and the one way they run work in the
background (`tasks.TaskRunner`). The main window (`main_window`) hosts the meeting list
(`library_view`), the meeting (`meeting_view`, `transcript_model`, `player`), the recording
bar (`recording`), the processing queue (`processing`) and imports (`import_queue`); settings,
theme and error boxes have their own modules; Cloud Mode's widgets are in `ui/cloud/`.
Services come in from the composition root (`nojoin.app`); nothing here creates them."""
