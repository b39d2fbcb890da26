"""``python -m chargeback_cli``: the same as the ``chargeback`` command."""

from chargeback_cli.main import main

main()
