"""The functions behind the ``dpdisp`` subcommands: submit, submission, run, gui."""
