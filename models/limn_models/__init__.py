"""limn model zoo: architectures, exporters and converters that write limn model files
(TorchScript `.pt`, and compiled `.pt2` packages through pt2.py)."""
