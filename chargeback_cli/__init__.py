"""The ``chargeback`` command: the composition root that wires every deployable's command group."""
