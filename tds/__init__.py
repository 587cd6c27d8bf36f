"""What users touch: the ``tds`` command line, the REST gateway and its pages, the demo and the
sandbox data space. It may import every other package; nothing imports it."""
