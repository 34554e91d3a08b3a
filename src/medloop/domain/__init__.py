"""Plain Python + numpy domain objects: images, labels, measurements, versions."""
