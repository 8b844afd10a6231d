"""Cloud Mode widgets: sign-in/up/reset dialogs, the settings-conflict prompt, backups, the
Account dialog, the Cloud menu and the account status. They talk only to
`nojoin.cloud.manager.CloudManager`, which the composition root builds and passes in."""

from __future__ import annotations

from nojoin.ui.cloud.menu import CloudController

__all__ = ["CloudController"]
