"""Pure renderers and naming rules for job scripts and the files around them."""
