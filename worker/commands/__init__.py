"""Command groups of the ``hirebridge`` command line beyond the offer sync's own."""
