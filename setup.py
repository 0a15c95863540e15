from setuptools import find_packages, setup

setup(
    name="res2net-det",
    version="0.1.0",
    description="The Res2Net backbone for object detection, salient object detection and CAM",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
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
    ],
    extras_require={
        # tools/export_model.py: ONNX files and their check with onnxruntime (and the
        # onnxruntime row of tools/benchmark.py backbone).
        "export": ["onnx>=1.14", "onnxruntime>=1.16"],
        # timm is the reference implementation the tests compare against; the export tests run
        # the ONNX round trip.
        "test": ["pytest", "timm", "onnx>=1.14", "onnxruntime>=1.16"],
    },
)
