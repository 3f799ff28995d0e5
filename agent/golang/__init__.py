"""Go source handling: tokens, declarations, extraction from model text, edits,
deterministic source fixes, feedback."""
