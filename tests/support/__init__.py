"""What the test modules share: paths, the tiny configuration, event builders, the demo bundle's
pipeline, dataset builders, a real mosquitto, CLI children and the virtual microphone.

Importable as ``support`` (pytest's ``pythonpath = ["tests"]``); no tests live here, and no test
module imports another test module: what two of them need sits in this package.
"""
