"""One generator per target, all reading the same IR (``scriptdsl.nodes``)."""
