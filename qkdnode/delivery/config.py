"""Config of one KME (key management entity) serving ETSI GS QKD 014 keys for one link.

A KME config file (TOML) has three tables; `[link]` must be identical at both nodes (it fixes
key_IDs and which SAE pair owns which key unit), `[kme]` and `[tls]` are per node::

    [kme]                       # this node's KME
    id = "KME_A"
    store_dir = "store-KME_A"   # relative paths are relative to this file
    inbox_dir = "inbox-KME_A"   # optional: blocks queued by the distillation worker
    listen_host = "127.0.0.1"
    listen_port = 8443

    [tls]
    cert = "KME_A.crt"          # server certificate (PEM) and its key
    key = "KME_A.key"
    client_ca = "ca.crt"        # CA that signs the SAE client certificates

    [link]
    link_id = "alice-bob"
    key_size_bits = 256
    kmes = { KME_A = ["SAE_A"], KME_B = ["SAE_B"] }   # which SAE is attached to which KME
    sae_pairs = [ { master = "SAE_A", slave = "SAE_B" }, { master = "SAE_B", slave = "SAE_A" } ]
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from qkdnode.config_base import NAME_PATTERN, ConfigError, Strict
from qkdnode.keystore import SaePair


class SaePairSection(Strict):
    """Keys of this pair go to `master` (enc_keys at its KME) and `slave` (dec_keys at its KME)."""

    master: str = Field(pattern=NAME_PATTERN)
    slave: str = Field(pattern=NAME_PATTERN)
    weight: int = Field(1, ge=1, le=1000, description="share of new key units given to this pair")


class LinkKeysSection(Strict):
    """Key delivery layout of one link; must be identical in both nodes' configs."""

    link_id: str = Field(pattern=NAME_PATTERN)
    key_size_bits: int = Field(256, ge=64, le=8192, multiple_of=8, description="size of every key, bits")
    kmes: dict[str, list[str]] = Field(description="KME ID -> IDs of the SAEs attached to it")
    sae_pairs: list[SaePairSection] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_layout(self) -> "LinkKeysSection":
        if len(self.kmes) != 2:
            raise ValueError("kmes must name exactly the two KMEs of the link")
        owner: dict[str, str] = {}
        for kme, saes in self.kmes.items():
            for sae in saes:
                if not _is_name(kme) or not _is_name(sae):
                    raise ValueError(f"KME and SAE IDs must match {NAME_PATTERN}: {kme!r}, {sae!r}")
                if sae in owner:
                    raise ValueError(f"SAE {sae!r} is attached to both {owner[sae]!r} and {kme!r}")
                owner[sae] = kme
        seen: set[tuple[str, str]] = set()
        for pair in self.sae_pairs:
            for sae in (pair.master, pair.slave):
                if sae not in owner:
                    raise ValueError(f"SAE {sae!r} of a pair is not attached to any KME in kmes")
            if owner[pair.master] == owner[pair.slave]:
                raise ValueError(f"pair {pair.master}->{pair.slave}: both SAEs are at the same KME")
            if (pair.master, pair.slave) in seen:
                raise ValueError(f"pair {pair.master}->{pair.slave} is listed twice")
            seen.add((pair.master, pair.slave))
        return self

    def kme_of(self, sae: str) -> str | None:
        """The KME an SAE is attached to, or None if the SAE is unknown."""
        return next((kme for kme, saes in self.kmes.items() if sae in saes), None)

    def store_pairs(self) -> list[tuple[SaePair, int]]:
        """The ordered (pair, weight) list for `KeyStore.open`."""
        return [(SaePair(p.master, p.slave), p.weight) for p in self.sae_pairs]

    def has_pair(self, master: str, slave: str) -> bool:
        """True if keys flow from `master` to `slave` on this link."""
        return any(p.master == master and p.slave == slave for p in self.sae_pairs)


class KmeSection(Strict):
    """This node's KME: identity, key store and HTTPS listener."""

    id: str = Field(pattern=NAME_PATTERN)
    store_dir: Path
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(8443, ge=0, le=65535)
    max_key_count: int = Field(100_000, ge=1, description="store capacity, keys (units)")
    max_keys_per_request: int = Field(128, ge=1, le=10_000)
    inbox_dir: Path | None = Field(None, description="blocks queued by the distillation worker (KeyInbox)")
    inbox_poll_s: float = Field(0.5, gt=0, le=60, description="period of inbox imports, s")

    @model_validator(mode="after")
    def _separate_dirs(self) -> "KmeSection":
        if self.inbox_dir is not None and self.inbox_dir == self.store_dir:
            raise ValueError("inbox_dir must differ from store_dir")
        return self


class TlsSection(Strict):
    """Server certificate and the CA that signs client (SAE) certificates, PEM files."""

    cert: Path
    key: Path
    client_ca: Path


class KmeConfig(Strict):
    """Whole KME config file."""

    kme: KmeSection
    tls: TlsSection
    link: LinkKeysSection

    @model_validator(mode="after")
    def _check_kme(self) -> "KmeConfig":
        if self.kme.id not in self.link.kmes:
            raise ValueError(f"kme.id {self.kme.id!r} is not one of link.kmes {sorted(self.link.kmes)}")
        return self

    @property
    def local_saes(self) -> list[str]:
        """SAEs attached to this KME (the only ones that may call it)."""
        return self.link.kmes[self.kme.id]


def _is_name(text: str) -> bool:
    return re.fullmatch(NAME_PATTERN, text) is not None


def load_kme_config(path: Path | str) -> KmeConfig:
    """Read and validate a KME config; relative paths become relative to the file's folder.

    Raises qkdnode.config.ConfigError naming the file, the key path and the reason.
    """
    path = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, [("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(path, [("", f"cannot read: {exc.strerror or exc}")]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, [("", f"invalid TOML: {exc}")]) from None
    try:
        config = KmeConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in err["loc"]), "unknown key (misspelled?)" if err["type"] == "extra_forbidden"
             else "required key is missing" if err["type"] == "missing" else str(err["msg"]))
            for err in exc.errors()
        ]
        raise ConfigError(path, problems) from None
    base = path.resolve().parent
    return config.model_copy(
        update={
            "kme": config.kme.model_copy(update={
                "store_dir": base / config.kme.store_dir,
                "inbox_dir": None if config.kme.inbox_dir is None else base / config.kme.inbox_dir,
            }),
            "tls": TlsSection(
                cert=base / config.tls.cert, key=base / config.tls.key, client_ca=base / config.tls.client_ca
            ),
        }
    )


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_kme_config(config: KmeConfig) -> str:
    """TOML text of a KME config (paths written as given), loadable by `load_kme_config`."""
    k, t, link = config.kme, config.tls, config.link
    lines = [
        "[kme]",
        f"id = {_toml_str(k.id)}",
        f"store_dir = {_toml_str(str(k.store_dir))}",
        f"listen_host = {_toml_str(k.listen_host)}",
        f"listen_port = {k.listen_port}",
        f"max_key_count = {k.max_key_count}",
        f"max_keys_per_request = {k.max_keys_per_request}",
        *([f"inbox_dir = {_toml_str(str(k.inbox_dir))}", f"inbox_poll_s = {k.inbox_poll_s}"]
          if k.inbox_dir is not None else []),
        "",
        "[tls]",
        f"cert = {_toml_str(str(t.cert))}",
        f"key = {_toml_str(str(t.key))}",
        f"client_ca = {_toml_str(str(t.client_ca))}",
        "",
        "[link]  # identical at both nodes",
        f"link_id = {_toml_str(link.link_id)}",
        f"key_size_bits = {link.key_size_bits}",
        "",
        "[link.kmes]",
        *(f"{_toml_str(kme)} = [{', '.join(_toml_str(s) for s in saes)}]" for kme, saes in link.kmes.items()),
    ]
    for pair in link.sae_pairs:
        lines += ["", "[[link.sae_pairs]]", f"master = {_toml_str(pair.master)}",
                  f"slave = {_toml_str(pair.slave)}", f"weight = {pair.weight}"]
    return "\n".join(lines) + "\n"
