"""What a study found: its trials as pandas frames, narrowed ranges with their evidence,
plots, the report, and whether two studies hold the same trials."""
