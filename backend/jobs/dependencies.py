"""FastAPI dependencies of the jobs domain: its service, the admission check and dispatch."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from backend.errors import ServiceUnavailableError
from backend.jobs.admission import JobAdmission
from backend.jobs.dispatch import JobDispatcher
from backend.jobs.service import JobService
from backend.runtime import RuntimeDep


async def get_job_service(runtime: RuntimeDep) -> JobService:
    return runtime.jobs


async def get_job_admission(runtime: RuntimeDep) -> JobAdmission:
    return runtime.job_admission


async def get_job_dispatcher(runtime: RuntimeDep) -> JobDispatcher:
    if runtime.dispatcher is None:
        raise ServiceUnavailableError("Remote processing is starting up; try again shortly.")
    return runtime.dispatcher


JobServiceDep = Annotated[JobService, Depends(get_job_service)]
JobAdmissionDep = Annotated[JobAdmission, Depends(get_job_admission)]
JobDispatcherDep = Annotated[JobDispatcher, Depends(get_job_dispatcher)]
