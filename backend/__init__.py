"""The Nojoin backend: a FastAPI service split by domain (auth, config, backups, storage, jobs,
billing), each with `endpoints.py`, `dependencies.py`, `service.py`, `repository.py` (all
SQL) and `schemas.py`.

One pattern everywhere: `runtime.Runtime.start()` builds each domain's service once as a typed
`Runtime` field; endpoints receive it through an `Annotated` dependency (`BillingServiceDep`,
`JobServiceDep`, ...) next to `SessionDep` and `CurrentUser`; services take the session per
call and build repositories from it (`JobRepository.from_session(conn)`); errors are
`errors.BackendError` subclasses mapped to JSON in one handler. The job worker imports the
desktop package only through `nojoin.processing.contract` and the engine.
"""
