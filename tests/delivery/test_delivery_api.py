"""ETSI GS QKD 014 API over real mutual TLS on loopback, with an HTTPS client per SAE."""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
import pytest
import structlog
from delivery_helpers import KEY_BYTES, SAES, Link

from qkdnode.keystore import KeyInbox

ENC = "/api/v1/keys/{}/enc_keys"
DEC = "/api/v1/keys/{}/dec_keys"
STATUS = "/api/v1/keys/{}/status"


def keys_of(response: httpx.Response) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    return {k["key_ID"]: base64.b64decode(k["key"]) for k in response.json()["keys"]}


def assert_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], list)
    return body


async def test_status_reports_the_spec_fields(link, client):
    link.fill(8)
    response = await client("KME_A", "SAE_A").get(STATUS.format("SAE_B"))
    assert response.status_code == 200
    assert response.json() == {
        "source_KME_ID": "KME_A",
        "target_KME_ID": "KME_B",
        "master_SAE_ID": "SAE_A",
        "slave_SAE_ID": "SAE_B",
        "key_size": 8 * KEY_BYTES,
        "stored_key_count": link.servers["KME_A"].store.available("SAE_A", "SAE_B"),
        "max_key_count": 1000,
        "max_key_per_request": 16,
        "max_key_size": 8 * KEY_BYTES,
        "min_key_size": 8 * KEY_BYTES,
        "max_SAE_ID_count": 0,
    }
    assert response.json()["stored_key_count"] > 0


async def test_master_and_slave_get_the_same_keys_with_get_requests(link, client):
    link.fill(12)
    sent = keys_of(await client("KME_A", "SAE_A").get(ENC.format("SAE_B"), params={"number": 2}))
    assert len(sent) == 2 and all(len(k) == KEY_BYTES for k in sent.values())
    slave = client("KME_B", "SAE_B")
    for key_id, key in sent.items():
        assert keys_of(await slave.get(DEC.format("SAE_A"), params={"key_ID": key_id})) == {key_id: key}


async def test_master_and_slave_get_the_same_keys_with_post_requests(link, client):
    link.fill(12)
    sent = keys_of(await client("KME_B", "SAE_B").post(ENC.format("SAE_A"), json={
        "number": 3, "size": 8 * KEY_BYTES, "additional_slave_SAE_IDs": [], "extension_optional": [{"x": 1}]}))
    body = {"key_IDs": [{"key_ID": k} for k in sent]}
    assert keys_of(await client("KME_A", "SAE_A").post(DEC.format("SAE_B"), json=body)) == sent


async def test_enc_keys_defaults_to_one_key_of_the_link_size(link, client):
    link.fill(8)
    (key,) = keys_of(await client("KME_A", "SAE_A").get(ENC.format("SAE_B"))).values()
    assert len(key) == KEY_BYTES


async def test_no_key_is_delivered_twice(link, client):
    link.fill(12)
    master, slave = client("KME_A", "SAE_A"), client("KME_B", "SAE_B")
    first = keys_of(await master.get(ENC.format("SAE_B"), params={"number": 2}))
    second = keys_of(await master.get(ENC.format("SAE_B"), params={"number": 2}))
    assert not set(first) & set(second)
    ids = [{"key_ID": k} for k in first]
    assert keys_of(await slave.post(DEC.format("SAE_A"), json={"key_IDs": ids})) == first
    body = assert_error(await slave.post(DEC.format("SAE_A"), json={"key_IDs": ids}), 400)
    assert {d["key_ID"] for d in body["details"]} == set(first)


async def test_another_sae_cannot_fetch_a_key_reserved_for_a_pair(link, client):
    link.fill(12)
    sent = keys_of(await client("KME_A", "SAE_A").get(ENC.format("SAE_B")))
    (key_id,) = sent
    thief = client("KME_B", "SAE_B2")  # also a slave of SAE_A, but this key is for SAE_B
    assert_error(await thief.get(DEC.format("SAE_A"), params={"key_ID": key_id}), 400)
    master_at_wrong_kme = client("KME_A", "SAE_A")  # the master cannot pull it as a slave
    assert_error(await master_at_wrong_kme.get(DEC.format("SAE_B"), params={"key_ID": key_id}), 400)
    outsider = client("KME_B", "SAE_A")  # SAE_A is not attached to KME_B
    assert_error(await outsider.get(DEC.format("SAE_A"), params={"key_ID": key_id}), 401)
    assert keys_of(await client("KME_B", "SAE_B").get(DEC.format("SAE_A"), params={"key_ID": key_id})) == sent


async def test_sae_without_a_key_stream_to_the_other_is_unauthorised(link, client):
    link.fill(8)
    assert_error(await client("KME_A", "SAE_A2").get(ENC.format("SAE_B")), 401)
    assert_error(await client("KME_A", "SAE_A2").get(STATUS.format("SAE_B")), 401)
    assert_error(await client("KME_B", "SAE_B2").get(ENC.format("SAE_A")), 401)


async def test_certificate_of_a_kme_is_not_an_sae_identity(link, client):
    link.fill(8)
    body = assert_error(await client("KME_A", "KME_B").get(ENC.format("SAE_B")), 401)
    assert body["details"] == [{"KME_ID": "KME_A"}]


async def test_connection_without_client_certificate_is_rejected(link, client):
    with pytest.raises(httpx.TransportError):
        await client("KME_A", None).get(STATUS.format("SAE_B"))


async def test_client_certificate_from_another_ca_is_rejected(link, client):
    with pytest.raises(httpx.TransportError):
        await client("KME_A", "rogue").get(STATUS.format("SAE_B"))


async def test_empty_store_answers_503(link, client):
    master = client("KME_A", "SAE_A")
    body = assert_error(await master.get(ENC.format("SAE_B")), 503)
    assert body["details"] == [{"stored_key_count": 0, "requested": 1}]
    link.fill(4)
    available = link.servers["KME_A"].store.available("SAE_A", "SAE_B")
    assert_error(await master.get(ENC.format("SAE_B"), params={"number": available + 1}), 503)
    assert len(keys_of(await master.get(ENC.format("SAE_B"), params={"number": available}))) == available


@pytest.mark.parametrize(
    "method, body_or_params",
    [
        ("GET", {"number": 0}),
        ("GET", {"number": 17}),
        ("GET", {"number": "two"}),
        ("GET", {"size": 128}),
        ("GET", {"colour": "blue"}),
        ("POST", {"number": True}),
        ("POST", {"number": 1, "additional_slave_SAE_IDs": ["SAE_B2"]}),
        ("POST", {"number": 1, "extension_mandatory": [{"route": "x"}]}),
        ("POST", {"number": 1, "colour": "blue"}),
        ("POST", [1, 2]),
    ],
)
async def test_bad_enc_keys_requests_answer_400_and_deliver_nothing(link, client, method, body_or_params):
    link.fill(8)
    before = link.servers["KME_A"].store.available("SAE_A", "SAE_B")
    master = client("KME_A", "SAE_A")
    if method == "GET":
        response = await master.get(ENC.format("SAE_B"), params=body_or_params)
    else:
        response = await master.post(ENC.format("SAE_B"), json=body_or_params)
    assert_error(response, 400)
    assert link.servers["KME_A"].store.available("SAE_A", "SAE_B") == before


@pytest.mark.parametrize(
    "body",
    [
        {"key_IDs": []},
        {"key_IDs": ["not-an-object"]},
        {"key_IDs": [{"key_ID": "not-a-uuid"}]},
        {"keys": []},
    ],
)
async def test_bad_dec_keys_requests_answer_400(link, client, body):
    assert_error(await client("KME_B", "SAE_B").post(DEC.format("SAE_A"), json=body), 400)


async def test_invalid_json_body_answers_400(link, client):
    response = await client("KME_A", "SAE_A").post(
        ENC.format("SAE_B"), content=b"{number", headers={"content-type": "application/json"})
    assert_error(response, 400)


async def test_unknown_path_answers_with_an_etsi_error_body(link, client):
    assert_error(await client("KME_A", "SAE_A").get("/api/v1/keys/SAE_B/nothing"), 404)


async def test_keys_and_delivered_state_survive_a_kme_restart(link, client):
    link.fill(12)
    sent = keys_of(await client("KME_A", "SAE_A").get(ENC.format("SAE_B"), params={"number": 2}))
    used, kept = list(sent)
    slave = client("KME_B", "SAE_B")
    keys_of(await slave.get(DEC.format("SAE_A"), params={"key_ID": used}))
    await link.stop("KME_B")
    await link.start("KME_B")
    assert_error(await slave.get(DEC.format("SAE_A"), params={"key_ID": used}), 400)
    assert keys_of(await slave.get(DEC.format("SAE_A"), params={"key_ID": kept})) == {kept: sent[kept]}


async def test_concurrent_requests_never_share_a_key(link, client):
    link.fill(64)
    master = client("KME_A", "SAE_A")
    available = link.servers["KME_A"].store.available("SAE_A", "SAE_B")
    responses = await asyncio.gather(
        *(master.get(ENC.format("SAE_B"), params={"number": 2}) for _ in range(available // 2 + 3))
    )
    delivered = [k for r in responses if r.status_code == 200 for k in keys_of(r)]
    assert len(delivered) == len(set(delivered)) == available - available % 2
    assert sum(r.status_code == 503 for r in responses) >= 3


async def test_key_bytes_never_appear_in_logs(link, client):
    link.fill(8)
    with structlog.testing.capture_logs() as logs:
        sent = keys_of(await client("KME_A", "SAE_A").get(ENC.format("SAE_B"), params={"number": 2}))
        await client("KME_B", "SAE_B").get(DEC.format("SAE_A"), params={"key_ID": list(sent)})
    text = repr(logs)
    for key in sent.values():
        assert base64.b64encode(key).decode() not in text and key.hex() not in text


async def test_key_store_failure_answers_503_and_delivers_nothing(link, client, monkeypatch):
    link.fill(8)
    store = link.servers["KME_A"].store
    before = store.available("SAE_A", "SAE_B")

    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("qkdnode.keystore.store.atomic_write", disk_full)
    body = assert_error(await client("KME_A", "SAE_A").get(ENC.format("SAE_B")), 503)
    assert body["details"] == [{"error": "OSError"}]
    assert store.available("SAE_A", "SAE_B") == before


async def test_responses_and_delivered_keys_are_counted_for_metrics(link, client):
    link.fill(8)
    await client("KME_A", "SAE_A").get(ENC.format("SAE_B"), params={"number": 2})
    await client("KME_A", "SAE_A").get(ENC.format("SAE_B"), params={"number": 0})
    await client("KME_A", "KME_B").get(STATUS.format("SAE_B"))
    counters = link.servers["KME_A"].counters
    assert (counters["keys_delivered"], counters["responses_200"]) == (2, 1)
    assert (counters["responses_400"], counters["responses_401"]) == (1, 1)


async def test_blocks_queued_in_the_inbox_become_keys_while_serving(pki_dir, tmp_path):
    link = Link(pki_dir, tmp_path / "inboxed")
    for kme, config in link.configs.items():
        kme_section = config.kme.model_copy(update={"inbox_dir": tmp_path / f"inbox-{kme}", "inbox_poll_s": 0.05})
        link.configs[kme] = config.model_copy(update={"kme": kme_section})
        await link.start(kme)
    try:
        key = os.urandom(KEY_BYTES * 6)
        for kme in SAES:
            KeyInbox.open(tmp_path / f"inbox-{kme}", link_id="test-link").add_block("queued", key)
        for _ in range(200):
            if all(s.store.has_block("queued") for s in link.servers.values()):
                break
            await asyncio.sleep(0.05)
        stores = [s.store for s in link.servers.values()]
        assert stores[0].pending_ids("SAE_A", "SAE_B") == stores[1].pending_ids("SAE_A", "SAE_B") != []
    finally:
        for kme in SAES:
            await link.stop(kme)
