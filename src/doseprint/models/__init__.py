"""The file formats as frozen values, and the loaders that validate them."""
