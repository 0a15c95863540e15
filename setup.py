import re
from pathlib import Path

from setuptools import find_packages, setup

# The version lives in res2net_det/version.py alone; read it without importing the package (its
# dependencies may not be installed yet).
VERSION = re.search(r'__version__ = "([^"]+)"', Path(__file__).with_name("res2net_det").joinpath("version.py")
                    .read_text(encoding="utf-8")).group(1)

setup(
    name="res2net-det",
    version=VERSION,
    description="The Res2Net backbone for object detection, salient object detection and CAM",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",  # what CI tests (the pinned torch 2.14.1 / torchvision 0.29.1 wheels)
    packages=find_packages(include=["res2net_det", "res2net_det.*"]),
    # The configs ship inside the package (res2net_det/model_zoo/configs links to configs/), so
    # model_zoo.get_config_file() works after a non-editable install too.
    package_data={"res2net_det.model_zoo": ["configs/*.yaml", "configs/*/*.yaml", "configs/lazy/*.py"]},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy",
        "opencv-python-headless",
        "pycocotools",
        # Weights by name (res2net://, timm://, URLs): timm's hub files are .safetensors; the cache
        # is shared between processes through a file lock (filelock also comes with torch).
        "safetensors",
        "filelock",
        "fvcore",
        "yacs",
        "tqdm",
        "tensorboard",
        "matplotlib",
        "pysodmetrics",  # import py_sod_metrics: the SOD metrics (res2net_det.evaluation.saliency)
        # CAM methods and the ROAD metric (class activation mapping)
        "grad-cam>=1.5",
        "scipy",  # sparse products of the paired bootstrap (res2net_det.evaluation.bootstrap)
    ],
    extras_require={
        # tools/export_model.py: ONNX files and their check with onnxruntime (and the
        # onnxruntime row of tools/benchmark.py backbone).
        "export": ["onnx>=1.14", "onnxruntime>=1.16"],
        # timm is the reference implementation the tests compare against; the export tests run
        # the ONNX round trip; ruff is the lint .ci/run ends with (ruff.toml); pytest-xdist runs
        # the tests on every core (pytest.ini).
        "test": ["pytest", "pytest-xdist>=3.2", "timm", "onnx>=1.14", "onnxruntime>=1.16", "ruff"],
    },
)
