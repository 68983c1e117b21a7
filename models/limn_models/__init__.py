"""limn model zoo: architectures, exporters and converters that write limn TorchScript files."""
