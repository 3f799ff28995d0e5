"""`fix`: a user's package, the session the loop runs on it, apply / backup / undo."""
