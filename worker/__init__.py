"""hirebridge: PageUp offers into a payroll/HRIS, exactly once."""

__version__ = "0.1.0"
