"""KME config: strict validation with key paths, paths relative to the file, TOML round trip."""

from pathlib import Path

import pytest
from delivery_helpers import kme_config

from qkdnode.config import ConfigError
from qkdnode.delivery.config import load_kme_config, render_kme_config

VALID = """
[kme]
id = "KME_A"
store_dir = "store"

[tls]
cert = "a.crt"
key = "a.key"
client_ca = "ca.crt"

[link]
link_id = "alice-bob"
kmes = { KME_A = ["SAE_A"], KME_B = ["SAE_B"] }
sae_pairs = [ { master = "SAE_A", slave = "SAE_B" } ]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kme.toml"
    path.write_text(text)
    return path


def test_valid_config_loads_with_paths_relative_to_the_file(tmp_path):
    config = load_kme_config(write(tmp_path, VALID))
    assert config.kme.store_dir == tmp_path.resolve() / "store"
    assert config.tls.client_ca == tmp_path.resolve() / "ca.crt"
    assert config.local_saes == ["SAE_A"]
    assert config.link.kme_of("SAE_B") == "KME_B"
    assert config.link.key_size_bits == 256


@pytest.mark.parametrize(
    "change, key_path",
    [
        (('store_dir = "store"', 'store_dir = "store"\ncolour = 1'), "kme.colour"),
        (('id = "KME_A"', 'id = "KME_C"'), ""),
        (('slave = "SAE_B"', 'slave = "SAE_X"'), "link"),
        (('KME_B = ["SAE_B"]', 'KME_B = ["SAE_A"]'), "link"),
        (('slave = "SAE_B"', 'slave = "SAE_A"'), "link"),
        (('link_id = "alice-bob"', 'link_id = "alice-bob"\nkey_size_bits = 100'), "link.key_size_bits"),
        (('kmes = { KME_A = ["SAE_A"], KME_B = ["SAE_B"] }', 'kmes = { KME_A = ["SAE_A"] }'), "link"),
        (('sae_pairs = [ { master = "SAE_A", slave = "SAE_B" } ]', "sae_pairs = []"), "link.sae_pairs"),
        (('store_dir = "store"', 'store_dir = "store"\ninbox_dir = "store"'), "kme"),
    ],
)
def test_invalid_config_names_file_and_key_path(tmp_path, change, key_path):
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_kme_config(path)
    assert str(path) in str(err.value)
    assert any(key == key_path for key, _ in err.value.problems), err.value.problems


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_kme_config(tmp_path / "absent.toml")


def test_rendered_config_loads_back_unchanged(tmp_path):
    config = kme_config(tmp_path, tmp_path, "KME_B")
    path = write(tmp_path, render_kme_config(config))
    assert load_kme_config(path) == config
