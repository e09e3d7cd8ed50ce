"""One adapter per vendor protocol, each with the descriptors of the providers it serves."""
