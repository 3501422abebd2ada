"""Authenticated classical channel to the peer node (or peer distillation worker) over ZeroMQ.

One end binds a ROUTER socket and answers session handshakes (responder); the other
connects a DEALER socket and starts them (initiator). Every frame is an `Envelope`
authenticated by the configured `MacScheme`, bound to the link, the sender role, the
session and a per-direction sequence number. Rejected frames are logged without content
and counted by reason. Requests are correlated to replies by `corr_id`, so many can be
in flight. Heartbeats keep liveness; a restarted peer is recovered by a new handshake:

* initiator restarts: it sends `hello`; the responder switches on the first message of
  the new session (old-session requests fail with `SessionReset`);
* responder restarts: it answers the initiator's next (stale-session) message with an
  authenticated `reset` naming that session; the initiator then handshakes again;
* silence longer than `peer_timeout_s`: the initiator handshakes again.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from typing import ClassVar, Protocol, Self, TypeVar

import structlog
import zmq
import zmq.asyncio

from qkdnode.channel.config import ChannelConfig, HmacAuthConfig
from qkdnode.channel.counters import ChannelCounters, LogLimiter
from qkdnode.channel.envelope import NO_SESSION, Envelope, Kind, decode, max_frame_bytes
from qkdnode.channel.errors import (
    AuthenticationFailed,
    AuthKeyPoolExhausted,
    ChannelClosed,
    ChannelError,
    ChannelKeyExhausted,
    MalformedMessage,
    PadReused,
    PadUnavailable,
    RemoteError,
    RequestTimeout,
    SessionReset,
)
from qkdnode.channel.keyfile import load_key_file
from qkdnode.channel.keypool import LinkKeyPools
from qkdnode.channel.mac import (
    HMAC_KEY_MIN_BYTES,
    WC_HASH_KEY_BYTES,
    HmacSha256Mac,
    MacScheme,
    WegmanCarterMac,
)
from qkdnode.channel.session import NONCE_BYTES, Session, derive_session_id

log = structlog.get_logger(__name__)

HELLO = "_ch.hello"
HELLO_ACK = "_ch.hello_ack"
RESET = "_ch.reset"
PING = "_ch.ping"
_MAX_PENDING_HANDSHAKES = 4

RequestHandler = Callable[[bytes], Awaitable[bytes]]
MessageHandler = Callable[[bytes], Awaitable[None]]


class ChannelState(enum.StrEnum):
    """Where a channel is; derived from its session, peer liveness and key pool."""

    CONNECTING = "connecting"  # no session yet: handshaking
    ESTABLISHED = "established"  # session up, peer heard within peer_timeout_s
    PEER_DOWN = "peer_down"  # session exists but the peer is silent
    KEY_EXHAUSTED = "key_exhausted"  # cannot sign: authentication key pool empty
    CLOSED = "closed"


class Payload(Protocol):
    """A typed protocol message: its wire type name and opaque payload codec."""

    TYPE: ClassVar[str]

    def to_payload(self) -> bytes: ...

    @classmethod
    def from_payload(cls, data: bytes) -> Self: ...


P = TypeVar("P", bound=Payload)
Q = TypeVar("Q", bound=Payload)


def build_mac_scheme(config: ChannelConfig) -> MacScheme:
    """The MAC scheme the config names, with its keys loaded (files must be owner-only)."""
    auth = config.auth
    if isinstance(auth, HmacAuthConfig):
        return HmacSha256Mac(load_key_file(auth.key_file, HMAC_KEY_MIN_BYTES))
    hash_key = load_key_file(auth.hash_key_file, WC_HASH_KEY_BYTES)
    pools = LinkKeyPools.open(auth.pool_dir, config.link_id, config.role, config.peer_role)
    return WegmanCarterMac(hash_key, pools)


class Channel:
    """One end of an authenticated link. Use `async with Channel.from_config(cfg) as ch:`."""

    def __init__(self, config: ChannelConfig, mac: MacScheme) -> None:
        self.config = config
        self.counters = ChannelCounters()
        self._reject_log_budget = LogLimiter()
        self._mac = mac
        self._initiator = config.mode == "connect"
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handler_slots = asyncio.Semaphore(config.max_concurrent_handlers)
        self._send_lock = asyncio.Lock()
        self._request_handlers: dict[str, RequestHandler] = {}
        self._message_handlers: dict[str, MessageHandler] = {}
        self._pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        self._corr = itertools.count(1)
        self._session: Session | None = None
        self._established = asyncio.Event()
        self._peer_ident: bytes | None = None
        self._hello_nonces: deque[bytes] = deque(maxlen=_MAX_PENDING_HANDSHAKES)  # hellos awaiting an ack
        self._pending_sessions: dict[bytes, Session] = {}
        self._last_rx = 0.0
        self._last_tx = 0.0
        self._last_hello = float("-inf")
        self._hello_backoff = config.handshake_retry_s
        self._last_reset = float("-inf")
        self._key_exhausted = False
        self._closed = False
        self._reported_state: ChannelState | None = None
        self._log = log.bind(link=config.link_id, role=config.role, peer=config.peer_role)

    @classmethod
    def from_config(cls, config: ChannelConfig) -> Channel:
        """Build a channel and its MAC scheme from config (raises `KeyFileError` on bad key files)."""
        return cls(config, build_mac_scheme(config))

    def __repr__(self) -> str:
        return f"Channel(link={self.config.link_id!r}, role={self.config.role!r}, state={self.state.value})"

    # --- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Open the socket (bind or connect) and start the receive and maintenance loops."""
        cfg = self.config
        # inproc:// peers must share a context (the links of a simulated link in one process)
        self._ctx = zmq.asyncio.Context.instance() if cfg.endpoint.startswith("inproc://") else zmq.asyncio.Context()
        sock = self._ctx.socket(zmq.DEALER if self._initiator else zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, cfg.send_hwm)
        sock.setsockopt(zmq.RCVHWM, cfg.recv_hwm)
        sock.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes(cfg.max_payload_bytes))
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        self._sock = sock
        try:
            if self._initiator:
                sock.setsockopt(zmq.ROUTING_ID, f"{cfg.role}-{secrets.token_hex(4)}".encode())
                sock.connect(cfg.endpoint)
            else:
                sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
                sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
                sock.bind(cfg.endpoint)
        except zmq.ZMQError as exc:
            await self.close()
            raise ChannelError(f"cannot {cfg.mode} {cfg.endpoint}: {exc.strerror}") from None
        loop = asyncio.get_running_loop()
        self._last_rx = self._last_tx = loop.time()
        self._spawn(self._receive_loop())
        self._spawn(self._maintenance_loop())
        self._log.info("channel_started", endpoint=cfg.endpoint, mode=cfg.mode, scheme=self._mac.name)

    async def close(self) -> None:
        """Stop loops and handlers, fail pending requests with `ChannelClosed`, close at once."""
        if self._closed:
            return
        self._closed = True
        self._established.set()  # wake waiters; they see the channel closed
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fail_pending(None, ChannelClosed("channel closed"))
        if self._sock is not None:
            self._sock.close(linger=0)
        if self._ctx is not None and self._ctx is not zmq.asyncio.Context.instance():
            self._ctx.term()
        self._mac.close()
        self._log.info("channel_closed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- public API ---------------------------------------------------------

    @property
    def state(self) -> ChannelState:
        if self._closed:
            return ChannelState.CLOSED
        if self._key_exhausted:
            return ChannelState.KEY_EXHAUSTED
        if self._session is None:
            return ChannelState.CONNECTING
        if not self.peer_alive:
            return ChannelState.PEER_DOWN
        return ChannelState.ESTABLISHED

    @property
    def peer_alive(self) -> bool:
        """True if an authenticated in-session message arrived within `peer_timeout_s`."""
        if self._session is None:
            return False
        return asyncio.get_running_loop().time() - self._last_rx <= self.config.peer_timeout_s

    def on_request(self, msg_type: str, handler: RequestHandler) -> None:
        """Answer requests of `msg_type` with `await handler(payload) -> reply payload`."""
        self._request_handlers[msg_type] = handler

    def on_message(self, msg_type: str, handler: MessageHandler) -> None:
        """Deliver one-way messages of `msg_type` to `await handler(payload)`."""
        self._message_handlers[msg_type] = handler

    def on_request_msg(self, req_type: type[Q], handler: Callable[[Q], Awaitable[Payload]]) -> None:
        """Typed `on_request`: decode with `req_type.from_payload`, encode the reply with `to_payload`."""

        async def raw(payload: bytes) -> bytes:
            return (await handler(req_type.from_payload(payload))).to_payload()

        self.on_request(req_type.TYPE, raw)

    async def wait_established(self, timeout: float | None = None) -> None:
        """Wait (s) until a session with the peer is established; `ChannelClosed` if closed meanwhile."""
        async with asyncio.timeout(timeout):
            await self._established.wait()
        if self._closed:
            raise ChannelClosed("channel closed")

    async def send(self, msg_type: str, payload: bytes, timeout: float | None = None) -> None:
        """Send a one-way message in the current session (waits for one, up to `timeout` s)."""
        async with asyncio.timeout(timeout or self.config.request_timeout_s):
            session = await self._current_session()
            await self._send(Kind.MESSAGE, msg_type, payload, 0, session)

    async def request(self, msg_type: str, payload: bytes, timeout: float | None = None) -> bytes:
        """Send a request and return the reply payload.

        Raises `RequestTimeout` (no session or no reply within `timeout` s, default
        `request_timeout_s`), `SessionReset`, `RemoteError`, `ChannelKeyExhausted`,
        `ChannelClosed`.
        """
        limit = timeout or self.config.request_timeout_s
        corr = next(self._corr)
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(limit):
                session = await self._current_session()
                self._pending[corr] = (fut, session.session_id)
                await self._send(Kind.REQUEST, msg_type, payload, corr, session)
                self.counters.requests_sent += 1
                return await fut
        except TimeoutError:
            self.counters.requests_timed_out += 1
            raise RequestTimeout(f"no reply to {msg_type} within {limit} s") from None
        finally:
            self._pending.pop(corr, None)

    async def request_msg(self, msg: Payload, reply_type: type[P], timeout: float | None = None) -> P:
        """Typed `request`: send `msg.to_payload()`, decode the reply with `reply_type.from_payload`."""
        return reply_type.from_payload(await self.request(msg.TYPE, msg.to_payload(), timeout))

    def replenish(self, key: bytes, key_id: str) -> bool:
        """Add final-key bytes to the authentication key pools; see `LinkKeyPools.replenish`."""
        if not isinstance(self._mac, WegmanCarterMac):
            raise ChannelError(f"scheme {self._mac.name} uses no authentication key pool")
        added = self._mac.pools.replenish(key, key_id)
        self._key_exhausted = False
        self._report_state()
        return added

    def status(self) -> dict[str, object]:
        """State, session, liveness, counters and authentication key use (no key material)."""
        loop = asyncio.get_running_loop()
        return {
            "link_id": self.config.link_id,
            "role": self.config.role,
            "peer_role": self.config.peer_role,
            "mode": self.config.mode,
            "scheme": self._mac.name,
            "state": self.state.value,
            "session": self._session.short_id if self._session else None,
            "peer_alive": self.peer_alive,
            "last_rx_age_s": round(loop.time() - self._last_rx, 3),
            "requests_in_flight": len(self._pending),
            "counters": self.counters.snapshot(),
            "auth_key_bits_consumed": self._mac.key_bits(),
            "auth_pool_bytes_available": self._mac.pool_bytes(),
        }

    # --- sending ------------------------------------------------------------

    async def _current_session(self) -> Session:
        while True:
            if self._closed:
                raise ChannelClosed("channel closed")
            if self._key_exhausted:
                raise ChannelKeyExhausted(f"link {self.config.link_id}: authentication key pool exhausted")
            if self._session is not None:
                return self._session
            await self._established.wait()

    async def _send(
        self,
        kind: Kind,
        msg_type: str,
        payload: bytes,
        corr_id: int,
        session: Session | None,
        ident: bytes | None = None,
    ) -> None:
        """Sign and send one envelope; seq assignment, signing and sending happen in one order."""
        if self._sock is None or self._closed:
            raise ChannelClosed("channel not started or closed")
        async with self._send_lock:
            env = Envelope(
                kind=kind,
                sender=self.config.role,
                link_id=self.config.link_id,
                session_id=session.session_id if session else NO_SESSION,
                seq=session.next_seq() if session else 0,
                corr_id=corr_id,
                msg_type=msg_type,
                payload=payload,
            )
            signed = env.signed_bytes()
            try:
                tag = self._mac.sign(signed)
            except AuthKeyPoolExhausted as exc:
                self._key_exhausted = True
                self._report_state()
                raise ChannelKeyExhausted(str(exc)) from None
            frame = signed + bytes([len(tag)]) + tag
            frames = [frame]
            if not self._initiator:
                target = ident if ident is not None else self._peer_ident
                if target is None:
                    self.counters.send_failures += 1
                    raise ChannelError("peer has not connected yet")
                frames.insert(0, target)
            try:
                await self._sock.send_multipart(frames)
            except zmq.ZMQError as exc:
                self.counters.send_failures += 1
                raise ChannelError(f"send failed: {exc.strerror}") from None
            self.counters.sent += 1
            self._last_tx = asyncio.get_running_loop().time()

    async def _send_control(self, msg_type: str, payload: bytes, session: Session | None, ident: bytes | None = None) -> None:
        """Send a channel-control envelope; failures (and a full queue) are logged, never raised."""
        try:
            async with asyncio.timeout(self.config.heartbeat_interval_s):
                await self._send(Kind.CONTROL, msg_type, payload, 0, session, ident)
        except (ChannelError, TimeoutError) as exc:
            self._log.debug("control_send_failed", msg_type=msg_type, error=type(exc).__name__)

    # --- receiving ----------------------------------------------------------

    async def _receive_loop(self) -> None:
        assert self._sock is not None
        while True:
            frames = await self._sock.recv_multipart()
            ident: bytes | None = None
            if not self._initiator:
                if len(frames) != 2:
                    self._reject("bad_field", None, frames_count=len(frames))
                    continue
                ident = frames[0]
            elif len(frames) != 1:
                self._reject("bad_field", None, frames_count=len(frames))
                continue
            try:
                await self._on_frame(frames[-1], ident)
            except Exception as exc:  # noqa: BLE001 -- one bad frame must never stop the link
                self._reject("internal_error", None, error=type(exc).__name__)

    def _reject(self, reason: str, env: Envelope | None, **extra: object) -> None:
        """Count and log a rejected frame: type, sender, seq and reason only (log lines rate-limited)."""
        self.counters.rejected[reason] += 1
        log_it, suppressed = self._reject_log_budget.allow(reason, asyncio.get_running_loop().time())
        if suppressed:
            self._log.warning("message_rejected_suppressed", reason=reason, count=suppressed)
        if not log_it:
            return
        if env is None:
            self._log.warning("message_rejected", reason=reason, **extra)
        else:
            self._log.warning(
                "message_rejected",
                reason=reason,
                msg_type=env.msg_type,
                kind=env.kind.name,
                sender=env.sender,
                seq=env.seq,
                session=env.session_id.hex()[:8],
                **extra,
            )

    def _authentic(self, env: Envelope, signed: bytes) -> bool:
        try:
            self._mac.verify(signed, env.tag)
        except AuthenticationFailed:
            self._reject("bad_mac", env)
            return False
        except PadReused:
            self._reject("replay", env)
            return False
        except PadUnavailable:
            self._reject("pad_unavailable", env)
            return False
        return True

    async def _on_frame(self, data: bytes, ident: bytes | None) -> None:
        try:
            env, signed = decode(data, self.config.max_payload_bytes)
        except MalformedMessage as exc:
            self._reject(exc.reason, None, frame_bytes=len(data))
            return
        if env.link_id != self.config.link_id:
            self._reject("wrong_link", env)
            return
        if env.sender != self.config.peer_role:
            self._reject("wrong_sender", env)
            return
        if env.session_id == NO_SESSION:
            if env.kind is not Kind.CONTROL or env.seq != 0:
                self._reject("bad_field", env)
            elif self._authentic(env, signed):
                await self._on_handshake(env, ident)
            return
        session = self._session_for(env)
        if session is None:
            if not self._initiator and self._authentic(env, signed):
                self._reject("unknown_session", env)
                await self._send_reset(env.session_id, ident)
            elif self._initiator:
                self._reject("unknown_session", env)
            return
        reason = session.rx.classify(env.seq)
        if reason is not None:
            self._reject(reason, env)
            return
        if not self._authentic(env, signed):
            return
        self.counters.seq_gaps += session.rx.accept(env.seq)
        self.counters.accepted += 1
        if session is not self._session:
            self._promote(session)
        if ident is not None:
            self._peer_ident = ident
        self._last_rx = asyncio.get_running_loop().time()
        self._report_state()
        self._dispatch(env, session)

    def _session_for(self, env: Envelope) -> Session | None:
        if self._session is not None and env.session_id == self._session.session_id:
            return self._session
        return self._pending_sessions.get(env.session_id)

    def _dispatch(self, env: Envelope, session: Session) -> None:
        if env.kind is Kind.CONTROL:
            if env.msg_type != PING:
                self._reject("unknown_type", env)
        elif env.kind in (Kind.REPLY, Kind.ERROR_REPLY):
            entry = self._pending.get(env.corr_id)
            if entry is None or entry[1] != session.session_id or entry[0].done():
                self._reject("unexpected_reply", env)
            elif env.kind is Kind.REPLY:
                entry[0].set_result(env.payload)
            else:
                self.counters.remote_errors += 1
                error = env.payload.decode("ascii", "replace")
                entry[0].set_exception(RemoteError(f"peer's {env.msg_type} handler failed: {error}"))
        elif env.kind is Kind.REQUEST:
            handler = self._request_handlers.get(env.msg_type)
            if handler is None:
                self._reject("unknown_type", env)
            self._spawn(self._serve_request(env, session, handler))
        else:
            message_handler = self._message_handlers.get(env.msg_type)
            if message_handler is None:
                self._reject("unknown_type", env)
            else:
                self._spawn(self._serve_message(env, message_handler))

    async def _serve_request(self, env: Envelope, session: Session, handler: RequestHandler | None) -> None:
        async with self._handler_slots:
            kind, reply = Kind.REPLY, b""
            if handler is None:
                kind, reply = Kind.ERROR_REPLY, b"UnknownMessageType"
            else:
                try:
                    reply = await handler(env.payload)
                except Exception as exc:  # noqa: BLE001 -- any handler failure becomes an error reply
                    self.counters.handler_errors += 1
                    self._log.warning("request_handler_failed", msg_type=env.msg_type, seq=env.seq, error=type(exc).__name__)
                    kind, reply = Kind.ERROR_REPLY, type(exc).__name__.encode("ascii", "replace")
            if session is not self._session:
                return
            try:
                await self._send(kind, env.msg_type, reply, env.corr_id, session)
            except ChannelError as exc:
                self._log.warning("reply_send_failed", msg_type=env.msg_type, error=type(exc).__name__)

    async def _serve_message(self, env: Envelope, handler: MessageHandler) -> None:
        async with self._handler_slots:
            try:
                await handler(env.payload)
            except Exception as exc:  # noqa: BLE001 -- a failing handler must not stop the link
                self.counters.handler_errors += 1
                self._log.warning("message_handler_failed", msg_type=env.msg_type, seq=env.seq, error=type(exc).__name__)

    # --- handshake ----------------------------------------------------------

    async def _on_handshake(self, env: Envelope, ident: bytes | None) -> None:
        cfg = self.config
        if not self._initiator and env.msg_type == HELLO and len(env.payload) == NONCE_BYTES:
            n_r = secrets.token_bytes(NONCE_BYTES)
            sid = derive_session_id(cfg.link_id, cfg.peer_role, cfg.role, env.payload, n_r)
            self._pending_sessions[sid] = Session(sid)
            while len(self._pending_sessions) > _MAX_PENDING_HANDSHAKES:
                self._pending_sessions.pop(next(iter(self._pending_sessions)))
            await self._send_control(HELLO_ACK, env.payload + n_r, None, ident)
        elif self._initiator and env.msg_type == HELLO_ACK and len(env.payload) == 2 * NONCE_BYTES:
            n_i, n_r = env.payload[:NONCE_BYTES], env.payload[NONCE_BYTES:]
            if n_i not in self._hello_nonces:
                self._reject("stale_handshake", env)
                return
            self._hello_nonces.clear()
            self._promote(Session(derive_session_id(cfg.link_id, cfg.role, cfg.peer_role, n_i, n_r)))
            await self._send_control(PING, b"", self._session)
        elif self._initiator and env.msg_type == RESET and len(env.payload) == len(NO_SESSION):
            if self._session is None or env.payload != self._session.session_id:
                self._reject("stale_handshake", env)
                return
            self._end_session("peer lost the session (restart)")
            self._last_hello = float("-inf")
            self._hello_backoff = cfg.handshake_retry_s
        else:
            self._reject("bad_field", env)

    def _promote(self, session: Session) -> None:
        """Make `session` current: older sessions end and their requests fail."""
        if self._session is not None:
            self._end_session("superseded by a new session")
        self._pending_sessions.clear()
        self._session = session
        self._last_rx = asyncio.get_running_loop().time()
        self._established.set()
        self._hello_backoff = self.config.handshake_retry_s
        self.counters.sessions_established += 1
        self._log.info("session_established", session=session.short_id)
        self._report_state()

    def _end_session(self, why: str) -> None:
        old = self._session
        if old is None:
            return
        self._session = None
        self._established.clear()
        self.counters.sessions_reset += 1
        self._fail_pending(old.session_id, SessionReset(f"session {old.short_id} ended: {why}"))
        self._log.warning("session_ended", session=old.short_id, why=why)
        self._report_state()

    def _fail_pending(self, session_id: bytes | None, exc: ChannelError) -> None:
        for fut, sid in list(self._pending.values()):
            if not fut.done() and (session_id is None or sid == session_id):
                fut.set_exception(exc)

    async def _send_reset(self, stale_session: bytes, ident: bytes | None) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_reset < self.config.handshake_retry_s:
            return
        self._last_reset = now
        await self._send_control(RESET, stale_session, None, ident)

    # --- maintenance --------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        cfg = self.config
        tick = min(cfg.heartbeat_interval_s, cfg.handshake_retry_s) / 4
        loop = asyncio.get_running_loop()
        while True:
            self._report_state()
            now = loop.time()
            if not self._key_exhausted:
                alive = self.peer_alive
                if self._initiator and not alive and now - self._last_hello >= self._hello_backoff:
                    self._last_hello = now
                    self._hello_backoff = min(2 * self._hello_backoff, cfg.handshake_retry_max_s)
                    nonce = secrets.token_bytes(NONCE_BYTES)
                    self._hello_nonces.append(nonce)
                    await self._send_control(HELLO, nonce, None)
                elif alive and now - self._last_tx >= cfg.heartbeat_interval_s:
                    await self._send_control(PING, b"", self._session)
            await asyncio.sleep(tick)

    def _report_state(self) -> None:
        state = self.state
        if state is not self._reported_state:
            self._log.info("channel_state", state=state.value, previous=getattr(self._reported_state, "value", None))
            self._reported_state = state

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("channel_task_failed", error=type(task.exception()).__name__)
