"""Key delivery commands: `pki init` (test CA, certificates, KME configs), `serve-keys` (ETSI
GS QKD 014 API with mutual TLS) and `keys fill-test` (random test keys into both stores)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import ssl
import sys
import uuid
from pathlib import Path

from qkdnode.config import ConfigError
from qkdnode.delivery.config import (
    KmeConfig,
    KmeSection,
    LinkKeysSection,
    SaePairSection,
    TlsSection,
    load_kme_config,
    render_kme_config,
)
from qkdnode.delivery.server import open_inbox, open_store, serve_forever
from qkdnode.keystore import KeyStoreError
from qkdnode.keystore.durable import atomic_write
from qkdnode.pki import DEFAULT_DNS, DEFAULT_IPS, init_link_pki


def register(subparsers: argparse._SubParsersAction) -> None:
    pki = subparsers.add_parser("pki", help="test PKI for the key delivery API")
    pki_sub = pki.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    init = pki_sub.add_parser(
        "init", help="create a test CA, KME and SAE certificates and the two KME configs of a link"
    )
    init.add_argument("--link", required=True, help="link id (same as node.link_id)")
    init.add_argument("--out", required=True, type=Path, help="output directory (created 0700)")
    init.add_argument("--kme-a", default="KME_A", help="ID of the first KME (default KME_A)")
    init.add_argument("--kme-b", default="KME_B", help="ID of the second KME (default KME_B)")
    init.add_argument("--sae-a", action="append", help="SAE attached to KME A (repeatable; default SAE_A)")
    init.add_argument("--sae-b", action="append", help="SAE attached to KME B (repeatable; default SAE_B)")
    init.add_argument("--port-a", type=int, default=8443, help="HTTPS port of KME A (default 8443)")
    init.add_argument("--port-b", type=int, default=8444, help="HTTPS port of KME B (default 8444)")
    init.add_argument("--dns", action="append", help=f"DNS name in KME certificates (default {DEFAULT_DNS})")
    init.add_argument("--ip", action="append", help=f"IP address in KME certificates (default {DEFAULT_IPS})")
    init.add_argument("--days", type=int, default=365, help="certificate validity, days")
    init.add_argument("--key-size", type=int, default=256, help="key size, bits (default 256)")
    init.set_defaults(func=run_pki_init)

    serve = subparsers.add_parser("serve-keys", help="serve the ETSI GS QKD 014 key delivery API of one KME")
    serve.add_argument("--config", required=True, type=Path, metavar="FILE", help="KME config (TOML)")
    serve.set_defaults(func=run_serve)

    keys = subparsers.add_parser("keys", help="key store utilities")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    fill = keys_sub.add_parser(
        "fill-test",
        help="add the same random test blocks to both KMEs' stores (for trying the API; not QKD keys)",
    )
    fill.add_argument("--config", required=True, type=Path, action="append", metavar="FILE",
                      help="KME config; give both KMEs of the link")
    fill.add_argument("--blocks", type=int, default=4, help="blocks to add (default 4)")
    fill.add_argument("--block-bytes", type=int, default=1024, help="bytes per block (default 1024)")
    fill.set_defaults(func=run_fill_test)


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run_pki_init(args: argparse.Namespace) -> int:
    saes = {args.kme_a: args.sae_a or ["SAE_A"], args.kme_b: args.sae_b or ["SAE_B"]}
    out: Path = args.out
    pairs = [SaePairSection(master=m, slave=s) for a in saes[args.kme_a] for b in saes[args.kme_b]
             for m, s in ((a, b), (b, a))]
    try:
        link = LinkKeysSection(link_id=args.link, key_size_bits=args.key_size, kmes=saes, sae_pairs=pairs)
        configs = {
            kme: KmeConfig(
                kme=KmeSection(id=kme, store_dir=Path(f"store-{kme}"), inbox_dir=Path(f"inbox-{kme}"),
                               listen_port=port),
                tls=TlsSection(cert=Path(f"{kme}.crt"), key=Path(f"{kme}.key"), client_ca=Path("ca.crt")),
                link=link,
            )
            for kme, port in ((args.kme_a, args.port_a), (args.kme_b, args.port_b))
        }
    except ValueError as exc:
        return _fail(f"pki init: {str(exc).splitlines()[-1].strip()}", 2)
    for kme in configs:
        if (out / f"{kme}.toml").exists():
            return _fail(f"refusing to overwrite {out / f'{kme}.toml'}", 2)
    try:
        pki = init_link_pki(out, args.link, saes, dns_names=args.dns or DEFAULT_DNS,
                            ip_addresses=args.ip or DEFAULT_IPS, days=args.days)
    except (ValueError, OSError) as exc:
        return _fail(f"pki init: {exc}", 2)
    for kme, config in configs.items():
        atomic_write(out / f"{kme}.toml", render_kme_config(config).encode())
    print(f"CA:        {pki.ca_cert}")
    for kme, (cert, _) in pki.kmes.items():
        print(f"KME {kme}: {cert} (server), config {out / f'{kme}.toml'}")
    for sae, (cert, key) in pki.saes.items():
        print(f"SAE {sae}: {cert} {key} (client)")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    config = load_kme_config(args.config)
    try:
        asyncio.run(serve_forever(config))
    except KeyStoreError as exc:
        return _fail(f"{args.config}: kme.store_dir: {exc}")
    except PermissionError as exc:
        return _fail(f"{args.config}: kme.store_dir: {exc}")
    except (ssl.SSLError, FileNotFoundError) as exc:
        return _fail(f"{args.config}: tls: {exc}", 2)
    except OSError as exc:
        return _fail(f"{args.config}: kme.listen_host/listen_port: {exc.strerror or exc}", 2)
    return 0


def run_fill_test(args: argparse.Namespace) -> int:
    configs = [load_kme_config(path) for path in args.config]
    if len(configs) != 2 or configs[0].kme.id == configs[1].kme.id:
        return _fail("keys fill-test: give --config for each of the two KMEs of the link", 2)
    if configs[0].link != configs[1].link:
        raise ConfigError(args.config[1], [("link", f"differs from the [link] table of {args.config[0]}")])
    blocks = [(f"test-{uuid.uuid4()}", secrets.token_bytes(args.block_bytes)) for _ in range(args.blocks)]
    try:
        if all(c.kme.inbox_dir is not None for c in configs):
            inboxes = [open_inbox(c) for c in configs]
            for block_id, key in blocks:
                for inbox in inboxes:
                    inbox.add_block(block_id, key)
            print(f"queued {len(blocks)} test blocks ({args.block_bytes} bytes each) in both KMEs' inboxes; "
                  "a running KME imports them within a second, a stopped one when it starts")
            return 0
        stores = [open_store(c) for c in configs]
        try:
            needed = args.block_bytes * 8 // configs[0].link.key_size_bits * len(blocks)
            if any(s.free_units() < needed for s in stores):
                return _fail(f"keys fill-test: a store has room for fewer than {needed} more keys")
            for block_id, key in blocks:
                for store in stores:
                    store.add_block(block_id, key)
            per_pair = stores[0].stats().per_pair
        finally:
            for store in stores:
                store.close()
    except KeyStoreError as exc:
        return _fail(f"keys fill-test: {exc}")
    print(f"added {len(blocks)} test blocks to both stores; keys per SAE pair now:")
    for pair, count in per_pair.items():
        print(f"  {pair.master} -> {pair.slave}: {count}")
    return 0
