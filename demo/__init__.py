"""The demo: a month of generated source files run through every deployable (``chargeback demo``)."""
