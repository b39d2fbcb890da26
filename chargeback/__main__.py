"""``python -m chargeback``: the same as the ``chargeback`` command."""

from chargeback.cli import main

main()
