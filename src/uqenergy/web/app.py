"""The ``uqenergy serve`` web app: the what-if page, its static files, and a JSON API (Starlette, served by uvicorn).

Routes:

- ``GET /``: the page (``static/index.html``; its script and style sheet are in
  ``static/``, so it works without a network);
- ``GET /api/studies``: the studies the page runs and the default one;
- ``GET /api/study?study=NAME``, ``POST /api/study`` (a request): the series, hardware,
  measured choices and prior controls of a study, or of a request's study;
- ``POST /api/run``: a request (:mod:`uqenergy.web.whatif`) -> records, distribution,
  pathways, Sobol indices and published estimates;
- ``POST /api/study.toml``, ``/api/records.json``, ``/api/records.csv``: the same
  request as a downloadable study file, or its records.

Bad input gets HTTP 400 and ``{"error": "FILE: KEY: what is wrong (what is allowed)"}``,
the one line the command prints. Runs go one at a time, each within a wall-clock limit
(waiting for the run before it included): a request past it gets HTTP 503 and its one line.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from uqenergy.config.errors import InputError
from uqenergy.web import whatif

STATIC = Path(__file__).parent / "static"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


async def _request_json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise InputError(whatif.REQUEST, None, f"not valid JSON: {exc}", "a JSON object") from None


def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputError | whatif.TooLong)
    return JSONResponse({"error": exc.message}, status_code=400 if isinstance(exc, InputError) else 503)


def _download(text: str, media_type: str, filename: str) -> Response:
    return Response(text, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def create_app(study: str = "paper_traditional", *, seconds: float = whatif.PAGE_SECONDS) -> Starlette:
    """The app, with ``study`` (a bundled name or a study file) chosen when the page opens.

    Parameters
    ----------
    study : str
        A study the page runs: the name of a bundled one-level per-query study, or the path of a study file.
    seconds : float
        The wall-clock limit of a request that runs the study, waiting for the run before it included.

    Returns
    -------
    starlette.applications.Starlette
        The ASGI app; an unknown or unsuitable ``study`` raises :class:`~uqenergy.config.errors.InputError`.
    """
    default, catalogue = whatif.catalogue_with(whatif.served_studies(), study)
    one_at_a_time = threading.Lock()

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def studies(request: Request) -> Response:
        listed = [{"name": n, "description": s.study.description} for n, s in catalogue.items()]
        return JSONResponse({"default": default, "studies": listed})

    def info(page_study: whatif.PageStudy) -> Response:
        return JSONResponse(whatif.study_info(catalogue[page_study.name], page_study))

    async def study_info(request: Request) -> Response:
        if request.method == "POST":
            body = await _request_json(request)
        else:
            body = {"study": request.query_params.get("study", default)}
        return info(await run_in_threadpool(whatif.page_study, catalogue, body))

    def within_limit(page_study: whatif.PageStudy, deadline: whatif.Deadline, respond: Callable) -> Response:
        if not one_at_a_time.acquire(timeout=max(deadline.remaining(), 0)):
            raise whatif.TooLong("waited for the runs before it longer than", seconds)
        try:
            return respond(page_study, deadline)
        finally:
            one_at_a_time.release()

    def posted(respond: Callable[[whatif.PageStudy, whatif.Deadline], Response], runs: bool = True) -> Callable:
        async def endpoint(request: Request) -> Response:
            deadline = whatif.Deadline(seconds)
            body = await _request_json(request)
            page_study = await run_in_threadpool(whatif.page_study, catalogue, body)
            if not runs:
                return respond(page_study, deadline)
            return await run_in_threadpool(within_limit, page_study, deadline, respond)

        return endpoint

    def toml(p: whatif.PageStudy, deadline: whatif.Deadline) -> Response:  # writes the study: runs nothing
        return _download(whatif.study_toml(p), "application/toml", f"{p.name}_whatif.toml")

    def records_json(p: whatif.PageStudy, deadline: whatif.Deadline) -> Response:
        return _download(whatif.records_json(whatif.run_records(p, deadline)), "application/json", "summary.json")

    def records_csv(p: whatif.PageStudy, deadline: whatif.Deadline) -> Response:
        return _download(whatif.records_csv(whatif.run_records(p, deadline)), "text/csv", "summary.csv")

    routes = [
        Route("/", page),
        Route("/api/studies", studies),
        Route("/api/study", study_info, methods=["GET", "POST"]),
        Route("/api/run", posted(lambda p, deadline: JSONResponse(whatif.run_page(p, deadline))), methods=["POST"]),
        Route("/api/study.toml", posted(toml, runs=False), methods=["POST"]),
        Route("/api/records.json", posted(records_json), methods=["POST"]),
        Route("/api/records.csv", posted(records_csv), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={InputError: _error, whatif.TooLong: _error})
    app.state.one_at_a_time = one_at_a_time  # held while a request runs its study
    return app


def check_port(host: str, port: int) -> None:
    """Raise :class:`~uqenergy.config.errors.InputError` unless ``port`` on ``host`` can be listened on."""
    if not 0 < port < 65536:
        raise InputError(None, "--port", f"{port} is not a port number", "1..65535")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(None, "--port", f"cannot listen on {host}:{port}: {exc.strerror}", "a free port") from None


def serve(study: str = "paper_traditional", *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the page at http://HOST:PORT/ until interrupted.

    Parameters
    ----------
    study : str
        The study the page opens with (a bundled name or a study file).
    host : str
        The address to listen on; the default, 127.0.0.1, is this computer only.
    port : int
        The port to listen on.
    """
    app = create_app(study)
    check_port(host, port)
    if host not in (DEFAULT_HOST, "localhost", "::1"):
        print(f"uqenergy: warning: the page is open to the network on {host}, not only this computer", file=sys.stderr)
    print(f"uqenergy: serving the what-if page at http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
