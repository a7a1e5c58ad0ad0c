"""Reports a person wants to look at: plots and an HTML page per run."""
