"""Cloud Mode widgets: sign-in/up/reset dialogs, the settings-conflict prompt, backups, the
Cloud menu and the account status. They talk only to `nojoin.cloud.manager.CloudManager`."""

from __future__ import annotations

from nojoin.ui.cloud.menu import CloudController, install_cloud

__all__ = ["CloudController", "install_cloud"]
