"""Compares models x CAM methods on a WSOL data set: prints one table and saves JSON.

The tool is res2net_det/engines/cam_eval.py (its --help lists the examples); also
``python -m res2net_det.engines.cam_eval``.
"""
from res2net_det.engines.cam_eval import main

if __name__ == "__main__":
    main()
