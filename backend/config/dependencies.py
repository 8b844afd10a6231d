"""FastAPI dependencies of the config domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from backend.config.service import ConfigService
from backend.runtime import RuntimeDep


async def get_config_service(runtime: RuntimeDep) -> ConfigService:
    return runtime.config


ConfigServiceDep = Annotated[ConfigService, Depends(get_config_service)]
