"""What one trial is: the built-in NumPy network or a user's Python entry, behind one
small interface (`kinds`)."""
