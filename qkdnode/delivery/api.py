"""ETSI GS QKD 014 v1.1.1 key delivery REST API (aiohttp), behind mutual TLS.

Routes (the caller is the SAE named by the CN of its verified client certificate, and must be
attached to this KME):

* ``GET /api/v1/keys/{slave_SAE_ID}/status`` -> Status (caller is the master).
* ``GET|POST /api/v1/keys/{slave_SAE_ID}/enc_keys`` -> Key container; GET query ``number``,
  ``size``; POST body ``{"number", "size", "additional_slave_SAE_IDs", "extension_mandatory",
  "extension_optional"}``. The oldest keys reserved for (caller, slave) are returned.
* ``GET|POST /api/v1/keys/{master_SAE_ID}/dec_keys`` -> Key container; GET query ``key_ID``
  (repeatable), POST body ``{"key_IDs": [{"key_ID": ...}, ...]}``. Only keys reserved for
  (master, caller) are returned.

Errors use the spec's body ``{"message": str, "details": [object, ...]}``: 400 bad request
(bad parameters, unknown/used key_IDs, unsupported multicast or mandatory extensions), 401
caller not authorised (unknown SAE, or no key stream between it and the SAE in the path), 503
not enough keys or a key store failure (e.g. disk full). Every key is returned once: the store
persists its delivery before the response is built. Keys have the fixed size `link.key_size_bits` (min = max key size).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import Counter
from typing import Any, Awaitable, Callable

import structlog
from aiohttp import web

from qkdnode.delivery.config import KmeConfig
from qkdnode.delivery.tls import common_name
from qkdnode.keystore import InsufficientKeys, KeyNotAvailable, KeyStore, KeyStoreError, KeyUnit

log = structlog.get_logger(__name__)

CONFIG = web.AppKey("config", KmeConfig)
STORE = web.AppKey("store", KeyStore)
COUNTERS = web.AppKey("counters", Counter)
"""Metrics of the app: `responses_<status>` per HTTP status and `keys_delivered`."""

_ENC_FIELDS = {"number", "size", "additional_slave_SAE_IDs", "extension_mandatory", "extension_optional"}
_DEC_FIELDS = {"key_IDs", "key_IDs_extension"}


class ApiError(Exception):
    """An ETSI error response: HTTP status, message, details (never key material)."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or []


def error_response(status: int, message: str, details: list[dict[str, Any]] | None = None) -> web.Response:
    """JSON error body as defined by ETSI GS QKD 014 (`message`, `details`)."""
    return web.json_response({"message": message, "details": details or []}, status=status)


@web.middleware
async def _etsi_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Authenticate every request, map errors to ETSI error bodies, count responses."""
    try:
        _caller(request)
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc.status, exc.message, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, exc.reason)
    except (KeyStoreError, OSError) as exc:
        log.error("key_store_failed", error=type(exc).__name__, path=request.path)
        response = error_response(503, "key store error; no key was delivered by this request",
                                  [{"error": type(exc).__name__}])
    request.app[COUNTERS][f"responses_{response.status}"] += 1
    return response


def _caller(request: web.Request) -> str:
    """The SAE ID in the CN of the verified client certificate; 401 unless attached to this KME."""
    config = request.app[CONFIG]
    transport = request.transport
    caller = common_name(transport.get_extra_info("peercert") if transport else None)
    if caller is None or caller not in config.local_saes:
        log.warning("sae_rejected", sae=caller, path=request.path)
        raise ApiError(401, "client certificate does not name an SAE attached to this KME",
                       [{"KME_ID": config.kme.id}])
    return caller


def create_app(config: KmeConfig, store: KeyStore) -> web.Application:
    """The ETSI 014 application for one KME, serving keys from `store`."""
    app = web.Application(middlewares=[_etsi_errors], client_max_size=1 << 20)
    app[CONFIG] = config
    app[STORE] = store
    app[COUNTERS] = Counter()
    app.router.add_get("/api/v1/keys/{sae}/status", _status)
    app.router.add_route("GET", "/api/v1/keys/{sae}/enc_keys", _enc_keys)
    app.router.add_route("POST", "/api/v1/keys/{sae}/enc_keys", _enc_keys)
    app.router.add_route("GET", "/api/v1/keys/{sae}/dec_keys", _dec_keys)
    app.router.add_route("POST", "/api/v1/keys/{sae}/dec_keys", _dec_keys)
    return app


def _authorise(config: KmeConfig, master: str, slave: str) -> None:
    if not config.link.has_pair(master, slave):
        raise ApiError(401, f"no key stream from master SAE {master!r} to slave SAE {slave!r} on this link",
                       [{"master_SAE_ID": master, "slave_SAE_ID": slave}])


async def _status(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    master, slave = _caller(request), request.match_info["sae"]
    _authorise(config, master, slave)
    stored = await asyncio.to_thread(store.available, master, slave)
    size = config.link.key_size_bits
    return web.json_response({
        "source_KME_ID": config.kme.id,
        "target_KME_ID": config.link.kme_of(slave),
        "master_SAE_ID": master,
        "slave_SAE_ID": slave,
        "key_size": size,
        "stored_key_count": stored,
        "max_key_count": config.kme.max_key_count,
        "max_key_per_request": config.kme.max_keys_per_request,
        "max_key_size": size,
        "min_key_size": size,
        "max_SAE_ID_count": 0,
    })


async def _json_body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "unknown fields in request body", [{"unknown_field": name} for name in unknown])
    return body


def _int_param(value: Any, name: str) -> int:
    if isinstance(value, str):
        try:
            return int(value, 10)
        except ValueError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ApiError(400, f"{name} must be an integer", [{"parameter": name}])


async def _enc_keys(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    master, slave = _caller(request), request.match_info["sae"]
    _authorise(config, master, slave)
    if request.method == "POST":
        body = await _json_body(request, _ENC_FIELDS)
        if body.get("additional_slave_SAE_IDs"):
            raise ApiError(400, "additional_slave_SAE_IDs is not supported (max_SAE_ID_count is 0)",
                           [{"max_SAE_ID_count": 0}])
        if body.get("extension_mandatory"):
            raise ApiError(400, "mandatory extensions are not supported",
                           [{"extension_mandatory": body["extension_mandatory"]}])
    else:
        unknown = sorted(set(request.query) - {"number", "size"})
        if unknown:
            raise ApiError(400, "unknown query parameters", [{"unknown_parameter": name} for name in unknown])
        body = dict(request.query)
    number = _int_param(body.get("number", 1), "number")
    size = _int_param(body.get("size", config.link.key_size_bits), "size")
    limit = config.kme.max_keys_per_request
    if not 1 <= number <= limit:
        raise ApiError(400, f"number must be between 1 and max_key_per_request ({limit})",
                       [{"number": number, "max_key_per_request": limit}])
    if size != config.link.key_size_bits:
        raise ApiError(400, f"size must be {config.link.key_size_bits} bits (the only key size of this link)",
                       [{"size": size, "min_key_size": config.link.key_size_bits,
                         "max_key_size": config.link.key_size_bits}])
    try:
        keys = await asyncio.to_thread(store.take, master, slave, number)
    except InsufficientKeys as exc:
        raise ApiError(503, "not enough keys stored for this SAE pair",
                       [{"stored_key_count": exc.available, "requested": number}]) from None
    return _container(request, keys)


async def _dec_keys(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    slave, master = _caller(request), request.match_info["sae"]
    _authorise(config, master, slave)
    if request.method == "POST":
        body = await _json_body(request, _DEC_FIELDS)
        entries = body.get("key_IDs")
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("key_ID"), str) for e in entries
        ):
            raise ApiError(400, 'key_IDs must be a list of objects {"key_ID": "<UUID>"}')
        key_ids = [e["key_ID"] for e in entries]
    else:
        unknown = sorted(set(request.query) - {"key_ID"})
        if unknown:
            raise ApiError(400, "unknown query parameters", [{"unknown_parameter": name} for name in unknown])
        key_ids = request.query.getall("key_ID", [])
    limit = config.kme.max_keys_per_request
    if not 1 <= len(key_ids) <= limit:
        raise ApiError(400, f"between 1 and {limit} key_IDs must be given", [{"key_ID_count": len(key_ids)}])
    malformed = [k for k in key_ids if not _is_uuid(k)]
    if malformed:
        raise ApiError(400, "key_ID is not a UUID", [{"key_ID": k} for k in malformed])
    try:
        keys = await asyncio.to_thread(store.take_ids, master, slave, key_ids)
    except KeyNotAvailable as exc:
        raise ApiError(400, "key_IDs not available: unknown, already delivered, or not for this SAE pair",
                       [{"key_ID": k} for k in exc.key_ids]) from None
    return _container(request, keys)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _container(request: web.Request, keys: list[KeyUnit]) -> web.Response:
    request.app[COUNTERS]["keys_delivered"] += len(keys)
    return web.json_response(
        {"keys": [{"key_ID": k.key_id, "key": base64.b64encode(k.key).decode("ascii")} for k in keys]}
    )
