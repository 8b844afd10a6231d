"""Cloud Mode's client side: `manager.CloudManager` (the one Qt object here: session state and
signals, every request run on the app's task runner), accounts (`auth_service`, the OS
keyring via `session_storage`), the HTTP `api_client`, settings sync (`config_sync`), backups
(`backup_service` over `backup_space`, `backup_archive`, `backup_transfer`,
`backup_restore`), billing (`billing_client`), and remote processing's `connection`."""
