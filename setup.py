"""Package discovery that pyproject.toml alone cannot express: the top-level `configs/` folder
(scenario and node configs) ships inside the wheel as the data package `qkdnode.configs`."""

from setuptools import find_namespace_packages, find_packages, setup

CODE = find_packages(include=["qkdnode", "qkdnode.*", "drivers", "drivers.*", "sim_backends", "sim_backends.*"])
CONFIGS = ["qkdnode.configs"] + [f"qkdnode.configs.{name}" for name in find_namespace_packages("configs")]

setup(packages=CODE + CONFIGS, package_dir={"qkdnode.configs": "configs"})
