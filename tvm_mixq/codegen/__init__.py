"""See the package docstring of tvm_mixq."""
