"""The bodies of wotr's commands, below both front ends (DESIGN §2).

The click CLI (:mod:`wotr.cli`) and the click-free fast path (:mod:`wotr.entry`) parse a command
line into keyword arguments and call one ``run_*`` function here; output goes through
:func:`wotr.commands.common.echo` and errors through :func:`wotr.commands.common.report_error`, so
both front ends print the same bytes and exit with the same code. Nothing in this package imports
either front end (tests/test_entry.py fails on an import circle).
"""
